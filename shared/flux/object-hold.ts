// Flux's per-object hold: the least a dev loop can hold when its objects overlap what a
// Kustomization manages. kustomize-controller v1.9.5 passes
//   kustomize.toolkit.fluxcd.io/reconcile: disabled   and   kustomize.toolkit.fluxcd.io/ssa: Ignore
// as ApplyOptions.ExclusionSelector and as delete Exclusions (internal/controller/
// kustomization_controller.go), and fluxcd/pkg/ssa v0.76.2 shouldSkipApply tests the desired
// AND the existing object (label or annotation, value case-insensitive). So the annotation on
// the LIVE object makes the controller skip exactly that object — no apply, no prune, no
// health check — while it keeps applying every other object of the Kustomization.
//
// Ownership, as for the Kustomization hold (suspend.ts): our marker (`nsops.dev/held-by`,
// the same JSON as `nsops.dev/suspended-by`) says which session holds it, a label makes held
// objects findable with one list per kind, and the annotation is written by our own field
// manager. managedFields is what ties the annotation to us: a person who removes it and sets
// it again (kubectl annotate, flux CLI, an edit) becomes its manager, and then it is theirs
// and never removed by us. A value set by hand before we came is left alone and not marked.
import { PatchStrategy } from '@kubernetes/client-node'
import { groupOf, refString as objectRefString, type ObjectRef } from '../kube/refs.ts'
import { apiMessage, isApiError, type Kube } from '../kube/client.ts'
import { listObjects, UnknownKindError } from '../kube/rest.ts'
import { NsopsError } from '../core/errors.ts'
import { listFlux, fluxRefOf, type FluxObject, type FluxRef } from './kinds.ts'
import { findManagers, inventoryRefs, type ManagedScope } from './managing.ts'
import { requestReconcileEach } from './reconcile.ts'
import {
  describeSuspension,
  isOwner,
  parseMarker,
  staleReason,
  type StaleOptions,
  type SuspensionMarker,
  type SuspensionOwner,
} from './suspend.ts'

export const RECONCILE_ANNOTATION = 'kustomize.toolkit.fluxcd.io/reconcile'
export const SSA_ANNOTATION = 'kustomize.toolkit.fluxcd.io/ssa'
export const HELD_BY = 'nsops.dev/held-by'
export const HOLD_LABEL = 'nsops.dev/flux-hold'
export const HOLD_FIELD_MANAGER = 'nsops-flux-hold'

interface ManagedField {
  manager?: string
  fieldsV1?: Record<string, unknown>
}
export interface HoldableObject {
  apiVersion?: string
  kind?: string
  metadata?: {
    name?: string
    namespace?: string
    resourceVersion?: string
    annotations?: Record<string, string>
    labels?: Record<string, string>
    managedFields?: ManagedField[]
  }
}

/** Which Flux exclusion the live object carries (`key: value`), if any. */
export function excludedFromFlux(obj: HoldableObject): string | undefined {
  for (const meta of [obj.metadata?.annotations, obj.metadata?.labels]) {
    if (meta?.[RECONCILE_ANNOTATION]?.toLowerCase() === 'disabled')
      return `${RECONCILE_ANNOTATION}: ${meta[RECONCILE_ANNOTATION]}`
    if (meta?.[SSA_ANNOTATION]?.toLowerCase() === 'ignore') return `${SSA_ANNOTATION}: ${meta[SSA_ANNOTATION]}`
  }
  return undefined
}

/** Whether the reconcile annotation is `disabled` and our field manager wrote it last. */
export function annotationIsOurs(obj: HoldableObject): boolean {
  if (obj.metadata?.annotations?.[RECONCILE_ANNOTATION] !== 'disabled') return false
  return (obj.metadata.managedFields ?? []).some(
    (m) =>
      m.manager === HOLD_FIELD_MANAGER &&
      Boolean(
        (m.fieldsV1?.['f:metadata'] as Record<string, Record<string, unknown>> | undefined)?.['f:annotations']?.[
          `f:${RECONCILE_ANNOTATION}`
        ],
      ),
  )
}

function markerValue(owner: SuspensionOwner): string {
  const m: SuspensionMarker = { ...owner, at: new Date().toISOString() }
  return JSON.stringify(m)
}

const holdPatch = (owner: SuspensionOwner) => ({
  metadata: {
    annotations: { [RECONCILE_ANNOTATION]: 'disabled', [HELD_BY]: markerValue(owner) },
    labels: { [HOLD_LABEL]: 'true' },
  },
})
const remarkPatch = (owner: SuspensionOwner) => ({
  metadata: { annotations: { [HELD_BY]: markerValue(owner) }, labels: { [HOLD_LABEL]: 'true' } },
})
const releasePatch = (dropAnnotation: boolean) => ({
  metadata: {
    annotations: { [HELD_BY]: null, ...(dropAnnotation ? { [RECONCILE_ANNOTATION]: null } : {}) },
    labels: { [HOLD_LABEL]: null },
  },
})

// results in a stable order (they complete in any order), for messages and the view
const byRef = (a: ObjectRef, b: ObjectRef) => objectRefString(a).localeCompare(objectRefString(b))

function header(r: ObjectRef) {
  return {
    apiVersion: r.apiVersion,
    kind: r.kind,
    metadata: { name: r.name, ...(r.namespace ? { namespace: r.namespace } : {}) },
  }
}

function failure(what: string, kube: Kube, err: unknown): NsopsError {
  return new NsopsError(`${what} failed (context ${kube.context}): ${apiMessage(err)}.`, {
    hint: isApiError(err, 403)
      ? 'The per-object Flux hold needs get/list/patch on the objects the dev overlay shares with Flux; or set `flux.hold: kustomization` in namespace.ts.'
      : 'Check that the cluster answers (`just dashboard`), then run again; `just dev-down` releases what is left.',
    cause: err,
  })
}

/**
 * Reads the object, lets `decide` pick a merge patch (or none), and applies it with the read
 * resourceVersion as a precondition, retrying when the object changed in between. Returns the
 * object as read, null when it is gone.
 */
async function guardedPatch(
  kube: Kube,
  r: ObjectRef,
  decide: (obj: HoldableObject) => { metadata: Record<string, unknown> } | undefined,
): Promise<HoldableObject | null> {
  for (let attempt = 0; ; attempt++) {
    let obj: HoldableObject
    try {
      obj = (await kube.objects.read(header(r))) as HoldableObject
    } catch (err) {
      if (isApiError(err, 404)) return null
      throw failure(`reading ${objectRefString(r)}`, kube, err)
    }
    const patch = decide(obj)
    if (!patch) return obj
    const h = header(r)
    try {
      await kube.objects.patch(
        {
          ...h,
          metadata: { ...h.metadata, ...patch.metadata, resourceVersion: obj.metadata?.resourceVersion },
        } as never,
        undefined,
        undefined,
        HOLD_FIELD_MANAGER,
        undefined,
        PatchStrategy.MergePatch,
      )
      return obj
    } catch (err) {
      if (isApiError(err, 409) && attempt < 8) continue
      if (isApiError(err, 404)) return null
      throw failure(`patching ${objectRefString(r)}`, kube, err)
    }
  }
}

export interface ObjectHoldResult {
  /** held by this owner now: newly, already, or taken over from a session that is gone */
  held: ObjectRef[]
  /** stale holds of a session that is gone, now ours (the annotation never left) */
  takenOver: { ref: ObjectRef; reason: string }[]
  /** excluded from Flux by someone else (by hand, or a live session): left as they are */
  byOthers: { ref: ObjectRef; why: string }[]
  /** not on the cluster: nothing to hold (Flux would create them) */
  missing: ObjectRef[]
}

/** Marks each object `reconcile: disabled` under our marker, unless someone else excluded it. */
export async function holdObjects(
  kube: Kube,
  refs: readonly ObjectRef[],
  owner: SuspensionOwner,
  opts: StaleOptions & {
    /** a live marker we may take over all the same (the hold a `dev --ci` of the namespace kept) */
    adopt?: (marker: SuspensionMarker) => boolean
  } = {},
): Promise<ObjectHoldResult> {
  const result: ObjectHoldResult = { held: [], takenOver: [], byOthers: [], missing: [] }
  await Promise.all(
    refs.map(async (r) => {
      let outcome: { held: true } | { taken: string } | { by: string } = { held: true }
      const seen = await guardedPatch(kube, r, (obj) => {
        const raw = obj.metadata?.annotations?.[HELD_BY]
        const marker = parseMarker(raw)
        const excluded = excludedFromFlux(obj)
        if (marker && isOwner(marker, owner) && annotationIsOurs(obj)) {
          outcome = { held: true }
          return remarkPatch(owner)
        }
        if (marker) {
          const stale =
            staleReason(marker, opts) ??
            (marker !== 'unreadable marker' && opts.adopt?.(marker) ? 'kept by dev --ci' : undefined)
          if (!stale) {
            outcome = {
              by: `held by another dev loop ${describeSuspension(marker === 'unreadable marker' ? 'unreadable marker' : marker)}`,
            }
            return undefined
          }
          // the session that held it is gone: take it over without ever letting go of the annotation
          if (annotationIsOurs(obj)) {
            outcome = { taken: stale }
            return remarkPatch(owner)
          }
          if (excluded) {
            outcome = { by: `excluded from Flux by hand (${excluded})` }
            return releasePatch(false)
          }
          outcome = { held: true }
          return holdPatch(owner)
        }
        if (excluded) {
          outcome = { by: `excluded from Flux by hand (${excluded})` }
          return undefined
        }
        outcome = { held: true }
        return holdPatch(owner)
      })
      const o = outcome as { held: true } | { taken: string } | { by: string }
      if (!seen) result.missing.push(r)
      else if ('by' in o) result.byOthers.push({ ref: r, why: o.by })
      else {
        result.held.push(r)
        if ('taken' in o) result.takenOver.push({ ref: r, reason: o.taken })
      }
    }),
  )
  result.held.sort(byRef)
  result.missing.sort(byRef)
  return result
}

export interface ObjectReleaseResult {
  /** the annotation and our marker removed: Flux applies them again */
  released: ObjectRef[]
  /** the annotation was set again by someone else since: only our marker removed */
  leftExcluded: ObjectRef[]
  /** carries another session's marker or none: untouched */
  notOurs: ObjectRef[]
  missing: ObjectRef[]
}

/** Releases what this owner holds; an annotation someone else wrote since stays. */
export async function releaseObjects(
  kube: Kube,
  refs: readonly ObjectRef[],
  owner: SuspensionOwner,
): Promise<ObjectReleaseResult> {
  return releaseWhere(kube, refs, (obj) => isOwner(parseMarker(obj.metadata?.annotations?.[HELD_BY]), owner))
}

async function releaseWhere(
  kube: Kube,
  refs: readonly ObjectRef[],
  mine: (obj: HoldableObject, ref: ObjectRef) => boolean,
): Promise<ObjectReleaseResult> {
  const result: ObjectReleaseResult = { released: [], leftExcluded: [], notOurs: [], missing: [] }
  await Promise.all(
    refs.map(async (r) => {
      let outcome: keyof Omit<ObjectReleaseResult, 'missing'> = 'notOurs'
      const seen = await guardedPatch(kube, r, (obj) => {
        if (!mine(obj, r)) {
          outcome = 'notOurs'
          return undefined
        }
        const ours = annotationIsOurs(obj)
        outcome = ours ? 'released' : 'leftExcluded'
        return releasePatch(ours)
      })
      if (!seen) result.missing.push(r)
      else result[outcome].push(r)
    }),
  )
  for (const list of Object.values(result)) list.sort(byRef)
  return result
}

/**
 * Re-marks our holds (a fresh `at`, or `kept` for dev --ci) where they are still wholly ours;
 * returns the ones we lost (the annotation removed or rewritten by someone else).
 */
export async function refreshObjects(
  kube: Kube,
  refs: readonly ObjectRef[],
  owner: SuspensionOwner,
): Promise<ObjectRef[]> {
  const lost: ObjectRef[] = []
  await Promise.all(
    refs.map(async (r) => {
      let ours = false
      await guardedPatch(kube, r, (obj) => {
        ours = isOwner(parseMarker(obj.metadata?.annotations?.[HELD_BY]), owner) && annotationIsOurs(obj)
        return ours ? remarkPatch(owner) : undefined
      })
      if (!ours) lost.push(r)
    }),
  )
  return lost
}

export interface HeldObject {
  ref: ObjectRef
  marker: SuspensionMarker | 'unreadable marker'
  /** the marker as found: a release of a stale hold leaves the object alone if it changed since */
  raw: string
  /** the Kustomization(s) whose inventory holds it: asked to reconcile once it is released */
  managers: FluxRef[]
  /** why its session counts as gone; undefined while it may still run */
  stale?: string
}

/**
 * Every object a dev loop holds, found through the finder: the inventories of the
 * Kustomizations that manage `scope` (or of every Kustomization), one labelled list per kind
 * and namespace in them.
 */
export async function findObjectHolds(
  kube: Kube,
  scope?: ManagedScope,
  opts: StaleOptions = {},
): Promise<HeldObject[]> {
  let kustomizations: FluxObject[]
  if (scope) {
    const m = await findManagers(kube, scope)
    kustomizations = m.state === 'managed' ? m.managers.map((x) => x.kustomization) : []
  } else {
    kustomizations = await listFlux(kube, 'Kustomization', { fallbackNamespaces: ['flux-system'] })
  }
  // what each inventory holds, by identity without the version
  const key = (r: ObjectRef) => `${groupOf(r.apiVersion)}/${r.kind}/${r.namespace ?? ''}/${r.name}`
  const managersOf = new Map<string, FluxRef[]>()
  const collections = new Map<string, { apiVersion: string; kind: string; namespace?: string }>()
  for (const ks of kustomizations) {
    for (const r of inventoryRefs(ks)) {
      if (scope && r.namespace && r.namespace !== scope.namespaces.prod) continue
      managersOf.set(key(r), [...(managersOf.get(key(r)) ?? []), fluxRefOf(ks)])
      collections.set(`${r.apiVersion}|${r.kind}|${r.namespace ?? ''}`, {
        apiVersion: r.apiVersion,
        kind: r.kind,
        namespace: r.namespace,
      })
    }
  }
  const found: HeldObject[] = []
  await Promise.all(
    [...collections.values()].map(async (c) => {
      let items: HoldableObject[]
      try {
        // over the command's one connection (rest), as every other read of a dashboard
        items = (await listObjects(kube, c.apiVersion, c.kind, {
          namespace: c.namespace,
          labelSelector: HOLD_LABEL,
        })) as HoldableObject[]
      } catch (err) {
        // kind gone, or not ours to list
        if (err instanceof UnknownKindError || isApiError(err, 404) || isApiError(err, 403)) return
        throw failure(`listing ${c.kind} held from Flux`, kube, err)
      }
      for (const obj of items) {
        const raw = obj.metadata?.annotations?.[HELD_BY]
        const marker = parseMarker(raw)
        if (!marker || !obj.metadata?.name) continue
        const ref: ObjectRef = {
          apiVersion: c.apiVersion,
          kind: c.kind,
          name: obj.metadata.name,
          ...(obj.metadata.namespace ? { namespace: obj.metadata.namespace } : {}),
        }
        found.push({
          ref,
          marker,
          raw: raw!,
          managers: managersOf.get(key(ref)) ?? [],
          stale: staleReason(marker, opts),
        })
      }
    }),
  )
  return found.sort((a, b) => objectRefString(a.ref).localeCompare(objectRefString(b.ref)))
}

/** Releases holds found by findObjectHolds (stale or kept ones), unless their marker changed since. */
export async function releaseFound(kube: Kube, holds: readonly HeldObject[]): Promise<ObjectReleaseResult> {
  const raw = new Map(holds.map((h) => [objectRefString(h.ref), h.raw]))
  const r = await releaseWhere(
    kube,
    holds.map((h) => h.ref),
    (obj, ref) => obj.metadata?.annotations?.[HELD_BY] === raw.get(objectRefString(ref)),
  )
  await requestReconcileEach(
    kube,
    holds
      .filter((h) => r.released.some((x) => objectRefString(x) === objectRefString(h.ref)))
      .flatMap((h) => h.managers),
  )
  return r
}
