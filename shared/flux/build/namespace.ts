// A namespace's prod build: what Flux applies to it, i.e. the builds of the Flux
// Kustomization(s) that apply its objects (found in the repository's Flux tree), substituted
// as kustomize-controller substitutes. Every command that asks "what would Flux apply here?"
// (validate, deploy and its diff, drift's baseline, ci diff, the dev loop) asks this. A
// namespace no Kustomization applies is built as before: kustomize build of overlays/prod.
import fs from 'node:fs'
import path from 'node:path'
import { buildKustomization } from '../../kustomize/build.ts'
import type { ManifestObject } from '../../kube/refs.ts'
import { isApiError, type Kube } from '../../kube/client.ts'
import { FluxTree, type FluxNode } from './tree.ts'
import { substituteLike, type VarsLookup } from './kustomization.ts'

/** What the build needs of a namespace (a NamespaceConfig fits). */
export interface ProdScope {
  name: string
  namespaces: { prod: string }
  flux?: { kustomization?: string }
  paths: { root: string; overlays: { prod: string } }
}

export interface ProdBuild {
  objects: ManifestObject[]
  /** the Flux Kustomizations built, in dependsOn order; empty: overlays/prod, not under Flux */
  kustomizations: FluxNode[]
  /** what was built, for people: `Flux Kustomization flux-system/arr-stack (k8s/flux/arr-stack.yaml)` or `namespaces/x/overlays/prod` */
  label: string
  /** the folder a user edits for it (error positions, schema origins): the first spec.path, or overlays/prod */
  dir: string
}

export interface ProdBuildOptions {
  /** substituteFrom from the cluster when connected (clusterVars) */
  vars?: VarsLookup
  /** strict post-build substitution; default: what the repository's kustomize-controller says (strict unless turned off) */
  strict?: boolean
  /** a tree already loaded for this repository (several namespaces in one command) */
  tree?: FluxTree
  /** kustomize's reuse of working-tree builds, for the overlays/prod fallback */
  reuse?: boolean
  /** `empty`: a namespace with neither a Kustomization nor overlays/prod builds to nothing (one new or gone in a change) */
  missingOverlay?: 'empty'
}

const trees = new Map<string, Promise<FluxTree>>()

/** The repository's Flux tree, loaded once per process and repository directory. */
export function fluxTreeOf(repoDir: string, opts: { vars?: VarsLookup; strict?: boolean } = {}): Promise<FluxTree> {
  const key = `${path.resolve(repoDir)}\0${opts.strict ?? strictInRepo(repoDir)}\0${opts.vars ? 'vars' : ''}`
  let t = trees.get(key)
  if (!t) {
    t = FluxTree.load(repoDir, { vars: opts.vars, strict: opts.strict ?? strictInRepo(repoDir) })
    trees.set(key, t)
    t.catch(() => trees.delete(key))
  }
  return t
}

/** Forgets loaded trees (the working tree changed: the dev loop, tests). */
export function forgetFluxTrees(): void {
  trees.clear()
}

/** The Flux Kustomizations that apply a namespace: named in namespace.ts, else found by target or build. */
export async function kustomizationsOf(scope: ProdScope, tree: FluxTree): Promise<FluxNode[]> {
  const named = scope.flux?.kustomization
  const byName = named ? [...tree.nodes.values()].filter((n) => n.kustomization.metadata.name === named) : []
  const found = byName.length ? byName : await tree.forNamespace(scope.namespaces.prod)
  // a root that applies everything (flux-system over the whole repo) is not the namespace's own
  const own = found.filter(
    (n) => n.children.length === 0 || n.kustomization.spec?.targetNamespace === scope.namespaces.prod,
  )
  return tree.ordered(own.length ? own : found)
}

export async function buildProd(scope: ProdScope, repoDir: string, opts: ProdBuildOptions = {}): Promise<ProdBuild> {
  const tree = opts.tree ?? (await fluxTreeOf(repoDir, { vars: opts.vars, strict: opts.strict }))
  const nodes = await kustomizationsOf(scope, tree)
  const overlay = path.join(repoDir, path.relative(rootOf(scope), scope.paths.overlays.prod))
  if (!nodes.length) {
    if (opts.missingOverlay === 'empty' && !fs.existsSync(overlay))
      return { objects: [], kustomizations: [], label: path.relative(repoDir, overlay), dir: overlay }
    const objects = await buildKustomization(overlay, { reuse: opts.reuse })
    return { objects, kustomizations: [], label: path.relative(repoDir, overlay), dir: overlay }
  }
  const objects: ManifestObject[] = []
  const seen = new Set<string>()
  for (const n of nodes) {
    for (const o of (await tree.build(n)).objects) {
      const k = `${o.apiVersion}/${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`
      if (seen.has(k)) continue
      seen.add(k)
      objects.push(o)
    }
  }
  const first = nodes[0]
  const label =
    nodes.length === 1
      ? `Flux Kustomization ${first.id}${first.file ? ` (${first.file})` : ''}`
      : `${nodes.length} Flux Kustomizations (${nodes.map((n) => n.id).join(', ')})`
  return { objects, kustomizations: nodes, label, dir: path.resolve(repoDir, first.kustomization.spec?.path ?? '.') }
}

/**
 * What the dev loop runs its builds through so a dev apply sees the values prod's Flux
 * Kustomization(s) give (postBuild substitute/substituteFrom), plus the dev overlay's own
 * changes: undefined when no Kustomization of the namespace has a postBuild.
 */
export async function devSubstitution(
  scope: ProdScope,
  repoDir: string,
  opts: { vars?: VarsLookup } = {},
): Promise<((objects: ManifestObject[]) => Promise<ManifestObject[]>) | undefined> {
  const tree = await FluxTree.load(repoDir, { vars: opts.vars, strict: strictInRepo(repoDir) })
  const nodes = (await kustomizationsOf(scope, tree)).filter((n) => n.kustomization.spec?.postBuild)
  if (!nodes.length) return undefined
  const strict = strictInRepo(repoDir)
  return async (objects) => {
    let out = objects
    for (const n of nodes)
      out = await substituteLike(n.kustomization, out, {
        vars: tree.varsFor(n),
        strict,
        origin: n.file ? `${n.file}, over the dev overlay` : 'over the dev overlay',
      })
    return out
  }
}

/** The repository root a namespace config was loaded from (namespaces/<ns> is two below it). */
function rootOf(scope: ProdScope): string {
  return path.resolve(scope.paths.root, '..', '..')
}

/**
 * Whether the repository's kustomize-controller substitutes strictly: yes (its default since
 * v1.9) unless the Flux manifests it keeps (flux-system's kustomization patches, a
 * FluxInstance's patches, k8s/flux) pass --feature-gates=StrictPostBuildSubstitutions=false.
 */
export function strictInRepo(repoDir: string): boolean {
  const places = ['k8s/flux', 'clusters', 'kubernetes/flux', 'flux']
  const look = (dir: string, depth: number): boolean => {
    if (depth > 4 || !fs.existsSync(dir)) return false
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, e.name)
      if (e.isDirectory()) {
        if (look(full, depth + 1)) return true
      } else if (/\.ya?ml$/.test(e.name) && /StrictPostBuildSubstitutions=false/.test(fs.readFileSync(full, 'utf8')))
        return true
    }
    return false
  }
  return !places.some((p) => look(path.join(repoDir, p), 0))
}

/** Whether the cluster's kustomize-controller Deployment substitutes strictly (undefined: no such Deployment). */
export async function strictInCluster(kube: Kube): Promise<boolean | undefined> {
  try {
    const d = await kube.apps.readNamespacedDeployment({ name: 'kustomize-controller', namespace: 'flux-system' })
    const args = d.spec?.template.spec?.containers.flatMap((c) => [...(c.args ?? []), ...(c.command ?? [])]) ?? []
    return !args.some((a) => /StrictPostBuildSubstitutions=false/.test(a))
  } catch (err) {
    if (isApiError(err, 404)) return undefined
    throw err
  }
}
