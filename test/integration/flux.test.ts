// The Flux module against the real Flux CRDs in the sim cluster: CRD install, finding a
// namespace's own objects, suspend/resume with an ownership marker, stale suspensions, and
// reconcile with its fail-fast rules. There is no kustomize-controller or source-controller
// in these tests: where a controller would answer a reconcile request, the test plays the
// controller itself by writing `status` through the status subresource after it has seen
// the reconcile.fluxcd.io/requestedAt annotation, exactly as the controller's finalizeStatus
// does (research/anchors.md Part 1 §2).
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import os from 'node:os'
import { after, before, describe, it } from 'node:test'
import { ApiextensionsV1Api, PatchStrategy, Watch, setHeaderOptions } from '@kubernetes/client-node'
import { NsopsError } from '../../shared/core/errors.ts'
import {
  currentOwner,
  findManagers,
  findStaleSuspensions,
  fluxCrdBundle,
  handledSince,
  fluxStatus,
  installFluxCrds,
  reconcileAndWait,
  reconcileSource,
  resumeOwned,
  resumeStale,
  revisionMatches,
  suspendFor,
  FLUX_FIELD_MANAGER,
  REQUESTED_AT,
  SUSPENDED_BY,
  type FluxCrdInstall,
  type FluxKind,
  type FluxObject,
  type FluxRef,
} from '../../shared/flux/index.ts'
import { fluxKinds } from '../../shared/flux/kinds.ts'
import type { Kube } from '../../shared/kube/client.ts'
import { testCluster, testNamespace } from '../harness.ts'

const SHA = 'a'.repeat(40)
const OLD_SHA = 'b'.repeat(40)
const REV = `main@sha1:${SHA}`
const OLD_REV = `main@sha1:${OLD_SHA}`

let kube: Kube
let firstInstall: FluxCrdInstall
let target: { name: string; cleanup: () => Promise<void> } // the namespace being operated
let fluxNs: { name: string; cleanup: () => Promise<void> } // plays flux-system: where Kustomizations live

async function create(
  kind: FluxKind,
  namespace: string,
  name: string,
  spec: Record<string, unknown>,
  annotations?: Record<string, string>,
): Promise<FluxObject> {
  const k = fluxKinds[kind]
  return (await kube.custom.createNamespacedCustomObject({
    ...k,
    namespace,
    body: {
      apiVersion: `${k.group}/${k.version}`,
      kind,
      metadata: { name, ...(annotations ? { annotations } : {}) },
      spec,
    },
  })) as FluxObject
}

function kustomization(
  name: string,
  spec: Record<string, unknown> = {},
  annotations?: Record<string, string>,
): Promise<FluxObject> {
  return create(
    'Kustomization',
    fluxNs.name,
    name,
    {
      interval: '10m',
      prune: true,
      path: './elsewhere',
      sourceRef: { kind: 'GitRepository', name: 'repo' },
      ...spec,
    },
    annotations,
  )
}

async function read(r: FluxRef): Promise<FluxObject> {
  const k = fluxKinds[r.kind]
  return (await kube.custom.getNamespacedCustomObject({ ...k, namespace: r.namespace, name: r.name })) as FluxObject
}

const ref = (kind: FluxKind, namespace: string, name: string): FluxRef => ({ kind, namespace, name })
const names = (objs: { kind: string; metadata?: { name?: string }; name?: string }[]) =>
  objs.map((o) => `${o.kind}/${o.metadata?.name ?? o.name}`)

/** Resolves with the reconcile token once the requestedAt annotation shows up, other than `not` (a watch, no sleeps). */
function reconcileRequested(
  r: FluxRef,
  timeoutMs = 10_000,
  not?: string,
): Promise<{ token: string; generation: number }> {
  const k = fluxKinds[r.kind]
  return new Promise((resolve, reject) => {
    let ctl: AbortController | undefined
    let done = false
    const timer = setTimeout(() => {
      done = true
      ctl?.abort()
      reject(new Error(`no ${REQUESTED_AT} on ${r.name} within ${timeoutMs} ms`))
    }, timeoutMs)
    void new Watch(kube.kc)
      .watch(
        `/apis/${k.group}/${k.version}/namespaces/${r.namespace}/${k.plural}`,
        { fieldSelector: `metadata.name=${r.name}` },
        (_type, obj: FluxObject) => {
          const token = obj?.metadata?.annotations?.[REQUESTED_AT]
          if (done || !token || token === not) return
          done = true
          clearTimeout(timer)
          ctl?.abort()
          resolve({ token, generation: obj.metadata.generation ?? 1 })
        },
        () => {},
      )
      .then((c) => {
        ctl = c
        if (done) c.abort()
      })
  })
}

function cond(type: string, status: string, reason: string, message: string, observedGeneration: number) {
  return { type, status, reason, message, observedGeneration, lastTransitionTime: new Date().toISOString() }
}

/** What a controller writes when it finishes a run: through the status subresource only. */
async function writeStatus(r: FluxRef, status: Record<string, unknown>): Promise<void> {
  const k = fluxKinds[r.kind]
  await kube.custom.patchNamespacedCustomObjectStatus(
    { ...k, namespace: r.namespace, name: r.name, body: { status } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  )
}

describe('flux', () => {
  before(async () => {
    ;({ kube } = await testCluster())
    firstInstall = await installFluxCrds(kube)
    target = await testNamespace('flux-target')
    fluxNs = await testNamespace('flux-home')
    await create('GitRepository', fluxNs.name, 'repo', {
      url: 'http://127.0.0.1:1/repo.git',
      interval: '1m',
      ref: { branch: 'main' },
    })
  })
  after(async () => {
    await target?.cleanup()
    await fluxNs?.cleanup()
  })

  describe('CRDs', () => {
    it('installs the source, kustomize and HelmRelease v2 CRDs and waits until each is Established', async () => {
      const bundle = await fluxCrdBundle()
      const expected = [
        'buckets.source.toolkit.fluxcd.io',
        'externalartifacts.source.toolkit.fluxcd.io',
        'gitrepositories.source.toolkit.fluxcd.io',
        'helmcharts.source.toolkit.fluxcd.io',
        'helmreleases.helm.toolkit.fluxcd.io',
        'helmrepositories.source.toolkit.fluxcd.io',
        'kustomizations.kustomize.toolkit.fluxcd.io',
        'ocirepositories.source.toolkit.fluxcd.io',
      ]
      assert.deepEqual(bundle.crds.map((c) => c.name).sort(), expected)
      assert.deepEqual([...firstInstall.applied, ...firstInstall.unchanged].sort(), expected)
      assert.equal(firstInstall.helmRelease, true)
      const api = kube.kc.makeApiClient(ApiextensionsV1Api)
      for (const name of expected) {
        const crd = await api.readCustomResourceDefinition({ name })
        assert.ok(
          crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True'),
          `${name} Established`,
        )
      }
      const hr = await api.readCustomResourceDefinition({ name: 'helmreleases.helm.toolkit.fluxcd.io' })
      assert.ok(hr.spec.versions.some((v) => v.name === 'v2' && v.served && v.storage))
    })

    it('a second install changes nothing and is fast', async () => {
      const again = await installFluxCrds(kube)
      assert.deepEqual(again.applied, [])
      assert.equal(again.unchanged.length, 8)
      assert.ok(again.elapsedMs < 1000, `second install took ${again.elapsedMs} ms`)
    })

    it('keeps the CRD validation rules (x-kubernetes-validations) through the install', async () => {
      await assert.rejects(
        kustomization('bad-kubeconfig', { kubeConfig: {} }),
        /exactly one of spec.kubeConfig.configMapRef or spec.kubeConfig.secretRef/,
      )
    })
  })

  describe('find', () => {
    it('the finder: Kustomizations that build or target the namespace, their HelmReleases; no refusal for a name that does not exist', async () => {
      const other = `${target.name}-other`
      await kustomization('by-target', { targetNamespace: target.name })
      await kustomization('by-path', { path: `./namespaces/${target.name}/overlays/prod` })
      await kustomization('by-path-prefix-only', { path: `./namespaces/${target.name}-extra` }) // a sibling folder, not ours
      await kustomization('unrelated', { targetNamespace: other, path: `./namespaces/${other}` })
      const chart = { spec: { chart: 'podinfo', sourceRef: { kind: 'HelmRepository', name: 'podinfo' } } }
      await create('HelmRelease', target.name, 'in-namespace', { interval: '10m', chart })
      await create('HelmRelease', fluxNs.name, 'targeting', { interval: '10m', chart, targetNamespace: target.name })
      await create('HelmRelease', fluxNs.name, 'unrelated-hr', { interval: '10m', chart, targetNamespace: other })

      const scope = { name: target.name, namespaces: { prod: target.name }, flux: { kustomization: 'no-such-ks' } }
      const m = await findManagers(kube, scope)
      assert.equal(m.state, 'managed')
      if (m.state !== 'managed') return
      assert.deepEqual(
        m.managers.map((x) => [x.kustomization.metadata.name, x.by]),
        [
          ['by-path', 'path'],
          ['by-target', 'targetNamespace'],
        ],
      )
      assert.deepEqual(names(m.helmReleases).sort(), ['HelmRelease/in-namespace', 'HelmRelease/targeting'])
      const none = await findManagers(kube, {
        name: `${target.name}-none`,
        namespaces: { prod: `${target.name}-none` },
      })
      assert.equal(none.state, 'unmanaged')
    })
  })

  describe('suspend and resume', () => {
    it('suspends with an ownership marker and resumes only what it suspended', async () => {
      const mine = await kustomization('s-mine')
      const hand = await kustomization('s-hand', { suspend: true })
      const owner = currentOwner('session-1')

      const first = await suspendFor(kube, [mine, hand], owner)
      assert.deepEqual(names(first.suspended), ['Kustomization/s-mine'])
      assert.deepEqual(
        first.suspendedByOthers.map((s) => [s.ref.name, s.by]),
        [['s-hand', 'by hand']],
      )

      const after1 = await read(first.suspended[0])
      assert.equal(after1.spec?.suspend, true)
      const marker = JSON.parse(after1.metadata.annotations![SUSPENDED_BY])
      assert.deepEqual(
        { ...marker, at: undefined },
        {
          user: owner.user,
          host: os.hostname(),
          pid: process.pid,
          session: 'session-1',
          token: owner.token,
          at: undefined,
          // tied to this suspension: the generation our suspend produced
          generation: (after1.metadata as { generation?: number }).generation,
        },
      )
      assert.ok(Math.abs(Date.parse(marker.at) - Date.now()) < 60_000)
      const managers =
        (
          after1.metadata as {
            managedFields?: { manager: string; fieldsV1?: { 'f:spec'?: Record<string, unknown> } }[]
          }
        ).managedFields ?? []
      assert.ok(
        managers.some((m) => m.manager === FLUX_FIELD_MANAGER && m.fieldsV1?.['f:spec']?.['f:suspend']),
        'spec.suspend is owned by flux-client-side-apply',
      )

      const again = await suspendFor(kube, [mine], owner)
      assert.deepEqual(names(again.alreadyOurs), ['Kustomization/s-mine'])

      const stranger = { user: 'someone', host: 'other-host', pid: 4242 }
      const theirs = await suspendFor(kube, [mine], stranger)
      assert.equal(theirs.suspendedByOthers.length, 1)
      assert.equal((theirs.suspendedByOthers[0].by as { session?: string }).session, 'session-1')
      const notTheirs = await resumeOwned(kube, [mine, hand], stranger)
      assert.deepEqual(notTheirs.resumed, [])
      assert.equal((await read(first.suspended[0])).spec?.suspend, true)

      // the same session id matches even from another pid (a restarted dev loop)
      const resumed = await resumeOwned(kube, [mine, hand], { ...owner, pid: 1 })
      assert.deepEqual(names(resumed.resumed), ['Kustomization/s-mine'])
      assert.deepEqual(
        resumed.notOurs.map((s) => [s.ref.name, s.by]),
        [['s-hand', 'by hand']],
      )
      const mineNow = await read(first.suspended[0])
      assert.equal(mineNow.spec?.suspend, false)
      assert.equal(mineNow.metadata.annotations?.[SUSPENDED_BY], undefined)
      assert.equal((await read({ kind: 'Kustomization', namespace: fluxNs.name, name: 's-hand' })).spec?.suspend, true)

      const rows = await fluxStatus(kube, [
        ref('Kustomization', fluxNs.name, 's-mine'),
        ref('Kustomization', fluxNs.name, 's-hand'),
      ])
      assert.deepEqual(
        rows.map((r) => [r.name, r.suspended, r.suspension]),
        [
          ['s-mine', false, undefined],
          ['s-hand', true, 'by hand'],
        ],
      )
    })

    it('finds a suspension whose session died as stale, and resumeStale resumes it', async () => {
      const dead = spawnSync(process.execPath, ['-e', '']).pid!
      const deadObj = await kustomization('st-dead', { path: `./namespaces/${fluxNs.name}-stale` })
      const liveObj = await kustomization('st-live', { path: `./namespaces/${fluxNs.name}-stale/overlays/prod` })
      const farObj = await kustomization('st-far', { path: `./namespaces/${fluxNs.name}-stale/overlays` })
      await suspendFor(kube, [deadObj], { user: 'ghost', host: os.hostname(), pid: dead })
      await suspendFor(kube, [liveObj], currentOwner())
      await suspendFor(kube, [farObj], { user: 'remote', host: 'far-away-host', pid: 1 })
      // through the finder: the Kustomizations whose spec.path builds namespaces/<name>/overlays/prod
      const scope = { name: `${fluxNs.name}-stale`, namespaces: { prod: 'not-a-target' } }

      const stale = await findStaleSuspensions(kube, scope)
      assert.deepEqual(
        stale.map((s) => s.name),
        ['st-dead'],
      )
      assert.match(stale[0].reason, new RegExp(`pid ${dead} .* is gone`))
      // another host's marker: stale only once it is older than the limit
      const later = await findStaleSuspensions(kube, scope, { now: new Date(Date.now() + 13 * 3_600_000) })
      assert.deepEqual(later.map((s) => s.name).sort(), ['st-dead', 'st-far'])

      const row = (await fluxStatus(kube, [ref('Kustomization', fluxNs.name, 'st-dead')]))[0]
      assert.match(row.staleSuspension ?? '', /is gone/)
      assert.equal(row.suspendedBy?.user, 'ghost')

      const result = await resumeStale(kube, stale)
      assert.deepEqual(
        result.resumed.map((r) => r.name),
        ['st-dead'],
      )
      const now = await read(ref('Kustomization', fluxNs.name, 'st-dead'))
      assert.equal(now.spec?.suspend, false)
      assert.equal(now.metadata.annotations?.[SUSPENDED_BY], undefined)
      assert.equal((await read(ref('Kustomization', fluxNs.name, 'st-live'))).spec?.suspend, true)
      assert.deepEqual(await findStaleSuspensions(kube, scope), [])
      await resumeOwned(kube, [liveObj], currentOwner())
    })
  })

  describe('reconcile', () => {
    it('matches revisions given as main@sha1:<sha>, sha1:<sha> or the bare sha', () => {
      assert.ok(revisionMatches(REV, REV))
      assert.ok(revisionMatches(REV, SHA))
      assert.ok(revisionMatches(REV, SHA.slice(0, 7)))
      assert.ok(revisionMatches(REV, `sha1:${SHA}`))
      assert.ok(!revisionMatches(REV, OLD_SHA))
      assert.ok(!revisionMatches(REV, `other@sha1:${SHA}`))
      assert.ok(!revisionMatches(undefined, SHA))
    })

    it('counts a later reconcile request handled as ours, but never the value from before ours', () => {
      const token = '2026-03-01T10:00:00.000123456Z'
      assert.ok(handledSince(token, token))
      assert.ok(handledSince('2026-03-01T10:00:05.5Z', token))
      assert.ok(handledSince('2026-03-01T11:00:05+01:00', token), 'Go formats local time with an offset')
      assert.ok(!handledSince('2026-03-01T09:59:59Z', token))
      assert.ok(!handledSince(undefined, token))
      assert.ok(!handledSince('1700000000', token), 'not a timestamp')
      assert.ok(
        !handledSince('2030-01-01T00:00:00Z', token, '2030-01-01T00:00:00Z'),
        'unchanged since before our request',
      )
    })

    it('succeeds once Ready=True for the current generation with the pushed revision applied', async () => {
      const r = ref('Kustomization', fluxNs.name, 'rc-ok')
      await kustomization(r.name)
      const progress: string[] = []
      const pending = reconcileAndWait(kube, r, {
        revision: SHA,
        timeoutMs: 15_000,
        onProgress: (m) => progress.push(m),
      })
      pending.catch(() => {})
      const { token, generation } = await reconcileRequested(r)
      // first the controller reports the previous revision: not yet what we pushed
      await writeStatus(r, {
        observedGeneration: generation,
        lastHandledReconcileAt: token,
        lastAppliedRevision: OLD_REV,
        lastAttemptedRevision: OLD_REV,
        conditions: [cond('Ready', 'True', 'ReconciliationSucceeded', `Applied revision: ${OLD_REV}`, generation)],
      })
      await writeStatus(r, {
        observedGeneration: generation,
        lastHandledReconcileAt: token,
        lastAppliedRevision: REV,
        lastAttemptedRevision: REV,
        conditions: [cond('Ready', 'True', 'ReconciliationSucceeded', `Applied revision: ${REV}`, generation)],
      })
      const result = await pending
      assert.equal(result.ok, true, result.message)
      assert.equal(result.revision, REV)
      assert.equal(result.reason, 'ReconciliationSucceeded')
      assert.equal(result.readyMessage, `Applied revision: ${REV}`)
      assert.ok(
        progress.some((m) => m.includes(`waiting for ${SHA} to be applied`)),
        progress.join(' | '),
      )
    })

    it('fails fast on Stalled=True with the Ready reason and message', async () => {
      const r = ref('Kustomization', fluxNs.name, 'rc-stalled')
      await kustomization(r.name)
      const started = Date.now()
      const pending = reconcileAndWait(kube, r, { revision: REV, timeoutMs: 20_000 })
      pending.catch(() => {})
      const { token, generation } = await reconcileRequested(r)
      await writeStatus(r, {
        observedGeneration: generation,
        lastHandledReconcileAt: token,
        conditions: [
          cond('Ready', 'False', 'AccessDenied', 'cross-namespace references are not allowed', generation),
          cond('Stalled', 'True', 'AccessDenied', 'cross-namespace references are not allowed', generation),
        ],
      })
      const result = await pending
      assert.equal(result.ok, false)
      assert.equal(result.reason, 'AccessDenied')
      assert.equal(result.readyMessage, 'cross-namespace references are not allowed')
      assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms of a 20 s timeout`)
    })

    it('fails fast on Ready=False with Reconciling=ProgressingWithRetry, but not for an older revision', async () => {
      const r = ref('Kustomization', fluxNs.name, 'rc-retry')
      await kustomization(r.name)
      const started = Date.now()
      const progress: string[] = []
      const pending = reconcileAndWait(kube, r, {
        revision: REV,
        timeoutMs: 20_000,
        onProgress: (m) => progress.push(m),
      })
      pending.catch(() => {})
      const { token, generation } = await reconcileRequested(r)
      const failure = (rev: string, message: string) =>
        writeStatus(r, {
          observedGeneration: generation - 1,
          lastHandledReconcileAt: token,
          lastAttemptedRevision: rev,
          lastAppliedRevision: OLD_REV,
          conditions: [
            cond('Ready', 'False', 'BuildFailed', message, generation),
            cond('Reconciling', 'True', 'ProgressingWithRetry', message, generation),
          ],
        })
      // the old revision's failure: the source has not fetched the pushed commit yet
      await failure(OLD_REV, 'old revision is broken')
      await failure(REV, 'kustomize build failed: accumulating resources')
      const result = await pending
      assert.equal(result.ok, false)
      assert.equal(result.reason, 'BuildFailed')
      assert.equal(result.readyMessage, 'kustomize build failed: accumulating resources')
      assert.match(result.message, /failed: BuildFailed/)
      assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms of a 20 s timeout`)
    })

    it('takes a failure already on the object as the verdict, unless asked for a fresh run (a revert checked again)', async () => {
      const r = ref('Kustomization', fluxNs.name, 'rc-fresh')
      const generation = (await kustomization(r.name)).metadata.generation ?? 1
      // the run the push triggered: failed on the wanted revision, handled before our request
      await writeStatus(r, {
        observedGeneration: generation,
        lastHandledReconcileAt: '2000-01-01T00:00:00Z',
        lastAttemptedRevision: REV,
        lastAppliedRevision: OLD_REV,
        conditions: [
          cond('Ready', 'False', 'HealthCheckFailed', 'Deployment/web: ProgressDeadlineExceeded', generation),
          cond('Reconciling', 'True', 'ProgressingWithRetry', 'health check failed', generation),
        ],
      })
      const early = await reconcileAndWait(kube, r, { revision: REV, timeoutMs: 20_000 })
      assert.equal(early.ok, false)
      assert.equal(early.reason, 'HealthCheckFailed')
      const { token: first } = await reconcileRequested(r)
      // asked again for a fresh run: only the run that handles the new request counts
      const pending = reconcileAndWait(kube, r, { revision: REV, timeoutMs: 20_000, freshRun: true })
      pending.catch(() => {})
      const { token } = await reconcileRequested(r, 10_000, first)
      await writeStatus(r, {
        observedGeneration: generation,
        lastHandledReconcileAt: token,
        lastAttemptedRevision: REV,
        lastAppliedRevision: REV,
        conditions: [cond('Ready', 'True', 'ReconciliationSucceeded', `Applied revision: ${REV}`, generation)],
      })
      const fresh = await pending
      assert.equal(fresh.ok, true, fresh.message)
      assert.equal(fresh.revision, REV)
    })

    it('refuses a suspended object and says how to resume it', async () => {
      const obj = await kustomization('rc-suspended', { suspend: true })
      await assert.rejects(reconcileAndWait(kube, obj, { timeoutMs: 1000 }), (err: NsopsError) => {
        assert.ok(err instanceof NsopsError)
        assert.match(err.message, /resource is suspended \(by hand\)/)
        assert.match(err.hint ?? '', /flux resume kustomization rc-suspended/)
        return true
      })
      const mine = await kustomization('rc-suspended-by-dev')
      await suspendFor(kube, [mine], currentOwner())
      await assert.rejects(reconcileAndWait(kube, mine, { timeoutMs: 1000 }), (err: NsopsError) => {
        assert.match(
          err.message,
          new RegExp(`resource is suspended \\(by .*@${os.hostname()} \\(pid ${process.pid}\\)`),
        )
        assert.match(err.hint ?? '', /dev-down/)
        return true
      })
      await resumeOwned(kube, [mine], currentOwner())
    })

    it('times out with a message naming the last observed status', async () => {
      const r = ref('Kustomization', fluxNs.name, 'rc-timeout')
      await kustomization(r.name)
      const started = Date.now()
      const result = await reconcileAndWait(kube, r, { revision: REV, timeoutMs: 600 })
      const took = Date.now() - started
      assert.equal(result.ok, false)
      assert.equal(result.reason, 'Timeout')
      assert.match(
        result.message,
        /did not become ready within 600 ms: kustomize-controller never handled the request \(lastHandledReconcileAt is unset/,
      )
      assert.match(result.message, /is kustomize-controller running\?/)
      assert.ok(took >= 550 && took < 3000, `took ${took} ms`)
    })

    it('reconciles a GitRepository until its artifact has the revision', async () => {
      const r = ref('GitRepository', fluxNs.name, 'rc-source')
      await create('GitRepository', fluxNs.name, r.name, { url: 'http://127.0.0.1:1/repo.git', interval: '1m' })
      const pending = reconcileSource(
        kube,
        { namespace: r.namespace, name: r.name },
        { revision: REV, timeoutMs: 15_000 },
      )
      pending.catch(() => {})
      const { token, generation } = await reconcileRequested(r)
      await writeStatus(r, {
        observedGeneration: generation,
        lastHandledReconcileAt: token,
        artifact: {
          path: 'x.tar.gz',
          url: 'http://127.0.0.1:1/x.tar.gz',
          revision: REV,
          digest: `sha256:${'c'.repeat(64)}`,
          lastUpdateTime: new Date().toISOString(),
        },
        conditions: [cond('Ready', 'True', 'Succeeded', `stored artifact for revision '${REV}'`, generation)],
      })
      const result = await pending
      assert.equal(result.ok, true, result.message)
      assert.equal(result.revision, REV)
      assert.deepEqual(result.ref, r)
    })
  })
})
