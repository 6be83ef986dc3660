// `just suspend`, `just resume` and `just reconcile` with the real flux CLI (2.9.5) as the
// peer that must agree: `flux get ks` shows what nsops did, and what a person did with `flux`
// nsops respects. Suspend and resume go through the user's door (`npx just …` on this repo's
// arr-stack, a Kustomization that applies its prod overlay on the suite's sim cluster); the
// reconcile needs the real controllers, so it runs on a GitOps world of its own (sim with
// source-controller and kustomize-controller, a git server) through the command's function.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { reconcile } from '../../shared/commands/reconcile.ts'
import { installFluxCrds, SUSPENDED_BY } from '../../shared/flux/index.ts'
import { testCluster, type TestCluster } from '../harness.ts'
import { privateStateDir } from '../state-dir.ts'
import { just } from '../just.ts'
import { createIdleKustomization, fluxCli, type FluxCli } from '../flux-fixture.ts'
import { gitOpsWorld, settings, type GitOpsWorld } from './gitops-fixture.ts'

const group = 'kustomize.toolkit.fluxcd.io'

describe('just suspend / resume beside the flux CLI (arr-stack on the sim)', () => {
  let cluster: TestCluster
  let flux: FluxCli
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-flux-verbs-'))
  const name = 'arr-stack'
  const ref = { group, version: 'v1', namespace: 'flux-system', plural: 'kustomizations', name }
  const ks = async () =>
    (await cluster.kube.custom.getNamespacedCustomObject(ref)) as {
      spec: { suspend?: boolean }
      metadata: { annotations?: Record<string, string> }
    }
  const nsops = (...args: string[]) =>
    just(args, { NSOPS_STATE_DIR: stateDir, NSOPS_KUBECONFIG: cluster.kubeconfig, KUBECONFIG: '' })
  const suspendedColumn = async () => (await flux.get('ks', name)).suspended

  before(async () => {
    cluster = await testCluster()
    flux = await fluxCli(cluster.kubeconfig)
    await installFluxCrds(cluster.kube)
    await cluster.kube.core.createNamespace({ body: { metadata: { name: 'flux-system' } } }).catch(() => {})
    // what applies namespaces/arr-stack/overlays/prod (no controller runs here: suspend and
    // resume are spec.suspend and nsops' marker, which flux get reads all the same)
    await createIdleKustomization(cluster.kube, name, {
      path: './namespaces/arr-stack/overlays/prod',
      source: 'absent',
    })
  })
  after(async () => {
    await cluster?.kube.custom.deleteNamespacedCustomObject(ref).catch(() => {})
    fs.rmSync(stateDir, { recursive: true, force: true })
  })

  it('just suspend: flux get ks shows it suspended; it outlives the process and just dev-down; the dashboard names it', async () => {
    const r = await nsops('suspend', name)
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stderr, /suspended Kustomization\/flux-system\/arr-stack/)
    assert.equal(await suspendedColumn(), 'True')
    const marker = JSON.parse((await ks()).metadata.annotations![SUSPENDED_BY]) as { command?: string }
    assert.equal(marker.command, 'suspend')
    // the process that suspended it has ended: a dev session's marker would be stale now and
    // dev-down would resume it; this one is meant to last
    const down = await nsops('dev-down', '--keep-cluster')
    assert.equal(down.code, 0, down.stderr)
    assert.equal(await suspendedColumn(), 'True', `dev-down leaves a just suspend in place:\n${down.stderr}`)
    const dash = await nsops('dashboard', name, '--json')
    assert.match(dash.stdout, /with `just suspend`/)
  })

  it('just resume ends it: flux get ks shows it resumed, the marker is gone', async () => {
    const r = await nsops('resume', name)
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stderr, /resumed Kustomization\/flux-system\/arr-stack \(suspended by .* with `just suspend`/)
    assert.equal(await suspendedColumn(), 'False')
    assert.equal((await ks()).metadata.annotations?.[SUSPENDED_BY], undefined)
  })

  it('a flux suspend by hand is not resumed — it says so, exit 1 — unless --force', async () => {
    await flux.ok('suspend', 'kustomization', name)
    const r = await nsops('resume', name)
    assert.equal(r.code, 1)
    assert.match(r.stderr, /Kustomization\/flux-system\/arr-stack stays suspended: it was suspended by hand/)
    assert.match(r.stderr, /hint: `just resume arr-stack --force`/)
    assert.equal(await suspendedColumn(), 'True')
    const forced = await nsops('resume', name, '--force')
    assert.equal(forced.code, 0, forced.stderr)
    assert.equal(await suspendedColumn(), 'False')
  })

  it('just suspend, then flux resume and flux suspend by hand: the suspension is theirs now', async () => {
    assert.equal((await nsops('suspend', name)).code, 0)
    await flux.ok('resume', 'kustomization', name, '--wait=false')
    await flux.ok('suspend', 'kustomization', name)
    const r = await nsops('resume', name)
    assert.equal(r.code, 1)
    assert.match(r.stderr, /stays suspended: it was suspended by hand/)
    assert.equal(await suspendedColumn(), 'True')
    await flux.ok('resume', 'kustomization', name, '--wait=false')
  })

  it('suspending what is already suspended by hand leaves it, and names it', async () => {
    await flux.ok('suspend', 'kustomization', name)
    const r = await nsops('suspend', name)
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stderr, /was already suspended by hand: left as it is/)
    await flux.ok('resume', 'kustomization', name, '--wait=false')
    assert.equal(await suspendedColumn(), 'False')
  })
})

describe('just reconcile --with-source with the real controllers, as flux reconcile ks --with-source', () => {
  let w: GitOpsWorld
  let flux: FluxCli
  const state = privateStateDir('nsops-flux-verbs-reconcile-')

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

  it('fetches the pushed commit and applies it now (the interval is 10m); flux get agrees on both revisions', async () => {
    w.write('namespaces/demo/base/settings.yaml', settings('prod-v2'))
    const sha = await w.commitAndPush('demo: v2')
    const code = await reconcile(w.ns, ['--with-source', '--timeout', '2m', '--kubeconfig', w.kubeconfig])
    assert.equal(code, 0)
    const short = `main@sha1:${sha.slice(0, 8)}`
    const src = await flux.get('sources', 'git', 'demo-src')
    assert.equal(src.revision, short)
    const k = await flux.get('ks', 'demo')
    assert.deepEqual([k.revision, k.suspended, k.ready], [short, 'False', 'True'])
    const cm = await w.kube.core.readNamespacedConfigMap({ name: 'settings', namespace: 'demo' })
    assert.equal(cm.data?.mode, 'prod-v2')
  })

  it('a suspended Kustomization is not reconciled: it says by whom, exit 1', async () => {
    await flux.ok('suspend', 'ks', 'demo')
    await assert.rejects(
      reconcile(w.ns, ['--timeout', '30s', '--kubeconfig', w.kubeconfig]),
      /Kustomization\/flux-system\/demo: resource is suspended \(by hand\)/,
    )
    await flux.ok('resume', 'ks', 'demo')
  })
})
