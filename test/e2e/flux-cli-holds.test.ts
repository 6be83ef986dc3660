// nsops and the real flux CLI acting on the same Kustomization, in every order a person
// mixes them: a suspension made by hand is never resumed by nsops, whatever happened in
// between. The CLI makes its own patches (flux2 cmd/flux/suspend.go, resume.go: spec.suspend
// flipped, our annotation left in place), so the marker's generation is what tells them apart.
// Also: only a root flux-system that includes overlays/prod (the seed repo's layout) is
// "managed by the root", shown by the dashboard and not refused by dev.ts.
import assert from 'node:assert/strict'
import { execFile, spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { after, before, describe, it } from 'node:test'
import { DevLoop } from '../../shared/dev/loop.ts'
import { refreshHold } from '../../shared/dev/flux-hold.ts'
import { currentOwner, findManagers, installFluxCrds, suspendFor, SUSPENDED_BY } from '../../shared/flux/index.ts'
import { defineNamespace } from '../../shared/config/namespace-config.ts'
import { repoRoot } from '../../shared/core/paths.ts'
import { toolPath } from '../../shared/tools/provision.ts'
import { testCluster, type TestCluster } from '../harness.ts'
import { createIdleKustomization } from '../flux-fixture.ts'

const run = promisify(execFile)
const group = 'kustomize.toolkit.fluxcd.io'

describe('holds next to the real flux CLI', () => {
  let cluster: TestCluster
  let flux = ''
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-fluxcli-state-'))
  const savedState = process.env.NSOPS_STATE_DIR
  const name = `holds-${process.pid}`
  // dev and prod in one namespace: the dev overlay writes what the Kustomization manages
  const ns = defineNamespace({
    name: 'arr-stack',
    description: 'hold test',
    namespaces: { dev: 'arr-stack-dev', prod: 'arr-stack-dev' },
    flux: { kustomization: name, hold: 'kustomization' },
  })
  const ref = { group, version: 'v1', namespace: 'flux-system', plural: 'kustomizations', name }
  const ks = async () =>
    (await cluster.kube.custom.getNamespacedCustomObject(ref)) as {
      spec: { suspend?: boolean }
      metadata: { generation: number; annotations?: Record<string, string> }
    }
  const fluxCli = (...args: string[]) =>
    run(flux, [...args, '-n', 'flux-system', '--kubeconfig', cluster.kubeconfig], { timeout: 60_000 })
  const deadPid = async () => {
    const p = spawn(process.execPath, ['-e', ''])
    await new Promise((r) => p.on('exit', r))
    return p.pid!
  }
  const nsopsDevDown = () =>
    run(path.join(repoRoot, 'shared/bin/nsops.ts'), ['dev-down', '--keep-cluster'], {
      env: { ...process.env, NSOPS_STATE_DIR: stateDir, NSOPS_KUBECONFIG: cluster.kubeconfig, CI: '1' },
    })

  before(async () => {
    process.env.NSOPS_STATE_DIR = stateDir
    cluster = await testCluster()
    flux = await toolPath('flux')
    await installFluxCrds(cluster.kube)
    await cluster.kube.core.createNamespace({ body: { metadata: { name: 'flux-system' } } }).catch(() => {})
    await cluster.kube.custom.createNamespacedCustomObject({
      ...ref,
      body: {
        apiVersion: `${group}/v1`,
        kind: 'Kustomization',
        metadata: { name, namespace: 'flux-system' },
        spec: {
          interval: '10m',
          path: './namespaces/arr-stack/overlays/prod',
          prune: true,
          targetNamespace: 'arr-stack-dev',
          sourceRef: { kind: 'GitRepository', name: 'absent' },
        },
      },
    })
  })
  after(async () => {
    await cluster?.kube.custom.deleteNamespacedCustomObject(ref).catch(() => {})
    await cluster?.kube.core.deleteNamespace({ name: 'arr-stack-dev' }).catch(() => {})
    fs.rmSync(stateDir, { recursive: true, force: true })
    if (savedState === undefined) delete process.env.NSOPS_STATE_DIR
    else process.env.NSOPS_STATE_DIR = savedState
  })

  it('loop dies, then flux resume + flux suspend by hand: just dev-down leaves it suspended', async () => {
    // the state a dev loop killed with -9 leaves: our marker, a pid that is gone
    await suspendFor(cluster.kube, [{ kind: 'Kustomization', namespace: 'flux-system', name }], {
      ...currentOwner('dead-session'),
      pid: await deadPid(),
    })
    assert.equal((await ks()).spec.suspend, true)
    await fluxCli('resume', 'kustomization', name, '--wait=false')
    await fluxCli('suspend', 'kustomization', name)
    const before = await ks()
    assert.equal(before.spec.suspend, true)
    assert.ok(before.metadata.annotations?.[SUSPENDED_BY], 'the flux CLI leaves our annotation in place')
    const down = await nsopsDevDown()
    assert.doesNotMatch(down.stderr, /resumed Flux Kustomization\/flux-system\/holds/)
    const k = await ks()
    assert.equal(k.spec.suspend, true, 'the suspension made by hand is kept')
    assert.equal(k.metadata.annotations?.[SUSPENDED_BY], undefined, 'our stale note is gone: it reads "by hand" now')
    // flux get ks shows it suspended, as the person left it
    assert.match((await fluxCli('get', 'kustomizations', name)).stdout, new RegExp(`${name}\\s.*True`))
    await fluxCli('resume', 'kustomization', name, '--wait=false')
  })

  it('a suspension made with flux suspend before a dev loop is kept, also after the loop', async () => {
    await fluxCli('suspend', 'kustomization', name)
    const loop = new DevLoop(cluster.kube, ns, { forwards: false })
    try {
      await loop.start()
      assert.match(
        loop.status.fluxWarnings?.join('\n') ?? '',
        new RegExp(`Kustomization/flux-system/${name} was already suspended by hand`),
      )
    } finally {
      await loop.stop()
    }
    assert.equal((await ks()).spec.suspend, true)
    await fluxCli('resume', 'kustomization', name, '--wait=false')
  })

  it('resumed by hand during the session: the refresh never re-suspends it, and the exit leaves it alone', async () => {
    const loop = new DevLoop(cluster.kube, ns, { forwards: false })
    try {
      await loop.start()
      assert.equal((await ks()).spec.suspend, true)
      await fluxCli('resume', 'kustomization', name, '--wait=false')
      const hold = (loop as unknown as { flux: Parameters<typeof refreshHold>[1] }).flux
      const lost = await refreshHold(cluster.kube, hold) // what the 30-minute timer runs
      assert.deepEqual(
        lost.map((l) => l.name),
        [name],
      )
      assert.notEqual((await ks()).spec.suspend, true, 'not re-suspended')
      await fluxCli('suspend', 'kustomization', name)
    } finally {
      await loop.stop()
    }
    assert.equal((await ks()).spec.suspend, true, 'suspended by hand after the resume: kept on exit')
    await fluxCli('resume', 'kustomization', name, '--wait=false')
  })

  it('a stale hold is taken over in one patch: never resumed in between', async () => {
    await suspendFor(cluster.kube, [{ kind: 'Kustomization', namespace: 'flux-system', name }], {
      ...currentOwner('dead-session'),
      pid: await deadPid(),
    })
    const gen = (await ks()).metadata.generation
    const loop = new DevLoop(cluster.kube, ns, { forwards: false })
    try {
      await loop.start()
      assert.match(loop.status.flux, /took over a stale suspension/)
      const k = await ks()
      assert.equal(k.spec.suspend, true)
      assert.equal(k.metadata.generation, gen, 'no resume and re-suspend happened (each would bump the generation)')
      assert.equal(JSON.parse(k.metadata.annotations![SUSPENDED_BY]).pid, process.pid)
    } finally {
      await loop.stop()
    }
    assert.notEqual((await ks()).spec.suspend, true, 'released on exit: it was ours after the takeover')
  })

  it('only a root flux-system that includes overlays/prod: found as the manager, the dashboard shows it', async () => {
    const root = { group, version: 'v1', namespace: 'flux-system', plural: 'kustomizations', name: 'flux-system' }
    // no kustomization.yaml in namespaces/: kustomize-controller takes in every folder below
    await createIdleKustomization(cluster.kube, 'flux-system', { path: './namespaces', source: 'absent' })
    try {
      const monitoring = defineNamespace({
        name: 'monitoring',
        description: 'root only',
        namespaces: { dev: 'monitoring-dev', prod: 'monitoring' },
        flux: { kustomization: 'no-such-ks' },
      })
      const m = await findManagers(cluster.kube, monitoring)
      assert.equal(m.state, 'managed')
      assert.deepEqual(m.state === 'managed' && m.managers.map((x) => [x.kustomization.metadata.name, x.by, x.root]), [
        ['flux-system', 'path', true],
      ])
      const dash = await run(
        path.join(repoRoot, 'namespaces/monitoring/dashboard.ts'),
        ['--json', '--kubeconfig', cluster.kubeconfig],
        { env: { ...process.env, CI: '1', NSOPS_STATE_DIR: stateDir } },
      ).then(
        (r) => ({ code: 0, ...r }),
        (e: { code: number; stdout: string; stderr: string }) => e,
      )
      assert.notEqual(dash.code, 1, dash.stderr)
      const flux = JSON.parse(dash.stdout).flux
      assert.ok(
        flux.objects.some((o: { name: string }) => o.name === 'flux-system'),
        JSON.stringify(flux),
      )
    } finally {
      await cluster.kube.custom.deleteNamespacedCustomObject(root).catch(() => {})
    }
  })
})
