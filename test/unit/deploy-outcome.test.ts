// The verdicts after a push went wrong: exit 4 when the failing commit is left in place (1
// means nothing was pushed), 2
// when it was rolled back, 3 when the rollback failed too, 130 when interrupted; and every
// summary says which commit is where.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  failedWithoutRollback,
  interrupted,
  pushedUnverified,
  requestedRollbackFailed,
  rollbackFailed,
  rolledBack,
  type FailureFacts,
  type Phase,
} from '../../shared/deploy/outcome.ts'

const A = 'a'.repeat(40)
const R = 'b'.repeat(40)
const facts: FailureFacts = {
  ns: 'arr-stack',
  kustomization: 'arr-stack',
  remote: 'origin/main',
  deployed: [A],
  failure: {
    stage: 'kustomization',
    message:
      'Kustomization/flux-system/arr-stack failed: HealthCheckFailed: timeout waiting for: [Deployment/arr-stack/sonarr]',
  },
}

describe('deploy: verdicts', () => {
  it('leaves a failed deploy pushed with --no-rollback: exit 4 (pushed, not 1), and says how to roll back', () => {
    const v = failedWithoutRollback(facts)
    assert.equal(v.exitCode, 4)
    assert.equal(v.outcome, 'failed')
    assert.match(
      v.summary,
      /^the deploy of aaaaaaa failed while Flux applied it \(Kustomization\): .*HealthCheckFailed/,
    )
    assert.match(v.summary, /aaaaaaa stays pushed to origin\/main/)
    assert.match(v.hint!, /just rollback arr-stack/)
  })

  it('rolled back: exit 2, naming what failed and the revert that restored it', () => {
    const v = rolledBack(facts, [R], 'Flux applied it: all 12 objects Current')
    assert.equal(v.exitCode, 2)
    assert.equal(v.outcome, 'rolled-back')
    assert.match(
      v.summary,
      /failed while Flux applied it .*Rolled back: revert bbbbbbb pushed to origin\/main, and Flux applied it: all 12 objects Current\.$/,
    )
  })

  it('rollback failed: exit 3, with the state of the commits for each place it can stop', () => {
    const revert = rollbackFailed(facts, {
      step: 'revert',
      message: 'conflicts in x.yaml',
      reverts: [],
      revertsPushed: false,
      flux: 'Ready=False',
    })
    assert.equal(revert.exitCode, 3)
    assert.match(
      revert.summary,
      /no revert commit could be made \(conflicts in x\.yaml\)\. State: aaaaaaa is pushed to origin\/main and is what Flux is trying to apply; your branch has no revert\. Flux reports: Ready=False\./,
    )
    assert.match(revert.hint!, /git revert aaaaaaa/)

    const push = rollbackFailed(facts, { step: 'push', message: 'rejected twice', reverts: [R], revertsPushed: false })
    assert.equal(push.exitCode, 3)
    assert.match(
      push.summary,
      /the revert bbbbbbb is committed locally but could not be pushed \(rejected twice\)\. State: aaaaaaa is pushed/,
    )
    assert.match(push.hint!, /git pull --rebase && git push/)

    const reconcile = rollbackFailed(facts, {
      step: 'reconcile',
      message: 'Stalled',
      reverts: [R],
      revertsPushed: true,
    })
    assert.equal(reconcile.exitCode, 3)
    assert.match(
      reconcile.summary,
      /the revert bbbbbbb is pushed to origin\/main, but Flux did not apply it cleanly: Stalled/,
    )
    assert.match(reconcile.hint!, /flux reconcile kustomization arr-stack -n flux-system --with-source/)
  })

  it('pushed but unverified: exit 4, the commit stays and how to undo it', () => {
    const v = pushedUnverified('demo', 'origin/main', [A], 'Flux was not found on the cluster', 'install Flux.')
    assert.equal(v.exitCode, 4)
    assert.equal(v.outcome, 'pushed-unverified')
    assert.match(
      v.summary,
      /^aaaaaaa is pushed to origin\/main, but the deploy cannot be confirmed: Flux was not found on the cluster\. It stays pushed/,
    )
    assert.match(v.hint!, /install Flux\. Undo the push with `just rollback demo`\./)
  })

  it('a --rollback that fails: exit 3, saying whether the revert reached the remote', () => {
    const pushed = requestedRollbackFailed({
      ns: 'demo',
      remote: 'origin/main',
      reverted: A,
      reverts: [R],
      pushed: true,
      message: 'Flux did not apply the revert cleanly',
    })
    assert.equal(pushed.exitCode, 3)
    assert.match(pushed.summary, /State: the revert bbbbbbb is pushed to origin\/main\./)
    const local = requestedRollbackFailed({
      ns: 'demo',
      remote: 'origin/main',
      reverted: A,
      reverts: [R],
      pushed: false,
      message: 'the push failed',
    })
    assert.match(local.summary, /committed locally, not pushed/)
  })

  it('interrupted: exit 130 everywhere, and the state of the commits in each phase', () => {
    const state = { ns: 'demo', remote: 'origin/main', pushed: [] as string[], reverts: [] as string[] }
    const expected: Record<Phase, RegExp> = {
      'before-commit': /nothing was committed or pushed/,
      committing: /`git log -1` shows whether the commit was made; nothing was pushed/,
      committed: /the commit aaaaaaa is made locally and was not pushed\. Nothing is lost/,
      pushing: /while pushing to origin\/main/,
      pushed: /aaaaaaa is pushed to origin\/main; Flux applies it on its own/,
      reverting: /while reverting aaaaaaa/,
      reverted: /the revert bbbbbbb is committed locally and not pushed/,
      'pushing-revert': /while pushing the revert bbbbbbb/,
      'revert-pushed': /the revert bbbbbbb is pushed to origin\/main/,
    }
    for (const [phase, re] of Object.entries(expected) as [Phase, RegExp][]) {
      const after = ['before-commit', 'committing', 'committed'].includes(phase) ? [] : [A]
      const v = interrupted({
        ...state,
        phase,
        committed: A,
        pushed: after,
        reverts: phase.includes('revert') && phase !== 'reverting' ? [R] : [],
      })
      assert.equal(v.exitCode, 130, phase)
      assert.equal(v.outcome, 'interrupted')
      assert.match(v.summary, re, phase)
    }
    assert.match(interrupted({ ...state, phase: 'committed', committed: A }).hint!, /just deploy demo/)
  })
})
