// The dev loop's build of its overlay. A full `kustomize build` of a 400-object overlay
// costs about a second of kustomize's own work (most of it cross-object passes over every
// resource), so a save that touches one app rebuilds only that app's kustomization subtree:
// the same build with every ancestor kustomization (overlay → … → the app's parent) listing
// only the resource that leads to the app, plus its own files. The result replaces that
// subtree's objects in the last full result.
//
// That is only equal to a full build when nothing in the overlay relates the app's objects
// to the ones left out, so it is taken only when (checked on the kustomization files):
//   - the saved files all lie in one resource kustomization N below the overlay, reached once,
//     and no kustomization outside N names a saved file (a patch, a generator's file, …);
//   - no ancestor of N (nor a component of one) renames objects or runs plugins (namePrefix,
//     nameSuffix, generators:, transformers:, validators:, bases:), and nothing left out
//     renames or re-namespaces its objects (those, generators, helmCharts), so every name N's
//     objects refer to is the same in both builds;
// and, on the objects: N produces the same set of objects as before (an added, removed or
// renamed object takes the full build, which also prunes), and the ancestors' own objects
// come out exactly as in the last full build. The first save into N is built in full and,
// once applied, partially too: the two must agree before N is built partially. A partial build that
// kustomize refuses (e.g. a patch whose target was left out) falls back to the full build.
// After partial builds, a full build runs in the background once saves pause; if it ever
// disagrees, partial builds are off for the session and the full result is applied.
import fs from 'node:fs'
import path from 'node:path'
import YAML from 'yaml'
import { refKey, refOf } from '../kube/refs.ts'
import { buildKustomizationWarm, ManifestCache, type ManifestObject } from '../kustomize/build.ts'
import { KUSTOMIZATION_FILES } from '../kustomize/files.ts'

/** One kustomization in the overlay's tree. */
interface KNode {
  dir: string
  file: string
  text: string
  doc: Record<string, unknown>
  /** resources: entries that are directories (kustomizations) */
  resourceDirs: { entry: string; node: KNode }[]
  components: KNode[]
  parent?: KNode
  /** reached as a component (of some ancestor), not as a resource */
  component: boolean
}

interface Tree {
  root: KNode
  nodes: KNode[]
  /** how often each directory is reached */
  visits: Map<string, number>
  /** why no partial build is possible in this tree at all, if so */
  unusable?: string
}

export interface OverlayBuildResult {
  objects: ManifestObject[]
  /** 'partial: base/app7' when only that subtree was built */
  how: string
}

const isRemote = (entry: string) => /^[a-z][a-z0-9+.-]*:\/\/|^git@|^github\.com\/|\?ref=/i.test(entry)

function realDir(p: string): string {
  try {
    return fs.realpathSync(p)
  } catch {
    return path.resolve(p)
  }
}

/** A file's real path, also when the file itself is gone (a delete is a save too). */
function realFile(p: string): string {
  return path.join(realDir(path.dirname(p)), path.basename(p))
}

function loadTree(overlay: string): Tree {
  const nodes: KNode[] = []
  const visits = new Map<string, number>()
  let unusable: string | undefined
  const load = (dir: string, parent: KNode | undefined, component: boolean, depth: number): KNode | undefined => {
    const file = KUSTOMIZATION_FILES.map((f) => path.join(dir, f)).find((f) => fs.existsSync(f))
    if (!file || depth > 30) return undefined
    visits.set(dir, (visits.get(dir) ?? 0) + 1)
    const text = fs.readFileSync(file, 'utf8')
    let doc: Record<string, unknown>
    try {
      doc = (YAML.parse(text) ?? {}) as Record<string, unknown>
    } catch {
      unusable = `${file} does not parse`
      return undefined
    }
    const node: KNode = { dir, file, text, doc, resourceDirs: [], components: [], parent, component }
    nodes.push(node)
    const list = (key: string) =>
      Array.isArray(doc[key]) ? (doc[key] as unknown[]).filter((e): e is string => typeof e === 'string') : []
    for (const entry of list('resources')) {
      if (isRemote(entry)) {
        unusable = `${file} has a remote resource (${entry})`
        continue
      }
      const target = realDir(path.resolve(dir, entry))
      if (!fs.existsSync(target) || !fs.statSync(target).isDirectory()) continue
      const child = load(target, node, component, depth + 1)
      if (child) node.resourceDirs.push({ entry, node: child })
    }
    for (const entry of list('components')) {
      if (isRemote(entry)) {
        unusable = `${file} has a remote component (${entry})`
        continue
      }
      const child = load(realDir(path.resolve(dir, entry)), node, true, depth + 1)
      if (child) node.components.push(child)
    }
    return node
  }
  const root = load(realDir(overlay), undefined, false, 0)
  if (!root)
    return {
      root: undefined as unknown as KNode,
      nodes,
      visits,
      unusable: unusable ?? `no kustomization in ${overlay}`,
    }
  return { root, nodes, visits, unusable }
}

function within(file: string, dir: string): boolean {
  return file === dir || file.startsWith(dir + path.sep)
}

function subtree(node: KNode): KNode[] {
  return [node, ...node.resourceDirs.flatMap((r) => subtree(r.node)), ...node.components.flatMap(subtree)]
}

function chainOf(node: KNode): KNode[] {
  const chain: KNode[] = []
  for (let n = node.parent; n; n = n.parent) chain.unshift(n)
  return chain
}

/** Every string in a kustomization, for "does it name this file". */
function strings(value: unknown, out: string[] = []): string[] {
  if (typeof value === 'string') out.push(value)
  else if (Array.isArray(value)) for (const v of value) strings(v, out)
  else if (value && typeof value === 'object') for (const v of Object.values(value)) strings(v, out)
  return out
}

const RENAMES_OR_PLUGINS = ['namePrefix', 'nameSuffix', 'generators', 'transformers', 'validators', 'bases']
const LEFT_OUT_FORBIDDEN = [
  'namePrefix',
  'nameSuffix',
  'namespace',
  'configMapGenerator',
  'secretGenerator',
  'generators',
  'transformers',
  'validators',
  'helmCharts',
  'bases',
]

/** The kustomization N all saved files belong to, or why a partial build cannot be used. */
function partialTarget(tree: Tree, files: string[]): KNode | string {
  if (tree.unusable) return tree.unusable
  let target: KNode | undefined
  for (const f of files) {
    const owners = tree.nodes.filter((n) => within(f, n.dir)).sort((a, b) => b.dir.length - a.dir.length)
    const n = owners[0]
    if (!n || n === tree.root) return `${f} belongs to the overlay itself`
    if (n.component) return `${f} feeds a component`
    if (KUSTOMIZATION_FILES.includes(path.basename(f)) && path.dirname(f) !== n.dir)
      return `${f} is a new kustomization`
    if (target && target !== n) return 'the saved files feed more than one kustomization'
    target = n
  }
  if (!target) return 'nothing saved'
  const inside = new Set(subtree(target))
  for (const n of inside) if ((tree.visits.get(n.dir) ?? 0) > 1) return `${n.dir} is reached more than once`
  const chain = chainOf(target)
  for (const a of chain) {
    for (const c of [a, ...a.components.flatMap(subtree)]) {
      const bad = RENAMES_OR_PLUGINS.find((k) => c.doc[k] !== undefined)
      if (bad) return `${c.file} has ${bad}`
    }
  }
  const leftOut = tree.nodes.filter(
    (n) => !inside.has(n) && !chain.includes(n) && !chain.some((a) => a.components.flatMap(subtree).includes(n)),
  )
  for (const n of leftOut) {
    const bad = LEFT_OUT_FORBIDDEN.find((k) => n.doc[k] !== undefined)
    if (bad) return `${n.file} has ${bad}`
  }
  // nothing outside N names a saved file or a folder holding one, except each ancestor's
  // resource entry that leads down to N
  for (const n of tree.nodes) {
    if (inside.has(n)) continue
    const at = chain.indexOf(n)
    const next = at < 0 ? undefined : (chain[at + 1] ?? target)
    for (const s of strings(n.doc)) {
      for (const candidate of [s, s.slice(s.indexOf('=') + 1)]) {
        if (!candidate || isRemote(candidate)) continue
        const p = path.resolve(n.dir, candidate)
        if (next && realDir(p) === next.dir) continue
        if (files.some((f) => f === p || (within(f, p) && fs.existsSync(p)))) return `${n.file} names ${candidate}`
      }
    }
  }
  return target
}

/**
 * The ancestors' kustomization files with their resource lists cut down to their own files
 * and the entry that leads to N (or, with `withoutTarget`, not even that at N's parent), and
 * their `replicas:` to the entries that name one of N's objects (`names`): kustomize refuses
 * an entry that matches nothing, and the others only ever touch objects left out.
 */
function reducedOverrides(target: KNode, names: ReadonlySet<string>, withoutTarget = false): Record<string, string> {
  const overrides: Record<string, string> = {}
  const chain = chainOf(target)
  chain.forEach((a, i) => {
    const next = chain[i + 1] ?? target
    const doc = YAML.parseDocument(a.text)
    const keep = (Array.isArray(a.doc.resources) ? (a.doc.resources as unknown[]) : []).filter((entry) => {
      const r = a.resourceDirs.find((d) => d.entry === entry)
      if (!r) return true // a file of its own
      return r.node === next && !(withoutTarget && next === target)
    })
    doc.set('resources', keep)
    if (Array.isArray(a.doc.replicas)) {
      const replicas = (a.doc.replicas as { name?: unknown }[]).filter(
        (r) => typeof r?.name === 'string' && names.has(r.name),
      )
      if (replicas.length) doc.set('replicas', replicas)
      else doc.delete('replicas')
    }
    overrides[a.file] = doc.toString()
  })
  return overrides
}

const keyOf = (o: ManifestObject) => refKey(refOf(o))
const same = (a: ManifestObject | undefined, b: ManifestObject) =>
  a !== undefined && JSON.stringify(a) === JSON.stringify(b)

export class OverlayBuild {
  private readonly cache = new ManifestCache()
  private tree?: Tree
  /** the result of the last build, equal to a full build of what was on disk then */
  private current: ManifestObject[] = []
  /** N's parent dir → keys of the objects N's ancestors make themselves (their files, generators) */
  private ancestorKeys = new Map<string, Set<string>>()
  /** N's dir → the keys and names of the objects N produced the last time it was built */
  private known = new Map<string, { keys: Set<string>; names: Set<string> }>()
  /** N's dir → why it cannot be built partially (until a kustomization changes) */
  private refused = new Map<string, string>()
  /** per tree: the saved files → their N (or why none), and N + names → its overrides */
  private targets = new Map<string, KNode | string>()
  private overrides = new Map<string, Record<string, string>>()
  private generation = 0
  /** a first save into N, built in full, whose partial build is still to be compared */
  private pending?: { target: KNode; rel: string; generation: number }
  /** why partial builds are off for the session, once a check found a disagreement */
  off?: string
  /** why the last build after a save was not partial ('' when it was, or nothing said why) */
  lastReason = ''

  constructor(
    readonly overlay: string,
    private readonly opts: { partial?: boolean } = {},
  ) {}

  /** A full build (start, a manual re-apply, whatever cannot be built partially). */
  async full(): Promise<OverlayBuildResult> {
    this.generation++
    this.current = await buildKustomizationWarm(this.overlay, { cache: this.cache })
    return { objects: this.current, how: 'full' }
  }

  /** The build after a save of `files` (paths relative to `base`). */
  async afterSave(base: string, files: string[]): Promise<OverlayBuildResult> {
    if (this.opts.partial === false || this.off || this.current.length === 0) return this.full()
    const abs = files.map((f) => realFile(path.resolve(base, f)))
    const kustomizations = abs.filter((f) => KUSTOMIZATION_FILES.includes(path.basename(f)))
    if (!this.tree || kustomizations.length) {
      // what is known about an app stays true when only apps' own kustomizations changed (an
      // app's object set is checked on every build)
      this.tree = loadTree(this.overlay)
      this.refused.clear()
      this.targets.clear()
      this.overrides.clear()
    }
    // ancestors' own objects (and so each app's share) are known anew after a save into a
    // kustomization that is an ancestor of others, a component, or no kustomization at all
    const tree = this.tree
    const ownerOf = (f: string) =>
      tree.nodes.filter((n) => within(f, n.dir)).sort((a, b) => b.dir.length - a.dir.length)[0]
    if (
      abs.some((f) => {
        const o = ownerOf(f)
        return !o || o === tree.root || o.component || o.resourceDirs.length > 0
      })
    ) {
      this.ancestorKeys.clear()
      this.known.clear()
    }
    const saved = [...abs].sort().join('\0')
    const target = this.targets.get(saved) ?? partialTarget(this.tree, abs)
    this.targets.set(saved, target)
    if (typeof target === 'string') {
      this.lastReason = target
      return this.full()
    }
    const rel = path.relative(realDir(path.join(this.overlay, '..', '..')), target.dir) || target.dir
    const refused = this.refused.get(target.dir)
    if (refused) {
      this.lastReason = refused
      return this.full()
    }
    const known = this.known.get(target.dir)
    if (!known) {
      // the first save into N is built in full; learnPending compares afterwards, once the
      // loop has applied it, so the comparison is not in this save's way
      const r = await this.full()
      this.pending = { target, rel, generation: this.generation }
      return r
    }
    let reduced: ManifestObject[]
    try {
      const key = `${target.dir}\0${[...known.names].sort().join('\0')}`
      const overrides = this.overrides.get(key) ?? reducedOverrides(target, known.names)
      this.overrides.set(key, overrides)
      reduced = await buildKustomizationWarm(this.overlay, { overrides, cache: this.cache })
    } catch {
      this.known.delete(target.dir)
      this.lastReason = `the partial build of ${rel} failed`
      return this.full() // the full build reports the error as kustomize sees it
    }
    const byKey = new Map(this.current.map((o) => [keyOf(o), o]))
    const ancestors = this.ancestorKeys.get(target.parent!.dir) ?? new Set()
    const mine = reduced.filter((o) => !ancestors.has(keyOf(o)))
    const theirs = reduced.filter((o) => ancestors.has(keyOf(o)))
    const sameSet = mine.length === known.keys.size && mine.every((o) => known.keys.has(keyOf(o)))
    if (!sameSet || !theirs.every((o) => same(byKey.get(keyOf(o)), o))) {
      this.known.delete(target.dir)
      this.lastReason = sameSet ? "the overlay's own objects changed" : `${rel} gained, lost or renamed objects`
      const r = await this.full()
      return r
    }
    const replaced = new Map(mine.map((o) => [keyOf(o), o]))
    this.generation++
    this.current = this.current.map((o) => replaced.get(keyOf(o)) ?? o)
    this.lastReason = ''
    return { objects: this.current, how: `partial: ${rel}` }
  }

  /**
   * After the first save into N was built in full: N partially and the overlay without N;
   * they must agree with that full build before N is built partially. Skipped when another
   * build came in between (the next save into N tries again).
   */
  async learnPending(): Promise<void> {
    const p = this.pending
    this.pending = undefined
    if (!p || p.generation !== this.generation) return
    const { target, rel } = p
    try {
      const parent = target.parent!.dir
      let ancestors = this.ancestorKeys.get(parent)
      if (!ancestors) {
        const own = await buildKustomizationWarm(this.overlay, {
          overrides: reducedOverrides(target, new Set(), true),
          cache: this.cache,
        })
        ancestors = new Set(own.map(keyOf))
        this.ancestorKeys.set(parent, ancestors)
      }
      // N on its own names its objects as the overlay will: no ancestor renames (partialTarget)
      const names = new Set((await buildKustomizationWarm(target.dir)).map((o) => o.metadata.name))
      const reduced = await buildKustomizationWarm(this.overlay, {
        overrides: reducedOverrides(target, names),
        cache: this.cache,
      })
      const byKey = new Map(this.current.map((o) => [keyOf(o), o]))
      if (reduced.every((o) => same(byKey.get(keyOf(o)), o))) {
        const keys = ancestors
        const mine = reduced.filter((o) => !keys.has(keyOf(o)))
        this.known.set(target.dir, { keys: new Set(mine.map(keyOf)), names: new Set(mine.map((o) => o.metadata.name)) })
      } else this.refused.set(target.dir, `a partial build of ${rel} differs from the full build`)
    } catch (err) {
      this.refused.set(
        target.dir,
        `kustomize refuses a partial build of ${rel}: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`,
      )
    }
    this.lastReason = this.refused.get(target.dir) ?? ''
  }

  /**
   * The safety net: a full build with the kustomize CLI, compared with what the last build
   * returned. Undefined when they agree or a build happened meanwhile (the answer is stale);
   * otherwise partial builds are off and the full result is returned, for applying.
   */
  async check(): Promise<ManifestObject[] | undefined> {
    const generation = this.generation
    // the CLI, in a process of its own: the server stays free for saves meanwhile
    const full = await buildKustomizationWarm(this.overlay, { cli: true, cache: this.cache })
    if (generation !== this.generation) return undefined
    const byKey = new Map(this.current.map((o) => [keyOf(o), o]))
    const agrees = full.length === this.current.length && full.every((o) => same(byKey.get(keyOf(o)), o))
    if (agrees) return undefined
    this.off = 'a partial build disagreed with the full build'
    this.generation++
    this.current = full
    return full
  }
}
