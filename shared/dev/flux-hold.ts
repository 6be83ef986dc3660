// The dev loop's hold on Flux: suspend the namespace's own Kustomization(s) and HelmReleases
// (never the root flux-system) with our ownership marker, and resume only what we suspended.
import {
  currentOwner, describeSuspension, findStaleSuspensions, fluxObjectsFor, refString, resumeOwned, resumeStale, suspendFor,
  type FluxObject, type SuspensionOwner,
} from '../flux/index.ts'
import type { Kube } from '../kube.ts'
import type { NamespaceConfig } from '../namespace-config.ts'
import type { DevSession } from './session.ts'

export interface FluxHold {
  objects: FluxObject[]
  owner: SuspensionOwner
  summary: string
}

export async function suspendNamespaceFlux(kube: Kube, ns: NamespaceConfig, session: DevSession): Promise<FluxHold> {
  const owner = currentOwner(`dev-${ns.name}-${session.startedAt}`)
  const objects = await fluxObjectsFor(kube, { namespace: ns.namespaces.prod, path: `namespaces/${ns.name}`, kustomizationName: ns.flux.kustomization })
  if (objects.length === 0) return { objects, owner, summary: 'no Flux objects for this namespace' }
  // A suspension left by a dev loop that died (kill -9) is taken over, so this loop resumes
  // it on exit instead of leaving it suspended forever.
  const mine = new Set(objects.map((o) => `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`))
  const stale = (await findStaleSuspensions(kube)).filter((x) => mine.has(`${x.kind}/${x.namespace}/${x.name}`))
  if (stale.length) await resumeStale(kube, stale)
  const r = await suspendFor(kube, objects, owner)
  const parts = [
    ...stale.map((x) => `took over a stale suspension of ${refString(x)} (${x.reason})`),
    r.suspended.length || r.alreadyOurs.length ? `suspended ${[...r.suspended, ...r.alreadyOurs].map(refString).join(', ')}` : '',
    ...r.suspendedByOthers.map((o) => `${refString(o.ref)} already suspended ${describeSuspension(o.by)} (left alone)`),
  ].filter(Boolean)
  return { objects, owner, summary: parts.join('; ') }
}

export async function resumeNamespaceFlux(kube: Kube, hold: FluxHold, _session: DevSession): Promise<string[]> {
  if (hold.objects.length === 0) return []
  const r = await resumeOwned(kube, hold.objects, hold.owner)
  return r.resumed.length ? [`resumed Flux ${r.resumed.map(refString).join(', ')}`] : []
}

/** Re-marks our suspension so other hosts do not take it for stale (they wait 12 h). */
export async function refreshHold(kube: Kube, hold: FluxHold): Promise<void> {
  if (hold.objects.length) await suspendFor(kube, hold.objects, hold.owner)
}
