// One row per Flux object for dashboards and `--json`: readiness, suspension (and by whom),
// revisions and the source it reads from. Pure summarising over what the API returned.
import type { Kube } from '../kube/client.ts'
import {
  conditionOf,
  getFlux,
  isSuspended,
  fluxRefOf,
  statusString,
  type FluxKind,
  type FluxObject,
  type FluxRef,
} from './kinds.ts'
import { readyIsCurrent } from './readiness.ts'
import {
  describeSuspension,
  markerOf,
  staleReason,
  suspendedBy,
  type StaleOptions,
  type SuspensionMarker,
} from './suspend.ts'

export interface FluxStatusRow {
  kind: FluxKind
  name: string
  namespace: string
  /** the Ready condition; Unknown when there is none yet (or the object is missing) */
  ready: 'True' | 'False' | 'Unknown'
  reason: string
  message: string
  /** whether the Ready condition describes the current generation */
  readyIsCurrent: boolean
  suspended: boolean
  /** the parsed nsops marker (who, where, pid, when), when the object carries one */
  suspendedBy?: SuspensionMarker
  /** who suspended it, for people: "by hand", "by user@host (pid N) at …" */
  suspension?: string
  /** why a nsops suspension marker on it is stale (its session is gone) */
  staleSuspension?: string
  lastAppliedRevision?: string
  lastAttemptedRevision?: string
  lastHandledReconcileAt?: string
  /** a source's artifact revision (GitRepository, OCIRepository, ...) */
  artifactRevision?: string
  source?: FluxRef
  missing?: boolean
}

/** The source a Kustomization or HelmRelease reads from (its namespace defaults to its own). */
export function sourceOf(obj: FluxObject): FluxRef | undefined {
  const spec = obj.spec ?? {}
  const chart = (spec.chart as { spec?: { sourceRef?: unknown } } | undefined)?.spec
  const raw = (spec.sourceRef ?? spec.chartRef ?? chart?.sourceRef) as
    { kind?: string; name?: string; namespace?: string } | undefined
  if (!raw?.kind || !raw.name) return undefined
  return { kind: raw.kind as FluxKind, name: raw.name, namespace: raw.namespace ?? obj.metadata.namespace }
}

export function summarizeFlux(obj: FluxObject, opts: StaleOptions = {}): FluxStatusRow {
  const ready = conditionOf(obj, 'Ready')
  const marker = markerOf(obj)
  const artifact = obj.status?.artifact as { revision?: string } | undefined
  const row: FluxStatusRow = {
    ...fluxRefOf(obj),
    ready: ready?.status === 'True' || ready?.status === 'False' ? ready.status : 'Unknown',
    reason: ready?.reason ?? '',
    message: ready?.message ?? '',
    readyIsCurrent: readyIsCurrent(obj),
    suspended: isSuspended(obj),
  }
  if (marker && marker !== 'unreadable marker') row.suspendedBy = marker
  const by = suspendedBy(obj)
  if (by) row.suspension = describeSuspension(by)
  const stale = marker ? staleReason(marker, opts) : undefined
  if (stale) row.staleSuspension = stale
  for (const key of ['lastAppliedRevision', 'lastAttemptedRevision', 'lastHandledReconcileAt'] as const) {
    const v = statusString(obj, key)
    if (v) row[key] = v
  }
  if (artifact?.revision) row.artifactRevision = artifact.revision
  const source = sourceOf(obj)
  if (source) row.source = source
  return row
}

/**
 * Status rows in the order given. Objects are summarised as passed (e.g. straight from
 * findManagers); refs are read now, and a missing one gives a row with `missing: true`.
 */
export async function fluxStatus(
  kube: Kube,
  objects: (FluxObject | FluxRef)[],
  opts: StaleOptions = {},
): Promise<FluxStatusRow[]> {
  return Promise.all(
    objects.map(async (o) => {
      const obj = 'metadata' in o ? o : await getFlux(kube, o)
      if (obj) return summarizeFlux(obj, opts)
      return {
        ...fluxRefOf(o),
        ready: 'Unknown',
        reason: 'NotFound',
        message: 'not found',
        readyIsCurrent: false,
        suspended: false,
        missing: true,
      }
    }),
  )
}
