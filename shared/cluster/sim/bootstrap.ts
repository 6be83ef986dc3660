// What a fresh sim cluster needs before it behaves like a small real one: a kwok-managed
// Node and a default `local-path` StorageClass (served by local-path-provisioner.ts).
import fs from 'node:fs'
import path from 'node:path'
import {
  ApiextensionsV1Api,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  Watch,
  type KubernetesObject,
  type V1Node,
} from '@kubernetes/client-node'
import YAML from 'yaml'
import { clientsFor } from '../../kube/client.ts'
import { repoRoot } from '../../core/paths.ts'
import { LOCAL_PATH_PROVISIONER } from './local-path-provisioner.ts'
import { NsopsError } from '../../core/errors.ts'

/** The one Node of the sim cluster, kwok-managed. */
export const SIM_NODE = 'nsops-sim-node'

const node = {
  apiVersion: 'v1',
  kind: 'Node',
  metadata: {
    name: SIM_NODE,
    annotations: { 'kwok.x-k8s.io/node': 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
    labels: {
      'kubernetes.io/hostname': SIM_NODE,
      'kubernetes.io/os': 'linux',
      'kubernetes.io/arch': 'amd64',
      'node-role.kubernetes.io/agent': '',
      type: 'kwok',
    },
  },
  status: {
    // Only an InternalIP, and 127.0.0.1: the apiserver reaches the "kubelet" (kwok's server)
    // by the first address of its preferred types (Hostname first), and the name does not resolve.
    addresses: [{ type: 'InternalIP', address: '127.0.0.1' }],
    // far above a kubelet's 110: the simulated pods cost nothing, and a 1,000-object
    // namespace (250 apps) must be able to run on one simulated node
    allocatable: { cpu: '256', memory: '2Ti', pods: '2000' },
    capacity: { cpu: '256', memory: '2Ti', pods: '2000' },
  },
}

const storageClass = {
  apiVersion: 'storage.k8s.io/v1',
  kind: 'StorageClass',
  metadata: { name: 'local-path', annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } },
  provisioner: LOCAL_PATH_PROVISIONER,
  // Immediate, not WaitForFirstConsumer: a PVC binds as soon as it exists, which keeps
  // kstatus (PVC Bound → Current) meaningful without a kubelet.
  volumeBindingMode: 'Immediate',
  reclaimPolicy: 'Delete',
}

// The prod overlays ask for NFS classes; on sim the local-path provisioner serves them too,
// so a prod overlay (what Flux applies) binds its volumes here as it would at home.
const simNfsClasses = ['nfs-media', 'nfs-logs'].map((name) => ({
  ...storageClass,
  metadata: { name },
}))

/**
 * The Node and the StorageClasses, applied (kwok takes over a Node that exists before it
 * starts), the Node advertising `kubeletPort` (kwok's server) for logs, exec and forwards.
 */
export async function registerNode(kubeconfig: string, kubeletPort: number): Promise<void> {
  const kc = new KubeConfig()
  kc.loadFromFile(kubeconfig)
  const kube = clientsFor(kc, kubeconfig)
  await Promise.all(
    ([node, storageClass, ...simNfsClasses] as KubernetesObject[]).map((obj) =>
      kube.objects.patch(obj, undefined, undefined, 'nsops-sim', true, PatchStrategy.ServerSideApply),
    ),
  )
  // kwok writes the port into the Node's status only when it initialises a Node that is not
  // Ready yet: a Node kept from an earlier start (state kept by cluster-down) would go on
  // naming the port kwok had then, and the apiserver would send logs, exec and port-forwards
  // there ("connection refused"). So the port is set here on every start.
  await kube.core.patchNodeStatus(
    { name: SIM_NODE, body: { status: { daemonEndpoints: { kubeletEndpoint: { Port: kubeletPort } } } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  )
}

/** Resolves once the node is Ready and schedulable and `default` has its ServiceAccount. */
export async function untilSettled(
  kubeconfig: string,
  dead: () => Error | undefined,
  timeoutMs = 60_000,
): Promise<void> {
  const kc = new KubeConfig()
  kc.loadFromFile(kubeconfig)
  // Ready = kwok reports the node Ready and the node-lifecycle controller has lifted the
  // not-ready taint; pods also need the `default` ServiceAccount in `default`. Both are
  // watched, so the start goes on the moment they are there.
  let live: V1Node | undefined
  let sa = false
  const missing = () =>
    !live?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')
      ? 'node not Ready yet'
      : (live.spec?.taints ?? []).some((t) => t.key.startsWith('node.kubernetes.io/'))
        ? 'node still tainted not-ready'
        : !sa
          ? 'default ServiceAccount missing'
          : ''
  const watches: AbortController[] = []
  let tick: NodeJS.Timeout | undefined
  let timer: NodeJS.Timeout | undefined
  try {
    await new Promise<void>((resolve, reject) => {
      const check = () => {
        if (!missing()) resolve()
      }
      const ended = (err: unknown) => {
        if (err) reject(err)
      }
      const w = new Watch(kc)
      w.watch(
        '/api/v1/nodes',
        { fieldSelector: `metadata.name=${SIM_NODE}` },
        (type, obj: V1Node) => {
          live = type === 'DELETED' ? undefined : obj
          check()
        },
        ended,
      ).then((c) => watches.push(c), reject)
      w.watch(
        '/api/v1/namespaces/default/serviceaccounts',
        { fieldSelector: 'metadata.name=default' },
        (type) => {
          sa = type !== 'DELETED'
          check()
        },
        ended,
      ).then((c) => watches.push(c), reject)
      tick = setInterval(() => {
        const d = dead()
        if (d) reject(d)
      }, 200)
      timer = setTimeout(
        () => reject(new Error(`sim cluster did not settle within ${timeoutMs / 1000} s: ${missing()}`)),
        timeoutMs,
      )
    })
  } finally {
    clearInterval(tick)
    clearTimeout(timer)
    for (const c of watches) c.abort()
  }
}

/** Applies kwok's CRDs (k8s/sim/kwok-crds.yaml) and waits until the apiserver serves them. */
export async function installKwokCrds(kubeconfig: string, timeoutMs = 30_000): Promise<void> {
  const kc = new KubeConfig()
  kc.loadFromFile(kubeconfig)
  const kube = clientsFor(kc, kubeconfig)
  const ext = kc.makeApiClient(ApiextensionsV1Api)
  const crds = YAML.parseAllDocuments(fs.readFileSync(path.join(repoRoot, 'k8s/sim/kwok-crds.yaml'), 'utf8'))
    .map((d) => d.toJS() as KubernetesObject)
    .filter(Boolean)
  await Promise.all(
    crds.map((crd) => kube.objects.patch(crd, undefined, undefined, 'nsops-sim', true, PatchStrategy.ServerSideApply)),
  )
  const until = Date.now() + timeoutMs
  for (const crd of crds) {
    for (;;) {
      const got = await ext.readCustomResourceDefinition({ name: crd.metadata!.name! })
      if (got.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) break
      if (Date.now() > until)
        throw new NsopsError(
          `sim cluster: kwok's CRD ${crd.metadata!.name} is not Established within ${timeoutMs / 1000} s.`,
          {
            hint: '`just cluster-status` shows each component with its log tail; `just cluster-down --purge` and `just cluster-up` start the sim from scratch.',
          },
        )
      await new Promise((r) => setTimeout(r, 50))
    }
  }
}
