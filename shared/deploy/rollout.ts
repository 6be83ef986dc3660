// After the push: have Flux fetch the commit (GitRepository), apply it (the namespace's
// Kustomization, Ready with lastAppliedRevision = the commit), then wait until everything it
// applied is Current (kstatus over status.inventory). One deadline covers all three; every
// step fails fast on a verdict instead of waiting out the timeout.
import { getFlux, refString } from '../flux/kinds.ts'
import { reconcile, reconcileSource, type ReconcileResult } from '../flux/index.ts'
import { shortSha } from '../git.ts'
import { waitFor, type WaitResult } from '../health/wait.ts'
import type { Kube } from '../kube.ts'
import { duration } from '../output.ts'
import { orInterrupt, throwIfInterrupted } from './interrupt.ts'
import { waitTargets, type FluxFound } from './flux-target.ts'

export type RolloutStage = 'source' | 'kustomization' | 'health'

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
  health?: Pick<WaitResult, 'ok' | 'outcome' | 'status' | 'report' | 'elapsedMs'> & { objects: { ref: string; status: string; message: string }[] }
  elapsedMs: number
}

export interface RolloutOptions {
  timeoutMs: number
  signal?: AbortSignal
  progress?: (stage: RolloutStage, message: string) => void
}

export async function rollout(kube: Kube, target: FluxFound, sha: string, opts: RolloutOptions): Promise<RolloutResult> {
  const { kustomization: ks, source } = target
  const started = Date.now()
  const left = () => Math.max(1, opts.timeoutMs - (Date.now() - started))
  const say = opts.progress ?? (() => {})
  const done = (r: Omit<RolloutResult, 'sha' | 'elapsedMs'>): RolloutResult => ({ ...r, sha, elapsedMs: Date.now() - started })

  // Only a git source carries our commit; other sources are reconciled without a revision.
  const revision = (source?.kind ?? target.sourceRef?.kind ?? 'GitRepository') === 'GitRepository' ? sha : undefined
  if (source) {
    say('source', `${refString(source)}: fetching ${shortSha(sha)}`)
    const r = await orInterrupt(reconcileSource(kube, { kind: source.kind, namespace: source.metadata.namespace, name: source.metadata.name }, {
      revision, timeoutMs: left(), onProgress: (m) => say('source', m),
    }), opts.signal)
    if (!r.ok) return done({ ok: false, stage: 'source', message: r.message, source: r })
  }
  throwIfInterrupted(opts.signal)

  say('kustomization', `${refString(ks)}: applying ${shortSha(sha)}`)
  const k = await orInterrupt(reconcile(kube, ks, { revision, timeoutMs: left(), onProgress: (m) => say('kustomization', m) }), opts.signal)
  if (!k.ok) return done({ ok: false, stage: 'kustomization', message: k.message, kustomization: k })
  throwIfInterrupted(opts.signal)

  const applied = await getFlux(kube, { kind: 'Kustomization', namespace: ks.metadata.namespace, name: ks.metadata.name })
  const targets = applied ? waitTargets(applied) : []
  say('health', `waiting for ${targets.length} object${targets.length === 1 ? '' : 's'} to be Current`)
  if (targets.length === 0) {
    return done({ ok: true, stage: 'health', message: `${refString(ks)} applied ${shortSha(sha)}; its inventory is empty, so there is nothing to wait for`, kustomization: k })
  }
  const w = await waitFor(kube, targets, { timeoutMs: left(), failFast: true, signal: opts.signal })
  throwIfInterrupted(opts.signal)
  const health = {
    ok: w.ok, outcome: w.outcome, status: w.status, report: w.report, elapsedMs: w.elapsedMs,
    objects: w.statuses.map((s) => ({ ref: s.ref, status: s.status, message: s.message })),
  }
  if (!w.ok) return done({ ok: false, stage: 'health', message: `applied ${shortSha(sha)}, but the workloads are not healthy: ${w.report}`, kustomization: k, health })
  return done({
    ok: true, stage: 'health', kustomization: k, health,
    message: `${refString(ks)} applied ${shortSha(sha)}; ${w.report} (${duration(Date.now() - started)} in all)`,
  })
}
