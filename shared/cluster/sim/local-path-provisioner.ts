// A small dynamic provisioner for the `local-path` StorageClass, as kind ships one: a PVC
// waiting for this provisioner gets a hostPath PV under the sim state directory, and a
// released PV is deleted with its directory. Runs as a sim cluster component:
//   node --import tsx local-path-provisioner.ts KUBECONFIG VOLUMES_DIR
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const LOCAL_PATH_PROVISIONER = 'nsops.dev/local-path'

async function main(kubeconfig: string, volumesDir: string): Promise<void> {
  const { KubeConfig, CoreV1Api, makeInformer } = await import('@kubernetes/client-node')
  const kc = new KubeConfig()
  kc.loadFromFile(kubeconfig)
  const core = kc.makeApiClient(CoreV1Api)
  type Pvc = import('@kubernetes/client-node').V1PersistentVolumeClaim
  type Pv = import('@kubernetes/client-node').V1PersistentVolume
  const classes = new Map<string, string>() // StorageClass → provisioner
  const storage = await import('@kubernetes/client-node').then((m) => kc.makeApiClient(m.StorageV1Api))

  const provisionerOf = async (cls: string | undefined): Promise<string | undefined> => {
    if (!cls) return undefined
    if (!classes.has(cls)) {
      try { classes.set(cls, (await storage.readStorageClass({ name: cls })).provisioner) } catch { return undefined }
    }
    return classes.get(cls)
  }

  const provision = async (pvc: Pvc) => {
    if (pvc.status?.phase !== 'Pending' || pvc.spec?.volumeName || pvc.metadata?.deletionTimestamp) return
    if ((await provisionerOf(pvc.spec?.storageClassName)) !== LOCAL_PATH_PROVISIONER) return
    const name = `pvc-${pvc.metadata!.uid}`
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
        claimRef: { apiVersion: 'v1', kind: 'PersistentVolumeClaim', namespace: pvc.metadata!.namespace, name: pvc.metadata!.name, uid: pvc.metadata!.uid },
      },
    }
    try {
      await core.createPersistentVolume({ body: pv })
      console.log(`provisioned ${name} for ${pvc.metadata!.namespace}/${pvc.metadata!.name}`)
    } catch (err) {
      if ((err as { code?: number }).code !== 409) console.error(`provisioning ${name} failed:`, err)
    }
  }

  const reclaim = async (pv: Pv) => {
    if (pv.metadata?.annotations?.['pv.kubernetes.io/provisioned-by'] !== LOCAL_PATH_PROVISIONER) return
    if (pv.status?.phase !== 'Released' || pv.spec?.persistentVolumeReclaimPolicy !== 'Delete') return
    const dir = pv.spec?.hostPath?.path
    if (dir && dir.startsWith(volumesDir)) fs.rmSync(dir, { recursive: true, force: true })
    try { await core.deletePersistentVolume({ name: pv.metadata!.name! }) } catch { /* already gone */ }
    console.log(`deleted ${pv.metadata!.name}`)
  }

  const pvcs = makeInformer(kc, '/api/v1/persistentvolumeclaims', () => core.listPersistentVolumeClaimForAllNamespaces())
  pvcs.on('add', (o: Pvc) => void provision(o))
  pvcs.on('update', (o: Pvc) => void provision(o))
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
  main(kubeconfig, path.resolve(dir)).catch((err) => { console.error(err); process.exit(1) })
}
