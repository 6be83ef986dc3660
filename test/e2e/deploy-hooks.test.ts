// The deploy hooks of namespace.ts, end to end with the real kustomize-controller reading a
// real git server: a failing beforeCommit stops the deploy before anything is committed
// (exit 1); one that writes outside the namespace's folder is refused; one that rewrites a
// file under the folder (as `sops --encrypt` does) has that rewrite validated, committed and
// applied by Flux; an afterDeploy smoke test (kubectl against the prod namespace) that fails
// rolls the deploy back (exit 2).
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { DeployOptions } from '../../shared/deploy/flow.ts'
import { stateDir } from '../../shared/core/paths.ts'
import type { Hooks } from '../../shared/config/task-types.ts'
import { DEMO, gitOpsWorld, settings, type GitOpsWorld } from './gitops-fixture.ts'
import { deployWorld } from './deploy-fixture.ts'

const SETTINGS = `namespaces/${DEMO}/base/settings.yaml`

describe('deploy hooks against the real kustomize-controller', () => {
  let w: GitOpsWorld
  before(async () => {
    w = await gitOpsWorld()
    await w.waitApplied(await w.git$('rev-parse', 'HEAD'))
  })
  after(async () => {
    await w?.stop()
    // the hooks' own logs (.nsops/tasks/demo/hook-*.log) are this file's only trace
    for (const hook of ['beforeCommit', 'afterDeploy'])
      fs.rmSync(path.join(stateDir(), 'tasks', DEMO, `hook-${hook}.log`), { force: true })
    try {
      fs.rmdirSync(path.join(stateDir(), 'tasks', DEMO))
    } catch {
      /* another test's logs are still there */
    }
  })

  const deploy = (hooks: Hooks, extra: Partial<DeployOptions> = {}) =>
    deployWorld(w, { ns: { ...w.ns, hooks }, ...extra })
  const mode = async () => (await w.kube.core.readNamespacedConfigMap({ name: 'settings', namespace: DEMO })).data?.mode
  const remoteHead = async () => (await w.git$('ls-remote', 'origin', 'refs/heads/main')).split(/\s/)[0]
  const steps = (r: { steps: { name: string; status: string; message: string }[] }) =>
    JSON.stringify(r.steps.map((s) => [s.name, s.status, s.message]))

  it('a failing beforeCommit stops the deploy with its name and output: nothing committed or pushed (exit 1)', async () => {
    w.write(SETTINGS, settings('hook-fails'))
    const head = await w.git$('rev-parse', 'HEAD')
    try {
      const r = await deploy({
        beforeCommit: async ({ $ }) => {
          await $`echo "sops: no key found for this recipient" >&2; exit 3`
        },
      })
      assert.equal(r.exitCode, 1, `${r.outcome}: ${r.summary}`)
      assert.equal(r.outcome, 'refused')
      assert.match(
        r.summary,
        /the beforeCommit hook of demo failed \(a command exited with code 3\), so nothing was committed or pushed/,
      )
      assert.match(r.summary, /sops: no key found for this recipient/)
      assert.match(r.hint ?? '', /hook-beforeCommit\.log/)
      assert.equal(await w.git$('rev-parse', 'HEAD'), head, 'nothing committed')
      assert.equal(await remoteHead(), head, 'nothing pushed')
      assert.equal(r.hooks?.[0]?.hook, 'beforeCommit')
      assert.equal(r.hooks?.[0]?.ok, false)
      assert.equal(r.hooks?.[0]?.exitCode, 3)
      assert.ok(!r.steps.some((s) => s.name === 'commit' || s.name === 'push'), steps(r))
    } finally {
      await w.git$('checkout', '-q', '--', SETTINGS)
    }
  })

  it("a beforeCommit that changes a file outside the namespace's folder is refused: nothing committed or pushed (exit 1)", async () => {
    w.write(SETTINGS, settings('writes-outside'))
    const head = await w.git$('rev-parse', 'HEAD')
    try {
      const r = await deploy({
        beforeCommit: async ({ $ }) => {
          await $`echo stray > ../../stray.txt`
        },
      })
      assert.equal(r.exitCode, 1, `${r.outcome}: ${r.summary}`)
      assert.match(
        r.summary,
        /the beforeCommit hook of demo changed files outside namespaces\/demo\/ \(stray\.txt\).*nothing was committed or pushed/,
      )
      assert.equal(await w.git$('rev-parse', 'HEAD'), head, 'nothing committed')
      assert.equal(await remoteHead(), head, 'nothing pushed')
    } finally {
      fs.rmSync(path.join(w.work, 'stray.txt'), { force: true })
      await w.git$('checkout', '-q', '--', SETTINGS)
    }
  })

  it('what beforeCommit rewrites under the namespace is validated again, committed and applied; afterDeploy gets the pushed revision (exit 0)', async () => {
    w.write(SETTINGS, settings('plain'))
    let told: string[] = []
    let revision = ''
    const r = await deploy({
      // stands in for `sops --encrypt --in-place`: rewrites the file about to be committed
      beforeCommit: async ({ $, files }) => {
        told = files
        await $`sed -i s/plain/sealed/ base/settings.yaml`
      },
      afterDeploy: async (ctx) => {
        revision = ctx.revision
        await ctx.$`kubectl -n ${ctx.namespace} get configmap settings`
      },
    })
    assert.equal(r.exitCode, 0, `${r.outcome}: ${r.summary}\n${steps(r)}`)
    assert.deepEqual(told, ['base/settings.yaml'], 'the hook is told what is about to be committed')
    const head = await w.git$('rev-parse', 'HEAD')
    assert.equal(await remoteHead(), head)
    assert.match(await w.git$('show', `HEAD:${SETTINGS}`), /mode: sealed/, 'the rewrite is what was committed')
    assert.equal(await mode(), 'sealed', 'and what Flux applied')
    const names = r.steps.map((s) => s.name)
    assert.ok(
      names.indexOf('revalidate') > names.indexOf('before-commit') &&
        names.indexOf('revalidate') < names.indexOf('commit'),
      steps(r),
    )
    assert.ok(names.indexOf('after-deploy') > names.indexOf('reconcile'), steps(r))
    assert.equal(revision, head)
    assert.deepEqual(
      r.hooks?.map((h) => [h.hook, h.ok]),
      [
        ['beforeCommit', true],
        ['afterDeploy', true],
      ],
    )
    assert.deepEqual(r.hooks?.[0]?.files, [SETTINGS])
    assert.ok(
      r.hooks?.[1]?.output.some((l) => /^\$ kubectl -n demo get configmap settings/.test(l)),
      JSON.stringify(r.hooks?.[1]?.output),
    )
  })

  it('an afterDeploy smoke test that fails rolls the deploy back like a health failure (exit 2)', async () => {
    const good = await w.git$('rev-parse', 'HEAD')
    w.write(SETTINGS, settings('smoke-fails'))
    const r = await deploy({
      // the smoke test reads the prod namespace with the pinned kubectl through the pinned kubeconfig
      afterDeploy: async ({ $, namespace }) => {
        const m = (await $`kubectl -n ${namespace} get configmap settings -o jsonpath={.data.mode}`).stdout.trim()
        await $`echo "smoke test sees mode=${m}"; test ${m} != smoke-fails`
      },
    })
    assert.equal(r.exitCode, 2, `${r.outcome}: ${r.summary}\n${steps(r)}`)
    assert.equal(r.outcome, 'rolled-back')
    assert.match(
      r.summary,
      /failed after Flux applied it and it was healthy: the afterDeploy hook failed \(a command exited with code 1\), its last output: "smoke test sees mode=smoke-fails"/,
    )
    assert.equal(r.hooks?.[0]?.hook, 'afterDeploy')
    assert.equal(r.hooks?.[0]?.ok, false)
    const log = (await w.git$('log', '--format=%s', `${good}..HEAD`)).split('\n')
    assert.equal(log.length, 2, log.join(' | '))
    assert.match(log[0], /revert/i)
    const head = await w.git$('rev-parse', 'HEAD')
    assert.equal(await remoteHead(), head, 'the revert is pushed')
    await w.waitApplied(head)
    assert.equal(await mode(), 'sealed', 'Flux brought the previous revision back')
  })
})
