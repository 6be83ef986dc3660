// After the push: have Flux fetch the commit (GitRepository), apply it (every Kustomization
// that manages the namespace, Ready with lastAppliedRevision = the commit or a descendant of
// it), then wait until everything the namespace's own Kustomization applied is Current
// (kstatus over status.inventory). One deadline covers all three; every step fails fast on a
// verdict instead of waiting out the timeout.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import {
  getFlux,
  reconcileAndWait,
  reconcileSource,
  fluxRefString,
  type FluxObject,
  type ReconcileResult,
} from '../flux/index.ts'
import { shortSha } from '../git/repo.ts'
import { waitFor, type WaitResult } from '../health/wait.ts'
import type { Kube } from '../kube/client.ts'
import { duration } from '../core/output.ts'
import { orInterrupt, throwIfInterrupted } from './interrupt.ts'
import { waitTargets, type FluxFound } from './flux-target.ts'
import { inventoryReleases, releaseRevisions, releasesText, waitReleases, type ReleaseChange } from './releases.ts'

const run = promisify(execFile)

export type RolloutStage = 'source' | 'kustomization' | 'releases' | 'health'

export interface RolloutResult {
  ok: boolean
  /** the commit that was to be applied */
  sha: string
  /** where it stopped (the last stage when ok) */
  stage: RolloutStage
  /** one line for people: what happened */
  message: string
  source?: ReconcileResult
  kustomization?: ReconcileResult
  /** the namespace's HelmReleases: revision before and after, and helm-controller's verdict */
  releases?: ReleaseChange[]
  health?: Pick<WaitResult, 'ok' | 'outcome' | 'status' | 'report' | 'elapsedMs'> & {
    objects: { ref: string; status: string; message: string }[]
  }
  elapsedMs: number
  /** it ran out of time (rather than a verdict): rolloutStep asks whether the API server still answers */
  timedOut?: boolean
  /** the cluster's API server stopped answering: nothing says whether Flux applied the commit */
  noAnswer?: boolean
}

export interface RolloutOptions {
  timeoutMs: number
  /** the clone and the remote/branch pushed to: a revision Flux reports is fetched from there and accepted when it descends from ours */
  repoDir?: string
  remote?: string
  branch?: string
  signal?: AbortSignal
  progress?: (stage: RolloutStage, message: string) => void
  /**
   * A revert's wait: a Kustomization whose first health check fails is asked once more before
   * that counts. Right after a revert the objects can still carry the failed rollout's
   * terminal conditions (a Deployment's ProgressDeadlineExceeded, until its controller has
   * gone back to the old ReplicaSet), and kustomize-controller's first check may read them.
   */
  healthRecheck?: boolean
}

export async function rollout(
  kube: Kube,
  target: FluxFound,
  sha: string,
  opts: RolloutOptions,
): Promise<RolloutResult> {
  const { kustomization: ks, source } = target
  const started = Date.now()
  const left = () => Math.max(1, opts.timeoutMs - (Date.now() - started))
  const say = opts.progress ?? (() => {})
  const done = (r: Omit<RolloutResult, 'sha' | 'elapsedMs'>): RolloutResult => ({
    ...r,
    sha,
    elapsedMs: Date.now() - started,
  })

  // the HelmReleases' revisions before Flux applies the commit, for the report
  // (of every Kustomization that manages the namespace but the root)
  const ownBefore = (target.managers ?? []).filter((m) => !m.root).map((m) => m.kustomization)
  const beforeKs = await Promise.all(
    (ownBefore.length ? ownBefore : [ks]).map((x) =>
      getFlux(kube, { kind: 'Kustomization', namespace: x.metadata.namespace, name: x.metadata.name }),
    ),
  )
  const before = await releaseRevisions(
    kube,
    beforeKs.flatMap((b) => (b ? inventoryReleases(b) : [])),
  )

  // Only a git source carries our commit; other sources are reconciled without a revision.
  const revision = (source?.kind ?? target.sourceRef?.kind ?? 'GitRepository') === 'GitRepository' ? sha : undefined
  const accepts = opts.repoDir ? descendantOf(opts.repoDir, sha, opts.remote, opts.branch) : undefined
  if (source) {
    say('source', `${fluxRefString(source)}: fetching ${shortSha(sha)}`)
    const r = await orInterrupt(
      reconcileSource(
        kube,
        { kind: source.kind, namespace: source.metadata.namespace, name: source.metadata.name },
        {
          revision,
          accepts,
          timeoutMs: left(),
          onProgress: (m) => say('source', m),
        },
      ),
      opts.signal,
    )
    if (!r.ok)
      return done({ ok: false, stage: 'source', message: r.message, source: r, timedOut: r.reason === 'Timeout' })
  }
  throwIfInterrupted(opts.signal)

  // every Kustomization that manages it, in dependsOn order (kustomize-controller holds a
  // dependent back until what it depends on is Ready): each link is applied, and waited for
  // when another link depends on it, so a failure names the link that is not Ready
  const kustomizations = dependsOnOrder(target.managers?.length ? target.managers.map((m) => m.kustomization) : [ks])
  let k: ReconcileResult | undefined
  for (const each of kustomizations) {
    const dependents = kustomizations.filter((d) => dependsOnOf(d).includes(fluxRefString(each))).map(fluxRefString)
    const link = dependents.length
      ? `dependsOn: ${fluxRefString(each)} (${dependents.join(', ')} depend${dependents.length === 1 ? 's' : ''} on it)`
      : undefined
    say('kustomization', `${fluxRefString(each)}: applying ${shortSha(sha)}`)
    const apply = (freshRun?: boolean) =>
      orInterrupt(
        reconcileAndWait(kube, each, {
          revision,
          accepts,
          timeoutMs: left(),
          onProgress: (m) => say('kustomization', m),
          freshRun,
        }),
        opts.signal,
      )
    let r = await apply()
    if (!r.ok && opts.healthRecheck && r.reason === 'HealthCheckFailed' && Date.now() - started < opts.timeoutMs) {
      say(
        'kustomization',
        `${fluxRefString(each)}: its first health check after the revert failed (${r.readyMessage}); asking once more, as a failed rollout's conditions can linger a moment`,
      )
      r = await apply(true)
    }
    if (!r.ok) {
      // a Kustomization that waits (wait: true) fails on its HelmRelease's health: say
      // helm-controller's own verdict too
      const now = await getFlux(kube, {
        kind: 'Kustomization',
        namespace: each.metadata.namespace,
        name: each.metadata.name,
      })
      const refs = now ? inventoryReleases(now) : []
      const rel = refs.length ? await waitReleases(kube, refs, before, { timeoutMs: 1 }) : undefined
      const failedRelease = rel?.releases.find((x) => !x.ok && x.message)
      // helm-controller's verdict first: it holds Helm's own error, the Kustomization's only
      // says that the health check of the HelmRelease failed
      const message = failedRelease
        ? `HelmRelease ${failedRelease.release} failed: ${failedRelease.message}; ${r.message}`
        : r.message
      return done({
        ok: false,
        stage: failedRelease ? 'releases' : 'kustomization',
        message: link ? `${link} is not Ready: ${message}` : message,
        kustomization: r,
        ...(rel ? { releases: rel.releases } : {}),
        timedOut: r.reason === 'Timeout',
      })
    }
    k ??= r
    throwIfInterrupted(opts.signal)
    if (!link) continue
    const live = await getFlux(kube, {
      kind: 'Kustomization',
      namespace: each.metadata.namespace,
      name: each.metadata.name,
    })
    const linkTargets = live ? waitTargets(live) : []
    if (!linkTargets.length) continue
    say(
      'health',
      `${fluxRefString(each)}: waiting for its ${linkTargets.length} object(s) before ${dependents.join(', ')}`,
    )
    const lw = await waitFor(kube, linkTargets, { timeoutMs: left(), failFast: true, signal: opts.signal })
    throwIfInterrupted(opts.signal)
    if (!lw.ok)
      return done({
        ok: false,
        stage: 'health',
        message: `applied ${shortSha(sha)}, but ${link} is not Ready: ${lw.report}`,
        kustomization: r,
        timedOut: lw.outcome === 'timeout',
        health: {
          ok: lw.ok,
          outcome: lw.outcome,
          status: lw.status,
          report: lw.report,
          elapsedMs: lw.elapsedMs,
          objects: lw.statuses.map((x) => ({ ref: x.ref, status: x.status, message: x.message })),
        },
      })
  }

  // what every Kustomization of the namespace applied (the root one only when it is the only one)
  const own = kustomizations.filter((x) => !target.managers?.find((m) => m.kustomization === x)?.root)
  const lives = (
    await Promise.all(
      (own.length ? own : [ks]).map((x) =>
        getFlux(kube, { kind: 'Kustomization', namespace: x.metadata.namespace, name: x.metadata.name }),
      ),
    )
  ).filter((l): l is FluxObject => Boolean(l))
  // the HelmReleases: released by helm-controller for the spec just applied, or its verdict
  const refs = lives.flatMap((l) => inventoryReleases(l))
  let releases: ReleaseChange[] | undefined
  if (refs.length) {
    say('releases', `waiting for helm-controller to release ${refs.map((r) => `${r.namespace}/${r.name}`).join(', ')}`)
    const rel = await waitReleases(kube, refs, before, {
      timeoutMs: left(),
      signal: opts.signal,
      progress: (m) => say('releases', m),
    })
    releases = rel.releases
    if (!rel.ok)
      return done({
        ok: false,
        stage: 'releases',
        message: `applied ${shortSha(sha)}, but ${rel.message}`,
        kustomization: k,
        releases,
        timedOut: rel.timedOut,
      })
  }
  const relText = releases ? `; ${releasesText(releases)}` : ''
  const seen = new Set<string>()
  const targets = lives
    .flatMap((l) => waitTargets(l))
    .filter((t) => {
      const key = `${t.apiVersion}/${t.kind}/${t.metadata.namespace ?? ''}/${t.metadata.name}`
      if (seen.has(key)) return false
      seen.add(key)
      return true
    })
  say('health', `waiting for ${targets.length} object${targets.length === 1 ? '' : 's'} to be Current`)
  if (targets.length === 0) {
    return done({
      ok: true,
      stage: 'health',
      message: `${fluxRefString(ks)} applied ${shortSha(sha)}; its inventory is empty, so there is nothing to wait for`,
      kustomization: k,
      releases,
    })
  }
  const w = await waitFor(kube, targets, { timeoutMs: left(), failFast: true, signal: opts.signal })
  throwIfInterrupted(opts.signal)
  const health = {
    ok: w.ok,
    outcome: w.outcome,
    status: w.status,
    report: w.report,
    elapsedMs: w.elapsedMs,
    objects: w.statuses.map((s) => ({ ref: s.ref, status: s.status, message: s.message })),
  }
  if (!w.ok)
    return done({
      ok: false,
      stage: 'health',
      message: `applied ${shortSha(sha)}, but the workloads are not healthy: ${w.report}${relText}`,
      kustomization: k,
      releases,
      health,
      timedOut: w.outcome === 'timeout',
    })
  return done({
    ok: true,
    stage: 'health',
    kustomization: k,
    releases,
    health,
    message: `${fluxRefString(ks)} applied ${appliedText(k?.revision, sha)}${relText}; ${w.report} (${duration(Date.now() - started)} in all)`,
  })
}

/**
 * Whether a revision Flux reports (`main@sha1:<hex>`) is `sha` or a descendant of it: someone
 * pushed on top of our commit, and Flux applying theirs applies ours too. A commit this clone
 * does not have is fetched from the remote first.
 */
export function descendantOf(
  repoDir: string,
  sha: string,
  remote?: string,
  branch?: string,
): (revision: string) => Promise<boolean> {
  const git = (...args: string[]) => run('git', ['-C', repoDir, ...args], { timeout: 60_000 })
  const ok = (p: Promise<unknown>) =>
    p.then(
      () => true,
      () => false,
    )
  return async (revision) => {
    const hex = /([0-9a-f]{40})$/i.exec(revision)?.[1]
    if (!hex) return false
    if (hex === sha) return true
    if (!(await ok(git('cat-file', '-e', `${hex}^{commit}`))) && remote) {
      await ok(git('fetch', '--quiet', remote, ...(branch ? [`refs/heads/${branch}`] : []))) // unreachable: ancestry stays unknown, so no
    }
    return ok(git('merge-base', '--is-ancestor', sha, hex))
  }
}

/** `abc1234`, or `def5678 (a descendant of abc1234)` when someone pushed on top. */
export function appliedText(revision: string | undefined, sha: string): string {
  const hex = revision ? /([0-9a-f]{40})$/i.exec(revision)?.[1] : undefined
  return hex && hex !== sha
    ? `${shortSha(hex)} (which contains ${shortSha(sha)}: a commit pushed on top of it)`
    : shortSha(sha)
}

/** The Kustomizations one depends on, as fluxRefString writes them. */
function dependsOnOf(ks: FluxObject): string[] {
  const deps = (ks.spec?.dependsOn as { name?: string; namespace?: string }[] | undefined) ?? []
  return deps.filter((d) => d.name).map((d) => `Kustomization/${d.namespace ?? ks.metadata.namespace}/${d.name}`)
}

/** Every Kustomization after those of the list it depends on (ties keep the list's order: the primary first). */
export function dependsOnOrder(list: FluxObject[]): FluxObject[] {
  const byId = new Map(list.map((x) => [fluxRefString(x), x]))
  const out: FluxObject[] = []
  const done = new Set<string>()
  const visit = (x: FluxObject, stack: Set<string>) => {
    const id = fluxRefString(x)
    if (done.has(id) || stack.has(id)) return // a cycle: Flux never applies it; the reconcile says so
    stack.add(id)
    for (const d of dependsOnOf(x)) {
      const dep = byId.get(d)
      if (dep) visit(dep, stack)
    }
    done.add(id)
    out.push(x)
  }
  for (const x of list) visit(x, new Set())
  return out
}
