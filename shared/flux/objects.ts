// Which Flux objects belong to one namespace: its own Kustomization(s) and HelmReleases,
// never the root `flux-system` Kustomization that applies everything (unless named).
import path from 'node:path'
import { NsopsError } from '../errors.ts'
import type { Kube } from '../kube.ts'
import { repoRoot } from '../paths.ts'
import { crdInstalled, listFlux, refString, type FluxObject } from './kinds.ts'
import { ROOT_KUSTOMIZATION } from './managing.ts'

export interface FluxScope {
  namespace: string
  /** the namespace's folder in the repo (relative to the repo root, or absolute inside it) */
  path?: string
  /** a Kustomization named explicitly: `name` (any namespace) or `namespace/name` */
  kustomizationName?: string
}


function normalize(p: string): string {
  const rel = path.isAbsolute(p) ? path.relative(repoRoot, p) : p
  const n = path.posix.normalize(rel.split(path.sep).join('/')).replace(/^\.?\/+/, '').replace(/\/+$/, '')
  return n === '.' ? '' : n
}

function under(specPath: unknown, folder: string): boolean {
  if (typeof specPath !== 'string' || folder === '') return false
  const p = normalize(specPath)
  return p === folder || p.startsWith(`${folder}/`)
}

function named(obj: FluxObject, name: string): boolean {
  const [ns, n] = name.includes('/') ? name.split('/', 2) : [undefined, name]
  return obj.metadata.name === n && (ns === undefined || obj.metadata.namespace === ns)
}

/** HelmReleases a Kustomization applied, from its inventory ids `<ns>_<name>_<group>_<Kind>`. */
function inventoryHelmReleases(ks: FluxObject): Set<string> {
  const entries = (ks.status?.inventory as { entries?: { id?: string }[] } | undefined)?.entries ?? []
  const out = new Set<string>()
  for (const e of entries) {
    const parts = e.id?.split('_') ?? []
    if (parts.length === 4 && parts[2] === 'helm.toolkit.fluxcd.io' && parts[3] === 'HelmRelease') out.add(`${parts[0]}/${parts[1]}`)
  }
  return out
}

/**
 * The namespace's own Flux objects: Kustomizations whose spec.targetNamespace is the
 * namespace, whose spec.path is its folder (or below it), or that are named explicitly; and
 * HelmReleases in the namespace, targeting it, or in those Kustomizations' inventories.
 * Kustomizations first, then HelmReleases, each sorted by namespace/name. Empty when Flux is
 * not installed; an explicitly named Kustomization that does not exist is an error.
 */
export async function fluxObjectsFor(kube: Kube, scope: FluxScope): Promise<FluxObject[]> {
  const fallbackNamespaces = ['flux-system', scope.namespace]
  const [allKs, allHr] = await Promise.all([
    listFlux(kube, 'Kustomization', { fallbackNamespaces }),
    listFlux(kube, 'HelmRelease', { fallbackNamespaces }),
  ])
  const folder = scope.path ? normalize(scope.path) : ''

  if (scope.kustomizationName && !allKs.some((k) => named(k, scope.kustomizationName!))) {
    // a cluster without Flux has nothing of this namespace's to suspend or show
    if (allKs.length === 0 && !(await crdInstalled(kube, 'Kustomization'))) return []
    const known = allKs.map((k) => `${k.metadata.namespace}/${k.metadata.name}`).sort()
    throw new NsopsError(`there is no Flux Kustomization named ${scope.kustomizationName}.`, {
      hint: `Known Kustomizations: ${known.join(', ') || '(none)'}. Fix \`flux.kustomization\` in the namespace's namespace.ts.`,
    })
  }

  const ks = allKs.filter((k) => {
    if (scope.kustomizationName && named(k, scope.kustomizationName)) return true
    if (k.metadata.name === ROOT_KUSTOMIZATION) return false
    return k.spec?.targetNamespace === scope.namespace || under(k.spec?.path, folder)
  })
  const applied = new Set(ks.flatMap((k) => [...inventoryHelmReleases(k)]))
  const hr = allHr.filter((h) =>
    h.metadata.namespace === scope.namespace ||
    h.spec?.targetNamespace === scope.namespace ||
    applied.has(`${h.metadata.namespace}/${h.metadata.name}`))

  const byRef = (a: FluxObject, b: FluxObject) => refString(a).localeCompare(refString(b))
  return [...ks.sort(byRef), ...hr.sort(byRef)]
}
