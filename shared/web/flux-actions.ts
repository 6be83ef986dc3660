// The dashboard page's actions on one Flux object it shows (a HelmRelease): reconcile, suspend
// and resume through flux/actions.ts (the marker `just suspend` writes, so `flux get hr`
// agrees). Only objects of the page's own model are acted on.
import { FLUX_OBJECT_ACTIONS, fluxObjectAction, isFluxObjectAction } from '../flux/actions.ts'
import type { DashboardModel } from '../dashboard/collect.ts'
import type { Kube } from '../kube/client.ts'
import type { ActionBody } from './server.ts'

export async function pageFluxAction(kube: Kube, model: DashboardModel | undefined, body: ActionBody): Promise<string> {
  const r = model?.flux.releases?.find((x) => x.namespace === body.objectNamespace && x.name === body.name)
  if (body.kind !== 'HelmRelease' || !r)
    throw new Error(
      `${body.kind ?? 'object'} ${body.objectNamespace ?? ''}/${body.name ?? ''} is not one this dashboard shows`,
    )
  if (!isFluxObjectAction(body.action))
    throw new Error(`the dashboard page offers ${FLUX_OBJECT_ACTIONS.join(', ')} on a HelmRelease, not ${body.action}`)
  return fluxObjectAction(
    kube,
    { kind: 'HelmRelease', namespace: r.namespace, name: r.name },
    body.action,
    'dashboard page',
  )
}
