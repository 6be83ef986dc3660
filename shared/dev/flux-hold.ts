// The dev loop's hold on Flux: hold only what Flux and the loop share. The finder
// (flux/managing.ts) says which Kustomizations manage the namespace; the dev overlay's
// objects say what the loop will write. No overlap (the shipped namespaces apply into
// `<ns>-dev`): nothing is held. Overlap: the namespace's own Kustomization(s) are suspended
// with our marker; the root `flux-system` only with --hold-root. Resume, refresh and
// takeover go through the marker's token and generation (flux/suspend.ts), so a suspension
// made by hand is never resumed, and a stale one is taken over without a gap.
import { refOf as manifestRef } from '../apply/refs.ts'
import {
  currentOwner, describeSuspension, findManagers, findStaleSuspensions, keepOwned, manages, refreshOwned, refString, resumeOwned,
  suspendFor, takeOverStale, type FluxObject, type FluxRef, type Manager, type SuspensionOwner,
} from '../flux/index.ts'
import type { Kube } from '../kube.ts'
import type { ManifestObject } from '../kustomize.ts'
import type { FluxHoldPolicy, NamespaceConfig } from '../namespace-config.ts'
import type { DevSession } from './session.ts'

export interface FluxHold {
  /** what we suspended (or took over) and must release */
  held: FluxRef[]
  owner: SuspensionOwner
  /** one line for the view: what is held and why, or why nothing is */
  summary: string
  /** warnings worth a line of their own (overlap with the root, suspended by someone else) */
  warnings: string[]
}

export interface HoldOptions {
  policy?: FluxHoldPolicy
  /** allow suspending the root flux-system Kustomization (it stops Flux for every namespace) */
  holdRoot?: boolean
}

function overlapping(managers: Manager[], objects: readonly ManifestObject[], prodNamespace: string): Manager[] {
  return managers.filter((m) => objects.some((o) => manages(m, manifestRef(o), prodNamespace)))
}

/** Decide what to hold for this namespace and take it. */
export async function takeHold(kube: Kube, ns: NamespaceConfig, session: DevSession, devObjects: readonly ManifestObject[], opts: HoldOptions = {}): Promise<FluxHold> {
  const owner = currentOwner(`dev-${ns.name}-${session.startedAt}`)
  const policy = opts.policy ?? ns.flux.hold
  const none = (summary: string, warnings: string[] = []): FluxHold => ({ held: [], owner, summary, warnings })
  const m = await findManagers(kube, ns)
  if (m.state !== 'managed') return none(`holds nothing: ${m.note}`)
  const managerList = m.managers.map((x) => refString(x.kustomization)).join(', ')
  const overlap = overlapping(m.managers, devObjects, ns.namespaces.prod)
  if (policy === 'never') {
    return none(`holds nothing (flux.hold: never); ${m.note}`, overlap.length
      ? [`the dev overlay writes objects ${overlap.map((x) => refString(x.kustomization)).join(', ')} manage${overlap.length === 1 ? 's' : ''}: Flux may revert them while the loop runs`]
      : [])
  }
  const wanted = policy === 'kustomization' ? m.managers.filter((x) => !x.root || overlap.includes(x)) : overlap
  if (wanted.length === 0) {
    return none(`holds nothing: the dev objects (in ${ns.namespaces.dev}) overlap nothing ${managerList} manage${m.managers.length === 1 ? 's' : ''}`)
  }
  const warnings: string[] = []
  const targets: FluxObject[] = []
  for (const x of wanted) {
    if (x.root && !opts.holdRoot) {
      warnings.push(`the dev overlay writes objects the root ${refString(x.kustomization)} manages; it is not suspended (that would stop Flux for every namespace) — pass --hold-root to hold it, or set flux.hold: never`)
      continue
    }
    targets.push(x.kustomization)
  }
  if (policy === 'kustomization') targets.push(...m.helmReleases)

  // a hold a dead dev loop left (kill -9) is taken over in place: it never flips to resumed
  const stale = (await findStaleSuspensions(kube)).filter((s) => targets.some((t) => refString(t) === refString(s)))
  const taken: FluxRef[] = []
  for (const s of stale) if (s.suspended && (await takeOverStale(kube, s, owner)) === 'taken') taken.push(s)
  const rest = targets.filter((t) => !taken.some((x) => refString(x) === refString(t)))
  const r = await suspendFor(kube, rest, owner)
  const held = [...taken, ...r.suspended, ...r.alreadyOurs]
  for (const o of r.suspendedByOthers) warnings.push(`${refString(o.ref)} was already suspended ${describeSuspension(o.by)}: left as it is, and left suspended on exit`)
  const parts = [
    ...stale.filter((s) => taken.some((x) => refString(x) === refString(s))).map((x) => `took over a stale suspension of ${refString(x)} (${x.reason})`),
    r.suspended.length || r.alreadyOurs.length ? `suspended ${[...r.suspended, ...r.alreadyOurs].map(refString).join(', ')}` : '',
  ].filter(Boolean)
  return { held, owner, summary: parts.length ? `holds ${held.map(refString).join(', ')}: ${parts.join('; ')}` : 'holds nothing', warnings }
}

/** Resumes what we hold (only while it is still our suspension). */
export async function releaseHold(kube: Kube, hold: FluxHold): Promise<string[]> {
  if (hold.held.length === 0) return []
  const r = await resumeOwned(kube, hold.held, hold.owner)
  return [
    ...(r.resumed.length ? [`resumed Flux ${r.resumed.map(refString).join(', ')}`] : []),
    ...r.notOurs.map((o) => `left ${refString(o.ref)} suspended: it was resumed or suspended ${describeSuspension(o.by)} since this loop suspended it`),
  ]
}

/** Re-marks our hold so other hosts do not take it for stale; returns what we no longer hold. */
export async function refreshHold(kube: Kube, hold: FluxHold): Promise<FluxRef[]> {
  if (hold.held.length === 0) return []
  const lost = await refreshOwned(kube, hold.held, hold.owner)
  hold.held = hold.held.filter((h) => !lost.some((l) => refString(l) === refString(h)))
  return lost
}

/** `dev --ci` keeps its stack: the hold stays, marked kept, until `just dev-down`. */
export async function keepHold(kube: Kube, hold: FluxHold): Promise<string[]> {
  if (hold.held.length === 0) return []
  await keepOwned(kube, hold.held, hold.owner)
  return [`kept the Flux hold on ${hold.held.map(refString).join(', ')}`]
}
