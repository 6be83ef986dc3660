// Suspend and resume with an ownership marker. A dev session suspends the namespace's Flux
// objects and writes who it is into an annotation; it resumes only what carries its own
// marker, so a suspension made by hand or by another session survives. Markers whose owner
// is gone are "stale" and are resumed by the next run, `just dev-down` or the dashboard.
//
// Stale rule: a marker written on this host is stale when its pid is no longer alive. A
// marker from another host cannot be checked that way; it is stale when it is older than
// MARKER_MAX_AGE_MS (a live session refreshes `at` by calling suspendFor again). A marker
// that is not valid JSON is stale too: no session could ever match it. (A reused pid makes a
// dead session look alive until that process ends; the age rule does not apply on the same
// host because a long dev session is normal there.) A marker of a session kept on purpose
// (`dev --ci` leaves its stack for later CI steps) is never stale: `just dev-down` ends it.
//
// A marker is tied to the suspension we made, not only to the object: it records a token of
// the session and the object's metadata.generation right after our suspend (every flip of
// spec.suspend bumps it, and `flux suspend` / `flux resume` leave our annotation in place).
// Before every resume, refresh and takeover the live generation must still be that one;
// otherwise someone resumed or suspended it since, and the suspension is theirs now.
import { randomUUID } from 'node:crypto'
import os from 'node:os'
import { pidAlive } from '../core/lock.ts'
import { isApiError, type Kube } from '../kube/client.ts'
import {
  apiFailure,
  getFlux,
  isSuspended,
  listFlux,
  mergePatchFlux,
  fluxRefOf,
  type FluxObject,
  type FluxRef,
} from './kinds.ts'
import { findManagers, type ManagedScope } from './managing.ts'

export const SUSPENDED_BY = 'nsops.dev/suspended-by'
export const MARKER_MAX_AGE_MS = 12 * 60 * 60 * 1000

export interface SuspensionOwner {
  user: string
  host: string
  pid: number
  /** a session id that outlives the pid (e.g. a dev session restarted in place) */
  session?: string
  /** random per session: what makes a marker ours rather than a same-pid look-alike */
  token?: string
  /** kept on purpose after the process ended (`dev --ci`): not stale, ended by dev-down */
  kept?: boolean
  /**
   * `suspend`: made by `just suspend NS` to last until `just resume NS` — never stale, not
   * ended by dev-down, resumed by `just resume` from any machine
   */
  command?: 'suspend'
}

export interface SuspensionMarker extends SuspensionOwner {
  /** when the marker was written (ISO 8601) */
  at: string
  /** metadata.generation of the object once our suspend landed */
  generation?: number
}

/** Who suspended an object: our marker's owner, nobody we know ("by hand"), or garbage. */
export type SuspendedBy = SuspensionMarker | 'by hand' | 'unreadable marker'

export function currentOwner(session?: string): SuspensionOwner {
  let user = process.env.USER ?? 'unknown'
  try {
    user = os.userInfo().username
  } catch {
    /* no passwd entry in some containers */
  }
  return { user, host: os.hostname(), pid: process.pid, ...(session ? { session } : {}), token: randomUUID() }
}

export function markerOf(obj: FluxObject): SuspensionMarker | 'unreadable marker' | undefined {
  return parseMarker(obj.metadata.annotations?.[SUSPENDED_BY])
}

/** A marker as written in an annotation (the Flux hold's and the per-object hold's share one shape). */
export function parseMarker(raw: string | undefined): SuspensionMarker | 'unreadable marker' | undefined {
  if (raw === undefined) return undefined
  try {
    const m = JSON.parse(raw) as Partial<SuspensionMarker>
    if (typeof m.host === 'string' && typeof m.pid === 'number' && typeof m.at === 'string') {
      return {
        user: String(m.user ?? 'unknown'),
        host: m.host,
        pid: m.pid,
        at: m.at,
        ...(m.session ? { session: String(m.session) } : {}),
        ...(typeof m.token === 'string' ? { token: m.token } : {}),
        ...(m.kept === true ? { kept: true } : {}),
        ...(m.command === 'suspend' ? { command: 'suspend' as const } : {}),
        ...(typeof m.generation === 'number' ? { generation: m.generation } : {}),
      }
    }
  } catch {
    /* fall through */
  }
  return 'unreadable marker'
}

/** Who suspended it, or undefined when it is not suspended. */
export function suspendedBy(obj: FluxObject): SuspendedBy | undefined {
  if (!isSuspended(obj)) return undefined
  return markerOf(obj) ?? 'by hand'
}

/** "by hand", or "by user@host (pid N) at …" for a nsops marker. */
export function describeSuspension(by: SuspendedBy): string {
  if (by === 'by hand') return 'by hand'
  if (by === 'unreadable marker') return 'with an unreadable nsops marker'
  // `just suspend` marks its session so; the dashboard's keys and page name themselves
  if (by.command === 'suspend')
    return `by ${by.user}@${by.host} with ${!by.session || by.session === 'just suspend' ? '`just suspend`' : by.session} at ${by.at}`
  return `by ${by.user}@${by.host} (pid ${by.pid}${by.session ? `, session ${by.session}` : ''}${by.kept ? ', kept by dev --ci' : ''}) at ${by.at}`
}

export function isOwner(marker: SuspensionMarker | 'unreadable marker' | undefined, owner: SuspensionOwner): boolean {
  if (!marker || marker === 'unreadable marker') return false
  if (marker.token && owner.token) return marker.token === owner.token
  if (marker.session && owner.session && marker.session === owner.session) return true
  return marker.host === owner.host && marker.pid === owner.pid
}

/**
 * Whether the object is still in the state our suspend left it: its generation has not moved
 * since (a resume and a suspend by hand each bump it). Markers without one predate the rule.
 */
export function untouchedSince(marker: SuspensionMarker, obj: FluxObject): boolean {
  return marker.generation === undefined || marker.generation === obj.metadata.generation
}

/** The marker and patch that put `owner`'s suspension on `obj` (suspending it if need be). */
function suspendPatch(obj: FluxObject, owner: SuspensionOwner, generation?: number) {
  // a flip of spec.suspend bumps the generation by one; annotations do not
  const gen = generation ?? (obj.metadata.generation ?? 0) + (isSuspended(obj) ? 0 : 1)
  const value: SuspensionMarker = { ...owner, at: new Date().toISOString(), generation: gen }
  return {
    metadata: { annotations: { [SUSPENDED_BY]: JSON.stringify(value) } },
    ...(isSuspended(obj) ? {} : { spec: { suspend: true } }),
  }
}

type FluxObjectOrRef = FluxObject | FluxRef

/**
 * Reads the object, lets `decide` pick a patch (or none), and applies it with the read
 * resourceVersion as a precondition, retrying when the object changed in between (the
 * controllers write status all the time). Returns the object as read, null when gone.
 */
async function guardedPatch(
  kube: Kube,
  r: FluxRef,
  decide: (obj: FluxObject) => Record<string, unknown> | undefined,
): Promise<FluxObject | null> {
  for (let attempt = 0; ; attempt++) {
    const obj = await getFlux(kube, r)
    if (!obj) return null
    const patch = decide(obj)
    if (!patch) return obj
    const metadata = { ...(patch.metadata as object | undefined), resourceVersion: obj.metadata.resourceVersion }
    try {
      await mergePatchFlux(kube, r, { ...patch, metadata })
      return obj
    } catch (err) {
      if (isApiError(err, 409) && attempt < 8) continue
      if (isApiError(err, 404)) return null
      throw apiFailure(`patching ${r.kind}/${r.namespace}/${r.name}`, kube, err)
    }
  }
}

export interface SuspendResult {
  /** suspended by this call */
  suspended: FluxRef[]
  /** already suspended by this owner; their marker's `at` was refreshed */
  alreadyOurs: FluxRef[]
  /** suspended by someone else: left as they are */
  suspendedByOthers: { ref: FluxRef; by: SuspendedBy }[]
  /** no longer in the cluster */
  missing: FluxRef[]
}

/**
 * Sets spec.suspend=true with our marker on each object that is not already suspended by
 * someone else. Written as the Flux CLI's field manager, so kustomize-controller keeps it.
 */
export async function suspendFor(
  kube: Kube,
  objects: FluxObjectOrRef[],
  owner: SuspensionOwner,
): Promise<SuspendResult> {
  const result: SuspendResult = { suspended: [], alreadyOurs: [], suspendedByOthers: [], missing: [] }
  await Promise.all(
    objects.map(async (o) => {
      const r = fluxRefOf(o)
      // set inside the read-patch loop; the last attempt's decision is the one that counts
      const state: { outcome: 'suspended' | 'ours' | { by: SuspendedBy } } = { outcome: 'suspended' }
      const seen = await guardedPatch(kube, r, (obj) => {
        const marker = markerOf(obj)
        const ours = isOwner(marker, owner) && untouchedSince(marker as SuspensionMarker, obj)
        if (isSuspended(obj) && !ours) {
          // a marker whose generation moved since is a note left on someone else's suspension
          const current = marker && marker !== 'unreadable marker' && !untouchedSince(marker, obj) ? undefined : marker
          state.outcome = { by: isOwner(marker, owner) ? 'by hand' : (current ?? 'by hand') }
          return undefined
        }
        state.outcome = isSuspended(obj) ? 'ours' : 'suspended'
        return suspendPatch(obj, owner, isSuspended(obj) ? (marker as SuspensionMarker).generation : undefined)
      })
      const { outcome } = state
      if (!seen) result.missing.push(r)
      else if (outcome === 'suspended') result.suspended.push(r)
      else if (outcome === 'ours') result.alreadyOurs.push(r)
      else result.suspendedByOthers.push({ ref: r, by: outcome.by })
    }),
  )
  return result
}

export interface ResumeResult {
  /** resumed by this call (or, if someone had resumed it already, our marker removed) */
  resumed: FluxRef[]
  /** suspended by someone else: left suspended */
  notOurs: { ref: FluxRef; by: SuspendedBy }[]
  /** neither suspended nor marked by us */
  notSuspended: FluxRef[]
  missing: FluxRef[]
}

const resumePatch = (obj: FluxObject) => ({
  metadata: { annotations: { [SUSPENDED_BY]: null } },
  // like `flux resume`: an explicit false, whose generation bump makes the controller reconcile
  ...(isSuspended(obj) ? { spec: { suspend: false } } : {}),
})

/** Resumes only the objects that carry this owner's marker, and removes the marker. */
export async function resumeOwned(
  kube: Kube,
  objects: FluxObjectOrRef[],
  owner: SuspensionOwner,
): Promise<ResumeResult> {
  const result: ResumeResult = { resumed: [], notOurs: [], notSuspended: [], missing: [] }
  await Promise.all(
    objects.map(async (o) => {
      const r = fluxRefOf(o)
      let ours = false
      let changed = false
      const seen = await guardedPatch(kube, r, (obj) => {
        const marker = markerOf(obj)
        ours = isOwner(marker, owner)
        changed = ours && isSuspended(obj) && !untouchedSince(marker as SuspensionMarker, obj)
        // resumed and suspended again since: the suspension is someone else's; drop only our note
        if (changed) return { metadata: { annotations: { [SUSPENDED_BY]: null } } }
        return ours ? resumePatch(obj) : undefined
      })
      if (!seen) result.missing.push(r)
      else if (changed) result.notOurs.push({ ref: r, by: 'by hand' })
      else if (ours) result.resumed.push(r)
      else if (isSuspended(seen)) result.notOurs.push({ ref: r, by: suspendedBy(seen)! })
      else result.notSuspended.push(r)
    }),
  )
  return result
}

export interface StaleSuspension extends FluxRef {
  marker: SuspensionMarker | 'unreadable marker'
  /** the annotation as found; resumeStale leaves the object alone if it has changed since */
  raw: string
  /** whether spec.suspend is still true (false: resumed by hand, only the marker is left) */
  suspended: boolean
  reason: string
}

export interface StaleOptions {
  maxAgeMs?: number
  now?: Date
  /** this machine's name; default os.hostname() */
  host?: string
}

/** Why a marker is stale, or undefined while its owner may still be running. */
export function staleReason(
  marker: SuspensionMarker | 'unreadable marker',
  opts: StaleOptions = {},
): string | undefined {
  if (marker === 'unreadable marker') return 'its nsops.dev/suspended-by marker is not valid JSON'
  if (marker.kept || marker.command === 'suspend') return undefined
  const host = opts.host ?? os.hostname()
  if (marker.host === host) {
    return pidAlive(marker.pid)
      ? undefined
      : `the session that suspended it (pid ${marker.pid} on ${host}, ${marker.user}) is gone`
  }
  const age = (opts.now ?? new Date()).getTime() - Date.parse(marker.at)
  const max = opts.maxAgeMs ?? MARKER_MAX_AGE_MS
  if (Number.isNaN(age) || age > max) {
    const hours = Number.isNaN(age) ? 'an unknown time' : `${(age / 3_600_000).toFixed(1)} h`
    return `it was suspended ${hours} ago from another host (${marker.host}, ${marker.user}) and not refreshed since`
  }
  return undefined
}

/**
 * Flux objects carrying a marker whose owner is gone (see the rule at the top). With a
 * scope, what the finder (managing.ts) says manages the namespace, the root included (a
 * --hold-root session may have left it); without, every Kustomization and HelmRelease.
 */
export async function findStaleSuspensions(
  kube: Kube,
  scope?: ManagedScope,
  opts: StaleOptions = {},
): Promise<StaleSuspension[]> {
  let objects: FluxObject[]
  if (scope) {
    const m = await findManagers(kube, scope)
    objects = m.state === 'managed' ? [...m.managers.map((x) => x.kustomization), ...m.helmReleases] : []
  } else {
    objects = (
      await Promise.all(
        (['Kustomization', 'HelmRelease'] as const).map((k) =>
          listFlux(kube, k, { fallbackNamespaces: ['flux-system'] }),
        ),
      )
    ).flat()
  }
  const stale: StaleSuspension[] = []
  for (const obj of objects) {
    const marker = markerOf(obj)
    if (!marker) continue
    const reason = staleReason(marker, opts)
    if (reason)
      stale.push({
        ...fluxRefOf(obj),
        marker,
        raw: obj.metadata.annotations![SUSPENDED_BY],
        suspended: isSuspended(obj),
        reason,
      })
  }
  return stale
}

/** Resumes stale suspensions (and drops their markers) unless the marker changed since found. */
export async function resumeStale(
  kube: Kube,
  stale: StaleSuspension[],
): Promise<{ resumed: FluxRef[]; changed: FluxRef[]; missing: FluxRef[] }> {
  const result = { resumed: [] as FluxRef[], changed: [] as FluxRef[], missing: [] as FluxRef[] }
  await Promise.all(
    stale.map(async (s) => {
      let same = false
      const r = fluxRefOf(s)
      const seen = await guardedPatch(kube, r, (obj) => {
        same = obj.metadata.annotations?.[SUSPENDED_BY] === s.raw
        if (!same) return undefined
        // suspended again by hand since the session died (the flux CLI keeps our annotation):
        // theirs now; remove only our stale note
        if (isSuspended(obj) && s.marker !== 'unreadable marker' && !untouchedSince(s.marker, obj)) {
          same = false
          return { metadata: { annotations: { [SUSPENDED_BY]: null } } }
        }
        return resumePatch(obj)
      })
      if (!seen) result.missing.push(r)
      else if (same) result.resumed.push(r)
      else result.changed.push(r)
    }),
  )
  return result
}

/**
 * Re-marks our suspensions (a fresh `at`) so other hosts do not take them for stale; only
 * those still suspended under our marker and untouched since. Returns the ones we lost.
 */
export async function refreshOwned(kube: Kube, objects: FluxObjectOrRef[], owner: SuspensionOwner): Promise<FluxRef[]> {
  const lost: FluxRef[] = []
  await Promise.all(
    objects.map(async (o) => {
      const r = fluxRefOf(o)
      let ours = false
      await guardedPatch(kube, r, (obj) => {
        const marker = markerOf(obj)
        ours = isSuspended(obj) && isOwner(marker, owner) && untouchedSince(marker as SuspensionMarker, obj)
        return ours ? suspendPatch(obj, owner, (marker as SuspensionMarker).generation) : undefined
      })
      if (!ours) lost.push(r)
    }),
  )
  return lost
}

/**
 * Takes over a stale suspension in one guarded patch that only rewrites the marker: the
 * object stays suspended throughout (resume-then-suspend would let Flux apply prod in
 * between). Refused when the marker or the generation changed since it was found.
 */
export async function takeOverStale(
  kube: Kube,
  stale: StaleSuspension,
  owner: SuspensionOwner,
): Promise<'taken' | 'changed' | 'missing'> {
  let outcome: 'taken' | 'changed' = 'changed'
  const seen = await guardedPatch(kube, fluxRefOf(stale), (obj) => {
    const same =
      obj.metadata.annotations?.[SUSPENDED_BY] === stale.raw &&
      isSuspended(obj) &&
      (stale.marker === 'unreadable marker' || untouchedSince(stale.marker, obj))
    outcome = same ? 'taken' : 'changed'
    return same ? suspendPatch(obj, owner, obj.metadata.generation) : undefined
  })
  return seen ? outcome : 'missing'
}

/** Every suspension a kept `dev --ci` session left, for `just dev-down`. */
export async function findKeptSuspensions(kube: Kube): Promise<StaleSuspension[]> {
  const objects = (
    await Promise.all(
      (['Kustomization', 'HelmRelease'] as const).map((k) =>
        listFlux(kube, k, { fallbackNamespaces: ['flux-system'] }),
      ),
    )
  ).flat()
  return objects.flatMap((obj) => {
    const marker = markerOf(obj)
    if (!marker || marker === 'unreadable marker' || !marker.kept || marker.command) return []
    return [
      {
        ...fluxRefOf(obj),
        marker,
        raw: obj.metadata.annotations![SUSPENDED_BY],
        suspended: isSuspended(obj),
        reason: `kept by a dev --ci session of ${marker.user}@${marker.host}`,
      },
    ]
  })
}

/** Marks our suspensions as kept after this process ends (dev --ci leaving its stack). */
export function keepOwned(kube: Kube, objects: FluxObjectOrRef[], owner: SuspensionOwner): Promise<FluxRef[]> {
  return refreshOwned(kube, objects, { ...owner, kept: true })
}

export interface NamespaceResume {
  ref: FluxRef
  outcome: 'resumed' | 'kept' | 'not suspended' | 'missing'
  /** who had suspended it (describeSuspension), when it was suspended */
  by?: string
}

/**
 * `just resume NS` for one object: resumes a suspension `just suspend` made (from any
 * machine) or one a dev session left behind (its owner gone), as it stands; keeps one made by
 * hand (no marker, or `flux suspend`/`flux resume` since ours: the generation moved) and one
 * a running dev loop holds — unless `force`, which resumes whatever it finds, as `flux
 * resume` would.
 */
export async function resumeNamespaceSuspension(
  kube: Kube,
  target: FluxObjectOrRef,
  opts: { force?: boolean } = {},
): Promise<NamespaceResume> {
  const r = fluxRefOf(target)
  const out: NamespaceResume = { ref: r, outcome: 'not suspended' }
  const seen = await guardedPatch(kube, r, (obj) => {
    if (!isSuspended(obj)) {
      out.outcome = 'not suspended'
      return undefined
    }
    const marker = markerOf(obj)
    const ours = marker && marker !== 'unreadable marker' && untouchedSince(marker, obj) ? marker : undefined
    out.by = ours ? describeSuspension(ours) : 'by hand'
    const resumable = ours && (ours.command === 'suspend' || staleReason(ours) !== undefined)
    if (!resumable && !opts.force) {
      out.outcome = 'kept'
      if (ours) out.by += ' (its dev loop is running: the suspension ends with it)'
      // resumed and suspended by hand since our marker: theirs; drop only our outdated note
      return marker && !ours ? { metadata: { annotations: { [SUSPENDED_BY]: null } } } : undefined
    }
    out.outcome = 'resumed'
    return resumePatch(obj)
  })
  if (!seen) out.outcome = 'missing'
  return out
}
