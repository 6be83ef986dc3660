// Ending a HelmRelease the way Flux does: delete the object and let helm-controller uninstall
// the Helm release (its finalizer), then wait for the object to be gone. Helm deletes every
// object of a release, PVCs too, unless they carry `helm.sh/resource-policy: keep`: nsops keeps
// PVCs on every exit path, so the release's PVCs are marked so before the delete.
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node'
import { errorMessage } from '../core/errors.ts'
import { isApiError, type Kube } from '../kube/client.ts'
import { fluxKinds } from './kinds.ts'

export const RELEASE_NAME_LABEL = 'helm.toolkit.fluxcd.io/name'
export const RELEASE_NAMESPACE_LABEL = 'helm.toolkit.fluxcd.io/namespace'

/** The label selector of everything helm-controller made for one HelmRelease. */
export function releaseSelector(namespace: string, name: string): string {
  return `${RELEASE_NAME_LABEL}=${name},${RELEASE_NAMESPACE_LABEL}=${namespace}`
}

/** Marks the release's PVCs `helm.sh/resource-policy: keep`, so uninstalling it leaves them; returns their names. */
export async function keepReleasePvcs(kube: Kube, namespace: string, name: string): Promise<string[]> {
  const pvcs = await kube.core.listNamespacedPersistentVolumeClaim({
    namespace,
    labelSelector: releaseSelector(namespace, name),
  })
  const kept: string[] = []
  for (const p of pvcs.items) {
    if (p.metadata?.annotations?.['helm.sh/resource-policy'] === 'keep') continue
    await kube.core.patchNamespacedPersistentVolumeClaim(
      {
        namespace,
        name: p.metadata!.name!,
        body: { metadata: { annotations: { 'helm.sh/resource-policy': 'keep' } } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    )
    kept.push(p.metadata!.name!)
  }
  return kept
}

export interface ReleaseGone {
  /** HelmReleases whose finalizer ran (helm-controller uninstalled them) */
  gone: string[]
  /** still there at the timeout, with why */
  stuck: { name: string; why: string }[]
}

/**
 * Waits until each deleted HelmRelease is gone (helm-controller removes its finalizer after
 * `helm uninstall`). One still there at the timeout is reported, never force-finalized: its
 * release would stay installed with nothing to track it.
 */
export async function waitReleasesGone(
  kube: Kube,
  namespace: string,
  names: string[],
  timeoutMs = 60_000,
): Promise<ReleaseGone> {
  const out: ReleaseGone = { gone: [], stuck: [] }
  const until = Date.now() + timeoutMs
  await Promise.all(
    names.map(async (name) => {
      let last = ''
      for (;;) {
        try {
          const obj = (await kube.custom.getNamespacedCustomObject({
            ...fluxKinds.HelmRelease,
            namespace,
            name,
          })) as { status?: { conditions?: { type: string; message?: string }[] } }
          last = obj.status?.conditions?.find((c) => c.type === 'Ready')?.message ?? 'waiting for helm-controller'
        } catch (err) {
          if (isApiError(err, 404)) {
            out.gone.push(name)
            return
          }
          last = errorMessage(err)
        }
        if (Date.now() > until) {
          out.stuck.push({ name, why: last })
          return
        }
        await new Promise((r) => setTimeout(r, 200))
      }
    }),
  )
  return out
}
