// The Flux tree of a namespace as it runs on the cluster, in the shape of Flux Operator's
// graph: source → Kustomization → (Kustomizations it applies) → HelmRelease → workloads, with
// dependsOn edges, each node's state, and who holds it (a suspension and by whom, or a
// per-object hold). Built from live objects: which Kustomization applied what is its
// inventory; which HelmRelease made a workload is helm-controller's label. Pure: the objects
// in, the tree out; the dashboard reads them and every view renders the result.
import { computeStatus, type KubeObject, type Status } from '../health/kstatus.ts'
import { RELEASE_NAME_LABEL, RELEASE_NAMESPACE_LABEL } from './helm-release.ts'
import { conditionOf, fluxRefString, isSuspended, statusString, type FluxObject } from './kinds.ts'
import { inventoryRefs } from './managing.ts'
import { excludedFromFlux, HELD_BY } from './object-hold.ts'
import { suspensionBy } from './release-view.ts'
import { sourceOf } from './status.ts'

export interface FluxGraphNode {
  /** `Kind/namespace/name` */
  id: string
  kind: string
  name: string
  namespace: string
  /** kstatus of the object: Current, InProgress, Failed… */
  status: Status
  /** Flux objects: the Ready condition */
  ready?: 'True' | 'False' | 'Unknown'
  message?: string
  /** applied revision (Kustomization), chart@version rN (HelmRelease), artifact (source) */
  revision?: string
  suspended?: boolean
  /** who holds it from Flux: its suspension and by whom, or a per-object hold on a workload */
  heldBy?: string
  /** ids of the nodes it applied (inventory, helm-controller's labels) */
  children: string[]
  /** ids of the Kustomizations/HelmReleases it waits for */
  dependsOn: string[]
}

export interface FluxGraph {
  /** ids of the top nodes (sources, and anything nothing here applied) */
  roots: string[]
  nodes: FluxGraphNode[]
}

export interface FluxGraphInput {
  /** the namespace's managing Kustomizations (and their ancestors are found among `allKustomizations`) */
  managers: FluxObject[]
  allKustomizations: FluxObject[]
  helmReleases: FluxObject[]
  /** the sources read for them (GitRepository, OCIRepository, HelmRepository…) */
  sources: FluxObject[]
  /** the namespace's workloads (Deployment, StatefulSet, DaemonSet), kind set */
  workloads: KubeObject[]
}

const idOf = (kind: string, namespace: string | undefined, name: string) => `${kind}/${namespace ?? ''}/${name}`

function fluxNode(obj: FluxObject, revision?: string): FluxGraphNode {
  const ready = conditionOf(obj, 'Ready')
  const by = suspensionBy(obj)
  const deps = (obj.spec?.dependsOn as { name: string; namespace?: string }[] | undefined) ?? []
  return {
    id: fluxRefString(obj),
    kind: obj.kind,
    name: obj.metadata.name,
    namespace: obj.metadata.namespace,
    status: computeStatus(obj).status,
    ready: ready?.status ?? 'Unknown',
    ...(ready?.message ? { message: ready.message } : {}),
    ...(revision ? { revision } : {}),
    suspended: isSuspended(obj),
    ...(by ? { heldBy: `suspended ${by.text}` } : {}),
    children: [],
    dependsOn: deps.map((d) => idOf(obj.kind, d.namespace ?? obj.metadata.namespace, d.name)),
  }
}

/** The tree of what applies the namespace, from the live objects. */
export function fluxGraph(input: FluxGraphInput): FluxGraph {
  const nodes = new Map<string, FluxGraphNode>()
  const parentOf = new Map<string, string>()
  const add = (n: FluxGraphNode) => {
    if (!nodes.has(n.id)) nodes.set(n.id, n)
    return nodes.get(n.id)!
  }
  const link = (parent: string, child: string) => {
    if (parent === child || parentOf.has(child)) return
    parentOf.set(child, parent)
    nodes.get(parent)?.children.push(child)
  }

  // the managers and the Kustomizations that apply them, up to the root
  const byId = new Map(input.allKustomizations.map((k) => [fluxRefString(k), k]))
  const appliedBy = new Map<string, FluxObject>()
  for (const k of input.allKustomizations)
    for (const r of inventoryRefs(k))
      if (r.apiVersion.includes('.toolkit.fluxcd.io/')) appliedBy.set(idOf(r.kind, r.namespace, r.name), k)
  const kustomizations: FluxObject[] = []
  const want = (k: FluxObject) => {
    for (
      let cur: FluxObject | undefined = k;
      cur && !kustomizations.includes(cur);
      cur = appliedBy.get(fluxRefString(cur))
    )
      kustomizations.push(cur)
  }
  input.managers.forEach(want)
  // what they wait for is part of the picture too (a dependency not Ready holds them back)
  for (const k of [...kustomizations])
    for (const d of (k.spec?.dependsOn as { name: string; namespace?: string }[] | undefined) ?? []) {
      const dep = byId.get(idOf('Kustomization', d.namespace ?? k.metadata.namespace, d.name))
      if (dep) want(dep)
    }

  const sources = new Map(input.sources.map((s) => [fluxRefString(s), s]))
  const sourceNode = (obj: FluxObject) => {
    const ref = sourceOf(obj)
    if (!ref) return undefined
    const id = fluxRefString(ref)
    const src = sources.get(id)
    if (src) return add(fluxNode(src, (src.status?.artifact as { revision?: string } | undefined)?.revision))
    return add({
      id,
      kind: ref.kind,
      name: ref.name,
      namespace: ref.namespace,
      status: 'NotFound',
      ready: 'Unknown',
      message: 'not found',
      children: [],
      dependsOn: [],
    })
  }

  for (const k of kustomizations) add(fluxNode(k, statusString(k, 'lastAppliedRevision')))
  for (const h of input.helmReleases) {
    const hist = (
      h.status?.history as { chartName?: string; chartVersion?: string; version?: number }[] | undefined
    )?.[0]
    const rev = hist
      ? `${hist.chartName}@${(hist.chartVersion ?? '').replace(/\+.*$/, '')} r${hist.version}`
      : undefined
    add(fluxNode(h, rev))
  }
  // parents: who applied it (inventory); a top Kustomization hangs under its source
  for (const k of kustomizations) {
    const parent = appliedBy.get(fluxRefString(k))
    if (parent && nodes.has(fluxRefString(parent))) link(fluxRefString(parent), fluxRefString(k))
  }
  for (const h of input.helmReleases) {
    const parent = appliedBy.get(fluxRefString(h))
    if (parent && nodes.has(fluxRefString(parent))) link(fluxRefString(parent), fluxRefString(h))
  }
  for (const k of kustomizations) {
    const src = sourceNode(k)
    if (src && !parentOf.has(fluxRefString(k))) link(src.id, fluxRefString(k))
  }
  // a HelmRelease's chart source is applied by a Kustomization too: shown there, or on its own
  for (const h of input.helmReleases) {
    const src = sourceNode(h)
    if (!src) continue
    const parent = appliedBy.get(src.id)
    if (parent && nodes.has(fluxRefString(parent))) link(fluxRefString(parent), src.id)
    if (!parentOf.has(fluxRefString(h))) link(src.id, fluxRefString(h))
  }

  // workloads: a HelmRelease's by its labels, else the Kustomization whose inventory holds it
  const inventoryOf = new Map<string, string>()
  for (const k of kustomizations)
    for (const r of inventoryRefs(k)) inventoryOf.set(idOf(r.kind, r.namespace, r.name), fluxRefString(k))
  for (const w of input.workloads) {
    const m = w.metadata ?? {}
    const id = idOf(w.kind ?? '', m.namespace, m.name ?? '')
    const st = computeStatus(w)
    const hold = excludedFromFlux(w)
    const heldBy = hold
      ? `held from Flux (${hold}${m.annotations?.[HELD_BY] ? ', by an nsops dev loop' : ''})`
      : undefined
    add({
      id,
      kind: w.kind ?? '',
      name: m.name ?? '',
      namespace: m.namespace ?? '',
      status: st.status,
      ...(st.status === 'Current' ? {} : { message: st.message }),
      ...(heldBy ? { heldBy } : {}),
      children: [],
      dependsOn: [],
    })
    const release = m.labels?.[RELEASE_NAME_LABEL]
    const parent = release
      ? idOf('HelmRelease', m.labels?.[RELEASE_NAMESPACE_LABEL] ?? m.namespace, release)
      : inventoryOf.get(id)
    if (parent && nodes.has(parent)) link(parent, id)
  }

  const list = [...nodes.values()]
  return { roots: list.filter((n) => !parentOf.has(n.id)).map((n) => n.id), nodes: list }
}

/** The tree as indented lines for a terminal: `├─ Kind/name  state  held` (dependsOn as `⇠ waits for`). */
export function graphLines(g: FluxGraph, mark: (n: FluxGraphNode) => string = (n) => n.status): string[] {
  const byId = new Map(g.nodes.map((n) => [n.id, n]))
  const out: string[] = []
  const short = (id: string) => {
    const n = byId.get(id)
    return n ? `${n.kind}/${n.name}` : id.replace(/\/[^/]*\//, '/')
  }
  const walk = (id: string, prefix: string, last: boolean, top: boolean) => {
    const n = byId.get(id)
    if (!n) return
    const head = top ? '' : `${prefix}${last ? '└─ ' : '├─ '}`
    const extra = [
      n.revision,
      n.heldBy,
      n.dependsOn.length ? `⇠ waits for ${n.dependsOn.map(short).join(', ')}` : '',
      n.status !== 'Current' && n.message ? n.message : '',
    ].filter(Boolean)
    out.push(
      `${head}${n.kind}/${n.namespace ? `${n.namespace}/` : ''}${n.name}  ${mark(n)}${extra.length ? `  ${extra.join(' · ')}` : ''}`,
    )
    const next = top ? '' : `${prefix}${last ? '   ' : '│  '}`
    n.children.forEach((c, i) => walk(c, next, i === n.children.length - 1, false))
  }
  for (const r of g.roots) walk(r, '', true, true)
  return out
}
