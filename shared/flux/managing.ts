// The one answer to "which Flux Kustomization(s) manage this namespace?", asked by the dev
// loop (what to hold), the dashboard (what to show), deploy (what must apply the push) and
// drift (what to compare with). A namespace can be managed by its own Kustomization, or by
// the root `flux-system` one that includes every namespace's overlays/prod (the seed repo's
// layout), or by nothing yet: that is "not under Flux", never an error.
import fs from 'node:fs'
import path from 'node:path'
import YAML from 'yaml'
import type { ObjectRef } from '../kube/refs.ts'
import type { Kube } from '../kube/client.ts'
import { repoRoot, repoPath } from '../core/paths.ts'
import { crdInstalled, listFlux, fluxRefString, type FluxObject } from './kinds.ts'

/** The root Kustomization `flux bootstrap` creates; it applies every namespace's objects. */
export const ROOT_KUSTOMIZATION = 'flux-system'

export interface Manager {
  kustomization: FluxObject
  /**
   * how we know: `inventory` (it applied objects of the namespace), `path` (its spec.path
   * builds namespaces/<ns>/overlays/prod), `targetNamespace` (it targets the namespace),
   * `name` (namespace.ts names it)
   */
  by: 'inventory' | 'path' | 'targetNamespace' | 'name'
  /** the root `flux-system` Kustomization: never suspended without an explicit flag */
  root: boolean
}

export type FluxManagement =
  | { state: 'no-flux'; note: string; kustomizations: FluxObject[] }
  | { state: 'unmanaged'; note: string; kustomizations: FluxObject[] }
  | { state: 'managed'; managers: Manager[]; helmReleases: FluxObject[]; note: string; kustomizations: FluxObject[] }

/** What the finder needs of a namespace (a NamespaceConfig fits). */
export interface ManagedScope {
  /** the folder under namespaces/ */
  name: string
  namespaces: { prod: string }
  flux?: { kustomization?: string }
  /** an adopted repository's layout (`just init`): its Kustomizations (files or names) and folders */
  layout?: { kustomizations: string[]; paths: string[] }
}

/** Inventory ids are `<namespace>_<name>_<group>_<Kind>` (namespace empty when cluster-scoped). */
export function inventoryRefs(ks: FluxObject): ObjectRef[] {
  const entries = (ks.status?.inventory as { entries?: { id?: string; v?: string }[] } | undefined)?.entries ?? []
  const refs: ObjectRef[] = []
  for (const e of entries) {
    const parts = e.id?.split('_') ?? []
    if (parts.length !== 4 || !parts[1] || !parts[3] || !e.v) continue
    const [namespace, name, group, kind] = parts
    const ref: ObjectRef = { apiVersion: group ? `${group}/${e.v}` : e.v, kind, name }
    if (namespace) ref.namespace = namespace
    refs.push(ref)
  }
  return refs
}

export function hasInventory(ks: FluxObject): boolean {
  return Array.isArray((ks.status?.inventory as { entries?: unknown[] } | undefined)?.entries)
}

/** Whether the Kustomization's inventory holds an object of the namespace (or the Namespace itself). */
function inventoryTouches(ks: FluxObject, namespace: string): boolean {
  return inventoryRefs(ks).some(
    (r) => r.namespace === namespace || (r.kind === 'Namespace' && !r.namespace && r.name === namespace),
  )
}

const kustomizationFiles = ['kustomization.yaml', 'kustomization.yml', 'Kustomization']

/**
 * Whether building `from` (a folder relative to the repo root) includes `target`: through
 * kustomization.yaml resources/components that are folders, transitively; or, where `from`
 * has no kustomization.yaml, by `target` lying below it (kustomize-controller then
 * generates one that takes in every folder under it that has a kustomization).
 */
export function pathBuilds(from: string, target: string, root = repoRoot, seen = new Set<string>()): boolean {
  const f = repoPath(from)
  const t = repoPath(target)
  if (f === t) return true
  if (seen.has(f)) return false
  seen.add(f)
  const dir = path.join(root, f)
  const file = kustomizationFiles.map((k) => path.join(dir, k)).find((k) => fs.existsSync(k))
  if (!file) return f === '' || t.startsWith(`${f}/`)
  let doc: { resources?: unknown; components?: unknown; bases?: unknown } | null
  try {
    doc = YAML.parse(fs.readFileSync(file, 'utf8'))
  } catch {
    return false
  }
  const entries = [doc?.resources, doc?.components, doc?.bases]
    .flatMap((x) => (Array.isArray(x) ? x : []))
    .filter((x): x is string => typeof x === 'string')
  return entries.some((e) => {
    if (/^[a-z]+:\/\//.test(e) || e.includes('?')) return false // remote bases are not this repo
    const next = path.posix.join(f, e)
    if (next.startsWith('..')) return false
    return (
      fs.existsSync(path.join(root, next)) &&
      fs.statSync(path.join(root, next)).isDirectory() &&
      pathBuilds(next, t, root, seen)
    )
  })
}

function inventoryHelmReleases(ks: FluxObject): Set<string> {
  return new Set(
    inventoryRefs(ks)
      .filter((r) => r.kind === 'HelmRelease' && r.apiVersion.startsWith('helm.toolkit.fluxcd.io/'))
      .map((r) => `${r.namespace}/${r.name}`),
  )
}

/**
 * The Kustomizations that manage the namespace, and the HelmReleases they (or the namespace)
 * hold. Read-only. The inventory is the truth once Flux has applied; before that, spec.path
 * (resolved against this checkout), targetNamespace and the name in namespace.ts tell.
 */
export async function findManagers(
  kube: Kube,
  scope: ManagedScope,
  opts: { root?: string } = {},
): Promise<FluxManagement> {
  const namespace = scope.namespaces.prod
  const fallbackNamespaces = ['flux-system', namespace]
  const [allKs, allHr] = await Promise.all([
    listFlux(kube, 'Kustomization', { fallbackNamespaces }),
    listFlux(kube, 'HelmRelease', { fallbackNamespaces }).catch(() => [] as FluxObject[]),
  ])
  if (allKs.length === 0 && !(await crdInstalled(kube, 'Kustomization'))) {
    return {
      state: 'no-flux',
      note: `Flux is not installed on ${kube.context} (no Kustomization CRD)`,
      kustomizations: [],
    }
  }
  const overlay = `namespaces/${scope.name}/overlays/prod`
  const named = scope.flux?.kustomization
  // a layout names its Kustomizations by file (`…/ks.yaml`) or by name (`media`, `flux-system/media`)
  const layoutNames = (scope.layout?.kustomizations ?? []).filter((k) => !/\.ya?ml$/.test(k))
  const layoutPaths = scope.layout?.paths ?? []
  const managers: Manager[] = []
  for (const ks of allKs) {
    const root = ks.metadata.name === ROOT_KUSTOMIZATION && ks.metadata.namespace === 'flux-system'
    let by: Manager['by'] | undefined
    if (hasInventory(ks) && inventoryTouches(ks, namespace)) by = 'inventory'
    else if (
      typeof ks.spec?.path === 'string' &&
      [overlay, ...layoutPaths].some((p) => pathBuilds(ks.spec!.path as string, p, opts.root))
    )
      by = 'path'
    else if (ks.spec?.targetNamespace === namespace) by = 'targetNamespace'
    else if (named && ks.metadata.name === named && !root) by = 'name'
    else if (
      !root &&
      layoutNames.some((n) => n === ks.metadata.name || n === `${ks.metadata.namespace}/${ks.metadata.name}`)
    )
      by = 'name'
    if (by) managers.push({ kustomization: ks, by, root })
  }
  if (managers.length === 0) {
    return {
      state: 'unmanaged',
      note: `not under Flux: no Kustomization applies ${scope.layout ? `what namespaces/${scope.name}/namespace.ts names (${[...scope.layout.kustomizations, ...layoutPaths].join(', ')})` : overlay} or objects in namespace ${namespace}`,
      kustomizations: allKs,
    }
  }
  // the namespace's own Kustomization(s) first, the root last
  managers.sort(
    (a, b) =>
      Number(a.root) - Number(b.root) || fluxRefString(a.kustomization).localeCompare(fluxRefString(b.kustomization)),
  )
  const applied = new Set(managers.flatMap((m) => [...inventoryHelmReleases(m.kustomization)]))
  const helmReleases = allHr.filter(
    (h) =>
      h.metadata.namespace === namespace ||
      h.spec?.targetNamespace === namespace ||
      applied.has(`${h.metadata.namespace}/${h.metadata.name}`),
  )
  const note = `managed by ${managers.map((m) => `${fluxRefString(m.kustomization)} (${m.by}${m.root ? ', root' : ''})`).join(', ')}`
  return { state: 'managed', managers, helmReleases, note, kustomizations: allKs }
}

/**
 * Whether applying `ref` would touch what the Kustomization manages: by its inventory when
 * it has one; otherwise (never applied yet) anything in the namespace it targets or builds.
 */
export function manages(m: Manager, ref: ObjectRef, prodNamespace: string): boolean {
  const ks = m.kustomization
  if (hasInventory(ks)) {
    const key = (r: ObjectRef) =>
      `${r.apiVersion.split('/').length > 1 ? r.apiVersion.split('/')[0] : ''}/${r.kind}/${r.namespace ?? ''}/${r.name}`
    const mine = new Set(inventoryRefs(ks).map(key))
    return mine.has(key(ref))
  }
  return ref.namespace === prodNamespace || (ref.kind === 'Namespace' && ref.name === prodNamespace)
}

/**
 * The Kustomizations a namespace's suspend, resume and reconcile act on: its own managers;
 * the root `flux-system` only with `root` (acting on it acts on every namespace).
 */
export async function namespaceKustomizations(
  kube: Kube,
  scope: ManagedScope,
  opts: { root?: boolean } = {},
): Promise<{ kustomizations: FluxObject[]; skippedRoot?: FluxObject; note: string }> {
  const m = await findManagers(kube, scope)
  if (m.state !== 'managed') return { kustomizations: [], note: m.note }
  const root = m.managers.find((x) => x.root)?.kustomization
  const own = m.managers.filter((x) => !x.root || opts.root).map((x) => x.kustomization)
  return { kustomizations: own, skippedRoot: opts.root ? undefined : root, note: m.note }
}
