// `just browse-pvc NS PVC` on the sim, through the user's door: the pod is made with the PVC
// mounted at /data, reaches Running, and is deleted when the command ends; the command says
// plainly that on the sim no shell can run. (The shell itself needs a cluster that runs
// containers — kind, k3d or a real one — which this machine has none of.) A watch on the
// namespace's pods sees every step, however short.
import assert from 'node:assert/strict'
import { Watch, type V1Pod } from '@kubernetes/client-node'
import { after, before, describe, it } from 'node:test'
import { BROWSE_LABEL } from '../../shared/commands/browse-pvc.ts'
import { testCluster, type TestCluster } from '../harness.ts'
import { just } from '../just.ts'

describe('just browse-pvc on the sim', () => {
  let cluster: TestCluster
  const namespace = 'arr-stack-dev' // arr-stack's dev namespace (namespace.ts)
  const pvc = `browse-${process.pid}`
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
  })
  after(async () => {
    await cluster?.kube.core.deleteNamespacedPersistentVolumeClaim({ name: pvc, namespace }).catch(() => {})
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

  it('names the PVCs there when the one asked for does not exist', async () => {
    const r = await just(['browse-pvc', 'arr-stack', 'nope'], { NSOPS_KUBECONFIG: cluster.kubeconfig, KUBECONFIG: '' })
    assert.equal(r.code, 1)
    assert.match(r.stderr, new RegExp(`error: no PVC nope in namespace arr-stack-dev\\.\\nhint: PVCs there: .*${pvc}`))
  })
})
