// What both kinds of dev loop (a namespace's overlay, a Tanka environment) share after an
// apply: the objects to watch, a health feed that follows them until the next apply (and
// gives --ci its verdict), and the one-line record of the apply.
import type { ApplyResult } from '../apply/apply.ts'
import { refString } from '../kube/refs.ts'
import { fluxControllerCheck } from '../cluster/flux-presence.ts'
import { HealthWatch, type ObjectHealth, type WaitTarget, type WaitResult } from '../health/wait.ts'
import type { Kube } from '../kube/client.ts'
import type { ManifestObject } from '../kustomize/build.ts'
import type { LastApply } from './loop.ts'

/** Every applied object but Namespaces (always Current, never interesting). */
export function healthRefs(objects: readonly ManifestObject[]): WaitTarget[] {
  return objects
    .filter((o) => o.kind !== 'Namespace')
    .map((o) => ({
      apiVersion: o.apiVersion,
      kind: o.kind,
      metadata: { name: o.metadata.name, namespace: o.metadata.namespace },
    }))
}

/** The same objects by identity (a later apply of the same set keeps the feed that follows it). */
function sameObjects(a: readonly ManifestObject[], b: readonly ManifestObject[]): boolean {
  if (a === b) return true
  const key = (o: ManifestObject) => `${o.apiVersion}|${o.kind}|${o.metadata.namespace ?? ''}|${o.metadata.name}`
  const keys = new Set(healthRefsOf(a).map(key))
  const other = healthRefsOf(b)
  return keys.size === other.length && other.every((o) => keys.has(key(o)))
}
const healthRefsOf = (objects: readonly ManifestObject[]) => objects.filter((o) => o.kind !== 'Namespace')

/**
 * Watches the health of what was applied last, for as long as the loop runs; a new apply
 * replaces the previous watch. `--ci`'s verdict is a moment of this same feed (one set of
 * informers), not a second wait beside it.
 */
export class HealthFeed {
  private watch?: HealthWatch
  private following?: readonly ManifestObject[]
  /** what the HelmReleases among them made (helm-controller labels it), followed apart */
  private made?: HealthWatch
  private madeKey = ''
  private madeReady?: Promise<HealthWatch | undefined>
  private applied: readonly ObjectHealth[] = []
  private madeHealth: readonly ObjectHealth[] = []

  constructor(
    private readonly kube: Kube,
    private readonly onAll: (all: readonly ObjectHealth[]) => void,
  ) {}

  private publish(): void {
    const seen = new Set(this.applied.map((h) => h.ref))
    this.onAll([...this.applied, ...this.madeHealth.filter((h) => !seen.has(h.ref))])
  }

  /**
   * A HelmRelease's objects are not in the overlay: helm-controller makes them and labels each
   * helm.toolkit.fluxcd.io/name and /namespace. After each new release revision they are listed
   * by those labels and followed like applied objects (their pods too), so the view shows the
   * health of what the chart made.
   */
  private followReleases(all: readonly ObjectHealth[]): void {
    const releases = all.filter((h) => h.kind === 'HelmRelease' && h.release && h.namespace)
    const key = releases.map((r) => `${r.namespace}/${r.name}@${r.release!.revision}`).join(',')
    if (key === this.madeKey) return
    this.madeKey = key
    void this.made?.stop()
    this.made = undefined
    if (!releases.length) {
      this.madeHealth = []
      return
    }
    const feed = this.watch
    this.madeReady = madeByReleases(this.kube, releases).then(
      (targets) => {
        if (this.watch !== feed || this.madeKey !== key || !targets.length) return undefined
        const made = new HealthWatch(this.kube, targets, (_changed, health) => {
          this.madeHealth = health
          this.publish()
        })
        this.made = made
        made.start().catch(() => {})
        return made
      },
      () => undefined,
    )
  }

  /** The watch that follows the last apply (undefined before the first). */
  get current(): HealthWatch | undefined {
    return this.watch
  }

  follow(objects: readonly ManifestObject[]): void {
    this.stop()
    // a Flux object whose controller does not run on the cluster fails at once, naming it
    const watch = new HealthWatch(
      this.kube,
      healthRefs(objects),
      (_changed, all) => {
        this.applied = all
        this.followReleases(all)
        this.publish()
      },
      { fluxControllers: fluxControllerCheck(this.kube) },
    )
    this.watch = watch
    this.following = objects
    // an API that does not answer shows in the verdict (waitHealthy); the view just has no rows
    watch.start().catch(() => {})
  }

  /** For --ci: everything applied healthy, a workload Failed, or the timeout; the feed keeps following. */
  async waitHealthy(objects: readonly ManifestObject[], timeoutMs: number): Promise<WaitResult> {
    const t0 = Date.now()
    if (!this.watch || !this.following || !sameObjects(this.following, objects)) this.follow(objects)
    const applied = await this.watch!.until({ timeoutMs, failFast: true })
    // a Ready HelmRelease: the verdict covers what its chart made too (helm-controller waited
    // for it, but it may have changed since, and the verdict should name it)
    const made = applied.ok ? await this.madeReady : undefined
    if (!made) return applied
    const left = Math.max(1000, timeoutMs - (Date.now() - t0))
    const r = await made.until({ timeoutMs: left, failFast: true })
    return {
      ...r,
      statuses: [...applied.statuses, ...r.statuses],
      elapsedMs: Date.now() - t0,
      report: r.ok ? `${applied.report}; and the ${r.statuses.length} object(s) their HelmReleases made` : r.report,
    }
  }

  stop(): void {
    void this.watch?.stop()
    void this.made?.stop()
    this.watch = undefined
    this.made = undefined
    this.madeKey = ''
    this.madeReady = undefined
    this.applied = []
    this.madeHealth = []
    this.following = undefined
  }
}

/** The workloads, Services and PVCs helm-controller made for these HelmReleases, by its labels. */
async function madeByReleases(kube: Kube, releases: readonly ObjectHealth[]): Promise<WaitTarget[]> {
  const targets: WaitTarget[] = []
  await Promise.all(
    releases.map(async (r) => {
      const namespace = r.namespace!
      const labelSelector = `helm.toolkit.fluxcd.io/name=${r.name},helm.toolkit.fluxcd.io/namespace=${namespace}`
      const lists = await Promise.all([
        kube.apps
          .listNamespacedDeployment({ namespace, labelSelector })
          .then((l) => ['apps/v1', 'Deployment', l.items] as const),
        kube.apps
          .listNamespacedStatefulSet({ namespace, labelSelector })
          .then((l) => ['apps/v1', 'StatefulSet', l.items] as const),
        kube.apps
          .listNamespacedDaemonSet({ namespace, labelSelector })
          .then((l) => ['apps/v1', 'DaemonSet', l.items] as const),
        kube.core.listNamespacedService({ namespace, labelSelector }).then((l) => ['v1', 'Service', l.items] as const),
        kube.core
          .listNamespacedPersistentVolumeClaim({ namespace, labelSelector })
          .then((l) => ['v1', 'PersistentVolumeClaim', l.items] as const),
      ])
      for (const [apiVersion, kind, items] of lists)
        for (const o of items) targets.push({ apiVersion, kind, metadata: { name: o.metadata!.name!, namespace } })
    }),
  )
  return targets
}

export function lastApplyOf(result: ApplyResult, t0: number, trigger: string, notSent = 0): LastApply {
  return {
    at: new Date().toISOString(),
    ms: Math.round(performance.now() - t0),
    trigger,
    created: result.created.length,
    configured: result.configured.length,
    unchanged: result.unchanged.length + notSent,
    pruned: result.pruned.length,
    failed: result.failed.map((f) => `${refString(f.ref)}: ${f.message}`),
  }
}
