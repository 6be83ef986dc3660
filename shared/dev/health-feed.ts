// What both kinds of dev loop (a namespace's overlay, a Tanka environment) share after an
// apply: the objects to watch, a health feed that follows them until the next apply (and
// gives --ci its verdict), and the one-line record of the apply.
import type { ApplyResult } from '../apply/apply.ts'
import { refString } from '../kube/refs.ts'
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

  constructor(
    private readonly kube: Kube,
    private readonly onAll: (all: readonly ObjectHealth[]) => void,
  ) {}

  /** The watch that follows the last apply (undefined before the first). */
  get current(): HealthWatch | undefined {
    return this.watch
  }

  follow(objects: readonly ManifestObject[]): void {
    this.stop()
    const watch = new HealthWatch(this.kube, healthRefs(objects), (_changed, all) => this.onAll(all))
    this.watch = watch
    this.following = objects
    // an API that does not answer shows in the verdict (waitHealthy); the view just has no rows
    watch.start().catch(() => {})
  }

  /** For --ci: everything applied healthy, a workload Failed, or the timeout; the feed keeps following. */
  waitHealthy(objects: readonly ManifestObject[], timeoutMs: number): Promise<WaitResult> {
    if (!this.watch || !this.following || !sameObjects(this.following, objects)) this.follow(objects)
    return this.watch!.until({ timeoutMs, failFast: true })
  }

  stop(): void {
    void this.watch?.stop()
    this.watch = undefined
    this.following = undefined
  }
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
