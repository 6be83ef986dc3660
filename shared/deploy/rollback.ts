// Undoing a deploy the GitOps way: `git revert` as new commits (history is never rewritten),
// push, and wait for Flux to apply the revert. Automatic after a failed deploy, or asked for
// with `--rollback` (the namespace's last commit).
import { NsopsError, ExitCode, errorMessage } from '../core/errors.ts'
import { fluxRefString } from '../flux/index.ts'
import { openRepo, shortSha, type Repo } from '../git/repo.ts'
import type { Kube } from '../kube/client.ts'
import { duration } from '../core/output.ts'
import { clause, confirmStep, declined, fluxStep, plural, rolloutStep, type DeploySteps } from './flow.ts'
import type { FluxFound } from './flux-target.ts'
import { Interrupted, throwIfInterrupted } from './interrupt.ts'
import { pushedUnverified, requestedRollbackFailed, rollbackFailed, rolledBack, type FailureFacts } from './outcome.ts'
import { lastCommits, lastCommitUnder, unpushedCommits } from './preflight.ts'
import type { DeployReport } from './report.ts'

/** Revert what this deploy pushed (newest first), push, and wait for Flux to apply the revert. */
export async function autoRollback(
  f: DeploySteps,
  repo: Repo,
  kube: Kube,
  flux: FluxFound,
  facts: FailureFacts,
  commits: string[],
): Promise<DeployReport> {
  f.log.warn(`rolling back ${commits.map(shortSha).join(', ')}`)
  const reverts = f.report.git.reverts
  f.reverting = commits
  f.phase = 'reverting'
  try {
    await f.step('revert', `Reverting ${commits.map(shortSha).join(', ')}`, async () => {
      for (const sha of [...commits].reverse()) {
        const r = await repo.revertCommit(sha, `rollback(${f.ns.name}): revert ${shortSha(sha)}, the deploy failed`)
        reverts.push(r.sha)
      }
      return {
        value: undefined,
        message: `made ${plural(reverts.length, 'revert commit')}: ${reverts.map(shortSha).join(', ')}`,
        detail: { reverts },
      }
    })
  } catch (err) {
    if (err instanceof Interrupted) throw err
    return f.finish(
      rollbackFailed(facts, {
        step: 'revert',
        message: errorMessage(err),
        reverts,
        revertsPushed: false,
        flux: await f.fluxLine(kube),
      }),
    )
  }
  f.phase = 'reverted'
  throwIfInterrupted(f.opts.signal)
  f.phase = 'pushing-revert'
  let revertHead: string
  try {
    revertHead = await f.step('push-revert', `Pushing the revert to ${f.remote}`, async () => {
      const r = await repo.push()
      return { value: r.localSha, message: `pushed ${shortSha(r.localSha)} to ${f.remote}`, detail: { ...r } }
    })
  } catch (err) {
    if (err instanceof Interrupted) throw err
    return f.finish(
      rollbackFailed(facts, {
        step: 'push',
        message: errorMessage(err),
        reverts,
        revertsPushed: false,
        flux: await f.fluxLine(kube),
      }),
    )
  }
  // a rebase while pushing renames the reverts too
  f.report.git.reverts = (await lastCommits(repo.root, f.nsDir, reverts.length)).map((c) => c.sha)
  f.report.git.revertsPushed = true
  f.phase = 'revert-pushed'
  throwIfInterrupted(f.opts.signal)
  const r = await rolloutStep(f, 'reconcile-revert', kube, flux, revertHead)
  if (r.ok) return f.finish(rolledBack(facts, f.report.git.reverts, `Flux applied it: ${r.message}`))
  return f.finish(
    rollbackFailed(facts, {
      step: 'reconcile',
      message: r.message,
      reverts: f.report.git.reverts,
      revertsPushed: true,
      flux: await f.fluxLine(kube),
    }),
  )
}

/**
 * `--rollback`: revert the newest commit that touched the namespace's folder. Refused with
 * staged changes or unpushed commits (they would ride along); exit 0 once Flux applied the
 * revert and everything is healthy, 3 when that fails (the revert stays pushed).
 */
export async function rollbackFlow(f: DeploySteps): Promise<DeployReport> {
  const { opts } = f
  const repo = await openRepo(opts.repoDir)
  const { last, upstream } = await f.step('preflight', 'Checking the git state', async () => {
    const up = await repo.requireUpstream()
    f.remote = `${up.remote}/${up.remoteBranch}`
    f.report.git.branch = up.branch
    f.report.git.upstream = f.remote
    const state = await repo.repoState()
    if (state.staged.length) {
      throw new NsopsError(
        `changes are staged in ${repo.root} (${state.staged.join(', ')}); a rollback commits only its revert, so nothing was done.`,
        {
          hint: 'commit them or unstage them (`git restore --staged -- FILE…`), then run again.',
        },
      )
    }
    const unpushed = await unpushedCommits(repo.root, f.nsDir)
    if (unpushed.length) {
      throw new NsopsError(
        `${plural(unpushed.length, 'local commit')} ${unpushed.length === 1 ? 'is' : 'are'} not pushed to ${f.remote} (${unpushed.map((u) => `${shortSha(u.sha)} ${u.subject}`).join('; ')}); a rollback would push ${unpushed.length === 1 ? 'it' : 'them'} too, so nothing was done.`,
        {
          hint: `push ${unpushed.length === 1 ? 'it' : 'them'} (or \`just deploy ${f.ns.name}\`) first, or move ${unpushed.length === 1 ? 'it' : 'them'} to another branch; then run again.`,
        },
      )
    }
    const commit = await lastCommitUnder(repo.root, f.nsDir)
    if (!commit)
      throw new NsopsError(`nothing to roll back: no commit on ${up.branch} touches ${f.nsDir}/.`, {
        hint: '`git log -- ' + f.nsDir + '` lists the commits that did.',
      })
    const elsewhere = commit.files.filter((file) => !file.startsWith(`${f.nsDir}/`))
    if (elsewhere.length) {
      throw new NsopsError(
        `the last commit under ${f.nsDir}/, ${shortSha(commit.sha)} "${commit.subject}", also changes files outside it (${elsewhere.slice(0, 5).join(', ')}${elsewhere.length > 5 ? ', …' : ''}); reverting it would undo those too, so nothing was done.`,
        {
          hint: `revert only this namespace's part by hand: \`git revert --no-commit ${shortSha(commit.sha)} && git restore --staged --worktree -- ${elsewhere.map((e) => `':(literal)${e}'`).join(' ')}\`, commit and push.`,
        },
      )
    }
    return {
      value: { last: commit, upstream: up },
      message: `the last commit under ${f.nsDir}/ is ${shortSha(commit.sha)} "${commit.subject}"`,
      detail: { branch: up.branch, upstream: f.remote, revert: commit },
    }
  })
  throwIfInterrupted(opts.signal)
  const cluster = await f.cluster()
  if (!cluster.kube && !opts.dryRun && !opts.pushOnly) {
    throw new NsopsError(
      `no cluster answers (${clause(cluster.offline)}), so nothing could confirm that Flux applies the revert; nothing was done.`,
      {
        hint: 'start or reach the cluster and run again, or pass --push-only to revert and push without verifying (exit 4).',
      },
    )
  }
  const url = await repo.remoteUrl(upstream.remote)
  f.report.git.remote = { name: upstream.remote, url: url ?? '' }
  f.remoteBranch = upstream.remoteBranch
  const flux = cluster.kube ? await fluxStep(f, cluster.kube, { ...upstream, url }) : undefined
  if (!cluster.kube) f.log.warn(`no cluster answers (${clause(cluster.offline)}): the rollback will not be verified`)
  const reapplies = /^Revert "/.test(last.subject) || /^rollback\(/.test(last.subject)
  const plan = [
    `revert ${shortSha(last.sha)} "${last.subject}" (${plural(last.files.length, 'file')}) as a new commit${reapplies ? ' — it is itself a revert, so this re-applies what it undid' : ''}`,
    `push ${f.report.git.branch} to ${f.remote}`,
    flux?.found
      ? `reconcile ${fluxRefString(flux.kustomization)} and wait up to ${duration(f.timeoutMs)} for health`
      : 'no Flux Kustomization to reconcile: the push will not be verified',
  ]
  if (opts.dryRun) {
    f.log.info(plan.map((p) => `  • ${p}`).join('\n'))
    return f.finish({
      outcome: 'dry-run',
      exitCode: ExitCode.ok,
      summary: `dry run: would revert ${shortSha(last.sha)} "${last.subject}"; nothing was committed or pushed.`,
    })
  }
  if (!(await confirmStep(f, `Roll back ${f.ns.name}`, plan, 'Revert and push?', `rolling back ${f.ns.name}`)))
    return f.finish(declined('reverted or pushed'))

  f.reverting = [last.sha]
  const failedRollback = async (message: string, pushed: boolean) =>
    f.finish(
      requestedRollbackFailed({
        ns: f.ns.name,
        remote: f.remote,
        reverted: last.sha,
        reverts: f.report.git.reverts,
        pushed,
        message,
        flux: await f.fluxLine(cluster.kube),
      }),
    )
  f.phase = 'reverting'
  try {
    await f.step('revert', `Reverting ${shortSha(last.sha)}`, async () => {
      const r = await repo.revertCommit(
        last.sha,
        `rollback(${f.ns.name}): revert ${shortSha(last.sha)} "${last.subject}"`,
      )
      f.report.git.reverts.push(r.sha)
      return { value: r, message: `made ${shortSha(r.sha)}`, detail: { ...r } }
    })
  } catch (err) {
    // revertCommit aborts what it started: nothing changed
    if (err instanceof NsopsError) f.phase = 'before-commit'
    throw err
  }
  f.phase = 'reverted'
  throwIfInterrupted(opts.signal)
  f.phase = 'pushing-revert'
  let head: string
  try {
    head = await f.step('push-revert', `Pushing the revert to ${f.remote}`, async () => {
      const r = await repo.push()
      return { value: r.localSha, message: `pushed ${shortSha(r.localSha)} to ${f.remote}`, detail: { ...r } }
    })
  } catch (err) {
    if (err instanceof Interrupted) throw err
    return failedRollback(`the push failed: ${errorMessage(err)}`, false)
  }
  f.report.git.reverts = [head]
  f.report.git.revertsPushed = true
  f.phase = 'revert-pushed'
  throwIfInterrupted(opts.signal)
  if (opts.pushOnly) {
    return f.finish(
      pushedUnverified(
        f.ns.name,
        f.remote,
        [head],
        'not verified, as asked (--push-only)',
        `Flux applies it at its next interval; check \`just dashboard ${f.ns.name}\`.`,
        'rollback',
      ),
    )
  }
  if (!cluster.kube) {
    return f.finish(
      pushedUnverified(
        f.ns.name,
        f.remote,
        [head],
        `no cluster answered (${clause(cluster.offline)})`,
        `Flux applies it at its next interval; check \`just dashboard ${f.ns.name}\`.`,
        'rollback',
      ),
    )
  }
  if (!flux?.found) {
    return f.finish(
      pushedUnverified(f.ns.name, f.remote, [head], flux?.reason ?? 'Flux was not found', flux?.hint ?? '', 'rollback'),
    )
  }
  const r = await rolloutStep(f, 'reconcile-revert', cluster.kube, flux, head)
  if (r.ok)
    return f.finish({
      outcome: 'reverted',
      exitCode: ExitCode.ok,
      summary: `rolled back ${f.ns.name}: reverted ${shortSha(last.sha)} with ${shortSha(head)}; ${r.message}.`,
    })
  return failedRollback(`Flux did not apply the revert cleanly: ${r.message}`, true)
}
