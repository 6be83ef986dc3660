// The dev loop deletes nothing that is not only its own, against the real kustomize-controller
// with dev and prod in one namespace: a CRD Flux also applied stays when it leaves the dev
// overlay (and a CRD only the loop applied stays too, unless --prune-crds); on exit with a
// broken overlays/prod nothing that could be prod's is deleted, and `just dev-down` finishes
// once it builds; a loop whose Lease another loop took over (a laptop that slept) applies
// nothing more and deletes nothing on exit.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { CoordinationV1Api } from '@kubernetes/client-node'
import { DevLoop } from '../../shared/dev/loop.ts'
import { requestReconcileEach, reconcileSource } from '../../shared/flux/index.ts'
import { isApiError } from '../../shared/kube/client.ts'
import { until } from '../until.ts'
import { DEMO, gitOpsWorld, type GitOpsWorld } from './gitops-fixture.ts'
import { privateStateDir } from '../state-dir.ts'

const crd = (plural: string, kind: string) => `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: { name: ${plural}.demo.nsops.test }
spec:
  group: demo.nsops.test
  names: { kind: ${kind}, plural: ${plural}, singular: ${kind.toLowerCase()} }
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema: { openAPIV3Schema: { type: object, x-kubernetes-preserve-unknown-fields: true } }
`
const devOverlay = (...extra: string[]) =>
  `namespace: ${DEMO}\nresources: [../../base, dev-only.yaml${extra.map((e) => `, ${e}`).join('')}]\npatches:\n  - path: settings-dev.yaml\n  - target: { kind: Deployment, name: web }\n    patch: '[{"op": "replace", "path": "/spec/replicas", "value": 1}]'\n`
const prodOverlay = `namespace: ${DEMO}\nresources: [../../base, ../../crds, widget.yaml]\n`

describe('the dev loop deletes only what is its own alone (real kustomize-controller)', () => {
  let w: GitOpsWorld
  const state = privateStateDir('nsops-safety-state-')
  const sessionFile = () => path.join(state.dir, 'dev', `${DEMO}.json`)
  before(async () => {
    state.enter()
    w = await gitOpsWorld()
    // prod installs a CRD (and one resource of its kind); the dev overlay has the CRD too
    w.write(`namespaces/${DEMO}/crds/kustomization.yaml`, 'resources: [widgets.yaml]\n')
    w.write(`namespaces/${DEMO}/crds/widgets.yaml`, crd('widgets', 'Widget'))
    w.write(
      `namespaces/${DEMO}/overlays/prod/widget.yaml`,
      'apiVersion: demo.nsops.test/v1\nkind: Widget\nmetadata: { name: prod-widget }\nspec: { size: 3 }\n',
    )
    w.write(`namespaces/${DEMO}/overlays/prod/kustomization.yaml`, prodOverlay)
    w.write(`namespaces/${DEMO}/overlays/dev/gadgets.yaml`, crd('gadgets', 'Gadget'))
    const sha = await w.commitAndPush('demo: a CRD in prod')
    const src = await reconcileSource(
      w.kube,
      { namespace: 'flux-system', name: 'demo-src' },
      { revision: sha, timeoutMs: 60_000 },
    )
    assert.ok(src.ok, src.message)
    await requestReconcileEach(w.kube, [{ kind: 'Kustomization', namespace: 'flux-system', name: DEMO }])
    await w.waitApplied(sha)
  })
  after(async () => {
    await w?.stop()
    state.leave()
  })

  const exists = async (read: () => Promise<unknown>) =>
    read().then(
      () => true,
      (e) => (isApiError(e, 404) ? false : Promise.reject(e)),
    )
  const crdThere = (name: string) =>
    exists(() =>
      w.kube.custom.getClusterCustomObject({
        group: 'apiextensions.k8s.io',
        version: 'v1',
        plural: 'customresourcedefinitions',
        name,
      }),
    )
  const widgetThere = () =>
    exists(() =>
      w.kube.custom.getNamespacedCustomObject({
        group: 'demo.nsops.test',
        version: 'v1',
        plural: 'widgets',
        namespace: DEMO,
        name: 'prod-widget',
      }),
    )
  const configMapThere = (name: string) => exists(() => w.kube.core.readNamespacedConfigMap({ name, namespace: DEMO }))
  const deploymentThere = (name: string) =>
    exists(() => w.kube.apps.readNamespacedDeployment({ name, namespace: DEMO }))

  it('a CRD Flux also applied stays when it leaves the dev overlay; a CRD only the loop applied stays unless --prune-crds', async () => {
    w.write(`namespaces/${DEMO}/overlays/dev/kustomization.yaml`, devOverlay('../../crds', 'gadgets.yaml'))
    const loop = new DevLoop(w.kube, w.ns, { forwards: false, watch: false })
    let notes: string[] = []
    try {
      await loop.start()
      assert.equal(loop.status.phase, 'watching', loop.status.error)
      const managers = (
        (await w.kube.custom.getClusterCustomObject({
          group: 'apiextensions.k8s.io',
          version: 'v1',
          plural: 'customresourcedefinitions',
          name: 'widgets.demo.nsops.test',
        })) as { metadata: { managedFields: { manager: string }[] } }
      ).metadata.managedFields.map((m) => m.manager)
      assert.ok(managers.includes('kubectl-nsops-dev') && managers.includes('kustomize-controller'), managers.join())
      assert.equal(await crdThere('gadgets.demo.nsops.test'), true)
      // both CRDs leave the dev overlay; the next apply prunes what left the set
      w.write(`namespaces/${DEMO}/overlays/dev/kustomization.yaml`, devOverlay())
      await loop.apply('test: CRDs left the overlay')
      assert.equal(loop.status.lastApply?.pruned, 0)
      assert.equal(await crdThere('widgets.demo.nsops.test'), true, 'the CRD Flux also applied is kept')
      assert.equal(await widgetThere(), true, "prod's Widget is still there")
      assert.equal(await crdThere('gadgets.demo.nsops.test'), true, 'a dev loop never deletes a CRD by itself')
    } finally {
      notes = await loop.stop()
    }
    assert.equal(await crdThere('widgets.demo.nsops.test'), true)
    assert.equal(await crdThere('gadgets.demo.nsops.test'), true)
    assert.ok(
      notes.some((n) => /left CustomResourceDefinition.*gadgets.*never deletes a CustomResourceDefinition/.test(n)),
      notes.join('\n'),
    )

    // asked with the flag: the CRD only the loop applied goes; the shared one still stays
    w.write(`namespaces/${DEMO}/overlays/dev/kustomization.yaml`, devOverlay('../../crds', 'gadgets.yaml'))
    const asked = new DevLoop(w.kube, w.ns, { forwards: false, watch: false, pruneCrds: true })
    try {
      await asked.start()
      w.write(`namespaces/${DEMO}/overlays/dev/kustomization.yaml`, devOverlay())
      await asked.apply('test: CRDs left the overlay')
      // a CRD goes once the apiserver has removed its resources (its finalizer)
      await until('--prune-crds to delete the dev-only CRD', async () => !(await crdThere('gadgets.demo.nsops.test')))
      assert.equal(await crdThere('widgets.demo.nsops.test'), true, 'the shared CRD stays even so')
      assert.equal(await widgetThere(), true)
    } finally {
      await asked.stop()
    }
  })

  it("on exit with a broken overlays/prod nothing that could be prod's is deleted; just dev-down finishes once it builds", async () => {
    w.write(`namespaces/${DEMO}/overlays/dev/kustomization.yaml`, devOverlay())
    const loop = new DevLoop(w.kube, w.ns, { forwards: false, watch: false })
    let notes: string[] = []
    try {
      await loop.start()
      assert.equal(await configMapThere('dev-only'), true)
      // a half-edited prod overlay at the moment of Ctrl-C
      w.write(`namespaces/${DEMO}/overlays/prod/kustomization.yaml`, `${prodOverlay}  - missing.yaml\n`)
    } finally {
      notes = await loop.stop()
    }
    assert.ok(
      notes.some((n) => /overlays\/prod of demo does not build.*Fix overlays\/prod, then run `just dev-down`/.test(n)),
      notes.join('\n'),
    )
    assert.equal(await deploymentThere('web'), true, "prod's Deployment (held while the loop ran) is kept")
    assert.equal(await configMapThere('settings'), true, "prod's ConfigMap is kept")
    assert.equal(await configMapThere('dev-only'), true, "in prod's namespace: it could be prod's, so it stays")
    const session = JSON.parse(fs.readFileSync(sessionFile(), 'utf8')) as { kept?: boolean; unfinished?: string }
    assert.equal(session.kept, true, 'the session stays for dev-down to finish')
    assert.match(session.unfinished ?? '', /does not build/)

    // still broken, dev-down --prod-broken: only what is ours alone goes
    await new DevLoop(w.kube, w.ns).endKept({ prodBroken: true })
    assert.equal(await configMapThere('dev-only'), false, 'the dev-only object is deleted')
    assert.equal(await deploymentThere('web'), true, 'kustomize-controller manages it too: kept')
    assert.equal(await configMapThere('settings'), true, 'kustomize-controller manages it too: kept')
    assert.equal(fs.existsSync(sessionFile()), false)

    // again, and this time overlays/prod is fixed before dev-down
    const again = new DevLoop(w.kube, w.ns, { forwards: false, watch: false })
    w.write(`namespaces/${DEMO}/overlays/prod/kustomization.yaml`, prodOverlay)
    try {
      await again.start()
      w.write(`namespaces/${DEMO}/overlays/prod/kustomization.yaml`, `${prodOverlay}  - missing.yaml\n`)
    } finally {
      await again.stop()
    }
    assert.equal(await configMapThere('dev-only'), true)
    w.write(`namespaces/${DEMO}/overlays/prod/kustomization.yaml`, prodOverlay)
    await new DevLoop(w.kube, w.ns).endKept()
    assert.equal(await configMapThere('dev-only'), false)
    assert.equal(await deploymentThere('web'), true)
    assert.equal(await configMapThere('settings'), true)
    assert.equal(fs.existsSync(sessionFile()), false)
  })

  it('a loop whose Lease another loop took over (a laptop that slept) applies nothing after a save and deletes nothing on exit', async () => {
    w.write(`namespaces/${DEMO}/overlays/dev/kustomization.yaml`, devOverlay())
    const loop = new DevLoop(w.kube, w.ns, { forwards: false, debounceMs: 50 })
    const leases = w.kube.kc.makeApiClient(CoordinationV1Api)
    const name = `nsops-dev-${DEMO}`
    let notes: string[] = []
    try {
      await loop.start()
      assert.equal(loop.status.phase, 'watching', loop.status.error)
      // what another machine's loop does once this one's Lease expired: take it over
      const lease = await leases.readNamespacedLease({ name, namespace: 'default' })
      lease.spec!.holderIdentity = 'bo@other-machine/4242'
      lease.metadata!.annotations = {
        'nsops.dev/holder': JSON.stringify({
          user: 'bo',
          host: 'other-machine',
          pid: 4242,
          startedAt: new Date().toISOString(),
          namespace: DEMO,
        }),
      }
      await leases.replaceNamespacedLease({ name, namespace: 'default', body: lease })
      // the laptop wakes up and a file is saved
      w.write(
        `namespaces/${DEMO}/overlays/dev/dev-only.yaml`,
        'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: dev-only }\ndata: { debug: "after-sleep" }\n',
      )
      await until(
        'the loop to see it lost the Lease',
        async () => /now held by bo@other-machine/.test(loop.status.error ?? ''),
        30_000,
      )
      assert.equal(loop.status.phase, 'error')
      assert.equal(
        (await w.kube.core.readNamespacedConfigMap({ name: 'dev-only', namespace: DEMO })).data?.debug,
        'true',
        'the save was not applied',
      )
    } finally {
      notes = await loop.stop()
      w.write(
        `namespaces/${DEMO}/overlays/dev/dev-only.yaml`,
        'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: dev-only }\ndata: { debug: "true" }\n',
      )
    }
    assert.ok(
      notes.some((n) => /deleted nothing/.test(n)),
      notes.join('\n'),
    )
    assert.equal(await configMapThere('dev-only'), true, "the other loop's objects stay")
    const still = await leases.readNamespacedLease({ name, namespace: 'default' })
    assert.equal(still.spec?.holderIdentity, 'bo@other-machine/4242', "the other loop's Lease is left alone")
    await leases.deleteNamespacedLease({ name, namespace: 'default' })
  })
})
