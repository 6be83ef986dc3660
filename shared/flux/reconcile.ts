// `flux reconcile`, waited on through a watch and failing fast. Request a reconcile by
// setting reconcile.fluxcd.io/requestedAt to a fresh token, wait until the controller has
// handled that token (status.lastHandledReconcileAt; a later request handled counts too),
// then until Ready=True for the current generation with the wanted revision applied.
//
// Fail fast (the Flux CLI waits out its timeout here, flux2#3997): once our token is handled,
// Stalled=True, or Ready=False with Reconciling.reason=ProgressingWithRetry, is the
// controller's verdict on this run. Two exceptions keep waiting: HealthCheckCanceled (the
// controller requeues at once for a newer revision), and a failure of an older revision than
// the one we wait for (the source has not fetched the new commit yet; its arrival triggers
// the next run).
import { NsopsError } from '../core/errors.ts'
import { duration } from '../core/output.ts'
import type { Kube } from '../kube/client.ts'
import {
  apiFailure,
  fluxCollectionPath,
  conditionOf,
  getFlux,
  isSuspended,
  mergePatchFlux,
  fluxRefOf,
  fluxRefString,
  statusString,
  type FluxKind,
  type FluxObject,
  type FluxRef,
} from './kinds.ts'
import { fetchFailure, isReadyNow, isSourceKind, retryingFailure, stalledFailure, type Readiness } from './readiness.ts'
import { describeSuspension, suspendedBy } from './suspend.ts'
import { watchOne } from './watch.ts'

export const REQUESTED_AT = 'reconcile.fluxcd.io/requestedAt'
/** helm-controller: upgrade even with nothing changed (`flux reconcile hr --force`); handled as status.lastHandledForceAt */
export const FORCE_AT = 'reconcile.fluxcd.io/forceAt'

export interface ReconcileOptions {
  /** the revision that must be applied: `main@sha1:<sha>`, `sha1:<sha>` or the bare sha */
  revision?: string
  /**
   * whether an applied revision other than `revision` counts as it: deploy accepts a
   * descendant of its commit (someone pushed on top; Flux applies theirs, which holds ours)
   */
  accepts?: (revision: string) => boolean | Promise<boolean>
  timeoutMs: number
  onProgress?: (message: string) => void
  /**
   * only the run that handles this request gives the verdict: a failure already on the
   * object (at the wanted revision) is not taken early. For asking again after a failure.
   */
  freshRun?: boolean
}

export interface ReconcileResult {
  ok: boolean
  ref: FluxRef
  /** the revision the object reports (applied revision, or a source's artifact revision) */
  revision?: string
  /** the Ready condition's message as last seen */
  readyMessage: string
  /** the Ready condition's reason; `Timeout`, `Suspended` or `NotFound` when we gave up ourselves */
  reason: string
  /** one line for a person: what happened */
  message: string
  elapsedMs: number
}

const controllerOf = (kind: FluxKind) =>
  kind === 'Kustomization' ? 'kustomize-controller' : kind === 'HelmRelease' ? 'helm-controller' : 'source-controller'

/** What the object reports as done, and what it last tried (for a source both are the artifact). */
function revisions(obj: FluxObject): { applied?: string; attempted?: string } {
  if (obj.kind === 'Kustomization' || obj.kind === 'HelmRelease') {
    const applied = statusString(obj, obj.kind === 'Kustomization' ? 'lastAppliedRevision' : 'lastAttemptedRevision')
    return { applied, attempted: statusString(obj, 'lastAttemptedRevision') }
  }
  const artifact = (obj.status?.artifact as { revision?: string } | undefined)?.revision
  return { applied: artifact, attempted: artifact }
}

/**
 * Whether an observed Flux revision is the wanted one. `main@sha1:abc…` must match exactly;
 * `sha1:abc…` or a bare (possibly abbreviated, ≥7) sha matches the digest of any ref.
 */
export function revisionMatches(observed: string | undefined, wanted: string): boolean {
  if (!observed) return false
  if (observed === wanted) return true
  if (wanted.includes('@')) return false
  const digest = (s: string) => {
    const afterAt = s.slice(s.lastIndexOf('@') + 1)
    return {
      algo: afterAt.includes(':') ? afterAt.slice(0, afterAt.indexOf(':')) : undefined,
      hex: afterAt.slice(afterAt.indexOf(':') + 1),
    }
  }
  const have = digest(observed)
  const want = digest(wanted)
  if (want.algo && have.algo !== want.algo) return false
  return /^[0-9a-f]{7,}$/i.test(want.hex) && have.hex.toLowerCase().startsWith(want.hex.toLowerCase())
}

/** An RFC3339Nano-style timestamp, unique per call (nanoseconds from the monotonic clock). */
export function requestToken(previous?: string): string {
  const iso = new Date().toISOString()
  const nanos = (process.hrtime.bigint() % 1_000_000n).toString().padStart(6, '0')
  const token = `${iso.slice(0, -1)}${nanos}Z`
  return token === previous ? requestToken(previous) : token
}

export interface ReconcileRequest {
  /** a forced one too (FORCE_AT, same token): a HelmRelease upgrades even when nothing changed */
  force?: boolean
  /** a spec change the reconcile is for, sent in the same patch */
  spec?: Record<string, unknown>
  /**
   * who writes it (default: the flux CLI's manager, as `flux reconcile` does); the dev loop
   * passes its own, so its cleanup still sees the HelmRelease as its alone
   */
  fieldManager?: string
}

/**
 * Asks the controller to reconcile `r` now: what `flux reconcile` writes, a fresh token in
 * reconcile.fluxcd.io/requestedAt (`token`: the one to wait for), and with `force` in
 * reconcile.fluxcd.io/forceAt (`flux reconcile hr --force`). The one place nsops writes those
 * annotations; returns the patched object.
 */
export async function requestReconcile(
  kube: Kube,
  r: FluxRef,
  token = requestToken(),
  opts: ReconcileRequest = {},
): Promise<FluxObject> {
  const annotations = { [REQUESTED_AT]: token, ...(opts.force ? { [FORCE_AT]: token } : {}) }
  const body = { metadata: { annotations }, ...(opts.spec ? { spec: opts.spec } : {}) }
  return mergePatchFlux(kube, r, body, opts.fieldManager)
}

/**
 * requestReconcile for each of `refs` once, best effort: after a hold is released, so prod is
 * back as soon as possible rather than at the next interval (which does it anyway).
 */
export async function requestReconcileEach(kube: Kube, refs: readonly FluxRef[]): Promise<void> {
  const unique = [...new Map(refs.map((r) => [`${r.kind}/${r.namespace}/${r.name}`, r])).values()]
  await Promise.allSettled(unique.map((r) => requestReconcile(kube, r)))
}

function suspendedError(obj: FluxObject): NsopsError {
  const by = suspendedBy(obj) ?? 'by hand'
  const { kind, namespace, name } = fluxRefOf(obj)
  const cli =
    kind === 'Kustomization'
      ? 'kustomization'
      : kind === 'HelmRelease'
        ? 'helmrelease'
        : `source ${kind === 'GitRepository' ? 'git' : kind.toLowerCase()}`
  return new NsopsError(
    `${fluxRefString(obj)}: resource is suspended (${describeSuspension(by)}), so Flux will not reconcile it.`,
    {
      hint:
        by === 'by hand'
          ? `Resume it with \`flux resume ${cli} ${name} -n ${namespace}\` and run again.`
          : 'A dev session suspended it: stop that session (it resumes Flux on exit) or run `just dev-down` for its namespace, then run again.',
    },
  )
}

/**
 * Whether the controller has handled our request: our token, or a request made after ours
 * (someone else asked again meanwhile; that run starts after our request, so it counts).
 * The value from before our request never counts, even if a skewed clock dated it later.
 */
export function handledSince(handled: string | undefined, token: string, previous?: string): boolean {
  if (handled === undefined || handled === previous) return false
  if (handled === token) return true
  const a = Date.parse(handled)
  const b = Date.parse(token)
  return !Number.isNaN(a) && !Number.isNaN(b) && a > b
}

/** Stalled, or Ready=False while retrying, with the wanted commit as the attempted revision. */
function failureOf(obj: FluxObject, wanted: string): Readiness | undefined {
  const { attempted } = revisions(obj)
  if (!attempted || !revisionMatches(attempted, wanted)) return undefined
  return stalledFailure(obj) ?? retryingFailure(obj)
}

/** Where the object stands relative to our request: a verdict, or a progress line to wait on. */
function reconcileVerdict(
  obj: FluxObject | null,
  token: string,
  previous: string | undefined,
  wanted: string | undefined,
  accepts?: (revision: string) => boolean,
  freshRun?: boolean,
): Readiness | { waiting: string } {
  if (!obj) return { ok: false, reason: 'NotFound', message: 'it was deleted while we waited' }
  if (isSuspended(obj))
    return {
      ok: false,
      reason: 'Suspended',
      message: `it was suspended while we waited (${describeSuspension(suspendedBy(obj)!)})`,
    }
  const handled = statusString(obj, 'lastHandledReconcileAt')
  if (!handledSince(handled, token, previous)) {
    // A run the push itself triggered may already have failed on exactly the wanted commit:
    // that verdict is as good as one for our request, and waiting for a second run doubles
    // the time to notice (about 2× Flux's health-check timeout).
    const early = wanted && !freshRun ? failureOf(obj, wanted) : undefined
    if (early) return early
    return {
      waiting: `waiting for ${controllerOf(obj.kind)} to pick up the request (lastHandledReconcileAt: ${handled ?? 'never'})`,
    }
  }
  const ready = conditionOf(obj, 'Ready')
  const { applied, attempted } = revisions(obj)
  const readyText = ready ? `${ready.reason ?? ''}: ${ready.message ?? ''}` : 'no Ready condition yet'

  const stalled = stalledFailure(obj)
  if (stalled) return stalled
  // A source's "attempted" revision is its old artifact while a fetch fails, so for sources
  // a failed fetch after our request was handled is the verdict (auth, network, a URL that
  // stopped answering), not something to wait out.
  const fetch = isSourceKind(obj.kind) ? fetchFailure(obj) : undefined
  if (fetch) return fetch
  const matches = (rev: string | undefined) => !!wanted && !!rev && (revisionMatches(rev, wanted) || !!accepts?.(rev))
  // a retry of an older revision than the wanted one is not a verdict on ours
  const attemptIsWanted = !wanted || !attempted || matches(attempted)
  const retrying = attemptIsWanted ? retryingFailure(obj) : undefined
  if (retrying) return retrying
  if (ready && isReadyNow(obj)) {
    if (!wanted || matches(applied))
      return { ok: true, reason: ready.reason ?? 'Succeeded', message: ready.message ?? '' }
    return { waiting: `ready at ${applied ?? '(no revision)'}; waiting for ${wanted} to be applied` }
  }
  return { waiting: readyText }
}

function describeLast(
  obj: FluxObject | null,
  token: string,
  previous: string | undefined,
  wanted: string | undefined,
): string {
  if (!obj) return 'the object is gone'
  const handled = statusString(obj, 'lastHandledReconcileAt')
  if (!handledSince(handled, token, previous)) {
    return (
      `${controllerOf(obj.kind)} never handled the request (lastHandledReconcileAt is ${handled ?? 'unset'}, we asked for ${token}); ` +
      `is ${controllerOf(obj.kind)} running?`
    )
  }
  const ready = conditionOf(obj, 'Ready')
  const { applied } = revisions(obj)
  const parts = [
    ready ? `Ready=${ready.status} ${ready.reason ?? ''}: ${ready.message ?? ''}` : 'no Ready condition',
    `revision ${applied ?? '(none)'}`,
  ]
  if (wanted && !revisionMatches(applied, wanted)) parts.push(`wanted ${wanted}`)
  return parts.join('; ')
}

async function reconcileObject(
  kube: Kube,
  target: FluxRef | FluxObject,
  opts: ReconcileOptions,
): Promise<ReconcileResult> {
  const started = Date.now()
  const r = fluxRefOf(target)
  const progress = opts.onProgress ?? (() => {})
  const obj = await getFlux(kube, r)
  if (!obj) {
    throw new NsopsError(`${fluxRefString(r)} does not exist (context ${kube.context}).`, {
      hint: 'Check the name and namespace (`flux get all -A`); for a namespace of this repo, see the Flux objects in k8s/.',
    })
  }
  if (isSuspended(obj)) throw suspendedError(obj)

  const previous = statusString(obj, 'lastHandledReconcileAt')
  const token = requestToken(previous)
  progress(`requesting reconciliation of ${fluxRefString(r)}`)
  let patched: FluxObject
  try {
    patched = await requestReconcile(kube, r, token)
  } catch (err) {
    throw apiFailure(`requesting reconciliation of ${fluxRefString(r)}`, kube, err)
  }

  let last: FluxObject | null = patched
  let lastProgress = ''
  // `accepts` may need I/O (git fetch + merge-base): verdicts are reached synchronously on
  // each event, so an answer still pending counts as "no" and, once it is "yes", the last
  // object is judged again
  const accepted = new Map<string, boolean>()
  let judgeAgain: () => void = () => {}
  const acceptedLater = new Promise<Readiness>((resolve) => {
    judgeAgain = () => {
      const v = decide(last)
      if (v) resolve(v)
    }
  })
  const accepts =
    opts.accepts &&
    ((rev: string): boolean => {
      const known = accepted.get(rev)
      if (known !== undefined) return known
      accepted.set(rev, false)
      void Promise.resolve(opts.accepts!(rev)).then(
        (yes) => {
          accepted.set(rev, yes)
          if (yes) judgeAgain()
        },
        () => {},
      )
      return false
    })
  const decide = (o: FluxObject | null): Readiness | undefined => {
    last = o
    const j = reconcileVerdict(o, token, previous, opts.revision, accepts, opts.freshRun)
    if ('waiting' in j) {
      if (j.waiting !== lastProgress) progress((lastProgress = j.waiting))
      return undefined
    }
    return j
  }
  const finish = (v: Readiness): ReconcileResult => {
    const ready = conditionOf(last, 'Ready')
    const revision = last ? revisions(last).applied : undefined
    return {
      ok: v.ok,
      ref: r,
      ...(revision ? { revision } : {}),
      readyMessage: ready?.message ?? '',
      reason: v.reason,
      message: v.ok
        ? `${fluxRefString(r)} is ready at ${revision ?? '(no revision)'}`
        : `${fluxRefString(r)} failed: ${v.reason}: ${v.message}`,
      elapsedMs: Date.now() - started,
    }
  }

  const first = decide(patched)
  if (first) return finish(first)
  const ac = new AbortController()
  const timer = setTimeout(() => ac.abort(new Error('timeout')), Math.max(0, opts.timeoutMs - (Date.now() - started)))
  try {
    const watching = watchOne<Readiness, FluxObject>(
      kube,
      {
        path: fluxCollectionPath(r.kind, r.namespace),
        name: r.name,
        resourceVersion: patched.metadata.resourceVersion,
        signal: ac.signal,
      },
      (o) => decide(o ? { ...o, kind: r.kind } : null),
    )
    watching.catch(() => {}) // awaited just below; a rejection after acceptedLater won is moot
    const verdict = await Promise.race([watching, acceptedLater])
    ac.abort(new Error('done')) // stops the watch when acceptedLater decided
    return finish(verdict)
  } catch (err) {
    if (!ac.signal.aborted)
      throw err instanceof NsopsError ? err : apiFailure(`watching ${fluxRefString(r)}`, kube, err)
    const result = finish({ ok: false, reason: 'Timeout', message: '' })
    result.message = `${fluxRefString(r)} did not become ready within ${duration(opts.timeoutMs)}: ${describeLast(last, token, previous, opts.revision)}`
    return result
  } finally {
    clearTimeout(timer)
  }
}

/** Reconciles a Kustomization (or HelmRelease) and waits for it; see the file comment. */
export function reconcileAndWait(
  kube: Kube,
  ref: FluxRef | FluxObject,
  opts: ReconcileOptions,
): Promise<ReconcileResult> {
  return reconcileObject(kube, ref, opts)
}

/**
 * Reconciles a source (a GitRepository unless the ref names another source kind) and waits
 * until it is Ready with the wanted artifact revision.
 */
export function reconcileSource(
  kube: Kube,
  ref: Omit<FluxRef, 'kind'> & { kind?: FluxKind },
  opts: ReconcileOptions,
): Promise<ReconcileResult> {
  return reconcileObject(kube, { ...ref, kind: ref.kind ?? 'GitRepository' }, opts)
}
