// Which Kubernetes namespaces a repository's Flux tree applies, and through which Flux
// Kustomizations: what `just init` needs to write a namespace.ts `layout` for each, without
// moving the user's files. A Kustomization counts for a namespace when it targets it or its
// build puts objects (other than Flux Kustomizations and Namespace objects) in it; a parent
// that only applies other Kustomizations (home-ops' cluster-apps, flux-system) counts for none.
import fs from 'node:fs'
import path from 'node:path'
import type { FluxNode, FluxTree } from './tree.ts'
import { fluxKustomizationsIn } from './tree.ts'

export interface AdoptableNamespace {
  /** the Kubernetes namespace (also the folder name under namespaces/) */
  namespace: string
  /** its own Flux Kustomizations, in dependsOn order */
  nodes: FluxNode[]
  /** layout.kustomizations: the file that holds only that Kustomization, else its name; one pattern for one ks.yaml per app */
  entries: string[]
  /** layout.root: the folder that holds its sources, when they are not all beside the ks.yaml files */
  root?: string
  /** layout.dev.overlay: the repository's own dev overlay beside the prod one (relative), when there is one */
  devOverlay?: string
}

export interface NotAdoptable {
  namespace: string
  why: string
  hint: string
}

const FLUX_KS = (o: { apiVersion?: string; kind?: string }) =>
  o.kind === 'Kustomization' &&
  typeof o.apiVersion === 'string' &&
  o.apiVersion.startsWith('kustomize.toolkit.fluxcd.io/')

/** Namespaces nsops leaves alone: Flux's own and the cluster's. */
const SYSTEM = new Set(['flux-system', 'kube-system', 'kube-public', 'kube-node-lease'])

export async function adoptableNamespaces(
  tree: FluxTree,
): Promise<{ found: AdoptableNamespace[]; refused: NotAdoptable[] }> {
  const own = new Map<string, FluxNode[]>()
  const shared = new Map<string, { node: FluxNode; others: string[] }[]>()
  const refused: NotAdoptable[] = []
  for (const node of tree.all()) {
    let namespaces: Set<string>
    const target = node.kustomization.spec?.targetNamespace
    if (target) namespaces = new Set([target])
    else {
      let objects
      try {
        objects = (await tree.build(node)).objects
      } catch (err) {
        refused.push({
          namespace: `(${node.id})`,
          why: `Flux Kustomization ${node.id}${node.file ? ` (${node.file})` : ''} does not build: ${(err as Error).message.split('\n')[0]}`,
          hint: `fix it (\`just render --kustomization ${node.kustomization.metadata.name}\` shows the error), then run \`just init\` again.`,
        })
        continue
      }
      namespaces = new Set(
        objects
          .filter((o) => !FLUX_KS(o) && o.kind !== 'Namespace' && o.metadata.namespace)
          .map((o) => o.metadata.namespace!),
      )
    }
    for (const s of SYSTEM) namespaces.delete(s)
    if (namespaces.size === 1) {
      const [ns] = namespaces
      own.set(ns, [...(own.get(ns) ?? []), node])
    } else
      for (const ns of namespaces)
        shared.set(ns, [...(shared.get(ns) ?? []), { node, others: [...namespaces].filter((n) => n !== ns) }])
  }
  const found: AdoptableNamespace[] = []
  for (const [namespace, nodes] of [...own].sort(([a], [b]) => a.localeCompare(b))) {
    const ordered = tree.ordered(nodes)
    const entries = ordered.map((n) => entryOf(tree, n))
    found.push({
      namespace,
      nodes: ordered,
      entries: asPattern(tree.repoDir, entries),
      root: rootOf(ordered, entries),
      devOverlay: devOverlayOf(tree, ordered),
    })
  }
  for (const [namespace, list] of [...shared].sort(([a], [b]) => a.localeCompare(b))) {
    if (own.has(namespace)) continue // its own Kustomizations make it; the shared one is a neighbour's
    const { node, others } = list[0]
    refused.push({
      namespace,
      why: `its objects come only from Flux Kustomization ${node.id}${node.file ? ` (${node.file})` : ''}, which also applies ${others.join(', ')}; nsops builds, diffs and deploys a namespace as whole Flux Kustomizations`,
      hint: `give ${namespace} a Flux Kustomization of its own (one ks.yaml per app or per namespace, as home-ops does), or write namespaces/${namespace}/namespace.ts by hand with layout.paths naming folders that hold only its objects.`,
    })
  }
  return { found, refused }
}

/**
 * One ks.yaml per app in one folder (home-ops' kubernetes/apps/<ns>/<app>/ks.yaml) is written
 * as the pattern that matches exactly those files today, so that an app added later belongs to
 * the namespace without an edit of namespace.ts.
 */
function asPattern(repoDir: string, entries: string[]): string[] {
  const split = entries.map((e) => e.split('/'))
  const [first] = split
  if (entries.length < 2 || first.length < 3 || !entries.every((e) => /\.ya?ml$/.test(e))) return entries
  const parent = first.slice(0, -2).join('/')
  const base = first[first.length - 1]
  const same = (p: string[]) =>
    p.length === first.length && p[p.length - 1] === base && p.slice(0, -2).join('/') === parent
  if (!split.every(same)) return entries
  const pattern = `${parent}/*/${base}`
  const matched = fs
    .globSync(pattern, { cwd: repoDir })
    .map((f) => f.split(path.sep).join('/'))
    .sort()
  return JSON.stringify(matched) === JSON.stringify([...entries].sort()) ? [pattern] : entries
}

/** The ks.yaml file when it holds this Kustomization alone (relative to the repository), else `namespace/name`. */
function entryOf(tree: FluxTree, node: FluxNode): string {
  if (node.file) {
    const file = path.join(tree.repoDir, node.file)
    if (fs.existsSync(file) && fs.statSync(file).isFile()) {
      const inFile = fluxKustomizationsIn(file)
      if (
        inFile.length === 1 &&
        `${inFile[0].metadata.namespace ?? 'flux-system'}/${inFile[0].metadata.name}` === node.id
      )
        return node.file.split(path.sep).join('/')
    }
  }
  return node.id.startsWith('flux-system/') ? node.kustomization.metadata.name : node.id
}

/**
 * Where a namespace's sources live, when the ks.yaml files alone do not say: the deepest folder
 * holding every spec.path (an overlays/<env> counts as the folder above overlays/, which holds
 * base/ too) and every ks.yaml. Undefined when that is the repository itself, or the ks.yaml
 * files' own folder (the default).
 */
function rootOf(nodes: FluxNode[], entries: string[]): string | undefined {
  const files = entries.filter((e) => /\.ya?ml$/.test(e)).map((e) => path.posix.dirname(e))
  const sources = nodes.map((n) => {
    const p = path.posix.normalize((n.kustomization.spec?.path ?? '.').replace(/^\.\/+/, '')).replace(/\/+$/, '')
    const m = /^(.*)\/overlays\/[^/]+$/.exec(p)
    return m ? m[1] : p
  })
  const all = [...files, ...sources].map((d) => (d === '.' ? [] : d.split('/')))
  let common = all[0] ?? []
  for (const d of all.slice(1)) {
    let i = 0
    while (i < common.length && i < d.length && common[i] === d[i]) i++
    common = common.slice(0, i)
  }
  const root = common.join('/')
  if (!root) return undefined
  const byFiles = files.length === entries.length ? commonOf(files) : undefined
  return root === byFiles ? undefined : root
}

function commonOf(dirs: string[]): string {
  let common = dirs[0]?.split('/') ?? []
  for (const d of dirs.slice(1).map((x) => x.split('/'))) {
    let i = 0
    while (i < common.length && i < d.length && common[i] === d[i]) i++
    common = common.slice(0, i)
  }
  return common.join('/')
}

/** The dev overlay beside a single Kustomization's overlays/prod (the seed homelab's shape). */
function devOverlayOf(tree: FluxTree, nodes: FluxNode[]): string | undefined {
  if (nodes.length !== 1) return undefined
  const p = path.posix.normalize((nodes[0].kustomization.spec?.path ?? '.').replace(/^\.\/+/, '')).replace(/\/+$/, '')
  const m = /^(.*\/overlays)\/prod$/.exec(p)
  if (!m) return undefined
  const dev = `${m[1]}/dev`
  return ['kustomization.yaml', 'kustomization.yml', 'Kustomization'].some((f) =>
    fs.existsSync(path.join(tree.repoDir, dev, f)),
  )
    ? dev
    : undefined
}
