// What both kinds of dev loop (a namespace's overlay, a Tanka environment) share after an
// apply: the objects to watch, a health feed that follows them until the next apply, and
// the one-line record of the apply.
import type { ApplyResult } from '../apply/apply.ts'
import { refString } from '../apply/refs.ts'
import { waitFor, type ObjectHealth, type ObjectRef as WaitRef, type WaitResult } from '../health/wait.ts'
import type { Kube } from '../kube.ts'
import type { ManifestObject } from '../kustomize.ts'
import type { LastApply } from './loop.ts'

/** Every applied object but Namespaces (always Current, never interesting). */
export function healthRefs(objects: readonly ManifestObject[]): WaitRef[] {
  return objects.filter((o) => o.kind !== 'Namespace')
    .map((o) => ({ apiVersion: o.apiVersion, kind: o.kind, metadata: { name: o.metadata.name, namespace: o.metadata.namespace } }))
}

/** Watches the health of what was applied last; a new apply replaces the previous feed. */
export class HealthFeed {
  private abort?: AbortController

  constructor(private readonly kube: Kube, private readonly onAll: (all: readonly ObjectHealth[]) => void) {}

  follow(objects: readonly ManifestObject[]): void {
    this.stop()
    const ac = new AbortController()
    this.abort = ac
    void waitFor(this.kube, healthRefs(objects), {
      // follow: the informers stay up for as long as the loop runs (until the next apply)
      timeoutMs: 24 * 3600_000, signal: ac.signal, follow: true,
      onProgress: (_changed, all) => this.onAll(all),
    }).then((r) => { if (!ac.signal.aborted) this.onAll(r.statuses) }).catch(() => {})
  }

  /** For --ci: everything applied healthy, or the timeout. */
  waitHealthy(objects: readonly ManifestObject[], timeoutMs: number): Promise<WaitResult> {
    return waitFor(this.kube, healthRefs(objects), { timeoutMs, onProgress: (_c, all) => this.onAll(all) })
  }

  stop(): void { this.abort?.abort() }
}

export function lastApplyOf(result: ApplyResult, t0: number, trigger: string, notSent = 0): LastApply {
  return {
    at: new Date().toISOString(), ms: Math.round(performance.now() - t0), trigger,
    created: result.created.length, configured: result.configured.length,
    unchanged: result.unchanged.length + notSent, pruned: result.pruned.length,
    failed: result.failed.map((f) => `${refString(f.ref)}: ${f.message}`),
  }
}
