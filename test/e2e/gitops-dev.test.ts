// dev.ts against the real kustomize-controller: its suspension holds back a prod change
// pushed meanwhile, the dev overlay's changes stay; on exit Flux resumes, puts prod state back
// and dev-only objects are gone. A kill -9 leaves a stale suspension that the next dev loop,
// the dashboard and `just dev-down` detect; dev-down resumes it.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { after, before, describe, it } from 'node:test'
import { fluxSection } from '../../shared/dashboard/flux-section.ts'
import { DevLoop } from '../../shared/dev/loop.ts'
import { findStaleSuspensions, reconcileSource, REQUESTED_AT, SUSPENDED_BY } from '../../shared/flux/index.ts'
import { isApiError } from '../../shared/kube/client.ts'
import { repoRoot } from '../../shared/core/paths.ts'
import { bootstrapLocalGitOps, LOCAL_REMOTE } from '../../shared/cluster/sim/local-remote.ts'
import { DEMO, gitOpsWorld, settings, startDevDriver, type GitOpsWorld } from './gitops-fixture.ts'
import { privateStateDir } from '../state-dir.ts'

const run = promisify(execFile)

describe('dev loop against the real kustomize-controller', () => {
  let w: GitOpsWorld
  const state = privateStateDir('nsops-gitops-dev-state-')
  const stateDir = state.dir
  before(async () => {
    state.enter()
    w = await gitOpsWorld()
    // these tests are about the whole-Kustomization hold; gitops-object-hold covers `auto`
    w.ns.flux.hold = 'kustomization'
    await w.waitApplied(await w.git$('rev-parse', 'HEAD'))
  })
  after(async () => {
    await w?.stop()
    state.leave()
  })

  const mode = async () => (await w.kube.core.readNamespacedConfigMap({ name: 'settings', namespace: DEMO })).data?.mode
  const devOnlyExists = () =>
    w.kube.core.readNamespacedConfigMap({ name: 'dev-only', namespace: DEMO }).then(
      () => true,
      (e) => (isApiError(e, 404) ? false : Promise.reject(e)),
    )

  it('holds back a pushed prod change while it runs and hands back to Flux on exit', async () => {
    assert.equal(await mode(), 'prod-v1')
    const loop = new DevLoop(w.kube, w.ns, { forwards: false })
    let notes: string[] = []
    let pushed = ''
    try {
      await loop.start()
      assert.equal((await w.ks()).spec.suspend, true)
      assert.equal(await mode(), 'dev')
      assert.equal(await devOnlyExists(), true)

      // a prod change reaches the remote and the source while dev.ts runs
      w.write(`namespaces/${DEMO}/base/settings.yaml`, settings('prod-v2'))
      pushed = await w.commitAndPush('demo: prod v2')
      const src = await reconcileSource(
        w.kube,
        { namespace: 'flux-system', name: 'demo-src' },
        { revision: pushed, timeoutMs: 30_000 },
      )
      assert.ok(src.ok, src.message)
      // ask the controller too: a suspended Kustomization must ignore it
      await w.kube.custom.patchNamespacedCustomObject({
        group: 'kustomize.toolkit.fluxcd.io',
        version: 'v1',
        namespace: 'flux-system',
        plural: 'kustomizations',
        name: DEMO,
        body: [
          {
            op: 'add',
            path: `/metadata/annotations/${REQUESTED_AT.replace('/', '~1')}`,
            value: new Date().toISOString(),
          },
        ],
      })
      await new Promise((r) => setTimeout(r, 4000))
      assert.equal(await mode(), 'dev', 'the suspension holds: prod v2 is not applied')
      assert.equal((await w.ks()).status?.lastAppliedRevision?.endsWith(pushed), false)
    } finally {
      notes = await loop.stop()
    }
    assert.ok(
      notes.some((n) => /resumed Flux/.test(n)),
      notes.join('\n'),
    )
    await w.waitApplied(pushed)
    assert.equal(await mode(), 'prod-v2', 'Flux put prod state back, with the change pushed meanwhile')
    assert.equal(await devOnlyExists(), false, 'dev-only objects are gone')
    const dep = await w.kube.apps.readNamespacedDeployment({ name: 'web', namespace: DEMO })
    assert.equal(dep.spec?.replicas, 2, "prod's replica count is back")
  })

  it('after kill -9, the stale suspension is seen by the dashboard and the next dev loop, and dev-down resumes it', async () => {
    const driver = () => startDevDriver(w, 'kustomization', { ...process.env, NSOPS_STATE_DIR: stateDir })
    const killed = async () => {
      const child = await driver()
      assert.equal(JSON.parse((await w.ks()).metadata.annotations![SUSPENDED_BY]).pid, child.pid)
      child.kill('SIGKILL')
      await new Promise((r) => child.on('exit', r))
      return child.pid
    }

    const pid = await killed()
    assert.equal((await w.ks()).spec.suspend, true, 'kill -9 leaves it suspended')
    const stale = await findStaleSuspensions(w.kube)
    assert.ok(
      stale.some((s) => s.name === DEMO && /is gone/.test(s.reason)),
      JSON.stringify(stale),
    )
    const dash = await fluxSection(w.kube, w.ns)
    assert.ok(
      dash.stale.some((s) => s.includes(DEMO)),
      JSON.stringify(dash),
    )
    assert.ok(dash.problems.some((p) => /stale Flux suspension/.test(p)))

    // the next dev loop takes it over, and resumes it on exit
    const loop = new DevLoop(w.kube, w.ns, { forwards: false })
    try {
      await loop.start()
      assert.match(loop.status.flux, new RegExp(`took over a stale suspension .*pid ${pid}`))
    } finally {
      await loop.stop()
    }
    assert.equal((await w.ks()).spec.suspend, false)

    // and once more: kill -9, then `just dev-down` resumes it
    await killed()
    const down = await run(path.join(repoRoot, 'shared/bin/nsops.ts'), ['dev-down', '--keep-cluster'], {
      env: { ...process.env, NSOPS_STATE_DIR: stateDir, NSOPS_KUBECONFIG: w.kubeconfig, CI: '1' },
    })
    assert.match(down.stderr, /resumed Flux Kustomization\/flux-system\/demo/)
    const ks = await w.ks()
    assert.equal(ks.spec.suspend, false)
    assert.equal(ks.metadata.annotations?.[SUSPENDED_BY], undefined)
  })

  it("dev-up's local GitOps: a nsops-local remote on the cluster's git server that Flux reads", async () => {
    const clone = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-local-remote-'))
    try {
      await run('git', ['clone', '-q', w.work, clone])
      await run('git', ['-C', clone, 'branch', '--unset-upstream'])
      const r = await bootstrapLocalGitOps(w.kube, w.kubeconfig, clone)
      assert.equal(r.branch, 'main')
      assert.match(r.upstreamNote, /now tracks nsops-local\/main/)
      const head = (await run('git', ['-C', clone, 'rev-parse', 'HEAD'])).stdout.trim()
      const remote = (await run('git', ['-C', clone, 'ls-remote', LOCAL_REMOTE, 'refs/heads/main'])).stdout.split(
        /\s/,
      )[0]
      assert.equal(remote, head, "the branch is on the cluster's git server")
      const src = await reconcileSource(
        w.kube,
        { namespace: 'flux-system', name: 'nsops' },
        { revision: head, timeoutMs: 30_000 },
      )
      assert.ok(src.ok, src.message)
    } finally {
      fs.rmSync(clone, { recursive: true, force: true })
    }
  })
})
