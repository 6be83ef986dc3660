// The sim cluster behaves like a small real cluster, and its lifecycle is safe: idempotent
// start, state kept across stop/start, dead components recovered, nothing left running.
import assert from 'node:assert/strict'
import { execFile, spawn } from 'node:child_process'
import http from 'node:http'
import net from 'node:net'
import { promisify } from 'node:util'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { KubeConfig } from '@kubernetes/client-node'
import { SimCluster } from '../../shared/cluster/sim/index.ts'
import { isZombieOrGone } from '../../shared/cluster/sim/processes.ts'
import { clientsFor } from '../../shared/kube/client.ts'
import { pidAlive } from '../../shared/core/lock.ts'
import { repoRoot } from '../../shared/core/paths.ts'
import { forwardService } from '../../shared/portforward/index.ts'
import { toolPaths } from '../../shared/tools/provision.ts'
import { testCluster, testNamespace } from '../harness.ts'
import { until } from '../until.ts'
import { crane, imageDigest } from '../../shared/images/crane.ts'
import { advertisedRegistry, registryAnswers } from '../../shared/images/registry.ts'
import { layerWith } from '../image-fixture.ts'

function loadKube(kubeconfig: string): KubeConfig {
  const k = new KubeConfig()
  k.loadFromFile(kubeconfig)
  return k
}

const run = promisify(execFile)

/** The status code of a GET (no keep-alive: each try is a new connection through the forward). */
function get(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false, timeout: 5000 }, (res) => {
        res.resume()
        resolve(res.statusCode ?? 0)
      })
      .on('error', reject)
  })
}

/** Still running (an exited process not yet reaped by its parent does not count). */
const running = (pid: number) => pidAlive(pid) && !isZombieOrGone(pid)

async function noneRunning(pids: number[]): Promise<number[]> {
  const end = Date.now() + 5000
  while (pids.some(running) && Date.now() < end) await new Promise((r) => setTimeout(r, 50))
  return pids.filter(running)
}

function statePids(dir: string): number[] {
  try {
    return (
      JSON.parse(fs.readFileSync(path.join(dir, 'state.json'), 'utf8')) as { components: { pid: number }[] }
    ).components.map((c) => c.pid)
  } catch {
    return []
  }
}

describe('sim cluster', () => {
  it('runs a 2-replica Deployment to Available with Ready pods, binds a PVC and gives a Service a ClusterIP', async () => {
    const { kube } = await testCluster()
    const ns = await testNamespace('sim')
    try {
      const labels = { app: 'web' }
      await kube.apps.createNamespacedDeployment({
        namespace: ns.name,
        body: {
          metadata: { name: 'web' },
          spec: {
            replicas: 2,
            selector: { matchLabels: labels },
            template: { metadata: { labels }, spec: { containers: [{ name: 'web', image: 'nginx:1.27' }] } },
          },
        },
      })
      await kube.core.createNamespacedService({
        namespace: ns.name,
        body: { metadata: { name: 'web' }, spec: { selector: labels, ports: [{ port: 80 }] } },
      })
      await kube.core.createNamespacedPersistentVolumeClaim({
        namespace: ns.name,
        body: {
          metadata: { name: 'data' },
          spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
        },
      })
      const dep = await until('Deployment Available', async () => {
        const d = await kube.apps.readNamespacedDeployment({ name: 'web', namespace: ns.name })
        return d.status?.conditions?.some((c) => c.type === 'Available' && c.status === 'True') &&
          d.status?.readyReplicas === 2
          ? d
          : undefined
      })
      assert.equal(dep.status?.availableReplicas, 2)
      const pods = await kube.core.listNamespacedPod({ namespace: ns.name, labelSelector: 'app=web' })
      assert.equal(
        pods.items.filter((p) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')).length,
        2,
      )
      const pvc = await until('PVC Bound', async () => {
        const p = await kube.core.readNamespacedPersistentVolumeClaim({ name: 'data', namespace: ns.name })
        return p.status?.phase === 'Bound' ? p : undefined
      })
      assert.equal(pvc.spec?.storageClassName, 'local-path')
      const svc = await kube.core.readNamespacedService({ name: 'web', namespace: ns.name })
      assert.match(svc.spec?.clusterIP ?? '', /^10\.(9[6-9]|1[01][0-9])\.\d+\.\d+$/)
    } finally {
      await ns.cleanup()
    }
  })

  it("binds a burst of 100 claims, each used by a pod, fast enough that no pod stays Unschedulable for kstatus' 15 s", async () => {
    const { kube } = await testCluster()
    const ns = await testNamespace('simpvc')
    const n = 100
    try {
      const t0 = Date.now()
      await Promise.all(
        Array.from({ length: n }, async (_, i) => {
          await kube.core.createNamespacedPersistentVolumeClaim({
            namespace: ns.name,
            body: {
              metadata: { name: `data-${i}` },
              spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
            },
          })
          await kube.core.createNamespacedPod({
            namespace: ns.name,
            body: {
              metadata: { name: `app-${i}` },
              spec: {
                containers: [{ name: 'app', image: 'nginx:1.27' }],
                volumes: [{ name: 'data', persistentVolumeClaim: { claimName: `data-${i}` } }],
              },
            },
          })
        }),
      )
      const claims = await until(
        `${n} claims bound by the controller-manager (bind-completed)`,
        async () => {
          const list = await kube.core.listNamespacedPersistentVolumeClaim({ namespace: ns.name })
          return list.items.length === n &&
            list.items.every(
              (c) => c.status?.phase === 'Bound' && c.metadata?.annotations?.['pv.kubernetes.io/bind-completed'],
            )
            ? list.items
            : undefined
        },
        60_000,
      )
      for (const c of claims) {
        const pv = await kube.core.readPersistentVolume({ name: c.spec!.volumeName! })
        assert.equal(pv.status?.phase, 'Bound')
        assert.equal(pv.spec?.claimRef?.uid, c.metadata?.uid)
      }
      const pods = await until(
        `${n} pods scheduled`,
        async () => {
          const list = await kube.core.listNamespacedPod({ namespace: ns.name })
          return list.items.length === n && list.items.every((p) => p.spec?.nodeName) ? list.items : undefined
        },
        60_000,
      )
      // what kstatus fails fast on: a pod Unschedulable for longer than 15 s
      for (const p of pods) {
        const scheduled = p.status?.conditions?.find((c) => c.type === 'PodScheduled')
        assert.equal(scheduled?.status, 'True', p.metadata?.name)
        const waited =
          new Date(scheduled!.lastTransitionTime!).getTime() - new Date(p.metadata!.creationTimestamp!).getTime()
        assert.ok(waited < 15_000, `${p.metadata?.name} waited ${waited} ms to be scheduled`)
      }
      assert.ok(Date.now() - t0 < 60_000)
    } finally {
      await ns.cleanup()
    }
  })

  describe('lifecycle (a cluster of its own)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-sim-life-'))
    const sim = new SimCluster({ dir })
    after(async () => {
      await sim.stop({ purge: true })
    })

    it('a second ensure() finds the running cluster', async () => {
      const first = await sim.ensure()
      assert.equal(first.reused, false)
      const second = await sim.ensure()
      assert.equal(second.reused, true)
      assert.equal(second.server, first.server)
      assert.ok((await sim.describe()).every((c) => c.state === 'running'))
    })

    it('keeps its state across stop and start, and stop leaves no process behind', async () => {
      const kc = () => {
        const k = new KubeConfig()
        k.loadFromFile(sim.kubeconfigPath)
        return clientsFor(k)
      }
      await kc().core.createNamespacedConfigMap({
        namespace: 'default',
        body: { metadata: { name: 'keep-me' }, data: { a: '1' } },
      })
      const pids = statePids(dir)
      const names = JSON.parse(fs.readFileSync(path.join(dir, 'state.json'), 'utf8')).components.map(
        (c: { name: string }) => c.name,
      )
      // (in the order they may start: some start side by side)
      assert.deepEqual([...names].sort(), [
        'etcd',
        'kube-apiserver',
        'kube-controller-manager',
        'kube-scheduler',
        'kwok',
        'local-path-provisioner',
        'registry',
        'simulated-containers',
      ])
      assert.equal(pids.length, 8)
      // an image pushed before the stop is served after it, on the same host:port
      const host = sim.registryHost()!
      const layer = await layerWith(dir, 'kept.txt', 'kept\n')
      const pushed = (await crane(['append', '--new_layer', layer, '--new_tag', `${host}/keep/me:v1`])).stdout.trim()
      await sim.stop()
      assert.deepEqual(pids.filter(running), [])
      const again = await sim.ensure()
      assert.equal(again.reused, false)
      const cm = await kc().core.readNamespacedConfigMap({ name: 'keep-me', namespace: 'default' })
      assert.equal(cm.data?.a, '1')
      assert.equal(sim.registryHost(), host)
      assert.equal(`${host}/keep/me@${await imageDigest(`${host}/keep/me:v1`)}`, pushed)
    })

    it('authenticates its kubeconfig by token, made on the next start of a sim that had none; the admin certificate still works', async () => {
      const pkiDir = path.join(dir, 'pki')
      // a sim made before the token: its PKI has only certificates
      await sim.stop()
      fs.rmSync(path.join(pkiDir, 'admin.token'))
      fs.rmSync(path.join(pkiDir, 'tokens.csv'))
      const caBefore = fs.readFileSync(path.join(pkiDir, 'ca.crt'), 'utf8')
      await sim.ensure()
      assert.equal(fs.readFileSync(path.join(pkiDir, 'ca.crt'), 'utf8'), caBefore, 'the certificates are kept')
      const token = fs.readFileSync(path.join(pkiDir, 'admin.token'), 'utf8').trim()
      assert.match(token, /^[0-9a-f]{64}$/)
      const kc = loadKube(sim.kubeconfigPath)
      assert.equal(kc.getCurrentUser()?.token, token)
      assert.equal(kc.getCurrentUser()?.certData, undefined)
      // who the API server says we are, by token, then by the certificate a kubeconfig made before has
      const whoAmI = async (k: KubeConfig) => {
        const review = (await clientsFor(k).custom.createClusterCustomObject({
          group: 'authentication.k8s.io',
          version: 'v1',
          plural: 'selfsubjectreviews',
          body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
        })) as { status: { userInfo: { username: string; groups: string[] } } }
        return review.status.userInfo
      }
      const byToken = await whoAmI(kc)
      assert.equal(byToken.username, 'nsops-admin')
      assert.ok(byToken.groups.includes('system:masters'), JSON.stringify(byToken))
      const byCert = loadKube(sim.kubeconfigPath)
      const user = byCert.getCurrentUser()!
      Object.assign(user, {
        token: undefined,
        certData: fs.readFileSync(path.join(pkiDir, 'admin.crt')).toString('base64'),
        keyData: fs.readFileSync(path.join(pkiDir, 'admin.key')).toString('base64'),
      })
      assert.equal((await whoAmI(byCert)).username, 'nsops-admin')
    })

    it('starts a registry that died again on the next ensure(), on its port, without restarting the cluster', async () => {
      await sim.ensure()
      const host = sim.registryHost()!
      const reg = JSON.parse(fs.readFileSync(path.join(dir, 'state.json'), 'utf8')).components.find(
        (c: { name: string }) => c.name === 'registry',
      )
      process.kill(reg.pid, 'SIGKILL')
      await until('registry gone', async () => (running(reg.pid) ? undefined : true))
      assert.equal((await sim.describe()).find((c) => c.name === 'registry')?.state, 'dead')
      const info = await sim.ensure()
      assert.equal(info.reused, true)
      assert.equal(sim.registryHost(), host)
      assert.equal(await registryAnswers(host), true)
      assert.equal((await advertisedRegistry(clientsFor(loadKube(sim.kubeconfigPath))))?.host, host)
    })

    it("logs and port-forwards reach the pods after restarts with state kept, also when kwok's old port was taken meanwhile", async () => {
      // day two: the Node and the pods come back from etcd, kwok starts again; the apiserver
      // reaches logs and forwards through the port the Node advertises, which must be kwok's now
      const kubectl = (await toolPaths(['kubectl'])).kubectl
      const kc = () => {
        const k = new KubeConfig()
        k.loadFromFile(sim.kubeconfigPath)
        return clientsFor(k)
      }
      await sim.ensure()
      const labels = { 'app.kubernetes.io/name': 'day2' }
      await kc().apps.createNamespacedDeployment({
        namespace: 'default',
        body: {
          metadata: { name: 'day2' },
          spec: {
            replicas: 1,
            selector: { matchLabels: labels },
            template: {
              metadata: { labels },
              spec: {
                containers: [
                  {
                    name: 'day2',
                    image: 'example/day2:1',
                    ports: [{ name: 'http', containerPort: 8080 }],
                    readinessProbe: { httpGet: { path: '/ping', port: 'http' } },
                  },
                ],
              },
            },
          },
        },
      })
      await kc().core.createNamespacedService({
        namespace: 'default',
        body: { metadata: { name: 'day2' }, spec: { selector: labels, ports: [{ port: 80, targetPort: 'http' }] } },
      })
      const kwokPort = () => {
        const kwok = JSON.parse(fs.readFileSync(path.join(dir, 'state.json'), 'utf8')).components.find(
          (c: { name: string }) => c.name === 'kwok',
        ) as { args: string[] }
        return Number(/--node-port=(\d+)/.exec(kwok.args.join(' '))![1])
      }
      const works = async (when: string) => {
        const node = await kc().core.readNode({ name: 'nsops-sim-node' })
        assert.equal(
          node.status?.daemonEndpoints?.kubeletEndpoint?.Port,
          kwokPort(),
          `${when}: the Node names kwok's port`,
        )
        const logs = await until(
          `${when}: kubectl logs to print`,
          async () => {
            const pod = (
              await kc().core.listNamespacedPod({ namespace: 'default', labelSelector: 'app.kubernetes.io/name=day2' })
            ).items.find((p) => p.status?.podIP && !p.metadata?.deletionTimestamp)
            if (!pod) return undefined
            return (
              await run(kubectl, ['--kubeconfig', sim.kubeconfigPath, '-n', 'default', 'logs', pod.metadata!.name!])
            ).stdout
          },
          60_000,
        )
        assert.match(logs, /starting /)
        const forward = await forwardService(kc(), {
          namespace: 'default',
          service: 'day2',
          localPort: 0,
          remotePort: 80,
        })
        try {
          await until(
            `${when}: the forward to answer /ping`,
            async () => (await get(`${forward.url}/ping`)) === 200,
            60_000,
          )
        } finally {
          await forward.stop()
        }
      }
      await works('first start')
      const first = kwokPort()
      await sim.stop()
      await sim.ensure()
      assert.equal(kwokPort(), first, 'kwok takes back the port it had')
      await works('after a restart')
      // the port is taken while the cluster is down: kwok gets another, and the Node follows
      await sim.stop()
      const blocker = net.createServer()
      await new Promise<void>((resolve) => blocker.listen(first, '127.0.0.1', resolve))
      try {
        await sim.ensure()
        assert.notEqual(kwokPort(), first)
        await works("after a restart with kwok's old port taken")
      } finally {
        await new Promise<void>((resolve) => blocker.close(() => resolve()))
      }
    })

    it('reports a dead component with its log tail and recovers on the next ensure()', async () => {
      await sim.ensure()
      const kwok = JSON.parse(fs.readFileSync(path.join(dir, 'state.json'), 'utf8')).components.find(
        (c: { name: string }) => c.name === 'kwok',
      )
      process.kill(kwok.pid, 'SIGKILL')
      await until('kwok gone', async () => (pidAlive(kwok.pid) ? undefined : true))
      const dead = (await sim.describe()).find((c) => c.name === 'kwok')
      assert.equal(dead?.state, 'dead')
      assert.match(dead?.logTail ?? '', /starting .*kwok/)
      const info = await sim.ensure()
      assert.equal(info.reused, false)
      assert.ok((await sim.describe()).every((c) => c.state === 'running'))
    })
  })

  it('an interrupted cluster-up leaves nothing running', async () => {
    const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-sim-int-'))
    const child = spawn(path.join(repoRoot, 'shared/bin/nsops.ts'), ['cluster-up', '--provider', 'sim'], {
      env: { ...process.env, NSOPS_STATE_DIR: stateDir, CI: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let err = ''
    child.stderr.on('data', (b) => {
      err += b
    })
    const simDir = path.join(stateDir, 'sim')
    try {
      // interrupt once the apiserver has been launched, i.e. mid-start
      await until('apiserver launched', async () => (statePids(simDir).length >= 2 ? true : undefined), 60_000)
      const pids = statePids(simDir)
      child.kill('SIGINT')
      const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)))
      assert.equal(code, 130, err)
      // the CLI exited: its components are gone (or exiting, reaped by init within moments)
      assert.deepEqual(await noneRunning([...statePids(simDir), ...pids]), [])
    } finally {
      child.kill('SIGKILL')
      for (const pid of statePids(simDir)) {
        try {
          process.kill(pid, 'SIGKILL')
        } catch {
          /* gone */
        }
      }
      fs.rmSync(stateDir, { recursive: true, force: true })
    }
  })

  before(async () => {
    await testCluster()
  })
})
