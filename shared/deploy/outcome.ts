// The verdicts after something went wrong, as pure functions of what is known: which commits
// are where, what failed and what Flux reports. Exit codes as in DESIGN.md: 1 only when
// nothing was pushed, 2 when a failed deploy was rolled back, 3 when the rollback failed too,
// 4 when commits are pushed and nothing confirmed they deployed (--push-only, Flux gave no
// answer, or a failure left in place with --no-rollback), 130 when interrupted. Every
// summary says the state of things.
import { ExitCode } from '../core/errors.ts'
import { shortSha } from '../git/repo.ts'
import type { Verdict } from './report.ts'
import type { RolloutStage } from './rollout.ts'

export interface Failure {
  /** where it failed: a rollout stage, or the namespace's afterDeploy hook (a smoke test) */
  stage: RolloutStage | 'after-deploy'
  message: string
}

export interface FailureFacts {
  /** the namespace (for `just … NS`) */
  ns: string
  /** its Flux Kustomization's name (in flux-system) */
  kustomization: string
  /** e.g. origin/main */
  remote: string
  /** the commits this deploy pushed, oldest first */
  deployed: string[]
  failure: Failure
}

const stageText: Record<Failure['stage'], string> = {
  'after-deploy': 'after Flux applied it and it was healthy',
  source: 'while Flux fetched it (GitRepository)',
  kustomization: 'while Flux applied it (Kustomization)',
  releases: 'while helm-controller released it (HelmRelease)',
  health: 'in the health check of what Flux applied',
}

function shas(list: string[]): string {
  return list.map(shortSha).join(', ')
}

function failed(f: FailureFacts): string {
  return `the deploy of ${shas(f.deployed)} failed ${stageText[f.failure.stage]}: ${f.failure.message}`
}

/** --no-rollback: the failing commit stays pushed. */
export function failedWithoutRollback(f: FailureFacts): Verdict {
  return {
    outcome: 'failed',
    exitCode: ExitCode.pushedUnverified,
    summary: `${failed(f)}. Not rolled back (--no-rollback): ${shas(f.deployed)} stays pushed to ${f.remote} and Flux keeps trying to apply it.`,
    hint: `roll back with \`just rollback ${f.ns}\` (reverts the last commit under namespaces/${f.ns}/ as a new commit, pushes and waits), or fix forward and run \`just deploy ${f.ns}\` again.`,
  }
}

/** The rollback worked: the reverts are pushed, applied and healthy. */
export function rolledBack(f: FailureFacts, reverts: string[], restored: string): Verdict {
  return {
    outcome: 'rolled-back',
    exitCode: ExitCode.rolledBack,
    summary: `${failed(f)}. Rolled back: ${reverts.length === 1 ? 'revert' : 'reverts'} ${shas(reverts)} pushed to ${f.remote}, and ${restored}.`,
    hint: `your change is still in the history (${shas(f.deployed)}): fix it and run \`just deploy ${f.ns}\` again, or see what failed with \`just dashboard ${f.ns}\`.`,
  }
}

export interface RollbackFailure {
  /** where the rollback stopped */
  step: 'revert' | 'push' | 'reconcile' | 'flux-missing'
  message: string
  /** revert commits made (local, or pushed when revertsPushed) */
  reverts: string[]
  revertsPushed: boolean
  /** what Flux reports for the namespace's Kustomization, one line */
  flux?: string
}

/** The deploy failed and the rollback failed too: say exactly which commit is where. */
export function rollbackFailed(f: FailureFacts, r: RollbackFailure): Verdict {
  const fluxNow = r.flux ? ` Flux reports: ${r.flux}.` : ''
  const base = `${failed(f)}. The rollback failed too`
  switch (r.step) {
    case 'revert':
      return {
        outcome: 'rollback-failed',
        exitCode: ExitCode.rollbackFailed,
        summary: r.reverts.length
          ? `${base}: only ${r.reverts.length} of the reverts could be made (${r.message}). State: ${shas(f.deployed)} is pushed to ${f.remote} and is what Flux is trying to apply; the reverts ${shas(r.reverts)} are local and not pushed.${fluxNow}`
          : `${base}: no revert commit could be made (${r.message}). State: ${shas(f.deployed)} is pushed to ${f.remote} and is what Flux is trying to apply; your branch has no revert.${fluxNow}`,
        hint: `revert by hand: \`git revert ${f.deployed.map(shortSha).reverse().join(' ')}\`, \`git push\`, then \`just dashboard ${f.ns}\` to watch Flux apply it.`,
      }
    case 'push':
      return {
        outcome: 'rollback-failed',
        exitCode: ExitCode.rollbackFailed,
        summary: `${base}: the revert ${shas(r.reverts)} is committed locally but could not be pushed (${r.message}). State: ${shas(f.deployed)} is pushed to ${f.remote} and is what Flux is trying to apply; the revert is only on your branch.${fluxNow}`,
        hint: `publish the revert: \`git pull --rebase && git push\`; Flux applies it at its next interval (or \`flux reconcile kustomization ${f.ns} -n flux-system --with-source\`).`,
      }
    case 'flux-missing':
      return {
        outcome: 'rollback-failed',
        exitCode: ExitCode.rollbackFailed,
        summary: `${base}: the revert ${shas(r.reverts)} is pushed to ${f.remote}, but ${r.message}, so nothing confirms it was applied.${fluxNow}`,
        hint: `check Flux with \`flux get kustomizations -A\` and \`just dashboard ${f.ns}\`.`,
      }
    case 'reconcile':
      return {
        outcome: 'rollback-failed',
        exitCode: ExitCode.rollbackFailed,
        summary: `${base}: the revert ${shas(r.reverts)} is pushed to ${f.remote}, but Flux did not apply it cleanly: ${r.message}.${fluxNow} The files under namespaces/${f.ns}/ are back to what they were before ${shas(f.deployed)}; the cluster may still run parts of it.`,
        hint: `the problem may predate this deploy: see \`just dashboard ${f.ns}\` and \`flux get kustomizations -A\`; once fixed, \`flux reconcile kustomization ${f.ns} -n flux-system --with-source\`.`,
      }
  }
}

/** Pushed, but nothing could confirm Flux applied it (no cluster answers, no Kustomization). */
export function pushedUnverified(
  ns: string,
  remote: string,
  pushed: string[],
  reason: string,
  hint: string,
  what: 'deploy' | 'rollback' = 'deploy',
): Verdict {
  return {
    outcome: 'pushed-unverified',
    exitCode: ExitCode.pushedUnverified,
    summary: `${shas(pushed)} is pushed to ${remote}, but the ${what} cannot be confirmed: ${reason}. It stays pushed${what === 'deploy' ? '; nothing was rolled back' : ''}.`,
    hint: what === 'deploy' ? `${hint} Undo the push with \`just rollback ${ns}\`.`.trim() : hint,
  }
}

/** `--rollback` was asked for and did not end healthy. */
export function requestedRollbackFailed(s: {
  ns: string
  remote: string
  reverted: string
  reverts: string[]
  pushed: boolean
  message: string
  flux?: string
}): Verdict {
  const where = s.pushed
    ? `the revert ${shas(s.reverts)} is pushed to ${s.remote}`
    : s.reverts.length
      ? `the revert ${shas(s.reverts)} is committed locally, not pushed`
      : 'no revert commit was made'
  return {
    outcome: 'rollback-failed',
    exitCode: ExitCode.rollbackFailed,
    summary: `the rollback of ${shortSha(s.reverted)} failed: ${s.message}. State: ${where}.${s.flux ? ` Flux reports: ${s.flux}.` : ''}`,
    hint: s.pushed
      ? `see \`just dashboard ${s.ns}\` and \`flux get kustomizations -A\` for why Flux cannot apply it.`
      : s.reverts.length
        ? 'publish it with `git pull --rebase && git push`, or drop it with `git reset --hard HEAD~1`.'
        : `revert by hand: \`git revert ${shortSha(s.reverted)}\` and \`git push\`.`,
  }
}

/** Where a deploy was when it was interrupted. */
export type Phase =
  | 'before-commit'
  | 'committing'
  | 'committed'
  | 'pushing'
  | 'pushed'
  | 'reverting'
  | 'reverted'
  | 'pushing-revert'
  | 'revert-pushed'

export interface InterruptFacts {
  ns: string
  remote: string
  phase: Phase
  /** the deploy commit this run made */
  committed?: string
  /** commits this run pushed */
  pushed: string[]
  /** the commits being reverted (default: those this run pushed) */
  reverting?: string[]
  reverts: string[]
}

export function interrupted(s: InterruptFacts): Verdict {
  const v = (summary: string, hint?: string): Verdict => ({
    outcome: 'interrupted',
    exitCode: ExitCode.interrupted,
    summary: `interrupted: ${summary}`,
    ...(hint ? { hint } : {}),
  })
  const again = `\`just deploy ${s.ns}\``
  switch (s.phase) {
    case 'before-commit':
      return v('nothing was committed or pushed; your changes are as they were.')
    case 'committing':
      return v(
        'while committing. `git log -1` shows whether the commit was made; nothing was pushed.',
        `run ${again} again: it picks up a local commit as well as uncommitted changes.`,
      )
    case 'committed':
      return v(
        `the commit ${s.committed ? shortSha(s.committed) : ''} is made locally and was not pushed. Nothing is lost.`,
        `run ${again} again to validate, push and watch it (it pushes local commits), or \`git push\` it yourself; \`git reset --soft HEAD~1\` undoes the commit and keeps your changes.`,
      )
    case 'pushing':
      return v(
        `while pushing to ${s.remote}: \`git status\` tells whether ${s.remote} has your commit (not "ahead" means it does).`,
        `if it is still ahead, run ${again} again; if it was pushed, Flux applies it on its own: watch it with \`just dashboard ${s.ns}\`.`,
      )
    case 'pushed':
      return v(
        `${shas(s.pushed)} is pushed to ${s.remote}; Flux applies it on its own, but nothing waited for it and nothing was rolled back.`,
        `watch it with \`just dashboard ${s.ns}\`; undo it with \`just rollback ${s.ns}\`.`,
      )
    case 'reverting':
      return v(
        `while reverting ${shas(s.reverting ?? s.pushed)} (pushed to ${s.remote}). \`git status\` and \`git log -3\` show whether a revert was committed; nothing of it was pushed.`,
        `if \`git status\` shows a revert in progress, \`git revert --abort\`; then \`just rollback ${s.ns}\`.`,
      )
    case 'reverted':
      return v(
        `the revert ${shas(s.reverts)} is committed locally and not pushed; ${shas(s.reverting ?? s.pushed)} is still what ${s.remote} has.`,
        `\`git push\` publishes the revert (Flux then applies it), or \`git reset --hard HEAD~${s.reverts.length}\` drops it.`,
      )
    case 'pushing-revert':
      return v(
        `while pushing the revert ${shas(s.reverts)}: \`git status\` tells whether ${s.remote} has it.`,
        `if it is still ahead, \`git push\`; then watch \`just dashboard ${s.ns}\`.`,
      )
    case 'revert-pushed':
      return v(
        `the revert ${shas(s.reverts)} is pushed to ${s.remote}; Flux applies it on its own, but nothing waited for it.`,
        `watch it with \`just dashboard ${s.ns}\`.`,
      )
  }
}
