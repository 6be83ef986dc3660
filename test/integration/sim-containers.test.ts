// The sim cluster's simulated containers, seen as a user sees them: `kubectl logs` (plain,
// -f, --previous) answers through the apiserver and kwok, a restart or a replaced pod starts
// a new log, and a port-forward reaches an app that answers the manifest's probe paths.
import assert from 'node:assert/strict'
import { execFile, spawn } from 'node:child_process'
import http from 'node:http'
import { after, before, describe, it } from 'node:test'
import { promisify } from 'node:util'
import {
  PatchStrategy,
  setHeaderOptions,
  type V1Container,
  type V1Deployment,
  type V1Pod,
} from '@kubernetes/client-node'
import { appendContainerLog } from '../../shared/cluster/sim/container-logs.ts'
import type { Kube } from '../../shared/kube/client.ts'
import { forwardService } from '../../shared/portforward/index.ts'
import { toolPaths } from '../../shared/tools/provision.ts'
import { testCluster, testNamespace, type TestCluster } from '../harness.ts'
import { until } from '../until.ts'

const run = promisify(execFile)

function deployment(name: string, container: V1Container): V1Deployment {
  const labels = { 'app.kubernetes.io/name': name }
  return {
    metadata: { name },
    spec: {
      replicas: 1,
      selector: { matchLabels: labels },
      template: { metadata: { labels }, spec: { containers: [container] } },
    },
  }
}

function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false, timeout: 5000 }, (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (d) => {
          body += d
        })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      })
      .on('error', reject)
  })
}

/** `curl -f URL`: true when it exits 0 (a 2xx answer), false when it fails (22 = HTTP ≥ 400). */
async function curlF(url: string): Promise<{ ok: boolean; code: number }> {
  try {
    await run('curl', ['-sf', '--max-time', '5', url])
    return { ok: true, code: 0 }
  } catch (err) {
    return { ok: false, code: (err as { code: number }).code }
  }
}

describe(
  'simulated containers on sim',
  { skip: process.env.NSOPS_TEST_CONTEXT ? 'needs the sim cluster' : false },
  () => {
    let cluster: TestCluster
    let kube: Kube
    let kubectl: string
    let ns: { name: string; cleanup: () => Promise<void> }
    const k = (...args: string[]) =>
      run(kubectl, ['--kubeconfig', cluster.kubeconfig, '-n', ns.name, ...args]).then((r) => r.stdout)

    const podOf = (app: string, not?: string) =>
      until(`a running pod of ${app}`, async () => {
        const pods = await kube.core.listNamespacedPod({
          namespace: ns.name,
          labelSelector: `app.kubernetes.io/name=${app}`,
        })
        return pods.items.find((p) => p.status?.podIP && !p.metadata?.deletionTimestamp && p.metadata?.name !== not)
      })
    const ref = (pod: V1Pod, container: string) => ({
      namespace: ns.name,
      pod: pod.metadata!.name!,
      uid: pod.metadata!.uid!,
      container,
    })
    /** logs of a container as kubectl prints them, once they have the wanted text */
    const logsWith = (args: string[], text: string) =>
      until(`kubectl logs ${args.join(' ')} to show ${JSON.stringify(text)}`, async () => {
        const out = await k('logs', ...args)
        return out.includes(text) ? out : undefined
      })

    before(async () => {
      cluster = await testCluster()
      kube = cluster.kube
      kubectl = (await toolPaths(['kubectl'])).kubectl
      ns = await testNamespace('simc')
      await kube.apps.createNamespacedDeployment({
        namespace: ns.name,
        body: deployment('web', {
          name: 'web',
          image: 'ghcr.io/example/web:1.2.3',
          ports: [{ name: 'http', containerPort: 8080 }],
          readinessProbe: { httpGet: { path: '/ping', port: 'http' } },
          livenessProbe: { httpGet: { path: '/healthz', port: 8080 } },
        }),
      })
      await kube.apps.createNamespacedDeployment({
        namespace: ns.name,
        body: deployment('bare', {
          name: 'bare',
          image: 'ghcr.io/example/bare:0.1',
          ports: [{ name: 'http', containerPort: 8080 }],
        }),
      })
      for (const name of ['web', 'bare']) {
        await kube.core.createNamespacedService({
          namespace: ns.name,
          body: {
            metadata: { name },
            spec: { selector: { 'app.kubernetes.io/name': name }, ports: [{ port: 80, targetPort: 'http' }] },
          },
        })
      }
    })

    after(async () => {
      await ns?.cleanup()
    })

    it('kubectl logs answers with the lines an app prints at start: image, ports, probes', async () => {
      const pod = await podOf('web')
      const out = await logsWith([pod.metadata!.name!], 'ready')
      const lines = out.trim().split('\n')
      assert.match(
        lines[0],
        new RegExp(`^starting ghcr.io/example/web:1.2.3 as container web of pod ${ns.name}/${pod.metadata!.name}$`),
      )
      assert.ok(lines.includes('listening on 0.0.0.0:8080 (http)'), out)
      assert.ok(lines.includes('readiness probe: GET /ping on port http'), out)
      assert.ok(lines.includes('liveness probe: GET /healthz on port 8080'), out)
      const stamped = await k('logs', pod.metadata!.name!, '--timestamps')
      assert.match(stamped.split('\n')[0], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z starting /)
    })

    it('kubectl logs -f follows what the container writes', async () => {
      const pod = await podOf('web')
      const child = spawn(kubectl, [
        '--kubeconfig',
        cluster.kubeconfig,
        '-n',
        ns.name,
        'logs',
        '-f',
        pod.metadata!.name!,
      ])
      let out = ''
      child.stdout.on('data', (d) => {
        out += d
      })
      try {
        await until('the first lines', async () => out.includes('ready'))
        appendContainerLog(cluster.sim!.podLogRoot, ref(pod, 'web'), ['GET /api/v3/series 200 12ms'])
        await until('the written line followed', async () => out.includes('GET /api/v3/series 200 12ms'))
      } finally {
        child.kill()
      }
    })

    it('a container restart starts a new log; --previous shows the run before', async () => {
      const pod = await podOf('web')
      const name = pod.metadata!.name!
      appendContainerLog(cluster.sim!.podLogRoot, ref(pod, 'web'), ['last words of run 0'])
      await assert.rejects(k('logs', name, '--previous'), 'no previous run before a restart')
      await kube.core.patchNamespacedPodStatus(
        {
          namespace: ns.name,
          name,
          body: [{ op: 'replace', path: '/status/containerStatuses/0/restartCount', value: 1 }],
        },
        setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
      )
      const current = await logsWith([name], '(restart 1)')
      assert.ok(!current.includes('last words of run 0'), 'the new run starts a new file')
      assert.match(await k('logs', name, '--previous'), /last words of run 0/)
    })

    it('a replaced pod gets a log of its own', async () => {
      const old = await podOf('web')
      await kube.core.deleteNamespacedPod({ namespace: ns.name, name: old.metadata!.name!, gracePeriodSeconds: 0 })
      const pod = await podOf('web', old.metadata!.name!)
      const out = await logsWith([pod.metadata!.name!], 'ready')
      assert.match(out, new RegExp(`of pod ${ns.name}/${pod.metadata!.name}\\n`))
      assert.ok(!out.includes('(restart'), out)
    })

    it("forwarded ports answer the manifest's probe paths through a dev loop's port-forward; curl -f fails for any other", async () => {
      const forward = await forwardService(kube, { namespace: ns.name, service: 'web', localPort: 0, remotePort: 80 })
      try {
        await until(
          'the forward to answer /ping',
          async () => (await get(`${forward.url}/ping`)).status === 200,
          60_000,
        )
        assert.deepEqual(await curlF(`${forward.url}/ping`), { ok: true, code: 0 })
        assert.deepEqual(await curlF(`${forward.url}/healthz`), { ok: true, code: 0 })
        assert.deepEqual(await curlF(`${forward.url}/metrics`), { ok: false, code: 22 })
        const home = await get(`${forward.url}/`)
        assert.equal(home.status, 200)
        assert.match(home.body, new RegExp(`${ns.name}/${forward.pod}`))
        assert.match(home.body, /ghcr\.io\/example\/web:1\.2\.3/)
        assert.match(home.body, /[Ss]imulated/)
        // the app's access log is the container's log
        await logsWith([forward.pod!], 'GET /metrics 404')
      } finally {
        await forward.stop()
      }
    })

    it('curl -f of a probe path fails when the manifest declares no such probe', async () => {
      const forward = await forwardService(kube, { namespace: ns.name, service: 'bare', localPort: 0, remotePort: 80 })
      try {
        await until('the forward to answer /', async () => (await get(`${forward.url}/`)).status === 200, 60_000)
        assert.deepEqual(await curlF(`${forward.url}/ping`), { ok: false, code: 22 })
      } finally {
        await forward.stop()
      }
    })
  },
)
