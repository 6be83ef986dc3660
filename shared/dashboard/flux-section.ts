// The dashboard's Flux block: the namespace's own Kustomization(s) and HelmReleases, who
// suspended them, what they applied compared with git HEAD, and stale suspensions or
// per-object holds; each HelmRelease's release (chart@version and its source, revision, last
// action, history, values in effect with Secrets masked); and the Flux tree from the source
// down to the workloads (flux/graph.ts).
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import type { Kube } from '../kube/client.ts'
import type { NamespaceConfig } from '../config/namespace-config.ts'
import { repoRoot } from '../core/paths.ts'
import type { KubeObject } from '../health/kstatus.ts'
import { fluxGraph, type FluxGraph } from '../flux/graph.ts'
import { getFlux, fluxRefString, type FluxObject, type FluxRef } from '../flux/kinds.ts'
import { findManagers } from '../flux/managing.ts'
import { findObjectHolds } from '../flux/object-hold.ts'
import { helmReleaseView, suspensionBy, type HelmReleaseView, type SuspensionBy } from '../flux/release-view.ts'
import { fluxStatus, sourceOf } from '../flux/status.ts'

export interface FluxRow {
  kind: string
  name: string
  namespace: string
  ready: 'True' | 'False' | 'Unknown'
  reason?: string
  message?: string
  suspended: boolean
  suspendedBy?: string
  /** who suspended it: nsops (its marker), the flux CLI, or by hand */
  suspension?: SuspensionBy
  lastAppliedRevision?: string
  gitHead?: string
  inSyncWithHead?: boolean
}

export interface FluxSection {
  objects: FluxRow[]
  /** the namespace's HelmReleases as Helm sees them */
  releases: HelmReleaseView[]
  /** source → Kustomization → HelmRelease → workloads, with dependsOn */
  tree: FluxGraph
  stale: string[]
  problems: string[]
  note?: string
}

// one rev-parse, without loading simple-git on the dashboard's start-up path
async function gitHead(): Promise<string | undefined> {
  try {
    return (await promisify(execFile)('git', ['-C', repoRoot, 'rev-parse', 'HEAD'])).stdout.trim()
  } catch {
    return undefined
  }
}

const emptyTree: FluxGraph = { roots: [], nodes: [] }

/** The sources the objects read from (each once; a missing one is left out: the tree marks it). */
async function sourcesOf(kube: Kube, objects: FluxObject[]): Promise<FluxObject[]> {
  const refs = new Map<string, FluxRef>()
  for (const o of objects) {
    const r = sourceOf(o)
    if (r) refs.set(fluxRefString(r), r)
  }
  const got = await Promise.all([...refs.values()].map((r) => getFlux(kube, r).catch(() => null)))
  return got.filter((o): o is FluxObject => Boolean(o))
}

/**
 * `workloads`: the namespace's Deployments, StatefulSets and DaemonSets (kind set), read by
 * the caller's lists; they hang under the HelmRelease or Kustomization that made them.
 */
export async function fluxSection(
  kube: Kube,
  ns: NamespaceConfig,
  workloads: Promise<KubeObject[]> = Promise.resolve([]),
): Promise<FluxSection> {
  const headP = gitHead()
  // the same finder dev and deploy use: its own Kustomization, or the root that includes it
  const m = await findManagers(kube, ns)
  if (m.state !== 'managed')
    return { objects: [], releases: [], tree: emptyTree, stale: [], problems: [], note: m.note }
  const objects = [...m.managers.map((x) => x.kustomization), ...m.helmReleases]
  // per-object holds (kustomize.toolkit.fluxcd.io/reconcile: disabled) a dev loop left behind
  const [statuses, head, holds, releases, sources, live] = await Promise.all([
    fluxStatus(kube, objects),
    headP,
    findObjectHolds(kube, ns).catch(() => []),
    Promise.all(m.helmReleases.map((h) => helmReleaseView(kube, h))),
    sourcesOf(kube, [...m.kustomizations, ...m.helmReleases]),
    workloads,
  ])
  const tree = fluxGraph({
    managers: m.managers.map((x) => x.kustomization),
    allKustomizations: m.kustomizations,
    helmReleases: m.helmReleases,
    sources,
    workloads: live,
  })
  const rows: FluxRow[] = statuses.map((s, i) => {
    const by = suspensionBy(objects[i])
    const applied = s.lastAppliedRevision
    const sha = applied?.split('sha1:')[1] ?? applied
    return {
      kind: s.kind,
      name: s.name,
      namespace: s.namespace,
      ready: s.ready,
      reason: s.reason,
      message: s.message,
      suspended: s.suspended,
      suspendedBy: s.suspended ? s.suspension : undefined,
      ...(by ? { suspension: by } : {}),
      lastAppliedRevision: applied,
      gitHead: head,
      inSyncWithHead: head && sha ? head.startsWith(sha) || sha.startsWith(head) : undefined,
    }
  })
  const stale = [
    ...statuses
      .filter((s) => s.staleSuspension)
      .map((s) => `${s.kind}/${s.namespace}/${s.name} (${s.staleSuspension})`),
    ...holds
      .filter((h) => h.stale)
      .map(
        (h) => `${h.ref.kind}/${h.ref.namespace ? `${h.ref.namespace}/` : ''}${h.ref.name} held from Flux (${h.stale})`,
      ),
  ]
  const problems = [
    ...rows
      .filter((r) => !r.suspended && r.ready !== 'True')
      .map((r) => `Flux ${r.kind}/${r.name}: Ready=${r.ready} ${r.reason ?? ''}`.trim()),
    ...stale.map((r) => `stale Flux suspension: ${r}`),
  ]
  return { objects: rows, releases, tree, stale, problems }
}
