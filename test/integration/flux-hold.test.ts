// The dev loop's Flux hold decided against the real API and the real Flux CRDs, in the seed
// repo's layout: only the root `flux-system` Kustomization manages the namespace (its
// inventory lists the objects). `auto` holds the shared objects one by one — the root is
// never suspended for that, no flag needed; an inventory object that is not on the cluster
// cannot be marked, so only then the root would be suspended, and that needs --hold-root.
// No kustomize-controller here: gitops-object-hold shows the controller honouring the mark.
import assert from 'node:assert/strict'
import os from 'node:os'
import { after, before, describe, it } from 'node:test'
import { endKeptHolds, keepHold, releaseHold, takeHold } from '../../shared/dev/flux-hold.ts'
import type { DevSession } from '../../shared/dev/session.ts'
import {
  findObjectHolds,
  HELD_BY,
  installFluxCrds,
  RECONCILE_ANNOTATION,
  REQUESTED_AT,
  SUSPENDED_BY,
} from '../../shared/flux/index.ts'
import type { ManifestObject } from '../../shared/kustomize/build.ts'
import { defineNamespace } from '../../shared/config/namespace-config.ts'
import { testCluster, testNamespace, type TestCluster } from '../harness.ts'
import { createIdleKustomization } from '../flux-fixture.ts'

describe('Flux hold under the root flux-system', () => {
  let cluster: TestCluster
  let target: { name: string; cleanup: () => Promise<void> }
  const ROOT = {
    group: 'kustomize.toolkit.fluxcd.io',
    version: 'v1',
    namespace: 'flux-system',
    plural: 'kustomizations',
    name: 'flux-system',
  }
  const root = async () =>
    (await cluster.kube.custom.getNamespacedCustomObject(ROOT)) as {
      spec: { suspend?: boolean }
      metadata: { annotations?: Record<string, string> }
    }
  const session = (): DevSession => ({
    namespace: 'arr-stack',
    kubernetesNamespace: target.name,
    pid: process.pid,
    host: os.hostname(),
    user: 'test',
    context: cluster.kube.context,
    startedAt: new Date().toISOString(),
    forwards: [],
  })
  const ns = () =>
    defineNamespace({
      name: 'arr-stack',
      description: 'root layout',
      namespaces: { dev: target.name, prod: target.name },
    })
  const web = (): ManifestObject =>
    ({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: target.name } }) as ManifestObject
  const webNow = () => cluster.kube.apps.readNamespacedDeployment({ name: 'web', namespace: target.name })

  before(async () => {
    cluster = await testCluster()
    target = await testNamespace('hold-root')
    await installFluxCrds(cluster.kube)
    await cluster.kube.core.createNamespace({ body: { metadata: { name: 'flux-system' } } }).catch(() => {})
    const labels = { app: 'web' }
    await cluster.kube.apps.createNamespacedDeployment({
      namespace: target.name,
      body: {
        metadata: { name: 'web' },
        spec: {
          replicas: 1,
          selector: { matchLabels: labels },
          template: { metadata: { labels }, spec: { containers: [{ name: 'web', image: 'nginx' }] } },
        },
      },
    })
    await cluster.kube.core.createNamespacedConfigMap({
      namespace: target.name,
      body: { metadata: { name: 'other' }, data: { a: '1' } },
    })
    await createIdleKustomization(cluster.kube, 'flux-system', { path: './namespaces', source: 'absent' }, [
      `${target.name}_web_apps_Deployment`,
      `${target.name}_other__ConfigMap`,
      `${target.name}_gone__Service`,
    ])
  })
  after(async () => {
    await cluster?.kube.custom.deleteNamespacedCustomObject(ROOT).catch(() => {})
    await target?.cleanup()
  })

  it('holds exactly the shared live object, never the root, with no flag; released with a reconcile request', async () => {
    const hold = await takeHold(cluster.kube, ns(), session(), [web()])
    assert.deepEqual(hold.warnings, [])
    assert.deepEqual(hold.held, [], 'the root is not suspended')
    assert.deepEqual(
      hold.objects.map((o) => `${o.kind}/${o.name}`),
      ['Deployment/web'],
    )
    assert.match(
      hold.summary,
      new RegExp(
        `^holds 1 object \\(Deployment/${target.name}/web\\): one by one .*Kustomization/flux-system/flux-system keeps applying the rest`,
      ),
    )
    assert.notEqual((await root()).spec.suspend, true)
    const held = await webNow()
    assert.equal(held.metadata?.annotations?.[RECONCILE_ANNOTATION], 'disabled')
    assert.equal(JSON.parse(held.metadata!.annotations![HELD_BY]).token, hold.owner.token)
    const other = await cluster.kube.core.readNamespacedConfigMap({ name: 'other', namespace: target.name })
    assert.equal(
      other.metadata?.annotations?.[RECONCILE_ANNOTATION],
      undefined,
      'an object the dev overlay does not write is not held',
    )

    const notes = await releaseHold(cluster.kube, hold)
    assert.deepEqual(notes, [
      "released Flux's hold on 1 object (asked Kustomization/flux-system/flux-system to reconcile)",
    ])
    const released = await webNow()
    assert.equal(released.metadata?.annotations?.[RECONCILE_ANNOTATION], undefined)
    assert.equal(released.metadata?.annotations?.[HELD_BY], undefined)
    assert.ok((await root()).metadata.annotations?.[REQUESTED_AT], 'the root was asked to reconcile')
  })

  it('an inventory object not on the cluster cannot be marked: the root is suspended for it only with --hold-root', async () => {
    const gone = {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'gone', namespace: target.name },
    } as ManifestObject
    const refused = await takeHold(cluster.kube, ns(), session(), [gone])
    assert.deepEqual(refused.held, [])
    assert.match(
      refused.warnings.join('\n'),
      new RegExp(
        `root Kustomization/flux-system/flux-system manages \\(its inventory lists Service/${target.name}/gone, not on the cluster: nothing to mark\\); it is not suspended .*--hold-root`,
      ),
    )
    assert.notEqual((await root()).spec.suspend, true)

    const hold = await takeHold(cluster.kube, ns(), session(), [gone], { holdRoot: true })
    assert.deepEqual(
      hold.held.map((h) => h.name),
      ['flux-system'],
    )
    assert.match(
      hold.summary,
      /suspended Kustomization\/flux-system\/flux-system \(its inventory lists Service\/.*\/gone, not on the cluster/,
    )
    assert.equal((await root()).spec.suspend, true)
    assert.deepEqual(await releaseHold(cluster.kube, hold), ['resumed Flux Kustomization/flux-system/flux-system'])
    const after = await root()
    assert.notEqual(after.spec.suspend, true)
    assert.equal(after.metadata.annotations?.[SUSPENDED_BY], undefined)
  })

  it('dev --ci keeps the hold: marked kept (not stale once the process is gone), ended by just dev-down', async () => {
    const hold = await takeHold(cluster.kube, ns(), session(), [web()])
    assert.deepEqual(await keepHold(cluster.kube, hold), [
      `kept the Flux hold on 1 object (Deployment/${target.name}/web)`,
    ])
    const kept = JSON.parse((await webNow()).metadata!.annotations![HELD_BY])
    assert.equal(kept.kept, true)
    const found = await findObjectHolds(cluster.kube, ns())
    assert.deepEqual(
      found.map((h) => [h.ref.name, h.stale]),
      [['web', undefined]],
      'a kept hold is not stale',
    )
    // what `just dev-down` runs for the kept session of the namespace
    assert.deepEqual(await endKeptHolds(cluster.kube, ns()), ["released Flux's hold on 1 object"])
    assert.equal((await webNow()).metadata?.annotations?.[RECONCILE_ANNOTATION], undefined)
  })
})
