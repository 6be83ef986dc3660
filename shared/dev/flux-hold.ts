// The dev loop's hold on Flux: hold only what Flux and the loop share, and the least that
// works. The finder (flux/managing.ts) says which Kustomizations manage the namespace; the
// dev overlay's objects say what the loop will write. No overlap (the shipped namespaces
// apply into `<ns>-dev`): nothing is held. Overlap (dev and prod in one namespace), policy
// `auto`: exactly the overlapping live objects are marked `kustomize.toolkit.fluxcd.io/
// reconcile: disabled` (flux/object-hold.ts) and Flux keeps applying the rest — also under
// the root `flux-system`, which then needs no flag. A manager with no inventory yet (never
// applied) cannot say which objects are its own: it is suspended instead. Policy
// `kustomization`: the namespace's own Kustomization(s) are suspended; the root only with
// --hold-root. Every hold carries our marker (token; generation or field manager), so a
// hold made by hand is never released, and a stale one is taken over without a gap.
import { refKey, refOf as manifestRef, refString as objectRefString, type ObjectRef } from '../kube/refs.ts'
import {
  currentOwner,
  describeSuspension,
  findKeptSuspensions,
  findManagers,
  findObjectHolds,
  findStaleSuspensions,
  holdObjects,
  keepOwned,
  manages,
  refreshObjects,
  refreshOwned,
  fluxRefString,
  releaseFound,
  releaseObjects,
  requestReconcileEach,
  resumeOwned,
  resumeStale,
  suspendFor,
  takeOverStale,
  RECONCILE_ANNOTATION,
  type FluxObject,
  type FluxRef,
  type Manager,
  type SuspensionMarker,
  type SuspensionOwner,
} from '../flux/index.ts'
import { hasInventory, inventoryRefs } from '../flux/managing.ts'
import { fluxRefOf } from '../flux/kinds.ts'
import type { Kube } from '../kube/client.ts'
import type { ManifestObject } from '../kustomize/build.ts'
import type { FluxHoldPolicy, NamespaceConfig } from '../config/namespace-config.ts'
import type { DevSession } from './session.ts'

export interface FluxHold {
  /** Kustomizations/HelmReleases we suspended (or took over) and must resume */
  held: FluxRef[]
  /** live objects we marked `reconcile: disabled` and must release */
  objects: ObjectRef[]
  /** the Kustomizations whose objects we hold: asked to reconcile once released */
  objectManagers: FluxRef[]
  owner: SuspensionOwner
  /** one line for the view: what is held and why, or why nothing is */
  summary: string
  /** warnings worth a line of their own (overlap with the root, held by someone else) */
  warnings: string[]
}

/** Whether the hold has anything to release. */
export function holding(hold: FluxHold | undefined): boolean {
  return Boolean(hold && (hold.held.length || hold.objects.length))
}

/** What is held, for people: `Kustomization/flux-system/x`, `3 objects (Deployment/shop/web, …)`. */
export function describeHeld(hold: FluxHold): string {
  const objects = hold.objects.length
    ? [
        `${hold.objects.length} object${hold.objects.length === 1 ? '' : 's'} (${hold.objects.slice(0, 4).map(objectRefString).join(', ')}${hold.objects.length > 4 ? ', …' : ''})`,
      ]
    : []
  return [...hold.held.map(fluxRefString), ...objects].join(', ')
}

export interface HoldOptions {
  policy?: FluxHoldPolicy
  /** allow suspending the root flux-system Kustomization (it stops Flux for every namespace) */
  holdRoot?: boolean
}

function overlapping(managers: Manager[], objects: readonly ManifestObject[], prodNamespace: string): Manager[] {
  return managers.filter((m) => objects.some((o) => manages(m, manifestRef(o), prodNamespace)))
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`

/** Decide what to hold for this namespace and take it. */
export async function takeHold(
  kube: Kube,
  ns: NamespaceConfig,
  session: DevSession,
  devObjects: readonly ManifestObject[],
  opts: HoldOptions = {},
): Promise<FluxHold> {
  const owner = currentOwner(`dev-${ns.name}-${session.startedAt}`)
  const policy = opts.policy ?? ns.flux.hold
  const none = (summary: string, warnings: string[] = []): FluxHold => ({
    held: [],
    objects: [],
    objectManagers: [],
    owner,
    summary,
    warnings,
  })
  const m = await findManagers(kube, ns)
  if (m.state !== 'managed') return none(`holds nothing: ${m.note}`)
  const managerList = m.managers.map((x) => fluxRefString(x.kustomization)).join(', ')
  const prod = ns.namespaces.prod
  const overlap = overlapping(m.managers, devObjects, prod)
  if (policy === 'never') {
    return none(
      `holds nothing (flux.hold: never); ${m.note}`,
      overlap.length
        ? [
            `the dev overlay writes objects ${overlap.map((x) => fluxRefString(x.kustomization)).join(', ')} manage${overlap.length === 1 ? 's' : ''}: Flux may revert them while the loop runs`,
          ]
        : [],
    )
  }
  const warnings: string[] = []
  const targets: FluxObject[] = [] // to suspend whole
  const objectRefs = new Map<string, ObjectRef>() // to hold one by one
  const objectManagers: FluxRef[] = []
  const rootWarning = (x: Manager, why: string) =>
    warnings.push(
      `the dev overlay writes objects the root ${fluxRefString(x.kustomization)} manages${why}; it is not suspended (that would stop Flux for every namespace) — pass --hold-root to hold it, or set flux.hold: never`,
    )
  if (policy === 'kustomization') {
    for (const x of m.managers.filter((k) => !k.root || overlap.includes(k))) {
      if (x.root && !opts.holdRoot) rootWarning(x, '')
      else targets.push(x.kustomization)
    }
    targets.push(...m.helmReleases)
  } else {
    if (overlap.length === 0) {
      return none(
        `holds nothing: the dev objects (in ${ns.namespaces.dev}) overlap nothing ${managerList} manage${m.managers.length === 1 ? 's' : ''}`,
      )
    }
    for (const x of overlap) {
      // the inventory names exactly what the Kustomization applies: those objects are held alone
      if (hasInventory(x.kustomization)) {
        objectManagers.push(fluxRefOf(x.kustomization))
        for (const o of devObjects) {
          const r = manifestRef(o)
          if (manages(x, r, prod)) objectRefs.set(objectRefString(r), r)
        }
      } else if (x.root && !opts.holdRoot) {
        rootWarning(x, ' and has no inventory yet to hold them one by one')
      } else {
        targets.push(x.kustomization)
      }
    }
  }

  const parts: string[] = []
  const objects: ObjectRef[] = []
  const suspendWhy = new Map<string, string>()
  if (objectRefs.size) {
    // the hold a `dev --ci` of this namespace kept is this loop's to continue
    const adopt = (mk: SuspensionMarker) => Boolean(mk.kept && mk.session?.startsWith(`dev-${ns.name}-`))
    const r = await holdObjects(kube, [...objectRefs.values()], owner, { adopt })
    objects.push(...r.held)
    for (const t of r.takenOver) parts.push(`took over a stale hold of ${objectRefString(t.ref)} (${t.reason})`)
    for (const o of r.byOthers)
      warnings.push(`${objectRefString(o.ref)} is ${o.why}: left as it is, and left so on exit`)
    // an object the inventory lists but the cluster lacks cannot carry the annotation before the
    // loop creates it: per object does not work there, so its Kustomization is suspended instead
    const missing = new Set(r.missing.map(objectRefString))
    for (const x of overlap) {
      if (!objectManagers.some((k) => fluxRefString(k) === fluxRefString(x.kustomization))) continue
      const lacking = devObjects.map(manifestRef).filter((o) => missing.has(objectRefString(o)) && manages(x, o, prod))
      if (lacking.length === 0) continue
      const why = ` (its inventory lists ${lacking.map(objectRefString).slice(0, 3).join(', ')}${lacking.length > 3 ? ', …' : ''}, not on the cluster: nothing to mark)`
      if (x.root && !opts.holdRoot) rootWarning(x, why)
      else {
        targets.push(x.kustomization)
        suspendWhy.set(fluxRefString(x.kustomization), why)
      }
    }
    if (r.held.length) {
      const applying = objectManagers.filter((k) => !targets.some((t) => fluxRefString(t) === fluxRefString(k)))
      parts.push(
        `one by one (${RECONCILE_ANNOTATION}: disabled on the live object${r.held.length === 1 ? '' : 's'})${applying.length ? `; ${applying.map(fluxRefString).join(', ')} keep${applying.length === 1 ? 's' : ''} applying the rest` : ''}`,
      )
    }
  }

  // a suspension a dead dev loop left (kill -9) is taken over in place: it never flips to resumed
  const stale = (await findStaleSuspensions(kube, ns)).filter((s) =>
    targets.some((t) => fluxRefString(t) === fluxRefString(s)),
  )
  const taken: FluxRef[] = []
  for (const s of stale) if (s.suspended && (await takeOverStale(kube, s, owner)) === 'taken') taken.push(s)
  const rest = targets.filter((t) => !taken.some((x) => fluxRefString(x) === fluxRefString(t)))
  const r = rest.length
    ? await suspendFor(kube, rest, owner)
    : { suspended: [], alreadyOurs: [], suspendedByOthers: [], missing: [] }
  const held = [...taken, ...r.suspended, ...r.alreadyOurs]
  for (const o of r.suspendedByOthers)
    warnings.push(
      `${fluxRefString(o.ref)} was already suspended ${describeSuspension(o.by)}: left as it is, and left suspended on exit`,
    )
  parts.push(
    ...stale
      .filter((s) => taken.some((x) => fluxRefString(x) === fluxRefString(s)))
      .map((x) => `took over a stale suspension of ${fluxRefString(x)} (${x.reason})`),
  )
  if (r.suspended.length || r.alreadyOurs.length)
    parts.push(
      `suspended ${[...r.suspended, ...r.alreadyOurs].map((x) => `${fluxRefString(x)}${suspendWhy.get(fluxRefString(x)) ?? ''}`).join(', ')}`,
    )
  const hold: FluxHold = { held, objects, objectManagers, owner, summary: '', warnings }
  hold.summary = parts.length ? `holds ${describeHeld(hold)}: ${parts.join('; ')}` : 'holds nothing'
  return hold
}

/**
 * What Flux applies to the namespace now, by refKey: the inventories of the Kustomizations that
 * manage it. For a loop developing in place, the rest of what it applied is dev-only. Undefined
 * when a manager has no inventory yet (it cannot say which objects are its own).
 */
export async function fluxApplied(kube: Kube, ns: NamespaceConfig): Promise<Set<string> | undefined> {
  const m = await findManagers(kube, ns)
  if (m.state !== 'managed') return new Set()
  if (m.managers.some((x) => !hasInventory(x.kustomization))) return undefined
  return new Set(m.managers.flatMap((x) => inventoryRefs(x.kustomization)).map(refKey))
}

/** Releases what we hold (only while it is still ours) and asks Flux to put prod back now. */
export async function releaseHold(kube: Kube, hold: FluxHold): Promise<string[]> {
  const notes: string[] = []
  if (hold.objects.length) {
    const r = await releaseObjects(kube, hold.objects, hold.owner)
    if (r.released.length) {
      await requestReconcileEach(kube, hold.objectManagers)
      notes.push(
        `released Flux's hold on ${plural(r.released.length, 'object')} (asked ${hold.objectManagers.map(fluxRefString).join(', ')} to reconcile)`,
      )
    }
    for (const x of r.leftExcluded)
      notes.push(
        `left ${objectRefString(x)} excluded from Flux: ${RECONCILE_ANNOTATION} was set again by someone else since this loop held it`,
      )
    for (const x of r.notOurs) notes.push(`left ${objectRefString(x)} as it is: its hold is no longer this loop's`)
  }
  if (hold.held.length) {
    const r = await resumeOwned(kube, hold.held, hold.owner)
    if (r.resumed.length) notes.push(`resumed Flux ${r.resumed.map(fluxRefString).join(', ')}`)
    for (const o of r.notOurs)
      notes.push(
        `left ${fluxRefString(o.ref)} suspended: it was resumed or suspended ${describeSuspension(o.by)} since this loop suspended it`,
      )
  }
  return notes
}

/** Re-marks our hold so other hosts do not take it for stale; returns what we no longer hold. */
export async function refreshHold(kube: Kube, hold: FluxHold): Promise<(FluxRef | ObjectRef)[]> {
  const [lost, lostObjects] = await Promise.all([
    hold.held.length ? refreshOwned(kube, hold.held, hold.owner) : [],
    hold.objects.length ? refreshObjects(kube, hold.objects, hold.owner) : [],
  ])
  hold.held = hold.held.filter((h) => !lost.some((l) => fluxRefString(l) === fluxRefString(h)))
  hold.objects = hold.objects.filter((h) => !lostObjects.some((l) => objectRefString(l) === objectRefString(h)))
  return [...lost, ...lostObjects]
}

/** `dev --ci` keeps its stack: the hold stays, marked kept, until `just dev-down`. */
export async function keepHold(kube: Kube, hold: FluxHold): Promise<string[]> {
  if (!holding(hold)) return []
  const kept = { ...hold.owner, kept: true }
  await Promise.all([
    hold.held.length ? keepOwned(kube, hold.held, hold.owner) : undefined,
    hold.objects.length ? refreshObjects(kube, hold.objects, kept) : undefined,
  ])
  return [`kept the Flux hold on ${describeHeld(hold)}`]
}

/** `just dev-down` for a session `dev --ci` kept: release every hold it left for the namespace. */
export async function endKeptHolds(kube: Kube, ns: NamespaceConfig): Promise<string[]> {
  const ofThisNamespace = (m: unknown) =>
    typeof m === 'object' &&
    m !== null &&
    (m as { kept?: boolean }).kept === true &&
    Boolean((m as { session?: string }).session?.startsWith(`dev-${ns.name}-`))
  const [kept, objects] = await Promise.all([findKeptSuspensions(kube), findObjectHolds(kube, ns)])
  const notes: string[] = []
  const r = await resumeStale(
    kube,
    kept.filter((k) => ofThisNamespace(k.marker)),
  )
  if (r.resumed.length) notes.push(`resumed Flux ${r.resumed.map(fluxRefString).join(', ')}`)
  for (const x of r.changed)
    notes.push(`left ${fluxRefString(x)} as it is: it was resumed or suspended by someone else since`)
  const o = await releaseFound(
    kube,
    objects.filter((h) => ofThisNamespace(h.marker)),
  )
  if (o.released.length) notes.push(`released Flux's hold on ${plural(o.released.length, 'object')}`)
  for (const x of o.leftExcluded)
    notes.push(`left ${objectRefString(x)} excluded from Flux: set again by someone else since`)
  return notes
}

/** `just dev-down`: release every hold whose dev loop is gone (suspensions and objects). */
export async function releaseStaleHolds(kube: Kube): Promise<string[]> {
  const [stale, objects] = await Promise.all([findStaleSuspensions(kube), findObjectHolds(kube)])
  const notes: string[] = []
  if (stale.length) {
    const r = await resumeStale(kube, stale)
    for (const x of r.resumed) notes.push(`resumed Flux ${fluxRefString(x)} (suspended by a dev loop that is gone)`)
  }
  const gone = objects.filter((h) => h.stale)
  if (gone.length) {
    const r = await releaseFound(kube, gone)
    if (r.released.length)
      notes.push(
        `released Flux's hold on ${r.released.map(objectRefString).join(', ')} (held by a dev loop that is gone)`,
      )
    for (const x of r.leftExcluded)
      notes.push(
        `left ${objectRefString(x)} excluded from Flux: ${RECONCILE_ANNOTATION} was set again by someone else since`,
      )
  }
  return notes
}
