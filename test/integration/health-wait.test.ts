// waitFor against the real sim control plane (kwok runs the pods): watches, not polls, decide
// when a set of objects is Current, and an unhealthy set comes back with a report that says why.
import assert from 'node:assert/strict'
import { performance } from 'node:perf_hooks'
import { after, before, describe, it } from 'node:test'
import { KubeConfig, PatchStrategy, setHeaderOptions, Watch } from '@kubernetes/client-node'
import { NsopsError } from '../../shared/core/errors.ts'
import { computeStatus, type KubeObject } from '../../shared/health/kstatus.ts'
import { HealthWatch, waitFor, type ObjectHealth } from '../../shared/health/wait.ts'
import { HealthFeed } from '../../shared/dev/health-feed.ts'
import { until } from '../until.ts'
import { clientsFor, type Kube } from '../../shared/kube/client.ts'
import { testCluster, testNamespace } from '../harness.ts'

function deployment(name: string, replicas: number, extra: { nodeSelector?: Record<string, string> } = {}) {
  const labels = { app: name }
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name },
    spec: {
      replicas,
      selector: { matchLabels: labels },
      template: { metadata: { labels }, spec: { ...extra, containers: [{ name, image: 'nginx:1.27' }] } },
    },
  }
}

function crd(group: string, plural: string, kind: string) {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.${group}` },
    spec: {
      group,
      scope: 'Namespaced',
      names: { plural, singular: plural.replace(/s$/, ''), kind, listKind: `${kind}List` },
      versions: [
        {
          name: 'v1',
          served: true,
          storage: true,
          schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
        },
      ],
    },
  }
}

describe('waiting for health', () => {
  let kube: Kube
  let ns: { name: string; cleanup: () => Promise<void> }
  const group = `t${process.pid}.nsops.example.com`
  const crdNames: string[] = []

  before(async () => {
    kube = (await testCluster()).kube
    ns = await testNamespace('health')
  })

  after(async () => {
    for (const name of crdNames) {
      await kube.objects
        .delete({ apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', metadata: { name } })
        .catch(() => {})
    }
    await ns?.cleanup()
  })

  it('a 2-replica Deployment becomes Current, reporting progress on the way and reacting to the last change within 100 ms', async () => {
    // an independent watch on the same Deployment marks when the API announced it Current
    let announcedAt: number | undefined
    const observer = await new Watch(kube.kc).watch(
      `/apis/apps/v1/namespaces/${ns.name}/deployments`,
      {},
      (_type, obj: KubeObject) => {
        if (
          announcedAt === undefined &&
          computeStatus({ ...obj, apiVersion: 'apps/v1', kind: 'Deployment' }).status === 'Current'
        )
          announcedAt = performance.now()
      },
      () => {},
    )
    try {
      // kwok makes pods Ready within a second: create the Deployment only once the wait watches
      const progress: ObjectHealth[] = []
      let created: Promise<unknown> | undefined
      const result = await waitFor(
        kube,
        [{ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: ns.name } }],
        {
          timeoutMs: 60_000,
          onProgress: (changed) => {
            progress.push(changed)
            if (changed.status === 'NotFound')
              created ??= kube.objects.create({
                ...deployment('web', 2),
                metadata: { name: 'web', namespace: ns.name },
              })
          },
        },
      )
      const noticedAt = performance.now()
      await created

      assert.equal(result.ok, true, result.report)
      assert.equal(result.outcome, 'current')
      assert.equal(result.status, 'Current')
      assert.equal(result.statuses[0].ref, `Deployment/${ns.name}/web`)
      assert.match(result.report, /^all 1 object Current after/)
      // the Deployment's two pods are listed with it; their state comes from a second watch (the
      // namespace's pods), whose events can trail the Deployment's on a loaded machine, so the
      // snapshot may still hold kwok's Pending of a moment before
      const pods = result.statuses[0].pods ?? []
      assert.equal(pods.length, 2, JSON.stringify(pods))
      for (const p of pods) {
        assert.match(p.name, /^web-/)
        assert.ok(
          (p.ready === '1/1' && p.status === 'Running' && p.why === undefined) ||
            (p.ready === '0/1' && p.status === 'Pending'),
          JSON.stringify(p),
        )
      }

      const seen = progress.map((p) => p.status)
      assert.equal(seen[0], 'NotFound')
      assert.ok(seen.includes('InProgress'), `expected InProgress on the way, got ${seen.join(' → ')}`)
      assert.equal(seen.at(-1), 'Current')

      // both watches get the same event; ours may well be delivered first
      for (let i = 0; i < 100 && announcedAt === undefined; i++) await new Promise((r) => setTimeout(r, 10))
      assert.ok(announcedAt !== undefined, 'the observer watch saw the Deployment Current')
      console.log(
        `# waitFor noticed the Deployment Current ${(noticedAt - announcedAt).toFixed(1)} ms after the observer watch`,
      )
      assert.ok(
        noticedAt - announcedAt < 100,
        `waitFor noticed ${Math.round(noticedAt - announcedAt)} ms after the API said Current`,
      )
    } finally {
      observer.abort()
    }
  })

  it('a Deployment whose pods cannot be scheduled times out with a report naming Unschedulable', async () => {
    await kube.objects.create({
      ...deployment('stuck', 1, { nodeSelector: { 'nsops.dev/no-such-node': 'true' } }),
      metadata: { name: 'stuck', namespace: ns.name },
    })
    const result = await waitFor(
      kube,
      [{ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'stuck', namespace: ns.name } }],
      { timeoutMs: 4000 },
    )

    assert.equal(result.ok, false)
    assert.equal(result.outcome, 'timeout')
    const [stuck] = result.statuses
    assert.equal(stuck.status, 'InProgress')
    assert.equal(stuck.pods?.length, 1)
    assert.equal(stuck.pods?.[0].status, 'Pending')
    assert.match(
      stuck.pods?.[0].why ?? '',
      /^Unschedulable: 0\/1 nodes are available: 1 node\(s\) didn't match Pod's node affinity\/selector/,
    )
    assert.match(result.report, /^timed out after 4\.\d s waiting for 1 of 1 object:/)
    assert.match(result.report, new RegExp(`Deployment/${ns.name}/stuck: InProgress: `))
    assert.match(result.report, /pod stuck-[a-z0-9]+-[a-z0-9]+ Pending 0\/1: Unschedulable: 0\/1 nodes are available/)
  })

  it('a wait on a missing object reports NotFound, also for a kind the API does not serve', async () => {
    const result = await waitFor(
      kube,
      [
        { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'nope', namespace: ns.name } },
        { apiVersion: `${group}/v1`, kind: 'Ghost', metadata: { name: 'boo', namespace: ns.name } },
      ],
      { timeoutMs: 1000 },
    )
    assert.equal(result.ok, false)
    assert.equal(result.outcome, 'timeout')
    assert.deepEqual(
      result.statuses.map((s) => [s.ref, s.status]),
      [
        [`ConfigMap/${ns.name}/nope`, 'NotFound'],
        [`Ghost/${ns.name}/boo`, 'NotFound'],
      ],
    )
    assert.match(result.report, new RegExp(`ConfigMap/${ns.name}/nope: NotFound: Resource not found`))
    assert.match(
      result.report,
      new RegExp(`Ghost/${ns.name}/boo: NotFound: the API does not serve ${group.replace(/\./g, '\\.')}/v1 Ghost`),
    )
  })

  it('resolves as soon as an awaited object appears, including a custom resource whose CRD is created during the wait', async () => {
    const widgets = waitFor(
      kube,
      [
        { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'late', namespace: ns.name } },
        { apiVersion: `${group}/v1`, kind: 'Widget', metadata: { name: 'w1', namespace: ns.name } },
      ],
      { timeoutMs: 30_000 },
    )
    await kube.core.createNamespacedConfigMap({
      namespace: ns.name,
      body: { metadata: { name: 'late' }, data: { a: '1' } },
    })
    crdNames.push(`widgets.${group}`)
    await kube.objects.create(crd(group, 'widgets', 'Widget'))
    // the CR can only be created once the API serves the kind
    const started = Date.now()
    for (;;) {
      try {
        await kube.objects.create({
          apiVersion: `${group}/v1`,
          kind: 'Widget',
          metadata: { name: 'w1', namespace: ns.name },
          spec: { size: 1 },
        })
        break
      } catch (err) {
        if (Date.now() - started > 20_000) throw err
        await new Promise((r) => setTimeout(r, 50))
      }
    }
    const result = await widgets
    assert.equal(result.ok, true, result.report)
    assert.deepEqual(
      result.statuses.map((s) => s.status),
      ['Current', 'Current'],
    )
  })

  it('fails fast when an object is Failed, without waiting for the timeout', async () => {
    // a second CRD claiming an existing kind in the same group: NamesAccepted=False is Failed
    crdNames.push(`alphas.${group}`, `betas.${group}`)
    await kube.objects.create(crd(group, 'alphas', 'Alpha'))
    const conflicting = crd(group, 'betas', 'Alpha')
    await kube.objects.create(conflicting)
    const result = await waitFor(
      kube,
      [
        {
          apiVersion: 'apiextensions.k8s.io/v1',
          kind: 'CustomResourceDefinition',
          metadata: { name: `betas.${group}` },
        },
        { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'never', namespace: ns.name } },
      ],
      { timeoutMs: 30_000 },
    )
    assert.equal(result.ok, false)
    assert.equal(result.outcome, 'failed')
    assert.ok(result.elapsedMs < 10_000, `took ${result.elapsedMs} ms`)
    assert.equal(result.status, 'Failed')
    assert.equal(result.statuses[0].status, 'Failed')
    assert.equal(result.statuses[0].ref, `CustomResourceDefinition/betas.${group}`)
    assert.match(result.report, /^1 object Failed after/)
    assert.match(
      result.report,
      new RegExp(`CustomResourceDefinition/betas\\.${group.replace(/\./g, '\\.')}: Failed: .*Alpha`),
    )
  })

  it('returns at once, not Current, when the signal is already aborted or aborts during the wait', async () => {
    const ref = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'never', namespace: ns.name } }
    const pre = await waitFor(kube, [ref], { timeoutMs: 30_000, signal: AbortSignal.abort() })
    assert.equal(pre.outcome, 'aborted')
    const ac = new AbortController()
    setTimeout(() => ac.abort(), 300)
    const during = await waitFor(kube, [ref], { timeoutMs: 30_000, signal: ac.signal })
    assert.equal(during.outcome, 'aborted')
    assert.ok(during.elapsedMs < 5000)
    assert.equal(during.statuses[0].status, 'NotFound')
  })

  it('refuses bad input and an API that does not answer with a clear error', async () => {
    await assert.rejects(
      waitFor(kube, [{ apiVersion: 'v1', kind: 'ConfigMap', metadata: {} }], { timeoutMs: 1000 }),
      (err: unknown) => err instanceof NsopsError && /needs apiVersion, kind and metadata\.name/.test(err.message),
    )
    await assert.rejects(
      waitFor(kube, [{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' } }], { timeoutMs: 1000 }),
      (err: unknown) => err instanceof NsopsError && /ConfigMap is namespaced/.test(err.message),
    )

    const kc = new KubeConfig()
    kc.loadFromOptions({
      clusters: [{ name: 'gone', server: 'https://127.0.0.1:1', skipTLSVerify: true }],
      users: [{ name: 'u', token: 't' }],
      contexts: [{ name: 'gone', cluster: 'gone', user: 'u' }],
      currentContext: 'gone',
    })
    await assert.rejects(
      waitFor(clientsFor(kc), [{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x', namespace: 'y' } }], {
        timeoutMs: 5000,
      }),
      (err: unknown) =>
        err instanceof NsopsError && /does not answer: context gone, server https:\/\/127\.0\.0\.1:1/.test(err.message),
    )
  })

  it('one HealthWatch follows and gives verdicts on the way: Current, gone (timeout), Current again — and publishes only changes', async () => {
    const name = 'followed'
    const ref = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: ns.name } }
    const published: string[] = []
    const watch = new HealthWatch(kube, [ref], (changed) => published.push(changed.status))
    try {
      await kube.core.createNamespacedConfigMap({ namespace: ns.name, body: { metadata: { name }, data: { a: '1' } } })
      const first = await watch.until({ timeoutMs: 30_000 })
      assert.equal(first.outcome, 'current', first.report)
      // a change that does not change its health is not published
      const before = published.length
      await kube.core.patchNamespacedConfigMap(
        { namespace: ns.name, name, body: { data: { a: '2' } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      )
      await kube.core.deleteNamespacedConfigMap({ namespace: ns.name, name })
      await until('the watch to see the deletion', async () => published.at(-1) === 'NotFound', 10_000)
      const gone = await watch.until({ timeoutMs: 1500 })
      assert.equal(gone.outcome, 'timeout', 'the same watch saw it deleted after its first verdict')
      assert.equal(gone.statuses[0].status, 'NotFound')
      assert.deepEqual(published.slice(before), ['NotFound'], 'the data change was not published; the deletion was')
      await kube.core.createNamespacedConfigMap({ namespace: ns.name, body: { metadata: { name }, data: { a: '3' } } })
      assert.equal((await watch.until({ timeoutMs: 30_000 })).outcome, 'current')
    } finally {
      await watch.stop()
    }
  })

  it("dev --ci's verdict comes from the feed that follows: no second watch, and the feed keeps following after it", async () => {
    const name = 'fed'
    const objects = [{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: ns.name } }]
    let rows: readonly ObjectHealth[] = []
    const feed = new HealthFeed(kube, (all) => {
      rows = all
    })
    try {
      feed.follow(objects)
      const following = feed.current
      await kube.core.createNamespacedConfigMap({ namespace: ns.name, body: { metadata: { name }, data: { a: '1' } } })
      // a later apply of the same set hands over a new array: still the same objects, the same feed
      const verdict = await feed.waitHealthy(
        objects.map((o) => ({ ...o })),
        30_000,
      )
      assert.equal(verdict.outcome, 'current', verdict.report)
      assert.equal(feed.current, following, 'the verdict was taken from the watch that follows, not a second one')
      await kube.core.deleteNamespacedConfigMap({ namespace: ns.name, name })
      await until('the feed to show the deletion after the verdict', async () => rows[0]?.status === 'NotFound', 10_000)
    } finally {
      feed.stop()
    }
  })
})
