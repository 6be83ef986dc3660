// The dashboard page's actions on one Flux object it shows (a HelmRelease): reconcile, suspend
// and resume, through flux/'s requestReconcile, suspendFor and resumeNamespaceSuspension — the
// same annotation and marker `just suspend` / `just resume` write, so `flux get hr` agrees and
// the dashboard says who suspended it. Only objects of the page's own model are acted on.
import { fluxRefString, type FluxRef } from '../flux/kinds.ts'
import { requestReconcile } from '../flux/reconcile.ts'
import { currentOwner, describeSuspension, resumeNamespaceSuspension, suspendFor } from '../flux/suspend.ts'
import type { DashboardModel } from '../dashboard/collect.ts'
import type { Kube } from '../kube/client.ts'
import type { ActionBody } from './server.ts'

export const FLUX_OBJECT_ACTIONS = ['reconcile', 'suspend', 'resume'] as const

/** The object the action names, if the model shows it; undefined otherwise. */
function shown(model: DashboardModel | undefined, body: ActionBody): FluxRef | undefined {
  const r = model?.flux.releases?.find((x) => x.namespace === body.objectNamespace && x.name === body.name)
  return body.kind === 'HelmRelease' && r ? { kind: 'HelmRelease', namespace: r.namespace, name: r.name } : undefined
}

export async function fluxObjectAction(
  kube: Kube,
  model: DashboardModel | undefined,
  body: ActionBody,
): Promise<string> {
  const ref = shown(model, body)
  if (!ref)
    throw new Error(
      `${body.kind ?? 'object'} ${body.objectNamespace ?? ''}/${body.name ?? ''} is not one this dashboard shows`,
    )
  const name = fluxRefString(ref)
  if (body.action === 'reconcile') {
    await requestReconcile(kube, ref)
    return `asked Flux to reconcile ${name}`
  }
  if (body.action === 'suspend') {
    // like `just suspend`: lasts until resumed, from any machine; never taken for stale
    const r = await suspendFor(kube, [ref], { ...currentOwner('dashboard'), command: 'suspend' })
    if (r.missing.length) return `${name} is gone`
    if (r.suspendedByOthers.length)
      return `${name} was already suspended ${describeSuspension(r.suspendedByOthers[0].by)}: left as it is`
    return `suspended ${name}`
  }
  if (body.action === 'resume') {
    const r = await resumeNamespaceSuspension(kube, ref)
    if (r.outcome === 'resumed') return `resumed ${name} (suspended ${r.by})`
    if (r.outcome === 'not suspended') return `${name} is not suspended`
    if (r.outcome === 'missing') return `${name} is gone`
    throw new Error(
      `${name} stays suspended: it was suspended ${r.by}; \`flux resume hr ${ref.name} -n ${ref.namespace}\` resumes it anyway`,
    )
  }
  throw new Error(`the dashboard page offers ${FLUX_OBJECT_ACTIONS.join(', ')} on a HelmRelease, not ${body.action}`)
}
