// A Tanka environment in the dev loop: render (tk or the renderer), apply through the shared
// apply module (tk's field manager, the environment's inventory, pruning), re-render on a
// change under tanka/. Unlike a namespace's dev overlay, an environment is infrastructure
// with no Flux counterpart here, so stopping the loop leaves it running (as `tilt up` does).
import { EventEmitter } from 'node:events'
import path from 'node:path'
import { applyObjects } from '../apply/apply.ts'
import { errorMessage } from '../core/errors.ts'
import type { WaitResult } from '../health/wait.ts'
import { HealthFeed, lastApplyOf } from './health-feed.ts'
import type { Kube } from '../kube/client.ts'
import type { ManifestObject } from '../kustomize/build.ts'
import { inventoryFor, TANKA_FIELD_MANAGER } from '../tanka/apply.ts'
import type { TankaEnvironment } from '../tanka/environments.ts'
import { renderEnvironment } from '../tanka/render.ts'
import type { DevStatus, Loop, LoopEvents } from './loop.ts'
import { watchDebounced, type FileWatch } from './file-watch.ts'

export class TankaLoop extends EventEmitter<LoopEvents> implements Loop {
  readonly status: DevStatus
  private watcher?: FileWatch
  private applying: Promise<void> = Promise.resolve()
  private objects: ManifestObject[] = []
  private readonly health: HealthFeed

  constructor(
    readonly kube: Kube,
    readonly env: TankaEnvironment,
    private readonly opts: { watch?: boolean; debounceMs?: number } = {},
  ) {
    super()
    this.health = new HealthFeed(kube, (all) => {
      this.status.resources = all
      this.publish()
    })
    this.status = {
      namespace: `tanka:${env.name}`,
      target: env.spec.spec.namespace,
      phase: 'starting',
      flux: 'not managed by Flux',
      resources: [],
      forwards: [],
    }
  }

  get name(): string {
    return `tanka:${this.env.name}`
  }

  private publish(): void {
    this.emit('status', this.status)
  }

  async start(): Promise<void> {
    await this.apply('start')
    if (this.opts.watch !== false) {
      this.watcher = watchDebounced(this.env.root, {
        debounceMs: this.opts.debounceMs,
        relevant: (file) => !file.split(path.sep).some((p) => p.startsWith('.') || p === 'renderer'),
        onChange: (file) => void this.apply(`changed ${file}`),
      })
      await this.watcher.ready
    }
  }

  apply(trigger: string): Promise<void> {
    this.applying = this.applying.then(() => this.applyOnce(trigger))
    return this.applying
  }

  private async applyOnce(trigger: string): Promise<void> {
    const t0 = performance.now()
    this.status.phase = 'applying'
    this.publish()
    try {
      const rendered = await renderEnvironment(this.env, { kube: this.kube })
      this.objects = rendered.objects as ManifestObject[]
      const r = await applyObjects(this.kube, this.objects, {
        fieldManager: TANKA_FIELD_MANAGER,
        namespace: this.env.spec.spec.namespace,
        inventory: inventoryFor(this.env),
      })
      this.status.lastApply = lastApplyOf(r, t0, trigger)
      this.status.phase = r.failed.length ? 'error' : 'watching'
      this.status.error = r.failed.length ? `${r.failed.length} object(s) rejected` : undefined
      this.publish()
      this.emit('applied', this.status.lastApply)
      this.health.follow(this.objects)
    } catch (err) {
      this.status.phase = 'error'
      this.status.error = errorMessage(err) // a jsonnet error (file:line:col) or an unvendored chart: nothing applied
      this.publish()
    }
  }

  async waitHealthy(timeoutMs: number): Promise<WaitResult> {
    if (this.status.phase === 'error' && this.objects.length === 0)
      throw new Error(`${this.name}: ${this.status.error}`)
    return this.health.waitHealthy(this.objects, timeoutMs)
  }

  async stop(): Promise<string[]> {
    this.watcher?.close()
    this.health.stop()
    await this.applying.catch(() => {})
    this.status.phase = 'stopped'
    this.publish()
    return this.objects.length
      ? [
          `left the Tanka environment ${this.env.name} applied (${this.objects.length} objects; \`just tk-apply\` owns it)`,
        ]
      : []
  }
}
