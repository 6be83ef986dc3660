// Flux's own verbs on one object, for the views that offer them (the dashboard's keys, the
// web page's buttons): reconcile (reconcile.fluxcd.io/requestedAt, as `flux reconcile`), suspend
// and resume with the marker `just suspend` / `just resume` write, so `flux get` agrees and the
// views say who suspended it. A suspension nsops did not make is never resumed here.
import { fluxRefString, type FluxRef } from './kinds.ts'
import { requestReconcile } from './reconcile.ts'
import { currentOwner, describeSuspension, resumeNamespaceSuspension, suspendFor } from './suspend.ts'
import type { Kube } from '../kube/client.ts'

export const FLUX_OBJECT_ACTIONS = ['reconcile', 'suspend', 'resume'] as const
export type FluxObjectAction = (typeof FLUX_OBJECT_ACTIONS)[number]

/** Takes the action; the message says what happened. Throws when it was refused (someone else's suspension). */
export async function fluxObjectAction(
  kube: Kube,
  ref: FluxRef,
  action: FluxObjectAction,
  via: string,
): Promise<string> {
  const name = fluxRefString(ref)
  if (action === 'reconcile') {
    await requestReconcile(kube, ref)
    return `asked Flux to reconcile ${name}`
  }
  if (action === 'suspend') {
    // like `just suspend`: lasts until resumed, from any machine; never taken for stale
    const r = await suspendFor(kube, [ref], { ...currentOwner(via), command: 'suspend' })
    if (r.missing.length) return `${name} is gone`
    if (r.suspendedByOthers.length)
      return `${name} was already suspended ${describeSuspension(r.suspendedByOthers[0].by)}: left as it is`
    return `suspended ${name}`
  }
  const r = await resumeNamespaceSuspension(kube, ref)
  if (r.outcome === 'resumed') return `resumed ${name} (suspended ${r.by})`
  if (r.outcome === 'not suspended') return `${name} is not suspended`
  if (r.outcome === 'missing') return `${name} is gone`
  const verb = ref.kind === 'HelmRelease' ? 'hr' : ref.kind === 'Kustomization' ? 'ks' : ref.kind.toLowerCase()
  throw new Error(
    `${name} stays suspended: it was suspended ${r.by}; \`flux resume ${verb} ${ref.name} -n ${ref.namespace}\` resumes it anyway`,
  )
}

export const isFluxObjectAction = (a: unknown): a is FluxObjectAction =>
  typeof a === 'string' && (FLUX_OBJECT_ACTIONS as readonly string[]).includes(a)
