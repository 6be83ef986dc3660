// The per-object Flux hold against the real kustomize-controller: dev and prod in one
// namespace, flux.hold `auto`. The loop marks exactly the objects its overlay shares with the
// Kustomization `kustomize.toolkit.fluxcd.io/reconcile: disabled`; Flux keeps applying the
// rest (a prod change pushed meanwhile lands on the other objects, not on the held one); on
// exit the marks go and Flux puts prod back. A value someone set by hand is never removed,
// and a hold a dead loop left (kill -9) is seen by the dashboard and released by dev-down.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import path from 'node:path'
import { promisify } from 'node:util'
import { after, before, describe, it } from 'node:test'
import { fluxSection } from '../../shared/dashboard/flux-section.ts'
import { DevLoop } from '../../shared/dev/loop.ts'
import {
  findObjectHolds,
  requestReconcile as requestReconcileOf,
  HELD_BY,
  HOLD_LABEL,
  RECONCILE_ANNOTATION,
} from '../../shared/flux/index.ts'
import { isApiError } from '../../shared/kube/client.ts'
import { repoRoot } from '../../shared/core/paths.ts'
import { toolPath } from '../../shared/tools/provision.ts'
import { until } from '../until.ts'
import { DEMO, gitOpsWorld, settings, startDevDriver, type GitOpsWorld } from './gitops-fixture.ts'
import { privateStateDir } from '../state-dir.ts'

const run = promisify(execFile)

describe('per-object Flux hold against the real kustomize-controller', () => {
  let w: GitOpsWorld
  let kubectl = ''
  const state = privateStateDir('nsops-object-hold-state-')
  const stateDir = state.dir
  before(async () => {
    state.enter()
    w = await gitOpsWorld()
    kubectl = await toolPath('kubectl')
    await w.waitApplied(await w.git$('rev-parse', 'HEAD'))
  })
  after(async () => {
    await w?.stop()
    state.leave()
  })

  const configMap = (name: string) => w.kube.core.readNamespacedConfigMap({ name, namespace: DEMO })
  const exists = (name: string) =>
    configMap(name).then(
      () => true,
      (e) => (isApiError(e, 404) ? false : Promise.reject(e)),
    )
  const mode = async () => (await configMap('settings')).data?.mode
  const replicas = async () =>
    (await w.kube.apps.readNamespacedDeployment({ name: 'web', namespace: DEMO })).spec?.replicas
  const annotations = async () => (await configMap('settings')).metadata?.annotations ?? {}
  const kubectl$ = (...args: string[]) => run(kubectl, ['--kubeconfig', w.kubeconfig, '-n', DEMO, ...args])
  const requestReconcile = () =>
    requestReconcileOf(w.kube, { kind: 'Kustomization', namespace: 'flux-system', name: DEMO })
  const handled = async () =>
    ((await w.ks()) as { status?: { lastHandledReconcileAt?: string } }).status?.lastHandledReconcileAt

  it('holds exactly the shared objects: a reconcile applies the rest, not the dev change; after exit prod is back', async () => {
    assert.equal(await mode(), 'prod-v1')
    const loop = new DevLoop(w.kube, w.ns, { forwards: false, watch: false })
    let notes: string[] = []
    let pushed = ''
    try {
      await loop.start()
      assert.notEqual((await w.ks()).spec.suspend, true, 'the Kustomization itself is not suspended')
      assert.match(
        loop.status.flux,
        /holds 2 objects \(.*ConfigMap\/demo\/settings.*\): one by one \(kustomize\.toolkit\.fluxcd\.io\/reconcile: disabled/,
      )
      assert.match(loop.status.flux, /Kustomization\/flux-system\/demo keeps applying the rest/)
      const a = await annotations()
      assert.equal(a[RECONCILE_ANNOTATION], 'disabled')
      assert.ok(a[HELD_BY], 'our marker is on it')
      assert.equal(
        (await configMap('dev-only')).metadata?.annotations?.[RECONCILE_ANNOTATION],
        undefined,
        'a dev-only object is not held: Flux does not manage it',
      )
      assert.equal(await mode(), 'dev')
      assert.equal(await replicas(), 1)

      // prod changes the held object and adds one the dev overlay does not have; Flux applies while the loop runs
      w.write(`namespaces/${DEMO}/base/settings.yaml`, settings('prod-v2'))
      w.write(
        `namespaces/${DEMO}/overlays/prod/extra.yaml`,
        'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: extra }\ndata: { from: prod }\n',
      )
      w.write(
        `namespaces/${DEMO}/overlays/prod/kustomization.yaml`,
        `namespace: ${DEMO}\nresources: [../../base, extra.yaml]\n`,
      )
      pushed = await w.commitAndPush('demo: prod v2 and an extra object')
      const { reconcileSource } = await import('../../shared/flux/index.ts')
      const src = await reconcileSource(
        w.kube,
        { namespace: 'flux-system', name: 'demo-src' },
        { revision: pushed, timeoutMs: 30_000 },
      )
      assert.ok(src.ok, src.message)
      await requestReconcile()
      await w.waitApplied(pushed)
      assert.equal(await exists('extra'), true, 'Flux still applies the objects the loop does not hold')
      assert.equal(await mode(), 'dev', 'the held object keeps the dev change')
      assert.equal(await replicas(), 1, 'the held Deployment keeps the dev replica count')
      // and once more, at the same revision (drift correction): still held
      const before = await handled()
      await requestReconcile()
      await until('the reconcile to be handled', async () => (await handled()) !== before)
      assert.equal(await mode(), 'dev')
    } finally {
      notes = await loop.stop()
    }
    assert.ok(
      notes.some((n) =>
        /released Flux's hold on 2 objects \(asked Kustomization\/flux-system\/demo to reconcile\)/.test(n),
      ),
      notes.join('\n'),
    )
    // no reconcile asked by the test: the release asked for it
    await until('Flux to put prod back', async () => (await mode()) === 'prod-v2' && (await replicas()) === 2, 60_000)
    const a = await annotations()
    assert.equal(a[RECONCILE_ANNOTATION], undefined)
    assert.equal(a[HELD_BY], undefined)
    assert.equal((await configMap('settings')).metadata?.labels?.[HOLD_LABEL], undefined)
    assert.equal(await exists('dev-only'), false, 'dev-only objects are gone')
  })

  it('a reconcile: disabled set by hand is never removed: before the loop, or set again during it', async () => {
    // set by hand before the loop: not ours, not marked, left as it is
    await kubectl$('annotate', 'deployment/web', `${RECONCILE_ANNOTATION}=disabled`)
    const loop = new DevLoop(w.kube, w.ns, { forwards: false, watch: false })
    let notes: string[] = []
    try {
      await loop.start()
      assert.match(
        loop.status.fluxWarnings?.join('\n') ?? '',
        /Deployment\/demo\/web is excluded from Flux by hand \(kustomize\.toolkit\.fluxcd\.io\/reconcile: disabled\)/,
      )
      assert.match(loop.status.flux, /holds 1 object \(ConfigMap\/demo\/settings\)/)
      // during the session someone removes the annotation and sets it again (kubectl annotate)
      await kubectl$('annotate', 'configmap/settings', `${RECONCILE_ANNOTATION}-`)
      await kubectl$('annotate', 'configmap/settings', `${RECONCILE_ANNOTATION}=disabled`)
    } finally {
      notes = await loop.stop()
    }
    assert.ok(
      notes.some((n) => /left ConfigMap\/demo\/settings excluded from Flux/.test(n)),
      notes.join('\n'),
    )
    const settingsNow = await configMap('settings')
    assert.equal(settingsNow.metadata?.annotations?.[RECONCILE_ANNOTATION], 'disabled', 'set by hand: kept')
    assert.equal(settingsNow.metadata?.annotations?.[HELD_BY], undefined, 'our marker is gone')
    const web = await w.kube.apps.readNamespacedDeployment({ name: 'web', namespace: DEMO })
    assert.equal(web.metadata?.annotations?.[RECONCILE_ANNOTATION], 'disabled', 'set by hand before the loop: kept')
    assert.equal(web.metadata?.annotations?.[HELD_BY], undefined)
    await kubectl$('annotate', 'configmap/settings', `${RECONCILE_ANNOTATION}-`)
    await kubectl$('annotate', 'deployment/web', `${RECONCILE_ANNOTATION}-`)
  })

  it('kill -9: the hold is stale; the dashboard shows it, the next loop takes it over, dev-down releases it', async () => {
    const driver = async () => {
      const child = await startDevDriver(w, 'auto', { ...process.env, NSOPS_STATE_DIR: stateDir })
      assert.equal(JSON.parse((await annotations())[HELD_BY]).pid, child.pid)
      child.kill('SIGKILL')
      await new Promise((r) => child.on('exit', r))
      return child.pid
    }
    const pid = await driver()
    assert.equal((await annotations())[RECONCILE_ANNOTATION], 'disabled', 'kill -9 leaves it held')
    const holds = await findObjectHolds(w.kube, w.ns)
    assert.deepEqual(
      holds.filter((h) => h.stale).map((h) => `${h.ref.kind}/${h.ref.name}`),
      ['ConfigMap/settings', 'Deployment/web'],
    )
    assert.deepEqual(
      holds[0].managers.map((m) => m.name),
      [DEMO],
      'found through the finder: the Kustomization whose inventory has it',
    )
    const dash = await fluxSection(w.kube, w.ns)
    assert.ok(
      dash.stale.some((s) => /ConfigMap\/demo\/settings held from Flux .*is gone/.test(s)),
      JSON.stringify(dash),
    )

    // the next loop takes it over in one patch: the annotation never leaves
    const loop = new DevLoop(w.kube, w.ns, { forwards: false, watch: false })
    try {
      await loop.start()
      assert.match(loop.status.flux, new RegExp(`took over a stale hold of ConfigMap/demo/settings \\(.*pid ${pid}`))
      assert.equal(JSON.parse((await annotations())[HELD_BY]).pid, process.pid)
    } finally {
      await loop.stop()
    }
    assert.equal(
      (await annotations())[RECONCILE_ANNOTATION],
      undefined,
      'released on exit: it was ours after the takeover',
    )

    // once more: kill -9, then `just dev-down` releases it
    await driver()
    const down = await run(path.join(repoRoot, 'shared/bin/nsops.ts'), ['dev-down', '--keep-cluster'], {
      env: { ...process.env, NSOPS_STATE_DIR: stateDir, NSOPS_KUBECONFIG: w.kubeconfig, CI: '1' },
    })
    assert.match(
      down.stderr + down.stdout,
      /released Flux's hold on ConfigMap\/demo\/settings, Deployment\/demo\/web \(held by a dev loop that is gone\)/,
    )
    assert.equal((await annotations())[RECONCILE_ANNOTATION], undefined)
    assert.equal((await annotations())[HELD_BY], undefined)
    await until('Flux to put prod back after dev-down', async () => (await mode()) === 'prod-v2', 60_000)
  })
})
