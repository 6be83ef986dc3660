// The HelmReleases a deploy changes: the ones in the namespace's Kustomization inventory. After
// Flux applied the commit, each must be released for its new spec — helm-controller observed
// the new generation (lastAttemptedGeneration), its latest Helm release is the one it last
// attempted (history[0] carries lastAttemptedConfigDigest, the digest of the chart and values
// it was asked for, and the chart version of lastAttemptedRevision) and Ready is True — or it
// fails fast on helm-controller's verdict (InstallFailed, UpgradeFailed, RetriesExceeded…, as
// kstatus reads them). The report says each release's revision before and after.
import { computeStatus, type KubeObject } from '../health/kstatus.ts'
import { releaseInfo, releaseLine } from '../health/flux-controllers.ts'
import { conditionOf, fluxKinds, type FluxObject } from '../flux/kinds.ts'
import { failedUpgradeRemediation } from '../flux/helm-release.ts'
import type { RenderedRelease } from '../flux/build/index.ts'
import { isApiError, type Kube } from '../kube/client.ts'
import { inventoryRefs } from '../flux/managing.ts'
import { throwIfInterrupted } from './interrupt.ts'

export interface ReleaseRef {
  namespace: string
  name: string
}

export interface ReleaseChange {
  /** namespace/name */
  release: string
  /** Helm's release revision before the deploy (undefined: not installed yet) */
  before?: number
  /** …and after it (undefined: never released) */
  after?: number
  /** `nsops-app@0.1.0 r3 upgrade succeeded` */
  line?: string
  ok: boolean
  /** why not, in helm-controller's words */
  message?: string
}

export interface ReleasesResult {
  ok: boolean
  releases: ReleaseChange[]
  /** one line for people */
  message: string
  /** it ran out of time rather than reaching a verdict */
  timedOut?: boolean
}

/** The HelmReleases a Kustomization applied (its status.inventory). */
export function inventoryReleases(ks: FluxObject): ReleaseRef[] {
  return inventoryRefs(ks)
    .filter((r) => r.kind === 'HelmRelease' && r.apiVersion.startsWith('helm.toolkit.fluxcd.io/'))
    .map((r) => ({ namespace: r.namespace ?? '', name: r.name }))
}

async function read(kube: Kube, r: ReleaseRef): Promise<FluxObject | undefined> {
  try {
    return (await kube.custom.getNamespacedCustomObject({
      ...fluxKinds.HelmRelease,
      namespace: r.namespace,
      name: r.name,
    })) as FluxObject
  } catch (err) {
    if (isApiError(err, 404)) return undefined
    throw err
  }
}

/** Each release's Helm revision now (before a deploy): namespace/name → revision. */
export async function releaseRevisions(kube: Kube, refs: ReleaseRef[]): Promise<Map<string, number | undefined>> {
  const out = new Map<string, number | undefined>()
  for (const r of refs) {
    const hr = await read(kube, r)
    out.set(`${r.namespace}/${r.name}`, hr ? releaseInfo(hr as KubeObject)?.revision : undefined)
  }
  return out
}

interface HelmStatus {
  observedGeneration?: number
  lastAttemptedGeneration?: number
  lastAttemptedRevision?: string
  lastAttemptedConfigDigest?: string
  history?: { chartVersion?: string; configDigest?: string }[]
}

/**
 * Whether helm-controller has released this HelmRelease's current spec: `done` with its verdict,
 * or not yet. Exported for the tests' sake of the rule, not for other callers.
 */
export function releaseVerdict(hr: FluxObject): { done: false } | { done: true; ok: boolean; message?: string } {
  const st = computeStatus(hr as KubeObject)
  if (st.status === 'Failed') return { done: true, ok: false, message: st.message }
  const s = (hr.status ?? {}) as HelmStatus
  const gen = hr.metadata.generation
  const latest = s.history?.[0]
  const ready = conditionOf(hr, 'Ready')
  const forSpec = s.observedGeneration === gen && s.lastAttemptedGeneration === gen
  const released =
    !!latest &&
    !!s.lastAttemptedConfigDigest &&
    latest.configDigest === s.lastAttemptedConfigDigest &&
    (!s.lastAttemptedRevision || latest.chartVersion === s.lastAttemptedRevision)
  return forSpec && released && ready?.status === 'True' ? { done: true, ok: true } : { done: false }
}

/**
 * Waits until every release is released for its current spec (releaseVerdict), failing fast on
 * the first failed one; `before` gives the revisions the report compares with.
 */
export async function waitReleases(
  kube: Kube,
  refs: ReleaseRef[],
  before: Map<string, number | undefined>,
  opts: { timeoutMs: number; signal?: AbortSignal; progress?: (message: string) => void; pollMs?: number },
): Promise<ReleasesResult> {
  const deadline = Date.now() + opts.timeoutMs
  const pending = new Map(refs.map((r) => [`${r.namespace}/${r.name}`, r]))
  const changes = new Map<string, ReleaseChange>()
  const change = (key: string, hr: FluxObject | undefined, ok: boolean, message?: string): ReleaseChange => {
    const info = hr ? releaseInfo(hr as KubeObject) : undefined
    return {
      release: key,
      before: before.get(key),
      after: info?.revision,
      ...(info ? { line: releaseLine(info) } : {}),
      ok,
      ...(message ? { message } : {}),
    }
  }
  for (;;) {
    throwIfInterrupted(opts.signal)
    for (const [key, ref] of pending) {
      const hr = await read(kube, ref)
      if (!hr) {
        changes.set(key, change(key, undefined, false, 'the HelmRelease is gone'))
        continue
      }
      const v = releaseVerdict(hr)
      changes.set(key, change(key, hr, v.done && v.ok, v.done ? v.message : undefined))
      if (!v.done) continue
      pending.delete(key)
      if (!v.ok) {
        const all = refs.map(
          (r) => changes.get(`${r.namespace}/${r.name}`) ?? change(`${r.namespace}/${r.name}`, undefined, false),
        )
        return { ok: false, releases: all, message: `HelmRelease ${key} failed: ${v.message}` }
      }
    }
    if (!pending.size) {
      const all = refs.map((r) => changes.get(`${r.namespace}/${r.name}`)!)
      return { ok: true, releases: all, message: releasesText(all) }
    }
    if (Date.now() > deadline) {
      const all = refs.map(
        (r) => changes.get(`${r.namespace}/${r.name}`) ?? change(`${r.namespace}/${r.name}`, undefined, false),
      )
      const late = [...pending.keys()]
      return {
        ok: false,
        releases: all,
        timedOut: true,
        message: `helm-controller did not release ${late.map((k) => `HelmRelease ${k}`).join(', ')} for its new spec in time (${late
          .map((k) => changes.get(k)?.line ?? 'no release yet')
          .join('; ')})`,
      }
    }
    opts.progress?.(`waiting for helm-controller: ${[...pending.keys()].map((k) => `HelmRelease ${k}`).join(', ')}`)
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 500))
  }
}

/** `HelmRelease monitoring/grafana r2 → r3 (nsops-app@0.1.0 r3 upgrade succeeded)`, joined. */
export function releasesText(changes: ReleaseChange[]): string {
  return changes
    .map(
      (c) =>
        `HelmRelease ${c.release} ${c.before === undefined ? 'new' : `r${c.before}`} → ${c.after === undefined ? 'none' : `r${c.after}`}${c.line ? ` (${c.line})` : ''}`,
    )
    .join('; ')
}

/**
 * One warning line per HelmRelease being deployed that helm-controller would not roll back after
 * a failed upgrade: such a release stays failed, and the deploy's revert cannot undo it (Helm
 * upgrades from the last *deployed* release, so what only the failed one added stays on the
 * live objects) and waits out the release's timeout. README, deploy.ts step 6, says why.
 */
export function remediationWarnings(releases: Pick<RenderedRelease, 'id' | 'file' | 'release'>[]): string[] {
  return releases.flatMap((r) => {
    const v = failedUpgradeRemediation(r.release.spec as Parameters<typeof failedUpgradeRemediation>[0])
    if (v.rollback) return []
    return [
      `HelmRelease ${r.id}${r.file ? ` (${r.file})` : ''}: helm-controller does not roll back a failed upgrade of it (${v.instead}): the release stays failed, and the revert of a failed deploy waits out its ${v.timeout} timeout; set upgrade.remediation.remediateLastFailure: true (README, deploy.ts step 6)`,
    ]
  })
}
