// One object's health from what the informers hold: kstatus (kstatus.ts) on the live object,
// with the pods a workload selects, and when its status will change with no event (an
// unschedulable pod's window ends). Pure: reads caches, writes nothing.
import type { KubernetesObject } from '@kubernetes/client-node'
import { apiMessage } from '../kube/client.ts'
import { collectionPath, type Resolved } from './discovery.ts'
import type { Informers } from './informers.ts'
import { controllerMissing, releaseInfo, type ReleaseInfo } from './flux-controllers.ts'
import { computeStatus, groupKind, SCHEDULE_WINDOW_MS, type KubeObject, type Status } from './kstatus.ts'
import { podStatus, whyNotReady, type PodLike } from './pod-status.ts'

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
  /** for a HelmRelease: its Helm release (chart@version, revision, last action and result) */
  release?: ReleaseInfo
}

/** One object being waited for, and what is known of it so far. */
export interface Entry {
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

// Kinds whose pods explain their status; the key is kstatus' group/Kind.
export const workloadKinds = new Set([
  'apps/Deployment',
  'apps/ReplicaSet',
  'apps/StatefulSet',
  'apps/DaemonSet',
  'batch/Job',
])

export const isWorkload = (e: Entry): boolean => workloadKinds.has(groupKind(e))

export interface LabelSelector {
  matchLabels?: Record<string, string>
  matchExpressions?: { key: string; operator: string; values?: string[] }[]
}

export function matchesSelector(selector: LabelSelector | undefined, labels: Record<string, string> = {}): boolean {
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

// The informer cache holds typed objects (Dates) from lists and raw JSON from watch events;
// kstatus reads both, but one plain shape with apiVersion/kind set keeps the rest simple.
const plainCache = new WeakMap<object, KubeObject>()
export function plain(obj: KubernetesObject, apiVersion: string, kind: string): KubeObject {
  let p = plainCache.get(obj)
  if (!p) {
    p = { ...(JSON.parse(JSON.stringify(obj)) as KubeObject), apiVersion, kind }
    plainCache.set(obj, p)
  }
  return p
}

/** The workload's live selector, from the informer cache. */
export function selectorOf(live: KubernetesObject | undefined): LabelSelector | undefined {
  return (live as { spec?: { selector?: LabelSelector } } | undefined)?.spec?.selector
}

export function healthOf(
  e: Entry,
  now: Date,
  informers: Informers,
  /** the Flux controllers that run (undefined: unknown), for objects only a controller moves on */
  fluxControllers?: ReadonlySet<string>,
): { health: ObjectHealth; recheckAt: number } {
  const base = { ref: e.ref, apiVersion: e.apiVersion, kind: e.kind, name: e.name, namespace: e.namespace }
  if (e.error) return { health: { ...base, status: 'Unknown', message: e.error }, recheckAt: Infinity }
  if (!e.lookedUp)
    return { health: { ...base, status: 'Unknown', message: 'no answer from the API yet' }, recheckAt: Infinity }
  if (!e.resolved) {
    return {
      health: {
        ...base,
        status: 'NotFound',
        message: `the API does not serve ${e.apiVersion} ${e.kind} (is its CRD installed?)`,
      },
      recheckAt: Infinity,
    }
  }
  const col = informers.get(collectionPath(e.apiVersion, e.resolved.plural, e.namespace))
  const raw = col?.informer.get(e.name, e.namespace)
  if (!raw && col?.error) {
    return {
      health: { ...base, status: 'Unknown', message: `cannot list ${e.kind}: ${apiMessage(col.error)}` },
      recheckAt: Infinity,
    }
  }
  const obj = raw ? plain(raw, e.apiVersion, e.kind) : undefined

  let pods: KubeObject[] | undefined
  if (obj && isWorkload(e) && e.namespace) {
    const podCol = informers.get(collectionPath('v1', 'pods', e.namespace))
    const selector = (obj.spec as { selector?: LabelSelector } | undefined)?.selector
    pods = (podCol?.informer.list(e.namespace) ?? [])
      .map((p) => plain(p, 'v1', 'Pod'))
      .filter((p) => matchesSelector(selector, p.metadata?.labels))
      .sort((a, b) => String(a.metadata?.name).localeCompare(String(b.metadata?.name)))
  }

  const computed = computeStatus(obj, now, { pods })
  const result = (obj && controllerMissing(obj, computed, fluxControllers)) || computed
  const health: ObjectHealth = { ...base, status: result.status, message: result.message, reason: result.reason }
  const release = obj && releaseInfo(obj)
  if (release) health.release = release
  if (pods) {
    health.pods = pods.map((p) => {
      const s = podStatus(p as PodLike)
      return {
        name: p.metadata?.name ?? '',
        status: s.status,
        ready: s.ready,
        restarts: s.restarts,
        why: whyNotReady(p as PodLike),
      }
    })
  }

  let recheckAt = Infinity
  for (const p of obj?.kind === 'Pod' ? [obj] : (pods ?? [])) {
    const created = p.metadata?.creationTimestamp ? new Date(p.metadata.creationTimestamp).getTime() : NaN
    const status = p.status as PodLike['status']
    const unschedulable = status?.conditions?.some(
      (c) => c.type === 'PodScheduled' && c.status === 'False' && c.reason === 'Unschedulable',
    )
    if (unschedulable && created + SCHEDULE_WINDOW_MS > now.getTime())
      recheckAt = Math.min(recheckAt, created + SCHEDULE_WINDOW_MS)
  }
  return { health, recheckAt }
}

/** Whether two healths read the same to a person (what makes a change worth publishing). */
export function sameHealth(a: ObjectHealth | undefined, b: ObjectHealth): boolean {
  return Boolean(
    a &&
    a.status === b.status &&
    a.message === b.message &&
    a.release?.revision === b.release?.revision &&
    a.release?.result === b.release?.result,
  )
}
