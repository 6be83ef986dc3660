// The Flux tree of a repository: from its root Kustomization(s) to every Kustomization they
// apply (their builds hold the children, substituted and patched as the controller would
// apply them) and the HelmReleases as leaves, with their dependsOn. Works on the shapes Flux
// repos come in: this repo's k8s/flux/ (one Kustomization per namespace), `flux bootstrap`'s
// clusters/<name>/flux-system, home-ops' kubernetes/flux/cluster/ks.yaml over per-app
// ks.yaml files, flux2's example apps/ + infrastructure/.
import fs from 'node:fs'
import path from 'node:path'
import { parseAllDocuments } from 'yaml'
import { NsopsError } from '../../core/errors.ts'
import { buildKustomization } from '../../kustomize/build.ts'
import type { ManifestObject } from '../../kube/refs.ts'
import {
  buildFluxKustomization,
  ksName,
  type FluxBuild,
  type FluxBuildOptions,
  type FluxKustomization,
  type VarsLookup,
} from './kustomization.ts'
import { renderHelmRelease, type HelmRenderOptions, type RenderedRelease } from './helm-release.ts'
import { warmFluxBuild } from './server.ts'
import { repoPath } from '../../core/paths.ts'
import { kustomizeInputs, type KustomizeInputs } from '../../kustomize/inputs.ts'

export const FLUX_KUSTOMIZE_GROUP = 'kustomize.toolkit.fluxcd.io'
export const HELM_GROUP = 'helm.toolkit.fluxcd.io'

export interface FluxNode {
  /** `namespace/name` */
  id: string
  kustomization: FluxKustomization
  /** the file it is written in, relative to the repository, when found there as written */
  file?: string
  /** the node whose build applies it */
  parent?: FluxNode
  children: FluxNode[]
  /** `namespace/name` of the Kustomizations it waits for */
  dependsOn: string[]
}

export interface FluxTreeOptions {
  /** ConfigMaps and Secrets for substituteFrom, asked before the repository's builds (the cluster when connected) */
  vars?: VarsLookup
  strict?: boolean
  /** where to start instead of discovering: files or folders relative to the repository */
  roots?: string[]
  /**
   * loading builds only the Kustomizations that can apply others (their files mention a Flux
   * Kustomization, or cannot all be listed): a leaf (one app) is built when asked for. What
   * `just ci` uses so a one-app change renders that app, not the 60 others.
   */
  skipLeaves?: boolean
}

const isFluxKustomization = (o: { apiVersion?: unknown; kind?: unknown }) =>
  o.kind === 'Kustomization' && typeof o.apiVersion === 'string' && o.apiVersion.startsWith(`${FLUX_KUSTOMIZE_GROUP}/`)
export const isHelmRelease = (o: { apiVersion?: unknown; kind?: unknown }) =>
  o.kind === 'HelmRelease' && typeof o.apiVersion === 'string' && o.apiVersion.startsWith(`${HELM_GROUP}/`)

const idOf = (ks: { metadata: { name: string; namespace?: string } }) =>
  `${ks.metadata.namespace ?? 'flux-system'}/${ks.metadata.name}`

/** A repository's Flux Kustomizations, built as kustomize-controller would, once each. */
export class FluxTree {
  readonly nodes = new Map<string, FluxNode>()
  readonly roots: FluxNode[] = []
  private readonly builds = new Map<string, Promise<FluxBuild>>()
  private readonly inputs = new Map<string, KustomizeInputs>()
  private readonly texts = new Map<string, string>()

  private constructor(
    readonly repoDir: string,
    private readonly opts: FluxTreeOptions,
  ) {}

  /** Discovers the tree: the roots, then every Kustomization their builds apply, recursively. */
  static async load(repoDir: string, opts: FluxTreeOptions = {}): Promise<FluxTree> {
    const tree = new FluxTree(path.resolve(repoDir), opts)
    const { roots, written } = await discoverRoots(tree.repoDir, opts.roots)
    for (const r of roots) tree.add(r.ks, undefined, r.file)
    // children come from builds (as applied: substituted by the parent, patched by it)
    const queue = [...tree.roots]
    while (queue.length) {
      const batch = queue.splice(0).filter((n) => !opts.skipLeaves || tree.mayApplyKustomizations(n))
      const built = await Promise.all(batch.map(async (n) => ({ n, b: await tree.build(n) })))
      for (const { n, b } of built) {
        for (const o of b.objects) {
          if (!isFluxKustomization(o) || idOf(o) === n.id || tree.nodes.has(idOf(o))) continue
          const ks = o as unknown as FluxKustomization
          queue.push(tree.add(ks, n, written.get(idOf(o))))
        }
      }
    }
    return tree
  }

  private add(ks: FluxKustomization, parent: FluxNode | undefined, file: string | undefined): FluxNode {
    const id = idOf(ks)
    const namespace = ks.metadata.namespace ?? 'flux-system'
    const node: FluxNode = {
      id,
      kustomization: ks,
      file,
      parent,
      children: [],
      dependsOn: (ks.spec?.dependsOn ?? []).map((d) => `${d.namespace ?? namespace}/${d.name}`),
    }
    this.nodes.set(id, node)
    if (parent) parent.children.push(node)
    else this.roots.push(node)
    return node
  }

  /** The build of one node (memoized): what kustomize-controller applies for it. */
  build(node: FluxNode, extra: Pick<FluxBuildOptions, 'leaves'> = {}): Promise<FluxBuild> {
    const key = node.id
    const kept = extra.leaves ? undefined : this.builds.get(key)
    if (kept) return kept
    const origin = node.file ?? (node.parent ? `applied by ${node.parent.id}` : undefined)
    const p = buildFluxKustomization(node.kustomization, this.sourceRoot(node), {
      vars: (ref) => this.lookup(ref, node),
      strict: this.opts.strict,
      // no cluster to read: what the repository does not build is the cluster's
      offline: !this.opts.vars,
      origin,
      ...extra,
    })
    if (!extra.leaves) this.builds.set(key, p)
    return p
  }

  /** The ids of the nodes built so far in this tree (roots and parents at load; the rest as asked). */
  builtIds(): string[] {
    return [...this.builds.keys()]
  }

  /**
   * The files of the repository a node's build reads (absolute): its spec.path (every file
   * under it when it has no kustomization.yaml, as the controller generates one) and its
   * spec.components, followed through their kustomization files. `open`: it may read more.
   */
  inputsOf(node: FluxNode): KustomizeInputs {
    const kept = this.inputs.get(node.id)
    if (kept) return kept
    const dir = path.resolve(this.repoDir, node.kustomization.spec?.path ?? '.')
    const out: KustomizeInputs = { files: new Set(), open: false }
    if (!fs.existsSync(dir) || node.kustomization.spec?.sourceRef?.kind !== 'GitRepository') out.open = true
    else {
      const add = (i: KustomizeInputs) => {
        i.files.forEach((f) => out.files.add(f))
        out.open ||= i.open
      }
      add(kustomizeInputs(dir, { generated: true }))
      for (const c of node.kustomization.spec?.components ?? []) {
        const p = path.resolve(dir, c)
        if (fs.existsSync(p)) add(kustomizeInputs(p))
      }
    }
    this.inputs.set(node.id, out)
    return out
  }

  /** A file's text, read once per tree (a tree is the repository at one moment; a missing file reads as empty). */
  private readText(file: string): string {
    let t = this.texts.get(file)
    if (t === undefined) {
      try {
        t = fs.readFileSync(file, 'utf8')
      } catch {
        t = ''
      }
      this.texts.set(file, t)
    }
    return t
  }

  /** Whether a node's build can hold Flux Kustomizations (a parent); false only when its files say it cannot. */
  mayApplyKustomizations(node: FluxNode): boolean {
    const i = this.inputsOf(node)
    return i.open || [...i.files].some((f) => /\.ya?ml$/.test(f) && this.readText(f).includes(FLUX_KUSTOMIZE_GROUP))
  }

  /** Whether a node's build can make the named object; false only when no file it reads names it. */
  private mayMake(node: FluxNode, name: string): boolean {
    const spec = node.kustomization.spec
    if (spec?.namePrefix || spec?.nameSuffix) return true
    const i = this.inputsOf(node)
    return (
      i.open ||
      [...i.files].some((f) => {
        const t = this.readText(f)
        return t.includes(name) || /\bname(Prefix|Suffix)\s*:/.test(t)
      })
    )
  }

  /** Where a node's spec.path is read: this repository, for a GitRepository (the only source nsops can read locally). */
  private sourceRoot(node: FluxNode): string {
    const ref = node.kustomization.spec?.sourceRef
    if (ref && ref.kind !== 'GitRepository') {
      throw new NsopsError(
        `Flux Kustomization ${node.id}${node.file ? ` (${node.file})` : ''} reads a ${ref.kind} (${ref.name}); nsops builds only Kustomizations of this repository's GitRepository.`,
        { hint: 'Leave it to Flux, or point it at a GitRepository of this repository.' },
      )
    }
    return this.repoDir
  }

  /** Where a node's substituteFrom is read (the caller's source, then the repository's builds). */
  varsFor(node: FluxNode): VarsLookup {
    return (ref) => this.lookup(ref, node)
  }

  /** substituteFrom: the caller's source first (the cluster), then what the repository's builds create. */
  private async lookup(ref: Parameters<VarsLookup>[0], from: FluxNode): Promise<ManifestObject | undefined> {
    const outside = await this.opts.vars?.(ref)
    if (outside) return outside
    const matches = (o: ManifestObject) =>
      o.kind === ref.kind && o.metadata.name === ref.name && (o.metadata.namespace ?? ref.namespace) === ref.namespace
    // ancestors first (home-ops' cluster-settings comes with the root), then the nodes built
    // already, then the rest; a node none of whose files names the object is not built for it
    const order: FluxNode[] = []
    for (let n = from.parent; n; n = n.parent) order.push(n)
    for (const n of this.nodes.values()) if (!order.includes(n) && n !== from && this.builds.has(n.id)) order.push(n)
    for (const n of this.nodes.values()) if (!order.includes(n) && n !== from) order.push(n)
    for (const n of order) {
      if (!this.builds.has(n.id) && !this.mayMake(n, ref.name)) continue
      const b = await this.build(n).catch(() => undefined)
      const hit = b?.objects.find(matches)
      if (hit) return hit
    }
    return undefined
  }

  /** The node whose build makes a ConfigMap or Secret, among the nodes built so far (undefined: none of them). */
  async makerOf(ref: { kind: string; namespace: string; name: string }): Promise<FluxNode | undefined> {
    for (const n of this.nodes.values()) {
      if (!this.builds.has(n.id)) continue
      const b = await this.build(n).catch(() => undefined)
      if (
        b?.objects.some(
          (o) =>
            o.kind === ref.kind &&
            o.metadata.name === ref.name &&
            (o.metadata.namespace ?? ref.namespace) === ref.namespace,
        )
      )
        return n
    }
    return undefined
  }

  /** Any object the repository's builds apply (a chart source, a values ConfigMap): the node's own build first, then its ancestors', then the rest. */
  async find(
    ref: { kind: string; namespace: string; name: string },
    from?: FluxNode,
  ): Promise<ManifestObject | undefined> {
    const matches = (o: ManifestObject) =>
      o.kind === ref.kind && o.metadata.name === ref.name && (o.metadata.namespace ?? ref.namespace) === ref.namespace
    const order: FluxNode[] = []
    for (let n = from; n; n = n.parent) order.push(n)
    for (const n of this.all()) if (!order.includes(n)) order.push(n)
    for (const n of order) {
      const b = await this.build(n).catch(() => undefined)
      const hit = b?.objects.find(matches)
      if (hit) return hit
    }
    return undefined
  }

  /** The HelmReleases a node's build applies, rendered as helm-controller would (helm-release.ts). */
  async renderReleases(node: FluxNode, opts: HelmRenderOptions = {}): Promise<RenderedRelease[]> {
    const b = await this.build(node)
    const out: RenderedRelease[] = []
    for (const o of b.objects) {
      if (!isHelmRelease(o)) continue
      out.push(
        await renderHelmRelease(
          o,
          {
            kustomization: node.kustomization,
            sourceRoot: this.sourceRoot(node),
            objects: b.objects,
            lookup: (ref) => this.find(ref, node),
          },
          opts,
        ),
      )
    }
    return out
  }

  /** Every node, parents before children. */
  all(): FluxNode[] {
    const out: FluxNode[] = []
    const walk = (n: FluxNode) => {
      out.push(n)
      n.children.forEach(walk)
    }
    this.roots.forEach(walk)
    return out
  }

  /**
   * The Kustomizations that apply a Kubernetes namespace's objects: those that target it, or
   * whose build puts objects (other than Flux Kustomizations) in it.
   */
  async forNamespace(namespace: string): Promise<FluxNode[]> {
    const out: FluxNode[] = []
    for (const n of this.all()) {
      if (n.kustomization.spec?.targetNamespace === namespace) {
        out.push(n)
        continue
      }
      const b = await this.build(n).catch(() => undefined)
      if (b?.objects.some((o) => !isFluxKustomization(o) && o.metadata.namespace === namespace)) out.push(n)
    }
    return out
  }

  /** dependsOn order: every node after the nodes it depends on (ties in tree order). */
  ordered(nodes: FluxNode[] = this.all()): FluxNode[] {
    const want = new Set(nodes.map((n) => n.id))
    const done = new Set<string>()
    const out: FluxNode[] = []
    const visit = (n: FluxNode, stack: string[]) => {
      if (done.has(n.id)) return
      if (stack.includes(n.id)) {
        throw new NsopsError(`Flux Kustomizations depend on each other in a cycle: ${[...stack, n.id].join(' → ')}.`, {
          hint: 'Remove one of the dependsOn entries: kustomize-controller would wait forever.',
        })
      }
      for (const d of n.dependsOn) {
        const dep = this.nodes.get(d)
        if (dep && want.has(dep.id)) visit(dep, [...stack, n.id])
      }
      done.add(n.id)
      out.push(n)
    }
    for (const n of nodes) visit(n, [])
    return out
  }
}

/**
 * Where a repository's Flux tree starts. This repo's shape: the Kustomizations k8s/flux/
 * builds. Otherwise: every Flux Kustomization written in the repository that no other one's
 * spec.path holds (flux-system's gotk-sync.yaml holds itself: a root).
 */
async function discoverRoots(
  repoDir: string,
  given?: string[],
): Promise<{ roots: { ks: FluxKustomization; file?: string }[]; written: Map<string, string> }> {
  const written = new Map<string, string>()
  const found: { ks: FluxKustomization; file: string }[] = []
  const dirs = given ?? (fs.existsSync(path.join(repoDir, 'k8s', 'flux', 'kustomization.yaml')) ? ['k8s/flux'] : ['.'])
  for (const d of dirs) {
    const abs = path.resolve(repoDir, d)
    if (fs.statSync(abs).isDirectory() && d !== '.' && fs.existsSync(path.join(abs, 'kustomization.yaml'))) {
      // a plain kustomize folder of Flux objects (this repo's k8s/flux/): its build lists them
      const files = new Map<string, string>()
      for (const f of yamlFiles(abs))
        for (const ks of fluxKustomizationsIn(f)) files.set(idOf(ks), path.relative(repoDir, f))
      for (const o of await buildKustomization(abs)) {
        if (isFluxKustomization(o)) found.push({ ks: o as unknown as FluxKustomization, file: files.get(idOf(o)) ?? d })
      }
    } else {
      for (const f of fs.statSync(abs).isDirectory() ? yamlFiles(abs) : [abs]) {
        for (const ks of fluxKustomizationsIn(f)) {
          // there is something to build: flux-build starts (and loads its schema) while the
          // rest of the repository is read
          if (!found.length) warmFluxBuild()
          found.push({ ks, file: path.relative(repoDir, f) })
        }
      }
    }
  }
  for (const f of found) if (!written.has(idOf(f.ks))) written.set(idOf(f.ks), f.file)
  if (given || dirs[0] !== '.') return { roots: found, written }
  const paths = new Map(found.map((f) => [f, repoPath(f.ks.spec?.path ?? '.')]))
  const held = (f: { ks: FluxKustomization; file: string }) => {
    const file = repoPath(f.file)
    return found.some((other) => {
      if (other === f) return false
      const p = paths.get(other)!
      return p === '' || file.startsWith(`${p}/`)
    })
  }
  const roots = found.filter((f) => !held(f))
  return { roots: roots.length ? roots : found, written }
}

/**
 * The root Flux Kustomization(s) of a repository laid out as Flux users keep theirs (no
 * k8s/flux/): `flux bootstrap`'s flux-system over clusters/<name>, home-ops' cluster-apps,
 * flux2's example's clusters/<name> Kustomizations — each with the file it is written in.
 */
export async function repositoryRoots(repoDir: string): Promise<{ ks: FluxKustomization; file?: string }[]> {
  return (await discoverRoots(repoDir)).roots
}

const SKIP = new Set(['.git', 'node_modules', '.cache'])

function yamlFiles(dir: string): string[] {
  const out: string[] = []
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (SKIP.has(e.name)) continue
    const full = path.join(dir, e.name)
    if (e.isDirectory()) out.push(...yamlFiles(full))
    else if (/\.ya?ml$/.test(e.name)) out.push(full)
  }
  return out
}

/** The Flux Kustomizations written in one file (none when it does not parse: the build reports it). */
export function fluxKustomizationsIn(file: string): FluxKustomization[] {
  const text = fs.readFileSync(file, 'utf8')
  if (!text.includes(FLUX_KUSTOMIZE_GROUP)) return []
  const out: FluxKustomization[] = []
  const docs = parseAllDocuments(text)
  for (const doc of Array.isArray(docs) ? docs : []) {
    if (doc.errors.length) continue
    const v = doc.toJS() as { apiVersion?: unknown; kind?: unknown; metadata?: { name?: unknown } } | null
    if (v && isFluxKustomization(v) && typeof v.metadata?.name === 'string') out.push(v as unknown as FluxKustomization)
  }
  return out
}

export { ksName }
