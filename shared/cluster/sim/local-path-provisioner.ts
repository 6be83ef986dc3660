// A small dynamic provisioner for the `local-path` StorageClass, as kind ships one: a PVC
// waiting for this provisioner gets a hostPath PV under the sim state directory, and a
// released PV is deleted with its directory. Runs as a sim cluster component:
//   node --import tsx local-path-provisioner.ts KUBECONFIG VOLUMES_DIR
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  CoreV1Api,
  KubeConfig,
  makeInformer,
  type V1PersistentVolume as Pv,
  type V1PersistentVolumeClaim as Pvc,
} from '@kubernetes/client-node'
import { clientsFor } from '../../kube/client.ts'
import { rest } from '../../kube/rest.ts'
import { untilServed } from './processes.ts'

export const LOCAL_PATH_PROVISIONER = 'nsops.dev/local-path'

async function main(kubeconfig: string, volumesDir: string): Promise<void> {
  // one keep-alive connection for every write: a big apply brings hundreds of PVCs at once,
  // and a TLS handshake per request (client-node's way) made them wait their turn for seconds
  const kc = new KubeConfig()
  kc.loadFromFile(kubeconfig)
  const kube = clientsFor(kc, kubeconfig)
  const core = kc.makeApiClient(CoreV1Api)

  // StorageClass → provisioner, asked once per class (not once per PVC of a burst)
  const classes = new Map<string, Promise<string | undefined>>()
  const provisionerOf = (cls: string | undefined): Promise<string | undefined> => {
    if (!cls) return Promise.resolve(undefined)
    let p = classes.get(cls)
    if (!p) {
      p = rest<{ provisioner: string }>(kube, 'GET', `/apis/storage.k8s.io/v1/storageclasses/${cls}`).then(
        (sc) => sc.provisioner,
        () => {
          classes.delete(cls)
          return undefined
        },
      )
      classes.set(cls, p)
    }
    return p
  }

  // a PVC's add and the controller-manager's annotation update arrive one after the other:
  // one PV per claim, made once
  const provisioned = new Set<string>()
  // a few writes in flight at once: each one more opens a connection of its own (a TLS
  // handshake), where a few keep-alive connections carry a burst faster
  let running = 0
  const queue: (() => void)[] = []
  const slot = async <T>(fn: () => Promise<T>): Promise<T> => {
    if (running >= 32) await new Promise<void>((r) => queue.push(r))
    running++
    try {
      return await fn()
    } finally {
      running--
      queue.shift()?.()
    }
  }
  const provision = async (pvc: Pvc) => {
    if (pvc.status?.phase !== 'Pending' || pvc.spec?.volumeName || pvc.metadata?.deletionTimestamp) return
    const uid = pvc.metadata!.uid!
    if (provisioned.has(uid)) return
    provisioned.add(uid)
    if ((await provisionerOf(pvc.spec?.storageClassName)) !== LOCAL_PATH_PROVISIONER) return
    const name = `pvc-${uid}`
    const dir = path.join(volumesDir, `${pvc.metadata!.namespace}_${pvc.metadata!.name}_${name}`)
    fs.mkdirSync(dir, { recursive: true })
    const pv: Pv = {
      apiVersion: 'v1',
      kind: 'PersistentVolume',
      metadata: { name, annotations: { 'pv.kubernetes.io/provisioned-by': LOCAL_PATH_PROVISIONER } },
      spec: {
        capacity: { storage: pvc.spec?.resources?.requests?.storage ?? '1Gi' },
        accessModes: pvc.spec?.accessModes ?? ['ReadWriteOnce'],
        persistentVolumeReclaimPolicy: 'Delete',
        storageClassName: pvc.spec!.storageClassName,
        volumeMode: pvc.spec?.volumeMode ?? 'Filesystem',
        hostPath: { path: dir, type: 'DirectoryOrCreate' },
        // pre-bound to its claim, as an external provisioner does
        claimRef: {
          apiVersion: 'v1',
          kind: 'PersistentVolumeClaim',
          namespace: pvc.metadata!.namespace,
          name: pvc.metadata!.name,
          uid,
        },
      },
    }
    try {
      await slot(async () => {
        try {
          await rest(kube, 'POST', '/api/v1/persistentvolumes', { body: pv })
        } catch (err) {
          if ((err as { code?: number }).code !== 409) throw err
        }
        await bind(pvc, pv)
      })
      console.log(`provisioned and bound ${name} for ${pvc.metadata!.namespace}/${pvc.metadata!.name}`)
    } catch (err) {
      provisioned.delete(uid) // tried again on the claim's next event
      console.error(`provisioning ${name} failed:`, err)
    }
  }

  // The controller-manager's PV controller binds a pre-bound pair with one worker, one claim
  // after another, four writes each: 250 claims took it over ten seconds, and pods waiting
  // for them count as Unschedulable. Everything of the binding but its last step is written
  // here for all claims at once — both phases Bound, the claim's volumeName, capacity and
  // access modes — so the controller is left one write per claim (the bind-completed
  // annotation, which the scheduler waits for). That one stays its own: written before the
  // controller has seen the PV, the annotation would make it mark the claim Lost.
  const merge = 'application/merge-patch+json'
  const bind = async (pvc: Pvc, pv: Pv) => {
    const ns = pvc.metadata!.namespace!
    const claim = pvc.metadata!.name!
    await rest(kube, 'PATCH', `/api/v1/persistentvolumes/${pv.metadata!.name}/status`, {
      body: { status: { phase: 'Bound' } },
      contentType: merge,
    })
    await rest(kube, 'PATCH', `/api/v1/namespaces/${ns}/persistentvolumeclaims/${claim}`, {
      body: { metadata: { uid: pvc.metadata!.uid }, spec: { volumeName: pv.metadata!.name } },
      contentType: merge,
    })
    await rest(kube, 'PATCH', `/api/v1/namespaces/${ns}/persistentvolumeclaims/${claim}/status`, {
      body: { status: { phase: 'Bound', capacity: pv.spec!.capacity, accessModes: pv.spec!.accessModes } },
      contentType: merge,
    })
  }

  const reclaim = async (pv: Pv) => {
    if (pv.metadata?.annotations?.['pv.kubernetes.io/provisioned-by'] !== LOCAL_PATH_PROVISIONER) return
    if (pv.status?.phase !== 'Released' || pv.spec?.persistentVolumeReclaimPolicy !== 'Delete') return
    const dir = pv.spec?.hostPath?.path
    if (dir && dir.startsWith(volumesDir)) fs.rmSync(dir, { recursive: true, force: true })
    try {
      await rest(kube, 'DELETE', `/api/v1/persistentvolumes/${pv.metadata!.name!}`)
    } catch {
      /* already gone */
    }
    console.log(`deleted ${pv.metadata!.name}`)
  }

  // started beside the apiserver (sim/index.ts): wait for it to answer
  await untilServed(kubeconfig, '/api/v1/persistentvolumeclaims')
  const pvcs = makeInformer(kc, '/api/v1/persistentvolumeclaims', () =>
    core.listPersistentVolumeClaimForAllNamespaces(),
  )
  pvcs.on('add', (o: Pvc) => void provision(o))
  pvcs.on('update', (o: Pvc) => void provision(o))
  pvcs.on('delete', (o: Pvc) => {
    if (o.metadata?.uid) provisioned.delete(o.metadata.uid)
  })
  const pvs = makeInformer(kc, '/api/v1/persistentvolumes', () => core.listPersistentVolume())
  pvs.on('add', (o: Pv) => void reclaim(o))
  pvs.on('update', (o: Pv) => void reclaim(o))
  // client-node informers stop on errors; restart them after a pause (apiserver restarts)
  for (const inf of [pvcs, pvs]) {
    inf.on('error', () => setTimeout(() => void inf.start().catch(() => {}), 1000))
  }
  await Promise.all([pvcs.start(), pvs.start()])
  console.log(`local-path provisioner watching PVCs; volumes in ${volumesDir}`)
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => process.exit(0))
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const [kubeconfig, dir] = process.argv.slice(2)
  if (!kubeconfig || !dir) {
    console.error('usage: local-path-provisioner.ts KUBECONFIG VOLUMES_DIR')
    process.exit(1)
  }
  main(kubeconfig, path.resolve(dir)).catch((err) => {
    console.error(err)
    process.exit(1)
  })
}
