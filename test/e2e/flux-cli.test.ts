// The real flux CLI (2.9.5, pinned and provisioned like every tool) as a peer of nsops on the
// same sim cluster, with the real source-controller and kustomize-controller: what nsops does
// shows in `flux get`, what `flux` does nsops respects, and `flux reconcile --with-source`
// works end to end.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { ObjectDiff } from '../../shared/apply/diff.ts'
import { DevLoop } from '../../shared/dev/loop.ts'
import { SUSPENDED_BY } from '../../shared/flux/index.ts'
import { DEMO, gitOpsWorld, settings, type GitOpsWorld } from './gitops-fixture.ts'
import { privateStateDir } from '../state-dir.ts'
import { fluxCli, type FluxCli } from '../flux-fixture.ts'
import { runDeployQuietly } from './deploy-fixture.ts'

describe('the flux CLI against sim, beside nsops', () => {
  let w: GitOpsWorld
  let flux: FluxCli
  const state = privateStateDir('nsops-flux-cli-state-')

  before(async () => {
    state.enter()
    w = await gitOpsWorld()
    flux = await fluxCli(w.kubeconfig)
    await w.waitApplied(await w.git$('rev-parse', 'HEAD'))
  })
  after(async () => {
    await w?.stop()
    state.leave()
  })

  it('is the pinned flux 2.9.5', async () => {
    const { stdout } = await flux.ok('version', '--client')
    assert.match(stdout, /flux: v?2\.9\.5/)
  })

  it('flux get shows the source stored by source-controller and the Kustomization applied by kustomize-controller', async () => {
    // flux shortens a revision's sha to 8 characters in its tables
    const short = `main@sha1:${(await w.git$('rev-parse', 'HEAD')).slice(0, 8)}`
    const src = await flux.get('sources', 'git', 'demo-src')
    assert.equal(src.name, 'demo-src')
    assert.equal(src.revision, short)
    assert.equal(src.ready, 'True')
    assert.match(src.message, /stored artifact for revision 'main@sha1:/)
    const ks = await flux.get('ks', DEMO)
    assert.deepEqual([ks.revision, ks.suspended, ks.ready], [short, 'False', 'True'])
  })

  it('flux reconcile ks --with-source fetches a pushed commit and applies it', async () => {
    w.write(`namespaces/${DEMO}/base/settings.yaml`, settings('prod-v2'))
    const sha = await w.commitAndPush('demo: prod v2')
    const r = await flux.run('reconcile', 'ks', DEMO, '--with-source', '--timeout', '90s')
    assert.equal(r.code, 0, r.stdout + r.stderr)
    assert.match(r.stdout + r.stderr, new RegExp(`applied revision main@sha1:${sha}`))
    assert.equal((await w.ks()).status?.lastAppliedRevision, `main@sha1:${sha}`)
    assert.equal(
      (await w.kube.core.readNamespacedConfigMap({ name: 'settings', namespace: DEMO })).data?.mode,
      'prod-v2',
    )
  })

  it("flux diff ks --path and nsops' deploy --dry-run (just diff) agree on what would change", async () => {
    const base = `namespaces/${DEMO}/base`
    w.write(`${base}/settings.yaml`, settings('not-yet'))
    w.write(`${base}/extra.yaml`, 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: extra }\ndata: { new: "yes" }\n')
    w.write(`${base}/kustomization.yaml`, 'resources: [web.yaml, settings.yaml, extra.yaml]\n')
    try {
      // flux exits 1 on drift and prints `► Kind/namespace/name created|drifted|deleted` per object
      const byFluxRun = await flux.run(
        'diff',
        'ks',
        DEMO,
        '--path',
        path.join(w.work, 'namespaces', DEMO, 'overlays', 'prod'),
      )
      assert.equal(byFluxRun.code, 1, byFluxRun.stdout + byFluxRun.stderr)
      const words: Record<string, string> = { created: 'create', drifted: 'update', deleted: 'delete' }
      const byFlux = Object.fromEntries(
        [...byFluxRun.stdout.matchAll(/^► (\S+) (created|drifted|deleted)$/gm)].map((m) => [m[1], words[m[2]]]),
      )
      const report = await runDeployQuietly({
        ns: w.ns,
        repoDir: w.work,
        dryRun: true,
        target: { kubeconfig: w.kubeconfig },
        timeoutMs: 60_000,
      })
      assert.equal(report.outcome, 'dry-run', report.summary)
      const diff = report.steps.find((st) => st.name === 'diff')?.detail?.objects as ObjectDiff[]
      const byNsops = Object.fromEntries(
        diff
          .filter((d) => d.action !== 'unchanged')
          .map((d) => [`${d.ref.kind}/${d.ref.namespace}/${d.ref.name}`, d.action]),
      )
      assert.deepEqual(byNsops, { [`ConfigMap/${DEMO}/settings`]: 'update', [`ConfigMap/${DEMO}/extra`]: 'create' })
      assert.deepEqual(byFlux, byNsops, byFluxRun.stdout)
    } finally {
      fs.rmSync(path.join(w.work, base, 'extra.yaml'), { force: true })
      await w.git$('checkout', '--', base)
    }
  })

  it("flux get ks shows a dev loop's hold while it runs, and the release after", async () => {
    // the whole-Kustomization hold (gitops-object-hold covers auto's per-object one)
    const loop = new DevLoop(w.kube, w.ns, { forwards: false, hold: { policy: 'kustomization' } })
    try {
      await loop.start()
      const held = await flux.get('ks', DEMO)
      assert.equal(held.suspended, 'True')
      assert.match((await w.ks()).metadata.annotations?.[SUSPENDED_BY] ?? '', /pid/)
    } finally {
      await loop.stop()
    }
    assert.equal((await flux.get('ks', DEMO)).suspended, 'False')
  })

  it('a `flux suspend` made before a dev loop is kept when the loop ends; `flux resume` brings it back Ready', async () => {
    const suspended = await flux.run('suspend', 'ks', DEMO)
    assert.equal(suspended.code, 0, suspended.stderr)
    const loop = new DevLoop(w.kube, w.ns, { forwards: false })
    try {
      await loop.start()
    } finally {
      await loop.stop()
    }
    assert.equal((await w.ks()).spec.suspend, true, 'nsops never resumes a suspension it did not make')
    assert.equal((await flux.get('ks', DEMO)).suspended, 'True')
    const resumed = await flux.run('resume', 'ks', DEMO, '--timeout', '90s')
    assert.equal(resumed.code, 0, resumed.stdout + resumed.stderr)
    const ks = await flux.get('ks', DEMO)
    assert.deepEqual([ks.suspended, ks.ready], ['False', 'True'])
  })
})
