// A namespace's prod build: what Flux applies to it, i.e. the builds of the Flux
// Kustomization(s) that apply its objects (found in the repository's Flux tree), substituted
// as kustomize-controller substitutes. Every command that asks "what would Flux apply here?"
// (validate, deploy and its diff, drift's baseline, ci diff, the dev loop) asks this. A
// namespace no Kustomization applies is built as before: kustomize build of overlays/prod.
// A namespace.ts `layout` names them instead (its ks.yaml files, their names, or folders).
import fs from 'node:fs'
import path from 'node:path'
import { buildKustomization } from '../../kustomize/build.ts'
import { mapLimit } from '../../apply/order.ts'
import type { ManifestObject } from '../../kube/refs.ts'
import { isApiError, type Kube } from '../../kube/client.ts'
import { rest } from '../../kube/rest.ts'
import { NsopsError } from '../../core/errors.ts'
import { FluxTree, fluxKustomizationsIn, type FluxNode } from './tree.ts'
import { substituteLike, type FluxKustomization, type VarsLookup } from './kustomization.ts'
import { renderHelmRelease, type HelmRenderOptions, type RenderedRelease } from './helm-release.ts'
import { isHelmRelease } from './tree.ts'
import { repoPath } from '../../core/paths.ts'

/** What the build needs of a namespace (a NamespaceConfig fits). */
export interface ProdScope {
  name: string
  namespaces: { prod: string }
  flux?: { kustomization?: string }
  paths: { root: string; overlays: { prod: string } }
  /** where its Flux objects are, relative to the repository (namespace.ts layout) */
  layout?: { kustomizations: string[]; paths: string[] }
}

/** One piece of a prod build: a Flux Kustomization's build, or a folder built by kustomize. */
export interface ProdPart {
  node?: FluxNode
  /** the folder built (absolute) */
  dir: string
  objects: ManifestObject[]
}

export interface ProdBuild {
  objects: ManifestObject[]
  /** the Flux Kustomizations built, in dependsOn order; empty: overlays/prod, not under Flux */
  kustomizations: FluxNode[]
  /** what was built, for people: `Flux Kustomization flux-system/arr-stack (k8s/flux/arr-stack.yaml)` or `namespaces/x/overlays/prod` */
  label: string
  /** the folder a user edits for it (error positions, schema origins): the first spec.path, or overlays/prod */
  dir: string
  /** each Kustomization's (or folder's) own objects, in dependsOn order */
  parts: ProdPart[]
  /** its HelmReleases rendered as helm-controller would (only with ProdBuildOptions.helm) */
  releases: RenderedRelease[]
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
  /** render the HelmReleases too (ProdBuild.releases): the target's versions, offline, warnings */
  helm?: HelmRenderOptions
  /**
   * build only these of the namespace's Flux Kustomizations (`namespace/name`), and no folder
   * outside the Flux tree: what a change touches (`just ci diff`, changed-only)
   */
  only?: Set<string>
}

const trees = new Map<string, Promise<FluxTree>>()

/** The repository's Flux tree, loaded once per process and repository directory. */
export function fluxTreeOf(
  repoDir: string,
  opts: { vars?: VarsLookup; strict?: boolean; skipLeaves?: boolean } = {},
): Promise<FluxTree> {
  const key = `${path.resolve(repoDir)}\0${opts.strict ?? strictInRepo(repoDir)}\0${opts.vars ? 'vars' : ''}\0${opts.skipLeaves ? 'lazy' : ''}`
  let t = trees.get(key)
  if (!t) {
    t = FluxTree.load(repoDir, {
      vars: opts.vars,
      strict: opts.strict ?? strictInRepo(repoDir),
      skipLeaves: opts.skipLeaves,
    })
    trees.set(key, t)
    t.catch(() => trees.delete(key))
  }
  return t
}

/** Forgets loaded trees (the working tree changed: the dev loop, tests). */
export function forgetFluxTrees(): void {
  trees.clear()
}

/** The Flux Kustomizations that apply a namespace: its layout's, else named in namespace.ts, else found by target or build. */
export async function kustomizationsOf(scope: ProdScope, tree: FluxTree): Promise<FluxNode[]> {
  if (scope.layout) return tree.ordered((await layoutParts(scope, tree)).flatMap((p) => (p.node ? [p.node] : [])))
  const named = scope.flux?.kustomization
  const byName = named ? [...tree.nodes.values()].filter((n) => n.kustomization.metadata.name === named) : []
  const found = byName.length ? byName : await tree.forNamespace(scope.namespaces.prod)
  // a root that applies everything (flux-system over the whole repo) is not the namespace's own
  const own = found.filter(
    (n) => n.children.length === 0 || n.kustomization.spec?.targetNamespace === scope.namespaces.prod,
  )
  return tree.ordered(own.length ? own : found)
}

const isFile = (entry: string) => /\.ya?ml$/.test(entry)
const isPattern = (entry: string) => /[*?[]/.test(entry)

/** What a namespace.ts layout names: Flux Kustomizations of the tree, and folders no Kustomization builds. */
async function layoutParts(
  scope: ProdScope,
  tree: FluxTree,
  lenient = false,
): Promise<{ node?: FluxNode; dir?: string }[]> {
  const layout = scope.layout!
  const where = `namespaces/${scope.name}/namespace.ts`
  const out: { node?: FluxNode; dir?: string }[] = []
  const push = (p: { node?: FluxNode; dir?: string }) => {
    if (p.node && out.some((o) => o.node === p.node)) return
    out.push(p)
  }
  const known = () => [...tree.nodes.values()].map((n) => (n.file ? `${n.id} (${n.file})` : n.id)).join(', ') || 'none'
  layout.kustomizations.forEach((pattern, i) => {
    // a pattern (`kubernetes/apps/media/*/ks.yaml`, as `just init` writes for one ks.yaml per
    // app) stands for every file it matches now: an app added later counts without an edit
    const entries = isPattern(pattern)
      ? fs
          .globSync(pattern, { cwd: tree.repoDir })
          .map((f) => f.split(path.sep).join('/'))
          .sort()
      : [pattern]
    if (!entries.length && !lenient)
      throw new NsopsError(`${where}: layout.kustomizations[${i}] is ${pattern}, which matches no file.`, {
        hint: 'A pattern is relative to the repository, e.g. kubernetes/apps/NS/*/ks.yaml.',
      })
    for (const entry of entries) layoutEntry(entry, i)
  })
  function layoutEntry(entry: string, i: number): void {
    let nodes: FluxNode[]
    if (isFile(entry)) {
      const file = path.join(tree.repoDir, entry)
      if (lenient && !fs.existsSync(file)) return // a file new in this change: nothing before it
      if (!fs.existsSync(file))
        throw new NsopsError(`${where}: layout.kustomizations[${i}] names ${entry}, which does not exist.`, {
          hint: 'Name the ks.yaml file relative to the repository (kubernetes/apps/NS/APP/ks.yaml), or the Kustomization by name.',
        })
      const ids = fluxKustomizationsIn(file).map((k) => `${k.metadata.namespace ?? 'flux-system'}/${k.metadata.name}`)
      nodes = ids.flatMap((id) => (tree.nodes.has(id) ? [tree.nodes.get(id)!] : []))
      if (!nodes.length && !lenient)
        throw new NsopsError(
          `${where}: layout.kustomizations[${i}] names ${entry}, but ${ids.length ? `its Flux Kustomization${ids.length > 1 ? 's' : ''} (${ids.join(', ')}) ${ids.length > 1 ? 'are' : 'is'} not in the repository's Flux tree` : 'it holds no Flux Kustomization'}.`,
          {
            hint: `A Kustomization counts once a root applies it (a kustomization.yaml lists the file). Known: ${known()}.`,
          },
        )
    } else {
      const id = entry.includes('/') ? entry : `flux-system/${entry}`
      nodes = tree.nodes.has(id) ? [tree.nodes.get(id)!] : []
      if (!nodes.length && !lenient)
        throw new NsopsError(
          `${where}: layout.kustomizations[${i}] names the Flux Kustomization ${entry}, which is not in the repository's Flux tree.`,
          { hint: `Known: ${known()}.` },
        )
    }
    nodes.forEach((node) => push({ node }))
  }
  for (const entry of layout.paths) {
    const want = repoPath(entry)
    const node = [...tree.nodes.values()].find((n) => repoPath(n.kustomization.spec?.path ?? '.') === want)
    push(node ? { node } : { dir: path.join(tree.repoDir, entry) })
  }
  return out
}

const keyOf = (o: ManifestObject) => `${o.apiVersion}/${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`

export async function buildProd(scope: ProdScope, repoDir: string, opts: ProdBuildOptions = {}): Promise<ProdBuild> {
  const tree = opts.tree ?? (await fluxTreeOf(repoDir, { vars: opts.vars, strict: opts.strict }))
  const built = await buildParts(scope, repoDir, tree, opts)
  if (opts.helm) built.releases = await renderReleases(built.parts, tree, opts.helm)
  return built
}

/**
 * Each HelmRelease of the parts, rendered with its part as the build it sits in (its sources
 * and values ConfigMaps are looked up there first, then in the repository's other builds).
 */
async function renderReleases(parts: ProdPart[], tree: FluxTree, opts: HelmRenderOptions): Promise<RenderedRelease[]> {
  const jobs: { o: ManifestObject; p: ProdPart; ks: FluxKustomization }[] = []
  const done = new Set<string>()
  for (const p of parts) {
    // a folder no Kustomization applies stands for one of its own
    const ks: FluxKustomization = p.node?.kustomization ?? {
      apiVersion: 'kustomize.toolkit.fluxcd.io/v1',
      kind: 'Kustomization',
      metadata: { name: path.basename(p.dir), namespace: 'flux-system' },
      spec: { path: path.relative(tree.repoDir, p.dir), sourceRef: { kind: 'GitRepository', name: 'flux-system' } },
    }
    for (const o of p.objects.filter(isHelmRelease)) {
      const id = `${o.metadata.namespace ?? ''}/${o.metadata.name}`
      if (done.has(id)) continue
      done.add(id)
      jobs.push({ o, p, ks })
    }
  }
  // side by side: each is mostly a helm process (or a cache read)
  return mapLimit(jobs, RENDER_CONCURRENCY, ({ o, p, ks }) =>
    renderHelmRelease(
      o,
      { kustomization: ks, sourceRoot: tree.repoDir, objects: p.objects, lookup: (ref) => tree.find(ref, p.node) },
      opts,
    ),
  )
}

const RENDER_CONCURRENCY = 4

async function buildParts(
  scope: ProdScope,
  repoDir: string,
  tree: FluxTree,
  opts: ProdBuildOptions,
): Promise<ProdBuild> {
  if (scope.layout) return buildLayout(scope, tree, opts)
  const all = await kustomizationsOf(scope, tree)
  const nodes = opts.only ? all.filter((n) => opts.only!.has(n.id)) : all
  if (opts.only && all.length && !nodes.length)
    return { objects: [], kustomizations: [], label: describe(all), dir: '', parts: [], releases: [] }
  const overlay = path.join(repoDir, path.relative(rootOf(scope), scope.paths.overlays.prod))
  if (!nodes.length) {
    if (opts.missingOverlay === 'empty' && !fs.existsSync(overlay))
      return {
        objects: [],
        kustomizations: [],
        label: path.relative(repoDir, overlay),
        dir: overlay,
        parts: [],
        releases: [],
      }
    const objects = await buildKustomization(overlay, { reuse: opts.reuse })
    return {
      objects,
      kustomizations: [],
      label: path.relative(repoDir, overlay),
      dir: overlay,
      parts: [{ dir: overlay, objects }],
      releases: [],
    }
  }
  const parts: ProdPart[] = []
  for (const n of nodes)
    parts.push({
      node: n,
      dir: path.resolve(repoDir, n.kustomization.spec?.path ?? '.'),
      objects: (await tree.build(n)).objects,
    })
  return joined(parts, nodes, describe(nodes))
}

/** A namespace whose namespace.ts says where its Flux objects are (layout). */
async function buildLayout(scope: ProdScope, tree: FluxTree, opts: ProdBuildOptions): Promise<ProdBuild> {
  const found = await layoutParts(scope, tree, opts.missingOverlay === 'empty')
  const nodes = tree.ordered(found.flatMap((p) => (p.node && (!opts.only || opts.only.has(p.node.id)) ? [p.node] : [])))
  const dirs = opts.only ? [] : found.flatMap((p) => (p.dir ? [p.dir] : []))
  const parts: ProdPart[] = []
  for (const dir of dirs) {
    if (opts.missingOverlay === 'empty' && !fs.existsSync(dir)) continue
    parts.push({ dir, objects: await buildKustomization(dir, { reuse: opts.reuse }) })
  }
  // a parent the layout names with its children (home-ops' namespace folder: the Namespace
  // and the apps' ks.yaml) gives its own objects; the children's definitions are not the
  // namespace's objects but the Kustomizations built here (and they live in flux-system)
  const ids = new Set(nodes.map((n) => n.id))
  const isNamed = (o: ManifestObject) =>
    o.kind === 'Kustomization' &&
    o.apiVersion.startsWith('kustomize.toolkit.fluxcd.io/') &&
    ids.has(`${o.metadata.namespace ?? 'flux-system'}/${o.metadata.name}`)
  for (const n of nodes)
    parts.push({
      node: n,
      dir: path.resolve(tree.repoDir, n.kustomization.spec?.path ?? '.'),
      objects: (await tree.build(n)).objects.filter((o) => !isNamed(o)),
    })
  const label = [...(nodes.length ? [describe(nodes)] : []), ...dirs.map((d) => path.relative(tree.repoDir, d))].join(
    ' and ',
  )
  return joined(parts, nodes, label)
}

function describe(nodes: FluxNode[]): string {
  const first = nodes[0]
  return nodes.length === 1
    ? `Flux Kustomization ${first.id}${first.file ? ` (${first.file})` : ''}`
    : `${nodes.length} Flux Kustomizations (${nodes.map((n) => n.id).join(', ')})`
}

function joined(parts: ProdPart[], nodes: FluxNode[], label: string): ProdBuild {
  const objects: ManifestObject[] = []
  const seen = new Set<string>()
  for (const p of parts) {
    p.objects = p.objects.filter((o) => {
      const k = keyOf(o)
      if (seen.has(k)) return false
      seen.add(k)
      return true
    })
    objects.push(...p.objects)
  }
  return { objects, kustomizations: nodes, label, dir: parts[0]?.dir ?? '', parts, releases: [] }
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
  const substitute = (n: FluxNode, objects: ManifestObject[]) =>
    substituteLike(n.kustomization, objects, {
      vars: tree.varsFor(n),
      strict,
      offline: !opts.vars,
      origin: n.file ? `${n.file}, over the dev overlay` : 'over the dev overlay',
    })
  if (nodes.length === 1) return (objects) => substitute(nodes[0], objects)
  // several Kustomizations with their own variables (one per app, home-ops' shape): each dev
  // object gets the variables of the Kustomization whose prod build has it (by kind and name);
  // one prod has nowhere is left as written
  const owner = new Map<string, FluxNode>()
  for (const n of nodes)
    for (const o of (await tree.build(n)).objects)
      owner.set(`${o.kind}/${o.metadata.name}`, owner.get(`${o.kind}/${o.metadata.name}`) ?? n)
  return async (objects) => {
    const groups = new Map<FluxNode | undefined, number[]>()
    objects.forEach((o, i) => {
      const n = owner.get(`${o.kind}/${o.metadata.name}`)
      groups.set(n, [...(groups.get(n) ?? []), i])
    })
    const out = [...objects]
    for (const [n, idx] of groups) {
      if (!n) continue
      const done = await substitute(
        n,
        idx.map((i) => objects[i]),
      )
      idx.forEach((i, j) => (out[i] = done[j]))
    }
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
    const d = await rest<{
      spec?: { template?: { spec?: { containers?: { args?: string[]; command?: string[] }[] } } }
    }>(kube, 'GET', '/apis/apps/v1/namespaces/flux-system/deployments/kustomize-controller')
    const args = d.spec?.template?.spec?.containers?.flatMap((c) => [...(c.args ?? []), ...(c.command ?? [])]) ?? []
    return !args.some((a) => /StrictPostBuildSubstitutions=false/.test(a))
  } catch (err) {
    if (isApiError(err, 404)) return undefined
    throw err
  }
}
