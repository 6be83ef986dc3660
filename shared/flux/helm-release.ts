// Ending a HelmRelease the way Flux does: delete the object and let helm-controller uninstall
// the Helm release (its finalizer), then wait for the object to be gone. Helm deletes every
// object of a release, PVCs too, unless the release's manifest gives them
// `helm.sh/resource-policy: keep` (Helm reads the stored manifest, not the live object): nsops
// keeps PVCs on every exit path, so a release with PVCs is first upgraded with a post-renderer
// that adds that annotation to them, then deleted. Also what helm-controller v1.4.0 does, by a
// HelmRelease's spec, after a failed upgrade (remediation).
import { errorMessage } from '../core/errors.ts'
import { isApiError, type Kube } from '../kube/client.ts'
import { fluxKinds, type FluxObject } from './kinds.ts'
import { CHARTS_PREFIX } from '../images/charts.ts'
import { requestReconcile, requestReconcileEach, requestToken } from './reconcile.ts'

export const RELEASE_NAME_LABEL = 'helm.toolkit.fluxcd.io/name'
export const RELEASE_NAMESPACE_LABEL = 'helm.toolkit.fluxcd.io/namespace'

/** The label selector of everything helm-controller made for one HelmRelease. */
export function releaseSelector(namespace: string, name: string): string {
  return `${RELEASE_NAME_LABEL}=${name},${RELEASE_NAMESPACE_LABEL}=${namespace}`
}

/** The post-renderer that marks every PVC of a release for Helm to keep on uninstall. */
export const KEEP_PVCS_POST_RENDERER = {
  kustomize: {
    patches: [
      {
        target: { kind: 'PersistentVolumeClaim' },
        patch:
          'apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: any\n  annotations:\n    helm.sh/resource-policy: keep\n',
      },
    ],
  },
}

interface HelmReleaseObject {
  metadata: { generation?: number }
  spec?: { postRenderers?: unknown[] }
  status?: {
    lastHandledForceAt?: string
    history?: { version?: number; status?: string }[]
    conditions?: { type: string; status: string; message?: string; observedGeneration?: number }[]
  }
}

/** A release whose PVCs cannot be kept: its last Helm release failed. */
export class NotDeployed extends Error {}

/**
 * A release helm-controller is still working on (an install or upgrade waiting for its pods, up
 * to the release's timeout, minutes): neither the upgrade that marks its PVCs nor the uninstall
 * would run before that ends, and deleting it now would uninstall it with PVCs unmarked.
 */
export class ReleaseBusy extends Error {}

/**
 * Makes Helm keep the release's PVCs when it is uninstalled: when it has any, the HelmRelease
 * gets a post-renderer adding `helm.sh/resource-policy: keep` to them, and helm-controller is
 * asked for a forced upgrade (`reconcile.fluxcd.io/forceAt`, as `flux reconcile hr --force`:
 * v1.4.0 does not upgrade for a change of postRenderers alone), waited for up to `timeoutMs`.
 * Returns the PVCs' names.
 */
export async function keepReleasePvcs(
  kube: Kube,
  namespace: string,
  name: string,
  /** the field manager of whoever applied the HelmRelease (the dev loop's), who writes the patch */
  fieldManager: string,
  timeoutMs = 60_000,
  /** how long a reconcile in progress may take to settle before the release counts as busy */
  settleMs = 10_000,
): Promise<string[]> {
  const pvcs = await kube.core.listNamespacedPersistentVolumeClaim({
    namespace,
    labelSelector: releaseSelector(namespace, name),
  })
  const names = pvcs.items.map((p) => p.metadata!.name!)
  // (a live `keep` annotation says nothing: Helm reads the one in the release's manifest)
  if (!names.length) return names
  const get = async () =>
    (await kube.custom.getNamespacedCustomObject({ ...fluxKinds.HelmRelease, namespace, name })) as HelmReleaseObject
  let hr = await get()
  let ready = hr.status?.conditions?.find((c) => c.type === 'Ready')
  // a reconcile in progress (Ready=Unknown, "Fulfilling prerequisites": the loop's last apply, a
  // values save) is not a failed release: let it settle before judging, but only briefly: an
  // upgrade waiting for pods holds helm-controller for the release's whole timeout (minutes)
  const settle = Date.now() + Math.min(settleMs, timeoutMs)
  while (ready?.status === 'Unknown' && Date.now() < settle) {
    await new Promise((r) => setTimeout(r, 200))
    hr = await get()
    ready = hr.status?.conditions?.find((c) => c.type === 'Ready')
  }
  if (ready?.status === 'Unknown')
    throw new ReleaseBusy(
      `helm-controller is still working on it (${ready.message ?? 'reconciling'}), so its PVCs (${names.join(', ')}) cannot be marked for Helm to keep yet`,
    )
  // only a deployed release can be upgraded with the same values; a failed one would fail again
  if (ready?.status !== 'True' || hr.status?.history?.[0]?.status !== 'deployed')
    throw new NotDeployed(
      `its last release is not deployed (${ready?.message ?? 'no status'}), so it cannot be upgraded to keep its PVCs: helm uninstall deletes the PVCs its manifest names (${names.join(', ')})`,
    )
  const before = hr.status?.history?.[0]?.version ?? 0
  const ours = JSON.stringify(KEEP_PVCS_POST_RENDERER)
  const postRenderers = [
    ...(hr.spec?.postRenderers ?? []).filter((p) => JSON.stringify(p) !== ours),
    KEEP_PVCS_POST_RENDERER,
  ]
  const at = requestToken()
  await requestReconcile(kube, { kind: 'HelmRelease', namespace, name }, at, {
    force: true,
    spec: { postRenderers },
    fieldManager,
  })
  const until = Date.now() + timeoutMs
  for (;;) {
    const now = await get()
    const ready = now.status?.conditions?.find((c) => c.type === 'Ready')
    const handled = now.status?.lastHandledForceAt === at
    if (handled && ready?.status === 'True' && (now.status?.history?.[0]?.version ?? 0) > before) return names
    if (handled && ready?.status === 'False')
      throw new Error(`the upgrade that marks its PVCs to keep failed: ${ready.message ?? 'no message'}`)
    if (Date.now() > until) throw new Error(`helm-controller did not upgrade it within ${timeoutMs / 1000} s`)
    await new Promise((r) => setTimeout(r, 200))
  }
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

/**
 * Asks source-controller to fetch now what the OCIRepositories of `namespace` that read one
 * of the charts `names` (oci://HOST/charts/NAME) point at: a chart re-pushed under the same
 * tag has a new digest, which their interval (minutes) would find only later. Returns them.
 */
export async function refreshChartSources(kube: Kube, namespace: string, names: string[]): Promise<string[]> {
  if (!names.length) return []
  const list = (await kube.custom.listNamespacedCustomObject({ ...fluxKinds.OCIRepository, namespace })) as {
    items: FluxObject[]
  }
  const reading = list.items.filter((o) =>
    names.some((n) => String(o.spec?.url ?? '').endsWith(`/${CHARTS_PREFIX}/${n}`)),
  )
  await requestReconcileEach(
    kube,
    reading.map((o) => ({ kind: 'OCIRepository' as const, namespace, name: o.metadata.name })),
  )
  return reading.map((o) => o.metadata.name)
}

interface UpgradeSpec {
  timeout?: string
  upgrade?: {
    timeout?: string
    strategy?: { name?: string }
    remediation?: { retries?: number; remediateLastFailure?: boolean; strategy?: string }
  }
}

/**
 * What helm-controller v1.4.0 does after the last failed upgrade of a HelmRelease with this spec
 * (api/v2 UpgradeRemediation, internal/reconcile/atomic_release.go): `rollback` when it rolls
 * the release back to the last deployed one, else why not. Its defaults: `retries` 0,
 * `remediateLastFailure` true only with `retries` > 0, `strategy` rollback; negative retries
 * remediate every failure; `upgrade.strategy.name: RetryOnFailure` never remediates.
 */
export function failedUpgradeRemediation(spec: UpgradeSpec | undefined): {
  rollback: boolean
  /** what happens instead, for people (when not rollback) */
  instead?: string
  /** the release's upgrade timeout (Helm's wait), Go duration */
  timeout: string
} {
  const upgrade = spec?.upgrade ?? {}
  const timeout = upgrade.timeout ?? spec?.timeout ?? '5m0s'
  if (upgrade.strategy?.name === 'RetryOnFailure')
    return { rollback: false, instead: 'upgrade.strategy RetryOnFailure retries it and never rolls it back', timeout }
  const r = upgrade.remediation ?? {}
  const retries = r.retries ?? 0
  const last = r.remediateLastFailure ?? retries > 0
  if (!last && retries >= 0)
    return {
      rollback: false,
      instead: `no upgrade.remediation.remediateLastFailure: true${retries > 0 ? ` (it is false, so the last of the ${retries} retries stays failed)` : ''}`,
      timeout,
    }
  if ((r.strategy ?? 'rollback') !== 'rollback')
    return { rollback: false, instead: `upgrade.remediation.strategy ${r.strategy} uninstalls it instead`, timeout }
  return { rollback: true, timeout }
}
