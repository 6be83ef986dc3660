// Wait until a set of objects is Current, driven by watches: one list+watch per kind and
// namespace involved (informers.ts), plus the namespace's pods for workloads, so a change is
// noticed as soon as the API server sends it. Statuses come from kstatus.ts only.
//
// HealthWatch is a small reconciler in Tilt's style: its state lives in fields (the objects
// and their last health, which events concern which objects, the recheck timer, who waits for
// a verdict); an event re-evaluates only the objects it concerns, and a health is published
// (onProgress) only when it changed. The same watch can follow for as long as a dev loop runs
// and give a verdict (`until`) on the way, without a second set of informers.
import type { KubernetesObject } from '@kubernetes/client-node'
import { NsopsError, errorMessage } from '../core/errors.ts'
import type { Kube } from '../kube/client.ts'
import { httpStatusOf, resolve, unreachable } from './discovery.ts'
import {
  healthOf,
  isWorkload,
  matchesSelector,
  plain,
  sameHealth,
  selectorOf,
  type Entry,
  type ObjectHealth,
} from './evaluate.ts'
import { Informers, type Collection } from './informers.ts'
import { CONTROLLER_MISSING, fluxControllerFor, type FluxControllerCheck } from './flux-controllers.ts'
import { aggregate, computeStatus, type Status } from './kstatus.ts'
import { renderReport, type Outcome } from './report.ts'

export type { ObjectHealth, PodHealth } from './evaluate.ts'

/** What to wait for: a full object or just `{ apiVersion, kind, metadata: { name, namespace } }`. */
export type WaitTarget = Pick<KubernetesObject, 'apiVersion' | 'kind' | 'metadata'>

type Progress = (changed: ObjectHealth, all: readonly ObjectHealth[]) => void

export interface VerdictOptions {
  timeoutMs: number
  /** stop as soon as one object is Failed (default true); otherwise wait for all Current or the timeout */
  failFast?: boolean
  /**
   * keep following until the signal aborts (or the timeout): a set that turned Current may
   * turn unhealthy again later (a crash, a patched pod template), and a view must show it
   */
  follow?: boolean
  signal?: AbortSignal
}

export interface WatchOptions {
  /**
   * which Flux controllers run on the cluster (shared/cluster/flux-presence.ts): a Flux object
   * whose controller does not run is Failed at once (ControllerMissing), not InProgress until
   * a timeout
   */
  fluxControllers?: FluxControllerCheck
}

export interface WaitOptions extends VerdictOptions, WatchOptions {
  /** called when an object's status or message changes (and once per object at the start) */
  onProgress?: Progress
}

/** How often the Flux controllers are asked for again while a Flux object waits for one. */
const CONTROLLER_RECHECK_MS = 5000

export interface WaitResult {
  ok: boolean
  outcome: Outcome
  /** the aggregate kstatus status of the set */
  status: Status
  statuses: ObjectHealth[]
  elapsedMs: number
  /** for people: one line when ok, otherwise each object not Current with its status and why */
  report: string
}

interface Waiter {
  failFast: boolean
  follow: boolean
  settle(outcome: Outcome): void
}

function validateRefs(objects: readonly WaitTarget[]): void {
  for (const o of objects) {
    if (!o?.apiVersion || !o.kind || !o.metadata?.name) {
      throw new NsopsError(`cannot wait for ${JSON.stringify(o)}: an object needs apiVersion, kind and metadata.name.`)
    }
  }
}

function validateTimeout(timeoutMs: number): void {
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0)
    throw new NsopsError(`waitFor needs a positive timeoutMs (got ${timeoutMs}).`)
}

export class HealthWatch {
  private readonly entries = new Map<string, Entry>()
  /** the entries each collection's events concern (by collection path) */
  private readonly byPath = new Map<string, Entry[]>()
  private readonly informers: Informers
  private readonly waiters = new Set<Waiter>()
  private ready = false
  private setup?: Promise<void>
  private recheck?: NodeJS.Timeout
  /** an exception in onProgress would otherwise vanish inside the watch stream's line handler */
  private callbackError?: { error: unknown }
  /** the Flux controllers that run, as last asked (undefined: unknown or not asked) */
  private fluxControllers?: ReadonlySet<string>
  private controllerRecheck?: NodeJS.Timeout

  constructor(
    private readonly kube: Kube,
    objects: readonly WaitTarget[],
    private readonly onProgress?: Progress,
    private readonly opts: WatchOptions = {},
  ) {
    validateRefs(objects)
    for (const o of objects) {
      const e: Entry = {
        apiVersion: o.apiVersion!,
        kind: o.kind!,
        name: o.metadata!.name!,
        namespace: o.metadata!.namespace || undefined,
        ref: '',
      }
      e.ref = `${e.kind}/${e.namespace ? `${e.namespace}/` : ''}${e.name}`
      this.entries.set(`${e.apiVersion}|${e.ref}`, e)
    }
    this.informers = new Informers(kube, (col, obj) => this.evaluate(this.affected(col, obj)))
  }

  /** Every object's health as last evaluated (evaluated now where it never was). */
  get statuses(): ObjectHealth[] {
    const now = new Date()
    return [...this.entries.values()].map(
      (e) => e.health ?? healthOf(e, now, this.informers, this.fluxControllers).health,
    )
  }

  /**
   * Discovery and the first list of every collection involved, then the first evaluation.
   * Idempotent. Throws NsopsError when the API does not answer at all.
   */
  start(): Promise<void> {
    this.setup ??= (async () => {
      await Promise.all([...[...this.entries.values()].map((e) => this.attach(e)), this.askFluxControllers()])
      // Kinds nobody serves yet (a CRD applied together with its objects) are NotFound until
      // the CRD is Established; watching CRDs notices that moment.
      if ([...this.entries.values()].some((e) => !e.resolved))
        await this.informers.watchCrds((crd) => this.crdChanged(crd))
      if (this.informers.stopped) return
      this.ready = true
      this.evaluate()
    })()
    return this.setup
  }

  /**
   * Resolves when every object is Current, one is Failed (with failFast), the timeout passes
   * or the signal aborts; with `follow` only the last two. The watch keeps running after: a
   * verdict is a moment of the feed, not its end. Never throws for unhealthy objects.
   */
  async until(opts: VerdictOptions): Promise<WaitResult> {
    validateTimeout(opts.timeoutMs)
    const started = Date.now()
    let settle: (o: Outcome) => void = () => {}
    const done = new Promise<Outcome>((r) => {
      settle = r
    })
    const waiter: Waiter = { failFast: opts.failFast ?? true, follow: opts.follow ?? false, settle: (o) => settle(o) }
    const onAbort = () => settle('aborted')
    opts.signal?.addEventListener('abort', onAbort, { once: true })
    const deadline = setTimeout(() => settle('timeout'), opts.timeoutMs)
    let outcome: Outcome
    try {
      if (opts.signal?.aborted) {
        outcome = 'aborted'
      } else {
        this.waiters.add(waiter)
        const setup = this.start()
        // a hung API must not outlive the timeout: setup races the same deadline
        const first = await Promise.race([setup.then(() => 'ready' as const), done])
        if (first === 'ready') {
          this.settleIfDecided(waiter)
          outcome = await done
        } else {
          outcome = first // whatever setup still starts stops itself once the watch stops
          setup.catch(() => {})
        }
      }
    } finally {
      clearTimeout(deadline)
      opts.signal?.removeEventListener('abort', onAbort)
      this.waiters.delete(waiter)
    }
    if (this.callbackError) throw this.callbackError.error
    const statuses = this.statuses
    const elapsedMs = Date.now() - started
    return {
      ok: outcome === 'current',
      outcome,
      status: aggregate(statuses.map((s) => s.status)),
      statuses,
      elapsedMs,
      report: renderReport(outcome, statuses, elapsedMs),
    }
  }

  async stop(): Promise<void> {
    for (const w of this.waiters) w.settle('aborted')
    await this.informers.stop()
  }

  /**
   * Asks which Flux controllers run, when a Flux object is among those watched, and again every
   * few seconds while one still waits for its controller (one started or stopped meanwhile).
   */
  private async askFluxControllers(): Promise<void> {
    const check = this.opts.fluxControllers
    if (!check || this.informers.stopped) return
    const flux = [...this.entries.values()].filter((e) => fluxControllerFor(e))
    if (flux.length === 0) return
    const before = this.fluxControllers
    this.fluxControllers = await check().catch(() => undefined)
    if (this.informers.stopped) return
    const changed = [...(before ?? [])].join() !== [...(this.fluxControllers ?? [])].join()
    if (changed && this.ready) this.evaluate(flux)
    const waiting = () =>
      flux.some((e) => !e.health || e.health.status === 'InProgress' || e.health.reason === CONTROLLER_MISSING)
    this.informers.clear(this.controllerRecheck)
    this.controllerRecheck = this.informers.later(CONTROLLER_RECHECK_MS, () => {
      if (waiting()) void this.askFluxControllers()
      else this.controllerRecheck = undefined
    })
  }

  // ---- reconciling: events → the objects they concern → health → publish and verdicts ----

  /** The entries an event concerns; undefined: everything (a list, an error, an unnamed event). */
  private affected(col: Collection, obj: KubernetesObject | undefined): Entry[] | undefined {
    const name = obj?.metadata?.name
    if (!name) return undefined
    const direct = (this.byPath.get(col.path) ?? []).filter((e) => e.name === name)
    if (col.kind !== 'Pod') return direct
    // a pod concerns the workloads of its namespace that select it (or listed it before)
    const labels = obj.metadata?.labels
    const workloads = [...this.entries.values()].filter(
      (e) => e.resolved && e.namespace === col.namespace && isWorkload(e),
    )
    return [
      ...direct,
      ...workloads.filter((w) => {
        const live = this.informers.live(w.apiVersion, w.resolved!.plural, w.name, w.namespace)
        return (
          !live || matchesSelector(selectorOf(live), labels) || Boolean(w.health?.pods?.some((p) => p.name === name))
        )
      }),
    ]
  }

  private evaluate(only?: Iterable<Entry>): void {
    if (this.informers.stopped || !this.ready) return
    const now = new Date()
    for (const e of only ?? this.entries.values()) this.update(e, now)
    let recheckAt = Infinity
    for (const e of this.entries.values()) {
      if (!e.health) this.update(e, now)
      recheckAt = Math.min(recheckAt, e.recheckAt ?? Infinity)
    }
    // kstatus turns an unschedulable pod Failed 15 s after creation; no event marks that moment
    this.informers.clear(this.recheck)
    this.recheck =
      recheckAt === Infinity
        ? undefined
        : this.informers.later(Math.max(0, recheckAt - now.getTime()) + 5, () => this.evaluate())
    for (const w of this.waiters) this.settleIfDecided(w)
  }

  /** Re-evaluates one object and publishes its health if it changed. */
  private update(e: Entry, now: Date): void {
    const before = e.health
    const h = healthOf(e, now, this.informers, this.fluxControllers)
    e.health = h.health
    e.recheckAt = h.recheckAt
    // a Flux object waiting again (a new generation): whether its controller still runs
    if (
      e.health.status === 'InProgress' &&
      !this.controllerRecheck &&
      this.opts.fluxControllers &&
      fluxControllerFor(e)
    )
      this.controllerRecheck = this.informers.later(0, () => void this.askFluxControllers())
    if (!this.onProgress || sameHealth(before, e.health) || this.callbackError) return
    try {
      this.onProgress(
        e.health,
        [...this.entries.values()].flatMap((x) => (x.health ? [x.health] : [])),
      )
    } catch (error) {
      this.callbackError = { error }
      for (const w of this.waiters) w.settle('aborted')
    }
  }

  private settleIfDecided(w: Waiter): void {
    if (!this.ready || w.follow) return
    const statuses = [...this.entries.values()].map((e) => e.health?.status)
    if (statuses.every((s) => s === 'Current')) w.settle('current')
    else if (w.failFast && statuses.includes('Failed')) w.settle('failed')
  }

  // ---- discovery: which collections to watch for each object ----

  private attach(e: Entry): Promise<void> {
    return (e.attaching ??= this.attachNow(e).finally(() => {
      e.attaching = undefined
    }))
  }

  private async attachNow(e: Entry): Promise<void> {
    if (this.informers.stopped) return
    e.resolved = await resolve(this.kube, e.apiVersion, e.kind)
    e.lookedUp = true
    if (!e.resolved) return
    if (e.resolved.namespaced && !e.namespace) {
      throw new NsopsError(
        `cannot wait for ${e.ref}: ${e.kind} is namespaced and the reference has no metadata.namespace.`,
      )
    }
    if (!e.resolved.namespaced) {
      e.namespace = undefined
      e.ref = `${e.kind}/${e.name}`
    }
    const cols = [await this.informers.watch(e.apiVersion, e.kind, e.resolved.plural, e.namespace)]
    this.byPath.set(cols[0].path, [...(this.byPath.get(cols[0].path) ?? []), e])
    if (isWorkload(e) && e.namespace) cols.push(await this.informers.watch('v1', 'Pod', 'pods', e.namespace))
    // no answer at all while starting is an unreachable API; an HTTP refusal shows as Unknown and is retried
    for (const col of cols)
      if (!this.ready && col.error && httpStatusOf(col.error) === undefined) throw unreachable(this.kube, col.error)
  }

  private crdChanged(crd: KubernetesObject): void {
    const c = plain(crd, 'apiextensions.k8s.io/v1', 'CustomResourceDefinition')
    if (computeStatus(c).status !== 'Current') return
    const group = (c.spec as { group?: string })?.group
    const kind = (c.spec as { names?: { kind?: string } })?.names?.kind
    for (const e of this.entries.values()) {
      if (!e.resolved && e.kind === kind && e.apiVersion.startsWith(`${group}/`)) {
        this.attach(e).then(
          () => this.evaluate(),
          (err) => {
            e.error = errorMessage(err)
            this.evaluate()
          },
        )
      }
    }
  }
}

/**
 * Waits until every object is Current (kstatus), one is Failed (with failFast), the timeout
 * passes or the signal aborts. Never throws for unhealthy objects: the result says what is
 * not Current and why. Throws NsopsError for bad input or an API that does not answer.
 */
export async function waitFor(kube: Kube, objects: readonly WaitTarget[], opts: WaitOptions): Promise<WaitResult> {
  validateTimeout(opts.timeoutMs)
  const watch = new HealthWatch(kube, objects, opts.onProgress, opts)
  try {
    return await watch.until(opts)
  } finally {
    await watch.stop()
  }
}
