// The dev session's log feed on sim: a line a simulated container writes is published keyed
// to its app (by the pod's app.kubernetes.io/name label) with the level it states; a Secret's
// value in a line never leaves the feed (scrubbed, as Tilt scrubs the Secrets it deployed);
// a checkpoint holds what is buffered and the seq the events after it continue from; the
// pod/container shows only once the app runs more than one container.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { V1Deployment, V1Pod } from '@kubernetes/client-node'
import { appendContainerLog, currentRun, type ContainerRef } from '../../shared/cluster/sim/container-logs.ts'
import { LogFeed, type FeedLine } from '../../shared/dev/log-feed.ts'
import { writeSnapshot } from '../../shared/dev/run.ts'
import { testCluster, testNamespace, type TestCluster } from '../harness.ts'
import { until } from '../until.ts'

function app(name: string, replicas = 1): V1Deployment {
  const labels = { 'app.kubernetes.io/name': name }
  return {
    metadata: { name },
    spec: {
      replicas,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          containers: [{ name, image: `example/${name}:1`, ports: [{ containerPort: 80 }] }],
        },
      },
    },
  }
}

describe(
  'the dev log feed',
  { skip: process.env.NSOPS_TEST_CONTEXT ? "writes simulated containers' logs: needs the sim cluster" : false },
  () => {
    let cluster: TestCluster
    let ns: { name: string; cleanup: () => Promise<void> }
    let feed: LogFeed
    const got: FeedLine[] = []

    const running = (name: string, n = 1) =>
      until(
        `${n} running pod(s) of ${name} with a log`,
        async () => {
          const pods = (
            await cluster.kube.core.listNamespacedPod({
              namespace: ns.name,
              labelSelector: `app.kubernetes.io/name=${name}`,
            })
          ).items.filter(
            (p) =>
              p.status?.podIP &&
              !p.metadata?.deletionTimestamp &&
              currentRun(cluster.sim!.podLogRoot, ref(p)) !== undefined,
          )
          return pods.length === n ? pods : undefined
        },
        60_000,
      )
    const ref = (p: V1Pod): ContainerRef => ({
      namespace: ns.name,
      pod: p.metadata!.name!,
      uid: p.metadata!.uid!,
      container: p.spec!.containers[0].name,
    })
    const published = (text: string) =>
      until(`${JSON.stringify(text)} published`, async () => got.find((l) => l.line.includes(text)), 15_000)

    before(async () => {
      cluster = await testCluster()
      ns = await testNamespace('logfeed')
      await cluster.kube.core.createNamespacedSecret({
        namespace: ns.name,
        body: { metadata: { name: 'db' }, stringData: { password: 'hunter2-very-secret' } },
      })
      await cluster.kube.apps.createNamespacedDeployment({ namespace: ns.name, body: app('web') })
      await cluster.kube.apps.createNamespacedDeployment({ namespace: ns.name, body: app('api', 2) })
      feed = new LogFeed(cluster.kube, [{ name: 'fixture', status: { target: ns.name } }])
      feed.on('line', (l) => got.push(l))
    })
    after(async () => {
      await feed?.stop()
      await ns?.cleanup()
    })

    it('publishes a line keyed to its app, with its level, and scrubs Secret values', async () => {
      const [web] = await running('web')
      appendContainerLog(cluster.sim!.podLogRoot, ref(web), ['WARN connecting with password hunter2-very-secret to db'])
      const l = await published('connecting with password')
      assert.equal(l.loop, 'fixture')
      assert.equal(l.app, 'web')
      assert.equal(l.level, 'warn')
      assert.equal(l.line, 'WARN connecting with password [redacted] to db')
      assert.equal(l.source, undefined, 'one container: no pod/container')
      assert.ok(got.every((x) => !x.line.includes('hunter2')))
      // the forms a value takes in a log: base64-encoded, escaped in a JSON string
      appendContainerLog(cluster.sim!.podLogRoot, ref(web), [
        `auth basic ${Buffer.from('hunter2-very-secret').toString('base64')} sent`,
        `config ${JSON.stringify({ db: { password: 'hunter2-very-secret' } })} loaded`,
      ])
      assert.equal((await published('auth basic')).line, 'auth basic [redacted] sent')
      assert.equal((await published('config {')).line, 'config {"db":{"password":"[redacted]"}} loaded')
    })

    it('names pod/container when the app runs several, and a checkpoint continues where the events do', async () => {
      const pods = await running('api', 2)
      // both followed (their start lines are in): from here on the app has two containers
      for (const p of pods)
        await until(
          `the start lines of ${p.metadata!.name}`,
          async () => got.some((l) => l.pod === p.metadata!.name),
          15_000,
        )
      for (const p of pods) appendContainerLog(cluster.sim!.podLogRoot, ref(p), [`hello from ${p.metadata!.name}`])
      for (const p of pods) {
        const l = await published(`hello from ${p.metadata!.name}`)
        assert.equal(l.app, 'api')
        assert.equal(l.source, `${p.metadata!.name}/api`)
      }
      const cp = feed.checkpoint()
      assert.equal(cp.seq, got.at(-1)!.seq)
      assert.deepEqual(
        cp.lines.map((l) => l.seq),
        got.map((l) => l.seq),
        'everything so far, in order',
      )
      assert.deepEqual(
        feed.lines({ app: 'web' }).map((l) => l.app),
        feed.lines({ app: 'web' }).map(() => 'web'),
      )
    })

    it("--output-snapshot's pod log lines are scrubbed, and the file is its owner's only", async () => {
      const [web] = await running('web')
      appendContainerLog(cluster.sim!.podLogRoot, ref(web), [
        'snapshot line with hunter2-very-secret in it',
        `and its base64 ${Buffer.from('hunter2-very-secret').toString('base64')}`,
      ])
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-snapshot-'))
      try {
        const file = path.join(dir, 'snapshot.json')
        // the loops as the session holds them: only what the snapshot reads of them
        const loop = {
          name: 'fixture',
          status: { target: ns.name, resources: [{ namespace: ns.name, pods: [{ name: web.metadata!.name }] }] },
        }
        await writeSnapshot(cluster.kube, file, [loop as never])
        const text = fs.readFileSync(file, 'utf8')
        const lines = (JSON.parse(text) as { logs: Record<string, string[]> }).logs[`${ns.name}/${web.metadata!.name}`]
        assert.ok(lines.includes('snapshot line with [redacted] in it'), lines.join('\n'))
        assert.ok(lines.includes('and its base64 [redacted]'))
        assert.doesNotMatch(text, /hunter2|aHVudGVyMi12ZXJ5LXNlY3JldA/)
        assert.equal((fs.statSync(file).mode & 0o777).toString(8), '600')
      } finally {
        fs.rmSync(dir, { recursive: true, force: true })
      }
    })
  },
)
