// `just browse-pvc NS PVC` on the sim, through the user's door: the pod is made with the PVC
// mounted at /data, reaches Running, and is deleted when the command ends; the command says
// plainly that on the sim no shell can run. (The shell itself needs a cluster that runs
// containers — kind, k3d or a real one — which this machine has none of.) A watch on the
// namespace's pods sees every step, however short.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { Watch, type V1Pod } from '@kubernetes/client-node'
import { after, before, describe, it } from 'node:test'
import { BROWSE_LABEL } from '../../shared/commands/browse-pvc.ts'
import { repoRoot } from '../../shared/core/paths.ts'
import { testCluster, type TestCluster } from '../harness.ts'
import { just } from '../just.ts'
import { until } from '../until.ts'

describe('just browse-pvc on the sim', () => {
  let cluster: TestCluster
  const namespace = 'arr-stack-dev' // arr-stack's dev namespace (namespace.ts)
  const pvc = `browse-${process.pid}`
  // a claim of a StorageClass that does not exist stays unbound, so the scheduler keeps a pod
  // that mounts it Pending: what a person waits on, and gives up on with Ctrl-C
  const stuck = `browse-stuck-${process.pid}`
  let createdNamespace = false

  before(async () => {
    cluster = await testCluster()
    try {
      await cluster.kube.core.createNamespace({ body: { metadata: { name: namespace } } })
      createdNamespace = true
    } catch {
      /* there already */
    }
    await cluster.kube.core.createNamespacedPersistentVolumeClaim({
      namespace,
      body: {
        metadata: { name: pvc },
        spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Mi' } } },
      },
    })
    await cluster.kube.core.createNamespacedPersistentVolumeClaim({
      namespace,
      body: {
        metadata: { name: stuck },
        spec: {
          storageClassName: 'nsops-test-absent',
          accessModes: ['ReadWriteOnce'],
          resources: { requests: { storage: '1Mi' } },
        },
      },
    })
  })
  after(async () => {
    await cluster?.kube.core.deleteNamespacedPersistentVolumeClaim({ name: pvc, namespace }).catch(() => {})
    await cluster?.kube.core.deleteNamespacedPersistentVolumeClaim({ name: stuck, namespace }).catch(() => {})
    if (createdNamespace) await cluster?.kube.core.deleteNamespace({ name: namespace }).catch(() => {})
  })

  it('makes a pod with the PVC mounted at /data, says no shell runs on the sim, and deletes the pod', async () => {
    const seen: { type: string; pod: V1Pod }[] = []
    const ac = await new Watch(cluster.kube.kc).watch(
      `/api/v1/namespaces/${namespace}/pods`,
      { labelSelector: `${BROWSE_LABEL}=${pvc}` },
      (type, pod: V1Pod) => seen.push({ type, pod }),
      () => {},
    )
    try {
      const r = await just(['browse-pvc', 'arr-stack', pvc], { NSOPS_KUBECONFIG: cluster.kubeconfig, KUBECONFIG: '' })
      assert.equal(r.code, 0, r.stderr)
      assert.match(r.stderr, /runs with PVC browse-\d+ at \/data/)
      assert.match(r.stderr, /on the sim cluster pods run nothing/)
      assert.match(r.stderr, /deleted pod arr-stack-dev\/browse-/)
      const added = seen.find((e) => e.type === 'ADDED')?.pod
      assert.ok(added, 'the pod was made')
      const volume = added.spec?.volumes?.find((v) => v.persistentVolumeClaim?.claimName === pvc)
      assert.ok(volume, 'it mounts the PVC')
      assert.deepEqual(added.spec?.containers[0].volumeMounts?.find((m) => m.name === volume.name)?.mountPath, '/data')
      assert.ok(
        seen.some((e) => e.pod.status?.phase === 'Running'),
        'it ran',
      )
      const left = await cluster.kube.core.listNamespacedPod({ namespace, labelSelector: `${BROWSE_LABEL}=${pvc}` })
      assert.equal(left.items.length, 0, 'no pod is left behind')
    } finally {
      ac.abort()
    }
  })

  it('Ctrl-C while the pod cannot start deletes the pod and ends as interrupted (130)', async () => {
    const pods = async () =>
      (await cluster.kube.core.listNamespacedPod({ namespace, labelSelector: `${BROWSE_LABEL}=${stuck}` })).items
    // its own process group, as a terminal's foreground job: Ctrl-C reaches npx, just and node
    const child = spawn('npx', ['just', 'browse-pvc', 'arr-stack', stuck], {
      cwd: repoRoot,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, CI: '1', NO_COLOR: '1', NSOPS_KUBECONFIG: cluster.kubeconfig, KUBECONFIG: '' },
    })
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    child.stdout.resume()
    // 'close': every process of the group holding the pipes (npx, just, node) has ended
    const ended = new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
      child.on('close', (code, signal) => resolve([code, signal])),
    )
    try {
      const pod = await until(
        'the scheduler to keep the pod Pending (its PVC is unbound)',
        async () =>
          (await pods()).find((p) =>
            p.status?.conditions?.some((c) => c.type === 'PodScheduled' && c.status === 'False'),
          ),
        60_000,
      )
      assert.equal(pod.status?.phase, 'Pending')
      process.kill(-child.pid!, 'SIGINT')
      const [code, signal] = await ended
      // npx re-raises the SIGINT it got (so a shell sees an interrupted job); node exits 130
      assert.ok(code === 130 || signal === 'SIGINT', `${code} ${signal}\n${stderr}`)
      assert.match(stderr, new RegExp(`deleted pod arr-stack-dev/${pod.metadata!.name}`))
      assert.deepEqual(
        (await pods()).map((p) => p.metadata?.name),
        [],
        'no pod is left behind',
      )
    } finally {
      try {
        process.kill(-child.pid!, 'SIGKILL') // whatever of the group is left (nothing, when it passed)
      } catch {
        /* the group is gone */
      }
    }
  })

  it('names the PVCs there when the one asked for does not exist', async () => {
    const r = await just(['browse-pvc', 'arr-stack', 'nope'], { NSOPS_KUBECONFIG: cluster.kubeconfig, KUBECONFIG: '' })
    assert.equal(r.code, 1)
    assert.match(r.stderr, new RegExp(`error: no PVC nope in namespace arr-stack-dev\\.\\nhint: PVCs there: .*${pvc}`))
  })
})
