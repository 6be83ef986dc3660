// Supervised port-forwards end to end: a local port → kube-apiserver → kwok (standing in for
// the kubelet) → a local HTTP server this test runs as the pod's "container". kwok learns
// where a pod's port goes from a kwok.x-k8s.io PortForward named after the pod, so each pod
// can lead to a server of its own and a re-target is visible in the answer.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { PatchStrategy, setHeaderOptions, type KubernetesObject, type V1Pod } from '@kubernetes/client-node'
import YAML from 'yaml'
import { NsopsError } from '../../shared/core/errors.ts'
import type { Kube } from '../../shared/kube/client.ts'
import { repoRoot } from '../../shared/core/paths.ts'
import {
  Backoff,
  forwardService,
  type Forward,
  type ForwardState,
  type ForwardStatus,
} from '../../shared/portforward/index.ts'
import { testCluster, testNamespace } from '../harness.ts'
import { until } from '../until.ts'

const APP = { app: 'echo' }

/** A "container": answers every request with its own name. */
async function nameServer(name: string): Promise<{ port: number; close: () => Promise<void> }> {
  const srv = http.createServer((req, res) => res.end(`${name} ${req.url}`))
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve))
  return {
    port: (srv.address() as net.AddressInfo).port,
    close: () =>
      new Promise((resolve) => {
        srv.closeAllConnections()
        srv.close(() => resolve())
      }),
  }
}

/** One GET on a fresh connection (no keep-alive reuse across pods). */
function get(url: string, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d) => {
        body += d
      })
      res.on('end', () => resolve(body))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', reject)
  })
}

async function installKwokCrds(kube: Kube): Promise<void> {
  const docs = YAML.parseAllDocuments(fs.readFileSync(path.join(repoRoot, 'k8s/sim/kwok-crds.yaml'), 'utf8'))
  for (const doc of docs) {
    await kube.objects.patch(
      doc.toJS() as KubernetesObject,
      undefined,
      undefined,
      'nsops-test',
      true,
      PatchStrategy.ServerSideApply,
    )
  }
}

/**
 * Tells kwok where the pod's container port 80 goes; retried while the CRD is being established.
 * Applied with force: the sim's simulated-containers component may have routed the pod to
 * its own app server already, and a route set by hand takes over (and is left alone by it).
 */
async function routePod(kube: Kube, namespace: string, pod: string, port: number): Promise<void> {
  await until(`kwok PortForward for ${pod}`, async () => {
    await kube.objects.patch(
      {
        apiVersion: 'kwok.x-k8s.io/v1alpha1',
        kind: 'PortForward',
        metadata: { name: pod, namespace },
        spec: { forwards: [{ ports: [80], target: { address: '127.0.0.1', port } }] },
      } as KubernetesObject,
      undefined,
      undefined,
      'nsops-test',
      true,
      PatchStrategy.ServerSideApply,
    )
    return true
  })
}

const clusterRoutes = { group: 'kwok.x-k8s.io', version: 'v1alpha1', plural: 'clusterportforwards' }

/** Tells kwok where port 80 of every pod in the namespace goes (unless a pod has its own PortForward). */
async function routeNamespace(kube: Kube, name: string, namespace: string, port: number): Promise<void> {
  await kube.custom.createClusterCustomObject({
    ...clusterRoutes,
    body: {
      apiVersion: 'kwok.x-k8s.io/v1alpha1',
      kind: 'ClusterPortForward',
      metadata: { name },
      spec: {
        selector: { matchNamespaces: [namespace] },
        forwards: [{ ports: [80], target: { address: '127.0.0.1', port } }],
      },
    },
  })
}

async function unrouteNamespace(kube: Kube, name: string): Promise<void> {
  await kube.custom.deleteClusterCustomObject({ ...clusterRoutes, name })
}

function isReady(p: V1Pod): boolean {
  return (
    !p.metadata?.deletionTimestamp &&
    (p.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True')
  )
}

async function readyPod(kube: Kube, namespace: string, not?: string): Promise<string> {
  return until('a Ready pod', async () => {
    const pods = await kube.core.listNamespacedPod({ namespace, labelSelector: 'app=echo' })
    return pods.items.find((p) => isReady(p) && p.metadata?.name !== not)?.metadata?.name
  })
}

function record(forward: Forward): ForwardState[] {
  const seen: ForwardState[] = []
  forward.on('status', (s) => seen.push(s))
  return seen
}

/** Status changes without repeats: what a UI would show. */
function transitions(seen: ForwardState[]): ForwardStatus[] {
  return seen.map((s) => s.status).filter((s, i, all) => i === 0 || all[i - 1] !== s)
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1')
    s.on('connect', () => {
      s.destroy()
      resolve(false)
    })
    s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'))
  })
}

function closed(socket: net.Socket, timeoutMs = 10_000): Promise<boolean> {
  return new Promise((resolve) => {
    if (socket.destroyed) {
      resolve(true)
      return
    }
    const t = setTimeout(() => resolve(false), timeoutMs)
    socket.once('close', () => {
      clearTimeout(t)
      resolve(true)
    })
  })
}

describe('supervised port-forwards', () => {
  let kube: Kube
  let ns: { name: string; cleanup: () => Promise<void> }
  const servers: { port: number; close: () => Promise<void> }[] = []
  let first: string

  before(async () => {
    kube = (await testCluster()).kube
    await installKwokCrds(kube)
    ns = await testNamespace('pf')
    await kube.apps.createNamespacedDeployment({
      namespace: ns.name,
      body: {
        metadata: { name: 'echo' },
        spec: {
          replicas: 1,
          selector: { matchLabels: APP },
          template: {
            metadata: { labels: APP },
            spec: {
              containers: [{ name: 'echo', image: 'echo:dev', ports: [{ name: 'http', containerPort: 80 }] }],
            },
          },
        },
      },
    })
    // Service port 8080 → targetPort by name → container port 80
    await kube.core.createNamespacedService({
      namespace: ns.name,
      body: {
        metadata: { name: 'echo' },
        spec: { selector: APP, ports: [{ name: 'web', port: 8080, targetPort: 'http' }] },
      },
    })
    const [a, z] = [await nameServer('A'), await nameServer('Z')]
    servers.push(a, z)
    first = await readyPod(kube, ns.name)
    // kwok watches each CRD on its own, and one that did not exist yet when kwok started is
    // only listed again after a backoff (up to a minute): wait until both kinds of route work.
    const rule = `pf-${ns.name}-probe`
    await routeNamespace(kube, rule, ns.name, z.port)
    let probe: Forward | undefined
    try {
      probe = await forwardService(kube, {
        namespace: ns.name,
        service: 'echo',
        localPort: 0,
        remotePort: 8080,
        backoff: { maxMs: 500 },
      })
      const url = probe.url
      const answer = (from: string) => async () => ((await get(`${url}/probe`)).startsWith(from) ? true : undefined)
      await until('kwok to serve ClusterPortForward routes', answer('Z'), 120_000)
      await routePod(kube, ns.name, first, a.port)
      await until('kwok to serve PortForward routes', answer('A'), 120_000)
    } finally {
      await probe?.stop()
      await unrouteNamespace(kube, rule)
    }
  })

  after(async () => {
    await ns?.cleanup()
    for (const s of servers) await s.close()
  })

  it('forwards an HTTP request through the apiserver and the node to the pod behind the Service', async () => {
    const forward = await forwardService(kube, { namespace: ns.name, service: 'echo', localPort: 0, remotePort: 8080 })
    try {
      assert.equal(await get(`${forward.url}/hello`), 'A /hello')
      assert.equal(forward.status, 'active')
      assert.equal(forward.pod, first)
      assert.equal(forward.containerPort, 80)
      assert.match(forward.url, /^http:\/\/127\.0\.0\.1:\d+$/)
    } finally {
      await forward.stop()
    }
  })

  it('reports status as events: starting, then active once a Ready pod is targeted', async () => {
    const forward = await forwardService(kube, { namespace: ns.name, service: 'echo', localPort: 0, remotePort: 'web' })
    const seen = record(forward)
    try {
      await until('active', async () => (forward.status === 'active' ? true : undefined))
      assert.deepEqual(transitions(seen), ['starting', 'active'])
      assert.equal(seen.at(-1)?.pod, first)
      assert.equal(seen.at(-1)?.url, forward.url)
      assert.equal(await get(`${forward.url}/x`), 'A /x')
    } finally {
      await forward.stop()
    }
  })

  it('moves to the replacement pod when the pod is deleted, closing connections to the old one', async () => {
    const forward = await forwardService(kube, { namespace: ns.name, service: 'echo', localPort: 0, remotePort: 8080 })
    const seen = record(forward)
    const b = await nameServer('B')
    servers.push(b)
    try {
      assert.equal(await until('an answer', () => get(`${forward.url}/before`)), 'A /before')
      const old = forward.pod!
      // a keep-alive connection to the old pod, proven to reach it
      const held = net.connect(forward.localPort, '127.0.0.1')
      held.on('error', () => {})
      let heard = ''
      held.on('data', (d) => {
        heard += String(d)
      })
      held.write('GET /held HTTP/1.1\r\nHost: x\r\n\r\n')
      await until('an answer on the held connection', async () => (heard.includes('A /held') ? true : undefined))

      await kube.core.deleteNamespacedPod({ namespace: ns.name, name: old, gracePeriodSeconds: 0 })
      const replacement = await readyPod(kube, ns.name, old)
      await routePod(kube, ns.name, replacement, b.port)
      assert.equal(
        await until('an answer from the new pod', async () => {
          const body = await get(`${forward.url}/after`)
          return body.startsWith('B') ? body : undefined
        }),
        'B /after',
      )
      assert.equal(forward.pod, replacement)
      assert.equal(await closed(held), true, 'the connection to the deleted pod is closed')
      const t = transitions(seen)
      assert.deepEqual(t.slice(0, 2), ['starting', 'active'])
      assert.ok(t.includes('reconnecting'), `went through reconnecting while no pod was Ready: ${t.join(' → ')}`)
      assert.equal(t.at(-1), 'active')
      first = replacement
    } finally {
      await forward.stop()
    }
  })

  it('holds connections while no pod is Ready and forwards them once one is', async () => {
    const c = await nameServer('C')
    servers.push(c)
    const scale = (replicas: number) =>
      kube.apps.patchNamespacedDeploymentScale(
        { namespace: ns.name, name: 'echo', body: { spec: { replicas } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      )
    // a route for any pod of the namespace, so the next pod is reachable the moment it is Ready
    const rule = `pf-${ns.name}`
    await routeNamespace(kube, rule, ns.name, c.port)
    await scale(0)
    await until('no pods', async () =>
      (await kube.core.listNamespacedPod({ namespace: ns.name })).items.length === 0 ? true : undefined,
    )
    const forward = await forwardService(kube, { namespace: ns.name, service: 'echo', localPort: 0, remotePort: 8080 })
    try {
      await until('the problem reported', async () => (forward.lastError ? true : undefined))
      assert.equal(forward.status, 'starting')
      assert.match(forward.lastError!.message, /no Ready pod behind Service .*\/echo \(selector app=echo\)/)
      const pending = get(`${forward.url}/waited`, 60_000)
      await new Promise((r) => setTimeout(r, 300))
      assert.equal(forward.state().connections, 0, 'the connection waits, it is not forwarded anywhere')
      await scale(1)
      assert.equal(await pending, 'C /waited')
      assert.equal(forward.status, 'active')
      first = forward.pod!
      await routePod(kube, ns.name, first, c.port) // outlives the cluster-wide rule removed below
    } finally {
      await forward.stop()
      await unrouteNamespace(kube, rule)
    }
  })

  it('a pod that does not answer on the port shows as failing with the reason before any connection, and connections wait out the backoff', async () => {
    // a Service port whose container port (81) the node has no route for: every try fails
    await kube.core.createNamespacedService({
      namespace: ns.name,
      body: {
        metadata: { name: 'dead' },
        spec: { selector: APP, ports: [{ port: 9090, targetPort: 81 }] },
      },
    })
    const forward = await forwardService(kube, {
      namespace: ns.name,
      service: 'dead',
      localPort: 0,
      remotePort: 9090,
      backoff: { initialMs: 400, jitter: 0 },
    })
    const seen = record(forward)
    try {
      // the probe finds it out: nobody connected yet
      await until('failing', async () => (forward.status === 'failing' ? true : undefined))
      assert.match(
        forward.lastError?.message ?? '',
        new RegExp(`forwarding to pod ${ns.name}/${first} port 81 failed: .*port 81`),
      )
      assert.equal(seen.at(-1)?.lastError, forward.lastError?.message)
      assert.equal(seen.at(-1)?.status, 'failing')
      await assert.rejects(get(`${forward.url}/`))
      const failedAt = Date.now()
      await assert.rejects(get(`${forward.url}/`))
      assert.ok(Date.now() - failedAt >= 350, `the second try waited for the backoff (${Date.now() - failedAt} ms)`)
      assert.equal(forward.status, 'failing')
      const t = transitions(seen)
      assert.equal(t.at(-1), 'failing')
      assert.ok(!t.slice(t.indexOf('failing')).includes('active'), `never active again: ${t.join(' → ')}`)
      // the Service is fixed (its port now leads where the pod answers): active again, and it answers
      await kube.core.patchNamespacedService(
        { namespace: ns.name, name: 'dead', body: { spec: { ports: [{ port: 9090, targetPort: 80 }] } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      )
      await until('active again', async () => (forward.status === 'active' ? true : undefined), 30_000)
      assert.match(await until('an answer', () => get(`${forward.url}/fixed`)), /\/fixed/)
    } finally {
      await forward.stop()
    }
  })

  it('reports a local port that is taken as an NsopsError naming the port and what to do', async () => {
    const blocker = net.createServer()
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
    const port = (blocker.address() as net.AddressInfo).port
    try {
      await assert.rejects(
        forwardService(kube, { namespace: ns.name, service: 'echo', localPort: port, remotePort: 8080 }),
        (err: unknown) => {
          assert.ok(err instanceof NsopsError)
          assert.match(err.message, new RegExp(`local port ${port} \\(127\\.0\\.0\\.1:${port}\\) is already in use`))
          assert.match(err.message, new RegExp(`Service ${ns.name}/echo`))
          assert.match(err.hint ?? '', /portForwards\[\]\.local in the namespace's namespace\.ts/)
          assert.match(err.hint ?? '', new RegExp(`ss -ltnp 'sport = :${port}'`))
          return true
        },
      )
      assert.equal(blocker.listening, true, 'the other process keeps its port')
    } finally {
      await new Promise((resolve) => blocker.close(resolve))
    }
  })

  it('stop() closes the local port and every open connection', async () => {
    const forward = await forwardService(kube, { namespace: ns.name, service: 'echo', localPort: 0, remotePort: 8080 })
    let stopped = false
    try {
      await until('an answer', () => get(`${forward.url}/`))
      const open = net.connect(forward.localPort, '127.0.0.1')
      open.on('error', () => {})
      await until('the connection piped', async () => (forward.state().connections > 0 ? true : undefined))
      const seen = record(forward)
      await forward.stop()
      stopped = true
      assert.equal(await closed(open, 2000), true)
      assert.equal(await refused(forward.localPort), true)
      assert.equal(forward.state().connections, 0)
      await new Promise((r) => setTimeout(r, 200))
      assert.deepEqual(seen, [], 'no status after stop')
    } finally {
      if (!stopped) await forward.stop()
    }
  })

  it('backs off like Tilt: 50 ms doubling to 15 s, 10 % jitter, reset after a connection lasted over 1 s', () => {
    const none = new Backoff({}, () => 0)
    const delays = Array.from({ length: 12 }, () => none.next())
    assert.deepEqual(delays, [50, 100, 200, 400, 800, 1600, 3200, 6400, 12_800, 15_000, 15_000, 15_000])
    none.lasted(900)
    assert.equal(none.next(), 15_000, 'a short connection proves nothing')
    none.lasted(1001)
    assert.equal(none.next(), 50)
    const full = new Backoff({}, () => 1)
    assert.deepEqual([full.next(), full.next()], [55, 110])
  })
})
