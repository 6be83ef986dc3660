// What the containers of a simulated pod would do if they ran, as a sim cluster component:
// - logs: each container run gets a CRI log file with the lines an app prints at start
//   (container-logs.ts), and a kwok `Logs` object per pod tells kwok's kubelet server which
//   file is the container's (current and previous run), so `kubectl logs [-f] [--previous]`
//   answer through the apiserver as on a real node;
// - ports: each declared container port (and each httpGet probe port) gets a listener of
//   the HTTP app in container-ports.ts, and a kwok `PortForward` per pod sends the pod's
//   ports there, so a port-forward reaches something that answers its probes.
// A restart (restartCount changed) starts a new log file; a replaced pod is a new pod.
// kwok objects carry an ownerReference to their pod, so the garbage collector removes them
// with it. Routes someone set up by hand win: a PortForward whose spec another field manager
// owns is left alone, and no PortForward is made for a pod a ClusterPortForward of someone
// else selects (ours is deleted then), as kwok would prefer ours over theirs.
//   node --import tsx simulated-containers.ts KUBECONFIG LOG_ROOT
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { KubernetesObject, V1Container, V1Pod, V1Probe } from '@kubernetes/client-node'
import {
  appendContainerLog,
  currentRun,
  podLogKey,
  removePodLogs,
  startContainerLog,
  currentLink,
  previousLink,
  containerRoot,
  CONTAINER_ROOT_ENV,
  type ContainerRef,
} from './container-logs.ts'
import { ContainerPortServer, type PortApp, type PortListener } from './container-ports.ts'
import * as k8s from '@kubernetes/client-node'
import { untilServed } from './processes.ts'

const FIELD_MANAGER = 'nsops-sim'
const KWOK = { group: 'kwok.x-k8s.io', version: 'v1alpha1' }
const NODE = 'nsops-sim-node' // = SIM_NODE in bootstrap.ts (not imported: this process stays small)

interface ClusterRoute extends KubernetesObject {
  spec?: { selector?: { matchNamespaces?: string[]; matchNames?: string[] } }
}

interface PodSim {
  pod: V1Pod
  listeners: PortListener[]
  /** the kwok objects are in place for this pod */
  logsApplied: boolean
  execApplied?: boolean
  routed: 'ours' | 'theirs' | 'none'
  /** the routes must be looked at again: a new pod, or a ClusterPortForward changed */
  routeDirty: boolean
}

/** Lines a real app prints when it starts: its image, its ports, its probes. */
export function startLines(pod: V1Pod, c: V1Container, run: number): string[] {
  const lines = [
    `starting ${c.image ?? '(no image)'} as container ${c.name} of pod ${pod.metadata!.namespace}/${pod.metadata!.name}` +
      (run > 0 ? ` (restart ${run})` : ''),
    'simulated by the nsops sim cluster: no process runs; ports answer their probe paths, / and 404 otherwise',
  ]
  if (c.command?.length || c.args?.length) lines.push(`command: ${[...(c.command ?? []), ...(c.args ?? [])].join(' ')}`)
  for (const p of c.ports ?? []) lines.push(`listening on 0.0.0.0:${p.containerPort}${p.name ? ` (${p.name})` : ''}`)
  for (const [kind, probe] of probesOf(c)) {
    const get = probe.httpGet
    if (get) lines.push(`${kind} probe: GET ${get.path ?? '/'} on port ${get.port}`)
    else if (probe.tcpSocket) lines.push(`${kind} probe: TCP on port ${probe.tcpSocket.port}`)
    else if (probe.exec) lines.push(`${kind} probe: exec ${probe.exec.command?.join(' ')}`)
  }
  lines.push('ready')
  return lines
}

function probesOf(c: V1Container): [string, V1Probe][] {
  return (
    [
      ['readiness', c.readinessProbe],
      ['liveness', c.livenessProbe],
      ['startup', c.startupProbe],
    ] as const
  ).filter((e): e is [(typeof e)[0], V1Probe] => !!e[1])
}

/** Each port a container answers on, with the httpGet probe paths declared for it. */
export function portApps(pod: V1Pod): PortApp[] {
  const out = new Map<number, PortApp>()
  for (const c of pod.spec?.containers ?? []) {
    const byName = new Map((c.ports ?? []).filter((p) => p.name).map((p) => [p.name!, p.containerPort]))
    const app = (port: number) => {
      let a = out.get(port)
      if (!a) {
        a = {
          namespace: pod.metadata!.namespace!,
          pod: pod.metadata!.name!,
          container: c.name,
          image: c.image ?? '',
          port,
          probePaths: new Set(),
        }
        out.set(port, a)
      }
      return a
    }
    for (const p of c.ports ?? []) if ((p.protocol ?? 'TCP') === 'TCP') app(p.containerPort)
    for (const [, probe] of probesOf(c)) {
      const get = probe.httpGet
      if (!get) continue
      const port = typeof get.port === 'number' ? get.port : (byName.get(get.port) ?? Number(get.port))
      if (Number.isInteger(port) && port > 0) app(port).probePaths.add(new URL(get.path ?? '/', 'http://x').pathname)
    }
  }
  return [...out.values()]
}

function ownerRef(pod: V1Pod) {
  return [
    { apiVersion: 'v1', kind: 'Pod', name: pod.metadata!.name!, uid: pod.metadata!.uid!, blockOwnerDeletion: false },
  ]
}

function containersOf(pod: V1Pod): { c: V1Container; restarts: number }[] {
  const statuses = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])]
  return [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].map((c) => ({
    c,
    restarts: statuses.find((s) => s.name === c.name)?.restartCount ?? 0,
  }))
}

async function main(kubeconfig: string, root: string): Promise<void> {
  const kc = new k8s.KubeConfig()
  kc.loadFromFile(kubeconfig)
  const core = kc.makeApiClient(k8s.CoreV1Api)
  const custom = kc.makeApiClient(k8s.CustomObjectsApi)
  const objects = k8s.KubernetesObjectApi.makeApiClient(kc)
  const sims = new Map<string, PodSim>() // by pod uid
  const clusterRoutes = new Map<string, ClusterRoute>()

  const ports = new ContainerPortServer((app, line) => {
    const pod = [...sims.values()].find(
      (s) => s.pod.metadata?.name === app.pod && s.pod.metadata?.namespace === app.namespace,
    )
    if (!pod) return
    try {
      appendContainerLog(
        root,
        { namespace: app.namespace, pod: app.pod, uid: pod.pod.metadata!.uid!, container: app.container },
        [line],
      )
    } catch {
      /* pod going away */
    }
  })

  const apply = (obj: KubernetesObject, force = true) =>
    objects.patch(obj, undefined, undefined, FIELD_MANAGER, force, k8s.PatchStrategy.ServerSideApply)

  const theirClusterRoute = (pod: V1Pod) =>
    [...clusterRoutes.values()].some((r) => {
      const s = r.spec?.selector
      const ns = pod.metadata!.namespace!
      const name = pod.metadata!.name!
      return (
        (!s?.matchNamespaces?.length || s.matchNamespaces.includes(ns)) &&
        (!s?.matchNames?.length || s.matchNames.includes(name))
      )
    })

  /** Whether a PortForward named after the pod is someone else's (its spec owned by another manager). */
  const theirPortForward = async (pod: V1Pod): Promise<boolean> => {
    try {
      const pf = (await custom.getNamespacedCustomObject({
        ...KWOK,
        plural: 'portforwards',
        namespace: pod.metadata!.namespace!,
        name: pod.metadata!.name!,
      })) as KubernetesObject
      return (pf.metadata?.managedFields ?? []).some(
        (f) => f.manager !== FIELD_MANAGER && JSON.stringify(f.fieldsV1 ?? {}).includes('f:spec'),
      )
    } catch (err) {
      if ((err as { code?: number }).code === 404) return false
      throw err
    }
  }

  const route = async (sim: PodSim) => {
    const { pod } = sim
    const ref = { namespace: pod.metadata!.namespace!, name: pod.metadata!.name! }
    if (theirClusterRoute(pod)) {
      if (sim.routed === 'ours') {
        try {
          await custom.deleteNamespacedCustomObject({ ...KWOK, plural: 'portforwards', ...ref })
        } catch {
          /* gone */
        }
      }
      sim.routed = 'theirs'
      return
    }
    if (await theirPortForward(pod)) {
      sim.routed = 'theirs'
      return
    }
    if (sim.listeners.length === 0) sim.listeners = await Promise.all(portApps(pod).map((a) => ports.listen(a)))
    if (sim.listeners.length === 0) {
      sim.routed = 'none'
      return
    }
    try {
      // without force: a route someone applied between our look and this write conflicts
      // (409) instead of being overwritten, and stays theirs
      await apply(
        {
          apiVersion: `${KWOK.group}/${KWOK.version}`,
          kind: 'PortForward',
          metadata: {
            ...ref,
            ownerReferences: ownerRef(pod),
            labels: { 'app.kubernetes.io/managed-by': FIELD_MANAGER },
          },
          spec: {
            forwards: sim.listeners.map((l) => ({
              ports: [l.app.port],
              target: { address: '127.0.0.1', port: l.localPort },
            })),
          },
        } as KubernetesObject,
        false,
      )
      sim.routed = 'ours'
    } catch (err) {
      if ((err as { code?: number }).code !== 409) throw err
      sim.routed = 'theirs'
    }
  }

  const sync = async (sim: PodSim) => {
    const { pod } = sim
    const uid = pod.metadata!.uid!
    for (const { c, restarts } of containersOf(pod)) {
      const ref: ContainerRef = {
        namespace: pod.metadata!.namespace!,
        pod: pod.metadata!.name!,
        uid,
        container: c.name,
      }
      if (currentRun(root, ref) !== restarts) startContainerLog(root, ref, restarts, startLines(pod, c, restarts))
    }
    if (!sim.logsApplied) {
      await apply({
        apiVersion: `${KWOK.group}/${KWOK.version}`,
        kind: 'Logs',
        metadata: {
          namespace: pod.metadata!.namespace!,
          name: pod.metadata!.name!,
          ownerReferences: ownerRef(pod),
          labels: { 'app.kubernetes.io/managed-by': FIELD_MANAGER },
        },
        spec: {
          logs: containersOf(pod).map(({ c }) => {
            const ref = { namespace: pod.metadata!.namespace!, pod: pod.metadata!.name!, uid, container: c.name }
            return {
              containers: [c.name],
              logsFile: currentLink(root, ref),
              previousLogsFile: previousLink(root, ref),
              follow: true,
            }
          }),
        },
      } as KubernetesObject)
      sim.logsApplied = true
    }
    if (!sim.execApplied) {
      // `kubectl exec` into a simulated container runs locally, in a folder of its own
      const execs = containersOf(pod).map(({ c }) => {
        const dir = containerRoot(root, {
          namespace: pod.metadata!.namespace!,
          pod: pod.metadata!.name!,
          uid,
          container: c.name,
        })
        fs.mkdirSync(dir, { recursive: true })
        return { containers: [c.name], local: { workDir: dir, envs: [{ name: CONTAINER_ROOT_ENV, value: dir }] } }
      })
      await apply({
        apiVersion: `${KWOK.group}/${KWOK.version}`,
        kind: 'Exec',
        metadata: {
          namespace: pod.metadata!.namespace!,
          name: pod.metadata!.name!,
          ownerReferences: ownerRef(pod),
          labels: { 'app.kubernetes.io/managed-by': FIELD_MANAGER },
        },
        spec: { execs },
      } as KubernetesObject)
      sim.execApplied = true
    }
    if (sim.routeDirty) {
      sim.routeDirty = false
      try {
        await route(sim)
      } catch (err) {
        sim.routeDirty = true
        throw err
      }
    }
  }

  // One sync per pod at a time, a failed one retried (the API restarting, a CRD not served yet).
  const running = new Map<string, Promise<void>>()
  const again = new Set<string>()
  const schedule = (uid: string) => {
    if (running.has(uid)) {
      again.add(uid)
      return
    }
    const sim = sims.get(uid)
    if (!sim) return
    const p = sync(sim)
      .catch((err) => {
        console.error(
          `${sim.pod.metadata?.namespace}/${sim.pod.metadata?.name}: ${String(err?.body?.message ?? err?.message ?? err)}; retrying`,
        )
        setTimeout(() => schedule(uid), 1000).unref()
      })
      .finally(() => {
        running.delete(uid)
        if (again.delete(uid)) schedule(uid)
      })
    running.set(uid, p)
  }

  const started = (pod: V1Pod) => pod.spec?.nodeName === NODE && !!pod.status?.podIP && !pod.metadata?.deletionTimestamp
  const upsert = (pod: V1Pod) => {
    const uid = pod.metadata?.uid
    if (!uid) return
    // a terminating pod keeps its logs and ports until it is gone, as on a kubelet
    if (!started(pod) && !sims.has(uid)) return
    const sim = sims.get(uid) ?? { pod, listeners: [], logsApplied: false, routed: 'none' as const, routeDirty: true }
    sim.pod = pod
    sims.set(uid, sim)
    schedule(uid)
  }
  const forget = async (pod: V1Pod) => {
    const sim = sims.get(pod.metadata!.uid!)
    if (!sim) return
    sims.delete(pod.metadata!.uid!)
    await Promise.all(sim.listeners.map((l) => l.close()))
    removePodLogs(
      root,
      new Set(
        [...sims.values()].map((s) =>
          podLogKey(s.pod.metadata!.namespace!, s.pod.metadata!.name!, s.pod.metadata!.uid!),
        ),
      ),
    )
  }

  // started beside the apiserver (sim/index.ts): wait until it serves kwok's CRDs
  await untilServed(kubeconfig, `/apis/${KWOK.group}/${KWOK.version}/clusterportforwards`)
  const pods = k8s.makeInformer(kc, '/api/v1/pods', () => core.listPodForAllNamespaces())
  pods.on('add', upsert)
  pods.on('update', upsert)
  pods.on('delete', (p: V1Pod) => void forget(p))
  const routesPath = `/apis/${KWOK.group}/${KWOK.version}/clusterportforwards`
  const routes = k8s.makeInformer<ClusterRoute>(
    kc,
    routesPath,
    () => custom.listClusterCustomObject({ ...KWOK, plural: 'clusterportforwards' }) as never,
  )
  const onRoutes = () => {
    for (const [uid, sim] of sims) {
      sim.routeDirty = true
      schedule(uid)
    }
  }
  routes.on('add', (r) => {
    clusterRoutes.set(r.metadata!.name!, r)
    onRoutes()
  })
  routes.on('update', (r) => {
    clusterRoutes.set(r.metadata!.name!, r)
    onRoutes()
  })
  routes.on('delete', (r) => {
    clusterRoutes.delete(r.metadata!.name!)
    for (const sim of sims.values()) if (sim.routed === 'theirs') sim.routed = 'none'
    onRoutes()
  })
  // client-node informers stop on errors; restart them after a pause (apiserver restarts)
  for (const inf of [pods, routes] as { on(e: 'error', f: () => void): void; start(): Promise<void> }[]) {
    inf.on('error', () => setTimeout(() => void inf.start().catch(() => {}), 1000))
  }
  // ClusterPortForwards first, so no pod is routed to us that someone's rule already claims
  await routes.start().catch((err) => console.error(`ClusterPortForwards not watched yet: ${String(err)}`))
  await pods.start()
  removePodLogs(
    root,
    new Set(pods.list().map((p) => podLogKey(p.metadata!.namespace!, p.metadata!.name!, p.metadata!.uid!))),
  )
  console.log(`simulated containers: logs in ${root}, ports on 127.0.0.1`)
  for (const sig of ['SIGTERM', 'SIGINT'] as const)
    process.once(sig, () => {
      ports.close()
      process.exit(0)
    })
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const [kubeconfig, root] = process.argv.slice(2)
  if (!kubeconfig || !root) {
    console.error('usage: simulated-containers.ts KUBECONFIG LOG_ROOT')
    process.exit(1)
  }
  main(kubeconfig, path.resolve(root)).catch((err) => {
    console.error(err)
    process.exit(1)
  })
}
