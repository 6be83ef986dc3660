// Wait until a set of objects is Current, driven by watches: one list+watch (client-node
// informer) per kind and namespace involved, plus the namespace's pods for workloads, so a
// change is noticed as soon as the API server sends it. Statuses come from kstatus.ts only.
import {
  KubernetesObjectApi,
  makeInformer,
  type Informer,
  type KubeConfig,
  type KubernetesObject,
  type ObjectCache,
} from '@kubernetes/client-node'
import { NsopsError, errorMessage } from '../errors.ts'
import { apiMessage, isApiError, type Kube } from '../kube.ts'
import { duration } from '../output.ts'
import { aggregate, computeStatus, groupKind, SCHEDULE_WINDOW_MS, type KubeObject, type Status } from './kstatus.ts'
import { podStatus, whyNotReady, type PodLike } from './pod-status.ts'

/** What to wait for: a full object or just `{ apiVersion, kind, metadata: { name, namespace } }`. */
export type ObjectRef = Pick<KubernetesObject, 'apiVersion' | 'kind' | 'metadata'>

export interface PodHealth {
  name: string
  /** the STATUS column (CrashLoopBackOff, Pending, Init:0/1, ...) */
  status: string
  ready: string
  restarts: number
  /** why it is not ready; undefined when it is */
  why?: string
}

export interface ObjectHealth {
  /** Kind/namespace/name */
  ref: string
  apiVersion: string
  kind: string
  name: string
  namespace?: string
  status: Status
  message: string
  reason?: string
  /** for workloads: the pods their selector matches */
  pods?: PodHealth[]
}

export interface WaitOptions {
  timeoutMs: number
  /** called when an object's status or message changes (and once per object at the start) */
  onProgress?: (changed: ObjectHealth, all: readonly ObjectHealth[]) => void
  /** stop as soon as one object is Failed (default true); otherwise wait for all Current or the timeout */
  failFast?: boolean
  /**
   * keep following until the signal aborts (or the timeout): a set that turned Current may
   * turn unhealthy again later (a crash, a patched pod template), and a view must show it
   */
  follow?: boolean
  signal?: AbortSignal
}

export interface WaitResult {
  ok: boolean
  outcome: 'current' | 'failed' | 'timeout' | 'aborted'
  /** the aggregate kstatus status of the set */
  status: Status
  statuses: ObjectHealth[]
  elapsedMs: number
  /** for people: one line when ok, otherwise each object not Current with its status and why */
  report: string
}

// Kinds whose pods explain their status; the key is kstatus' group/Kind.
const workloadKinds = new Set(['apps/Deployment', 'apps/ReplicaSet', 'apps/StatefulSet', 'apps/DaemonSet', 'batch/Job'])
const podsShownPerObject = 5
const restartBackoffMs = { first: 100, max: 5000 }

interface LabelSelector {
  matchLabels?: Record<string, string>
  matchExpressions?: { key: string; operator: string; values?: string[] }[]
}

function matchesSelector(selector: LabelSelector | undefined, labels: Record<string, string> = {}): boolean {
  // an empty or missing selector selects nothing for workloads (the API refuses them anyway)
  if (!selector || (!selector.matchLabels && !selector.matchExpressions)) return false
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false
  for (const e of selector.matchExpressions ?? []) {
    const has = Object.prototype.hasOwnProperty.call(labels, e.key)
    const inValues = has && (e.values ?? []).includes(labels[e.key])
    if (e.operator === 'In' && !inValues) return false
    if (e.operator === 'NotIn' && inValues) return false
    if (e.operator === 'Exists' && !has) return false
    if (e.operator === 'DoesNotExist' && has) return false
  }
  return true
}

// KubernetesObjectApi does discovery (GET /api/v1, /apis/<group>/<version>) and caches it;
// its resource() is protected, so a subclass exposes it. One per KubeConfig, so repeated
// waits do not repeat discovery.
class Discovery extends KubernetesObjectApi {
  lookup(apiVersion: string, kind: string) { return this.resource(apiVersion, kind) }
}
const discoveries = new WeakMap<KubeConfig, Discovery>()
function discoveryFor(kc: KubeConfig): Discovery {
  let d = discoveries.get(kc)
  if (!d) { d = kc.makeApiClient(Discovery); discoveries.set(kc, d) }
  return d
}

interface Resolved { plural: string; namespaced: boolean }

function unreachable(kube: Kube, err: unknown): NsopsError {
  return new NsopsError(`the cluster does not answer: context ${kube.context}, server ${kube.server} (${errorMessage(err)}).`, {
    hint: `Is it running? For the local cluster run \`just cluster-up\`; otherwise check \`kubectl --context ${kube.context} get nodes\`.`,
    cause: err,
  })
}

/** An HTTP answer (the API is there but said no) as opposed to no answer at all. */
function httpStatusOf(err: unknown): number | undefined {
  if (isApiError(err)) return err.code
  const code = (err as { statusCode?: unknown; code?: unknown } | null)?.statusCode
  return typeof code === 'number' ? code : undefined
}

async function resolve(kube: Kube, apiVersion: string, kind: string): Promise<Resolved | undefined> {
  try {
    const r = await discoveryFor(kube.kc).lookup(apiVersion, kind)
    return r ? { plural: r.name, namespaced: r.namespaced } : undefined
  } catch (err) {
    // 404: the group/version is not served (yet): a CRD not installed is NotFound, not an error
    if (httpStatusOf(err) === 404) return undefined
    if (httpStatusOf(err) === undefined) throw unreachable(kube, err)
    throw new NsopsError(`discovery of ${apiVersion} ${kind} failed: ${apiMessage(err)}.`, { cause: err })
  }
}

function collectionPath(apiVersion: string, plural: string, namespace?: string): string {
  const root = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`
  return namespace ? `${root}/namespaces/${encodeURIComponent(namespace)}/${plural}` : `${root}/${plural}`
}

interface Entry {
  apiVersion: string
  kind: string
  name: string
  namespace?: string
  ref: string
  /** discovery answered (resolved stays undefined when the kind is not served) */
  lookedUp?: boolean
  attaching?: Promise<void>
  resolved?: Resolved
  /** set when attaching after its CRD appeared failed; the object then reads Unknown */
  error?: string
  health?: ObjectHealth
  /** when its status changes with no event (an unschedulable pod's window ends) */
  recheckAt?: number
}

interface Collection {
  path: string
  informer: Informer<KubernetesObject> & ObjectCache<KubernetesObject>
  apiVersion: string
  kind: string
  namespace?: string
  /** the last list/watch error, cleared by the next successful list */
  error?: unknown
  started?: Promise<void>
}

// The informer cache holds typed objects (Dates) from lists and raw JSON from watch events;
// kstatus reads both, but one plain shape with apiVersion/kind set keeps the rest simple.
const plainCache = new WeakMap<object, KubeObject>()
function plain(obj: KubernetesObject, apiVersion: string, kind: string): KubeObject {
  let p = plainCache.get(obj)
  if (!p) {
    p = { ...(JSON.parse(JSON.stringify(obj)) as KubeObject), apiVersion, kind }
    plainCache.set(obj, p)
  }
  return p
}

function validate(objects: readonly ObjectRef[], opts: WaitOptions): void {
  if (!Number.isFinite(opts.timeoutMs) || opts.timeoutMs <= 0) {
    throw new NsopsError(`waitFor needs a positive timeoutMs (got ${opts.timeoutMs}).`)
  }
  for (const o of objects) {
    if (!o?.apiVersion || !o.kind || !o.metadata?.name) {
      throw new NsopsError(`cannot wait for ${JSON.stringify(o)}: an object needs apiVersion, kind and metadata.name.`)
    }
  }
}

/**
 * Waits until every object is Current (kstatus), one is Failed (with failFast), the timeout
 * passes or the signal aborts. Never throws for unhealthy objects: the result says what is
 * not Current and why. Throws NsopsError for bad input or an API that does not answer.
 */
export async function waitFor(kube: Kube, objects: readonly ObjectRef[], opts: WaitOptions): Promise<WaitResult> {
  validate(objects, opts)
  const started = Date.now()
  const failFast = opts.failFast ?? true

  const entries = new Map<string, Entry>()
  for (const o of objects) {
    const e: Entry = {
      apiVersion: o.apiVersion!, kind: o.kind!, name: o.metadata!.name!, namespace: o.metadata!.namespace || undefined, ref: '',
    }
    e.ref = `${e.kind}/${e.namespace ? `${e.namespace}/` : ''}${e.name}`
    entries.set(`${e.apiVersion}|${e.ref}`, e)
  }

  const collections = new Map<string, Collection>()
  let stopping = false
  let ready = false
  let recheck: NodeJS.Timeout | undefined
  // an exception in onProgress would otherwise vanish inside the watch stream's line handler
  let callbackError: { error: unknown } | undefined
  let finish: (outcome: WaitResult['outcome']) => void = () => {}
  const done = new Promise<WaitResult['outcome']>((resolveDone) => { finish = resolveDone })
  const timers = new Set<NodeJS.Timeout>()
  const later = (ms: number, fn: () => void) => {
    const t = setTimeout(() => { timers.delete(t); fn() }, ms)
    timers.add(t)
    return t
  }

  // the entries each collection's events concern: an event re-evaluates only those (a big
  // namespace sends hundreds of events while it starts; each used to re-evaluate everything)
  const byPath = new Map<string, Entry[]>()
  const affected = (col: Collection, obj: KubernetesObject | undefined): Entry[] | undefined => {
    const name = obj?.metadata?.name
    if (!name) return undefined // unknown: evaluate everything
    const direct = (byPath.get(col.path) ?? []).filter((e) => e.name === name)
    if (col.kind !== 'Pod') return direct
    // a pod concerns the workloads of its namespace that select it (or listed it before)
    const labels = obj.metadata?.labels
    const workloads = [...entries.values()].filter((e) => e.resolved && e.namespace === col.namespace && workloadKinds.has(groupKind(e)))
    return [...direct, ...workloads.filter((w) => {
      const live = collections.get(collectionPath(w.apiVersion, w.resolved!.plural, w.namespace))?.informer.get(w.name, w.namespace)
      const selector = (live as { spec?: { selector?: LabelSelector } } | undefined)?.spec?.selector
      return !live || matchesSelector(selector, labels) || Boolean(w.health?.pods?.some((p) => p.name === name))
    })]
  }

  const evaluate = (only?: Iterable<Entry>) => {
    if (stopping || !ready) return
    const now = new Date()
    for (const e of only ?? entries.values()) {
      const before = e.health
      const health = healthOf(e, now, collections)
      e.health = health.health
      e.recheckAt = health.recheckAt
      if (opts.onProgress && (!before || before.status !== e.health.status || before.message !== e.health.message)) {
        try {
          opts.onProgress(e.health, [...entries.values()].map((x) => x.health!).filter(Boolean))
        } catch (error) {
          callbackError = { error }
          return finish('aborted')
        }
      }
    }
    let recheckAt = Infinity
    const statuses: Status[] = []
    for (const e of entries.values()) {
      if (!e.health) { const h = healthOf(e, now, collections); e.health = h.health; e.recheckAt = h.recheckAt }
      statuses.push(e.health.status)
      recheckAt = Math.min(recheckAt, e.recheckAt ?? Infinity)
    }
    if (!opts.follow && statuses.every((s) => s === 'Current')) return finish('current')
    if (!opts.follow && failFast && statuses.includes('Failed')) return finish('failed')
    // kstatus turns an unschedulable pod Failed 15 s after creation; no event marks that moment
    if (recheck) { clearTimeout(recheck); timers.delete(recheck); recheck = undefined }
    if (recheckAt !== Infinity) recheck = later(Math.max(0, recheckAt - now.getTime()) + 5, () => evaluate())
  }

  const watchCollection = async (apiVersion: string, kind: string, plural: string, namespace?: string): Promise<Collection> => {
    const path = collectionPath(apiVersion, plural, namespace)
    const existing = collections.get(path)
    if (existing) { await existing.started; return existing }
    const listed = async () => {
      const list = await kube.objects.list(apiVersion, kind, namespace)
      col.error = undefined
      // an empty list fires no events, yet it may change a status (Unknown → NotFound)
      setImmediate(() => evaluate())
      return list
    }
    const informer = makeInformer<KubernetesObject>(kube.kc, path, listed)
    const col: Collection = { path, informer, apiVersion, kind, namespace }
    collections.set(path, col)
    let backoff = restartBackoffMs.first
    let retrying = false
    const restart = () => {
      // list+watch again, backing off: the watch broke (API restart, network blip) or the
      // list was refused for now (a CRD's storage still initialising, 429, 503)
      if (stopping || retrying) return
      retrying = true
      later(backoff, () => { retrying = false; if (!stopping) void informer.start() })
      backoff = Math.min(backoff * 2, restartBackoffMs.max)
    }
    const onChange = (obj?: KubernetesObject) => { backoff = restartBackoffMs.first; evaluate(affected(col, obj)) }
    informer.on('add', onChange)
    informer.on('update', onChange)
    informer.on('delete', onChange)
    informer.on('error', (err: unknown) => {
      if (stopping) return
      col.error = err
      evaluate()
      restart()
    })
    col.started = informer.start().then(async () => {
      // the wait ended while this list was in flight: stopAll has already run
      if (stopping) await informer.stop()
    })
    await col.started
    return col
  }

  const attach = (e: Entry) => (e.attaching ??= attachNow(e).finally(() => { e.attaching = undefined }))
  const attachNow = async (e: Entry) => {
    if (stopping) return
    e.resolved = await resolve(kube, e.apiVersion, e.kind)
    e.lookedUp = true
    if (!e.resolved) return
    if (e.resolved.namespaced && !e.namespace) {
      throw new NsopsError(`cannot wait for ${e.ref}: ${e.kind} is namespaced and the reference has no metadata.namespace.`)
    }
    if (!e.resolved.namespaced) { e.namespace = undefined; e.ref = `${e.kind}/${e.name}` }
    const cols = [await watchCollection(e.apiVersion, e.kind, e.resolved.plural, e.namespace)]
    byPath.set(cols[0].path, [...(byPath.get(cols[0].path) ?? []), e])
    if (workloadKinds.has(groupKind(e)) && e.namespace) cols.push(await watchCollection('v1', 'Pod', 'pods', e.namespace))
    // no answer at all while starting is an unreachable API; an HTTP refusal shows as Unknown and is retried
    for (const col of cols) if (!ready && col.error && httpStatusOf(col.error) === undefined) throw unreachable(kube, col.error)
  }

  // Kinds nobody serves yet (a CRD applied together with its objects) are NotFound until the
  // CRD is Established; watching CRDs notices that moment.
  const watchForCrds = async () => {
    const informer = makeInformer<KubernetesObject>(kube.kc, '/apis/apiextensions.k8s.io/v1/customresourcedefinitions',
      () => kube.objects.list('apiextensions.k8s.io/v1', 'CustomResourceDefinition'))
    collections.set('crds', { path: 'crds', informer, apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition' })
    const retry = (crd: KubernetesObject) => {
      const c = plain(crd, 'apiextensions.k8s.io/v1', 'CustomResourceDefinition')
      if (computeStatus(c).status !== 'Current') return
      const group = (c.spec as { group?: string })?.group
      const kind = (c.spec as { names?: { kind?: string } })?.names?.kind
      for (const e of entries.values()) {
        if (!e.resolved && e.kind === kind && e.apiVersion.startsWith(`${group}/`)) {
          attach(e).then(() => evaluate(), (err) => { e.error = errorMessage(err); evaluate() })
        }
      }
    }
    informer.on('add', retry)
    informer.on('update', retry)
    informer.on('error', () => {})
    await informer.start()
    if (stopping) await informer.stop()
  }

  const stopAll = async () => {
    stopping = true
    for (const t of timers) clearTimeout(t)
    timers.clear()
    await Promise.allSettled([...collections.values()].map((c) => c.informer.stop()))
  }

  const onAbort = () => finish('aborted')
  opts.signal?.addEventListener('abort', onAbort, { once: true })
  const deadline = later(opts.timeoutMs, () => finish('timeout'))

  let outcome: WaitResult['outcome']
  try {
    if (opts.signal?.aborted) {
      outcome = 'aborted'
    } else {
      const setup = (async () => {
        await Promise.all([...entries.values()].map(attach))
        if ([...entries.values()].some((e) => !e.resolved)) await watchForCrds()
      })()
      // a hung API must not outlive the timeout: setup races the same deadline
      const first = await Promise.race([setup.then(() => 'ready' as const), done])
      if (first === 'ready') {
        ready = true
        evaluate()
        outcome = await done
      } else {
        // timed out or interrupted before the API answered; whatever setup still starts stops itself
        outcome = first
        setup.catch(() => {})
      }
    }
  } finally {
    clearTimeout(deadline)
    opts.signal?.removeEventListener('abort', onAbort)
    await stopAll()
  }
  if (callbackError) throw callbackError.error

  const now = new Date()
  const statuses = [...entries.values()].map((e) => e.health ?? healthOf(e, now, collections).health)
  const elapsedMs = Date.now() - started
  const status = aggregate(statuses.map((s) => s.status))
  return { ok: outcome === 'current', outcome, status, statuses, elapsedMs, report: renderReport(outcome, statuses, elapsedMs) }
}

function healthOf(e: Entry, now: Date, collections: Map<string, Collection>): { health: ObjectHealth; recheckAt: number } {
  const base = { ref: e.ref, apiVersion: e.apiVersion, kind: e.kind, name: e.name, namespace: e.namespace }
  if (e.error) return { health: { ...base, status: 'Unknown', message: e.error }, recheckAt: Infinity }
  if (!e.lookedUp) return { health: { ...base, status: 'Unknown', message: 'no answer from the API yet' }, recheckAt: Infinity }
  if (!e.resolved) {
    return {
      health: { ...base, status: 'NotFound', message: `the API does not serve ${e.apiVersion} ${e.kind} (is its CRD installed?)` },
      recheckAt: Infinity,
    }
  }
  const col = collections.get(collectionPath(e.apiVersion, e.resolved.plural, e.namespace))
  const raw = col?.informer.get(e.name, e.namespace)
  if (!raw && col?.error) {
    return { health: { ...base, status: 'Unknown', message: `cannot list ${e.kind}: ${apiMessage(col.error)}` }, recheckAt: Infinity }
  }
  const obj = raw ? plain(raw, e.apiVersion, e.kind) : undefined

  let pods: KubeObject[] | undefined
  if (obj && workloadKinds.has(groupKind(e)) && e.namespace) {
    const podCol = collections.get(collectionPath('v1', 'pods', e.namespace))
    const selector = (obj.spec as { selector?: LabelSelector } | undefined)?.selector
    pods = (podCol?.informer.list(e.namespace) ?? [])
      .map((p) => plain(p, 'v1', 'Pod'))
      .filter((p) => matchesSelector(selector, p.metadata?.labels))
      .sort((a, b) => String(a.metadata?.name).localeCompare(String(b.metadata?.name)))
  }

  const result = computeStatus(obj, now, { pods })
  const health: ObjectHealth = { ...base, status: result.status, message: result.message, reason: result.reason }
  if (pods) {
    health.pods = pods.map((p) => {
      const s = podStatus(p as PodLike)
      return { name: p.metadata?.name ?? '', status: s.status, ready: s.ready, restarts: s.restarts, why: whyNotReady(p as PodLike) }
    })
  }

  let recheckAt = Infinity
  for (const p of obj?.kind === 'Pod' ? [obj] : pods ?? []) {
    const created = p.metadata?.creationTimestamp ? new Date(p.metadata.creationTimestamp).getTime() : NaN
    const status = (p.status as PodLike['status'])
    const unschedulable = status?.conditions?.some((c) => c.type === 'PodScheduled' && c.status === 'False' && c.reason === 'Unschedulable')
    if (unschedulable && created + SCHEDULE_WINDOW_MS > now.getTime()) recheckAt = Math.min(recheckAt, created + SCHEDULE_WINDOW_MS)
  }
  return { health, recheckAt }
}

function renderReport(outcome: WaitResult['outcome'], statuses: ObjectHealth[], elapsedMs: number): string {
  const n = statuses.length
  const objects = (k: number) => `${k} object${k === 1 ? '' : 's'}`
  if (outcome === 'current') return `all ${objects(n)} Current after ${duration(elapsedMs)}`
  const notCurrent = statuses.filter((s) => s.status !== 'Current')
  const headline = {
    failed: `${objects(notCurrent.filter((s) => s.status === 'Failed').length)} Failed after ${duration(elapsedMs)}`,
    timeout: `timed out after ${duration(elapsedMs)} waiting for ${notCurrent.length} of ${objects(n)}`,
    aborted: `interrupted after ${duration(elapsedMs)}; ${notCurrent.length} of ${objects(n)} not Current`,
  }[outcome]
  const lines = [`${headline}:`]
  for (const s of notCurrent) {
    lines.push(`  ${s.ref}: ${s.status}: ${s.message}`)
    // replicas usually fail for the same reason: one line per reason, not per pod
    const byWhy = new Map<string, PodHealth[]>()
    for (const p of s.pods ?? []) if (p.why) byWhy.set(`${p.status} ${p.why}`, [...(byWhy.get(`${p.status} ${p.why}`) ?? []), p])
    for (const group of byWhy.values()) {
      const [p] = group
      const who = group.length === 1
        ? `pod ${p.name} ${p.status} ${p.ready}${p.restarts ? ` (${p.restarts} restarts)` : ''}`
        : `${group.length} pods (${group.slice(0, podsShownPerObject).map((g) => g.name).join(', ')}${group.length > podsShownPerObject ? ', …' : ''}) ${p.status}`
      lines.push(`    ${who}: ${p.why}`)
    }
    if (s.pods && s.pods.length === 0 && s.status !== 'NotFound') lines.push('    no pods match its selector yet')
  }
  return lines.join('\n')
}
