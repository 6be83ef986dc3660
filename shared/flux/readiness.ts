// When a Flux object counts as ready and when as failed, in one place (flux2's
// cmd/flux/readiness.go plays this part for the Flux CLI). Reconcile's waits, the status rows
// of the dashboards and deploy all read these, so "ready" and "failed" mean the same
// everywhere. Pure functions over the object as the API returned it.
import { computeStatus } from '../health/kstatus.ts'
import { conditionOf, type FluxObject } from './kinds.ts'

/** A decision on a Flux object: ready (ok) or failed, with the controller's reason and message. */
export interface Readiness {
  ok: boolean
  reason: string
  message: string
}

/** Whether the Ready condition was written for the object's current generation. */
export function readyIsCurrent(obj: FluxObject): boolean {
  const ready = conditionOf(obj, 'Ready')
  const generation = obj.metadata.generation
  if (!ready || generation === undefined) return false
  if (ready.observedGeneration) return ready.observedGeneration === generation
  return obj.status?.observedGeneration === generation
}

/** Ready=True for the current generation, and kstatus agrees (Current). */
export function isReadyNow(obj: FluxObject): boolean {
  return conditionOf(obj, 'Ready')?.status === 'True' && readyIsCurrent(obj) && computeStatus(obj).status === 'Current'
}

/** Stalled=True: the controller gave up until the object changes. */
export function stalledFailure(obj: FluxObject): Readiness | undefined {
  const stalled = conditionOf(obj, 'Stalled')
  if (stalled?.status !== 'True') return undefined
  const ready = conditionOf(obj, 'Ready')
  return {
    ok: false,
    reason: ready?.reason || stalled.reason || 'Stalled',
    message: ready?.message || stalled.message || 'stalled',
  }
}

/**
 * Ready=False with Reconciling.reason=ProgressingWithRetry: the run failed and the controller
 * retries at an interval, which is its verdict on this run. HealthCheckCanceled is not: the
 * controller requeues at once for a newer revision.
 */
export function retryingFailure(obj: FluxObject): Readiness | undefined {
  const ready = conditionOf(obj, 'Ready')
  if (
    ready?.status !== 'False' ||
    conditionOf(obj, 'Reconciling')?.reason !== 'ProgressingWithRetry' ||
    ready.reason === 'HealthCheckCanceled'
  )
    return undefined
  return { ok: false, reason: ready.reason ?? 'ReconciliationFailed', message: ready.message ?? '' }
}

/**
 * A source (GitRepository, OCIRepository, …) whose fetch failed: FetchFailed=True, or
 * Ready=False while retrying. A source's "attempted" revision stays the old artifact while a
 * fetch fails, so this is judged without a revision.
 */
export function fetchFailure(obj: FluxObject): Readiness | undefined {
  const fetchFailed = conditionOf(obj, 'FetchFailed')
  const ready = conditionOf(obj, 'Ready')
  if (
    fetchFailed?.status !== 'True' &&
    !(ready?.status === 'False' && conditionOf(obj, 'Reconciling')?.reason === 'ProgressingWithRetry')
  )
    return undefined
  return {
    ok: false,
    reason: fetchFailed?.reason || ready?.reason || 'FetchFailed',
    message: fetchFailed?.message || ready?.message || '',
  }
}

/** Whether the kind is a source (not an applier: Kustomization, HelmRelease). */
export const isSourceKind = (kind: string): boolean => kind !== 'Kustomization' && kind !== 'HelmRelease'
