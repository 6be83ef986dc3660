// Everything the dashboard shows, fetched in parallel in one process and shaped into one
// typed model (also the --json schema, documented in docs/dashboard-json.md). No Secret
// value leaves it: the only Secrets read are a HelmRelease's valuesFrom, masked as read
// (flux/release-view.ts).
import type {
  CoreV1Event,
  V1DaemonSet,
  V1Deployment,
  V1Ingress,
  V1Namespace,
  V1PersistentVolumeClaim,
  V1Pod,
  V1Service,
  V1StatefulSet,
} from '@kubernetes/client-node'
import { computeStatus, type KubeObject, type Status } from '../health/kstatus.ts'
import { podStatus } from '../health/pod-status.ts'
import { isApiError, type Kube } from '../kube/client.ts'
import { rest } from '../kube/rest.ts'
import type { Environment, NamespaceConfig } from '../config/namespace-config.ts'
import { readSession } from '../dev/session.ts'
import { fluxSection, type FluxSection } from './flux-section.ts'
import { hookSections, type SectionRow } from './sections.ts'
import type { DriftSummary } from '../drift/types.ts'

export const DASHBOARD_SCHEMA = 'nsops.dashboard/v1'

export interface DashboardAppRow {
  name: string
  group: string
  kind?: string
  status: Status
  message: string
  ready: string
  restarts: number
  ingressUrl?: string
  address?: string
  clusterIP?: string
  localUrl?: string
  /** what each container of the workload runs: its pod template's image and the digest(s) behind it */
  images?: AppImage[]
}

/** One container's image: the reference the pod template names and the digests it runs. */
export interface AppImage {
  container: string
  /** as the pod template names it (a dev loop's build: `<registry>/<ns>/<image>@sha256:…`) */
  image: string
  /**
   * the digests it runs (sha256:…): the template's own when it names one, then those the pods
   * report (status.containerStatuses[].imageID); more than one while a rollout is under way
   */
  digests: string[]
}

const DIGEST = /sha256:[0-9a-f]{64}/

/** The workload's containers, each with the digests its template and its pods name. */
export function appImages(
  template: { spec?: { containers?: { name: string; image?: string }[] } } | undefined,
  pods: V1Pod[],
): AppImage[] {
  return (template?.spec?.containers ?? []).map((ct) => {
    const digests = new Set<string>()
    const own = DIGEST.exec(ct.image ?? '')?.[0]
    if (own) digests.add(own)
    for (const p of pods)
      for (const cs of p.status?.containerStatuses ?? []) {
        const d = cs.name === ct.name ? DIGEST.exec(cs.imageID ?? '')?.[0] : undefined
        if (d) digests.add(d)
      }
    return { container: ct.name, image: ct.image ?? '', digests: [...digests] }
  })
}

export interface PodRow {
  name: string
  app?: string
  status: string
  ready: string
  restarts: number
  age: string
  ip?: string
  node?: string
  healthy: boolean
}
export interface PvcRow {
  name: string
  status: string
  capacity?: string
  requested?: string
  storageClass?: string
  accessModes: string[]
  volume?: string
}
export interface DashboardEventRow {
  object: string
  reason: string
  message: string
  count: number
  lastSeen: string
  age: string
}

export interface DashboardModel {
  schema: typeof DASHBOARD_SCHEMA
  generatedAt: string
  context: string
  server: string
  namespace: { config: string; name: string; env: Environment; exists: boolean; phase?: string }
  flux: FluxSection
  devLoop?: { pid: number; startedAt: string; lastApply?: string; kept?: boolean }
  groups: { title: string; apps: DashboardAppRow[] }[]
  pods: PodRow[]
  pvcs: PvcRow[]
  events: DashboardEventRow[]
  quickCommands: { title: string; command: string }[]
  /** the namespace's dashboardSections hook (only when it has one): its sections, or one row with `error` */
  sections?: SectionRow[]
  /** only with --drift (computed on demand: it dry-runs every object): the prod namespace against git */
  drift?: DriftSummary
  healthy: boolean
  problems: string[]
}

export function age(from: Date | string | undefined, now = Date.now()): string {
  if (!from) return '?'
  const s = Math.max(0, Math.floor((now - new Date(from).getTime()) / 1000))
  if (s < 120) return `${s}s`
  if (s < 7200) return `${Math.floor(s / 60)}m`
  if (s < 172800) return `${Math.floor(s / 3600)}h`
  return `${Math.floor(s / 86400)}d`
}

const appOf = (o: { metadata?: { labels?: Record<string, string>; name?: string } }) =>
  o.metadata?.labels?.['app.kubernetes.io/name'] ?? o.metadata?.labels?.app

function ingressUrls(ingresses: V1Ingress[]): Map<string, string> {
  const urls = new Map<string, string>()
  for (const ing of ingresses) {
    const tlsHosts = new Set((ing.spec?.tls ?? []).flatMap((t) => t.hosts ?? []))
    for (const rule of ing.spec?.rules ?? []) {
      for (const p of rule.http?.paths ?? []) {
        const svc = p.backend?.service?.name
        if (svc && rule.host && !urls.has(svc)) {
          urls.set(
            svc,
            `${tlsHosts.has(rule.host) ? 'https' : 'http'}://${rule.host}${p.path && p.path !== '/' ? p.path : '/'}`,
          )
        }
      }
    }
  }
  return urls
}

export async function collect(kube: Kube, ns: NamespaceConfig, env: Environment): Promise<DashboardModel> {
  const namespace = ns.namespaces[env]
  const now = Date.now()
  // raw JSON over the connection the command's other requests share (kube/rest.ts: HTTP/2, one
  // TLS handshake), not client-node's typed calls (a connection of their own each, and every
  // field retyped). The typed names stay as types: timestamps arrive as strings, which every
  // reader below takes as well as Dates (age, podStatus, computeStatus, toISOString).
  const ns$ = encodeURIComponent(namespace)
  const core = `/api/v1/namespaces/${ns$}`
  const apps = `/apis/apps/v1/namespaces/${ns$}`
  const list = <T>(path: string, query?: Record<string, string>) =>
    rest<{ items: T[] }>(kube, 'GET', path, { query }).then((r) => r.items)

  const session = readSession(ns.name)
  const forwards = new Map((session?.kubernetesNamespace === namespace ? session.forwards : []).map((f) => [f.app, f]))
  const activeForwards = Object.fromEntries(
    [...forwards.values()].filter((f) => f.status === 'active').map((f) => [f.app, f.url]),
  )

  const deploymentsP = list<V1Deployment>(`${apps}/deployments`)
  const statefulsetsP = list<V1StatefulSet>(`${apps}/statefulsets`)
  const daemonsetsP = list<V1DaemonSet>(`${apps}/daemonsets`)
  // the Flux tree hangs the workloads under what made them: the same lists, kind set
  const kinded = Promise.all([deploymentsP, statefulsetsP, daemonsetsP]).then(([d, s, ds]) => [
    ...d.map((o) => ({ ...(o as KubeObject), kind: 'Deployment', apiVersion: 'apps/v1' })),
    ...s.map((o) => ({ ...(o as KubeObject), kind: 'StatefulSet', apiVersion: 'apps/v1' })),
    ...ds.map((o) => ({ ...(o as KubeObject), kind: 'DaemonSet', apiVersion: 'apps/v1' })),
  ])
  kinded.catch(() => {}) // awaited below through the lists themselves
  const [nsObj, deployments, statefulsets, daemonsets, pods, services, pvcs, events, ingresses, flux, sections] =
    await Promise.all([
      rest<V1Namespace>(kube, 'GET', core).catch((err) => {
        if (isApiError(err, 404)) return undefined
        throw err
      }),
      deploymentsP,
      statefulsetsP,
      daemonsetsP,
      list<V1Pod>(`${core}/pods`),
      list<V1Service>(`${core}/services`),
      list<V1PersistentVolumeClaim>(`${core}/persistentvolumeclaims`),
      list<CoreV1Event>(`${core}/events`, { fieldSelector: 'type=Warning' }),
      list<V1Ingress>(`/apis/networking.k8s.io/v1/namespaces/${ns$}/ingresses`),
      fluxSection(kube, ns, kinded),
      ns.hooks.dashboardSections ? hookSections(kube, ns, env, activeForwards) : undefined,
    ])

  const urls = ingressUrls(ingresses)
  const podsByApp = new Map<string, V1Pod[]>()
  for (const p of pods) {
    const a = appOf(p)
    if (a) podsByApp.set(a, [...(podsByApp.get(a) ?? []), p])
  }

  const workloads = [
    ...deployments.map((o) => ({ o, kind: 'Deployment', apiVersion: 'apps/v1' })),
    ...statefulsets.map((o) => ({ o, kind: 'StatefulSet', apiVersion: 'apps/v1' })),
    ...daemonsets.map((o) => ({ o, kind: 'DaemonSet', apiVersion: 'apps/v1' })),
  ]
  const problems: string[] = []

  const row = (name: string, group: string, port?: number): DashboardAppRow => {
    const w = workloads.find((x) => appOf(x.o) === name || x.o.metadata?.name === name)
    const svc = services.find((s) => s.metadata?.name === name)
    const appPods = podsByApp.get(name) ?? []
    const svcPort = port ?? svc?.spec?.ports?.[0]?.port
    const fwd = forwards.get(name)
    const base = {
      name,
      group,
      restarts: appPods.reduce((n, p) => n + podStatus(p).restarts, 0),
      ingressUrl: urls.get(name),
      address: svc && svcPort ? `${name}.${namespace}.svc:${svcPort}` : undefined,
      clusterIP: svc?.spec?.clusterIP && svcPort ? `${svc.spec.clusterIP}:${svcPort}` : undefined,
      localUrl: fwd && fwd.status === 'active' ? fwd.url : undefined,
    }
    if (!w)
      return {
        ...base,
        status: 'NotFound',
        message: 'no Deployment, StatefulSet or DaemonSet with this name',
        ready: '0/0',
      }
    const st = computeStatus({ ...(w.o as KubeObject), kind: w.kind, apiVersion: w.apiVersion }, new Date(now), {
      pods: appPods as KubeObject[],
    })
    const s = w.o.status as
      { readyReplicas?: number; replicas?: number; numberReady?: number; desiredNumberScheduled?: number } | undefined
    const ready =
      w.kind === 'DaemonSet'
        ? `${s?.numberReady ?? 0}/${s?.desiredNumberScheduled ?? 0}`
        : `${s?.readyReplicas ?? 0}/${(w.o.spec as { replicas?: number })?.replicas ?? 1}`
    const template = (w.o.spec as { template?: Parameters<typeof appImages>[0] } | undefined)?.template
    return {
      ...base,
      kind: w.kind,
      status: st.status,
      message: st.message,
      ready,
      images: appImages(template, appPods),
    }
  }

  const groups = ns.groups.map((g) => ({ title: g.title, apps: g.apps.map((a) => row(a.name, g.id, a.port)) }))
  const known = new Set(ns.apps.map((a) => a.name))
  const others = workloads.map((w) => appOf(w.o) ?? w.o.metadata!.name!).filter((n) => !known.has(n))
  if (others.length) groups.push({ title: 'Other workloads', apps: [...new Set(others)].map((n) => row(n, 'other')) })
  for (const g of groups)
    for (const a of g.apps) if (a.status !== 'Current') problems.push(`${a.name}: ${a.status} (${a.message})`)

  const podRows: PodRow[] = pods
    .map((p) => {
      const st = podStatus(p)
      if (!st.healthy) problems.push(`pod ${p.metadata?.name}: ${st.status}`)
      return {
        name: p.metadata!.name!,
        app: appOf(p),
        status: st.status,
        ready: st.ready,
        restarts: st.restarts,
        age: age(p.metadata?.creationTimestamp, now),
        ip: p.status?.podIP,
        node: p.spec?.nodeName,
        healthy: st.healthy,
      }
    })
    .sort((a, b) => a.name.localeCompare(b.name))

  const pvcRows: PvcRow[] = pvcs
    .map((p) => {
      if (p.status?.phase !== 'Bound') problems.push(`PVC ${p.metadata?.name}: ${p.status?.phase ?? 'Pending'}`)
      return {
        name: p.metadata!.name!,
        status: p.status?.phase ?? 'Pending',
        capacity: p.status?.capacity?.storage,
        requested: p.spec?.resources?.requests?.storage,
        storageClass: p.spec?.storageClassName,
        accessModes: p.spec?.accessModes ?? [],
        volume: p.spec?.volumeName,
      }
    })
    .sort((a, b) => a.name.localeCompare(b.name))

  const eventRows: DashboardEventRow[] = events
    .map((e) => {
      const last = e.lastTimestamp ?? e.eventTime ?? e.metadata?.creationTimestamp
      return {
        object: `${e.involvedObject?.kind}/${e.involvedObject?.name}`,
        reason: e.reason ?? '',
        message: (e.message ?? '').trim(),
        count: e.count ?? 1,
        lastSeen: last ? new Date(last).toISOString() : '',
        age: age(last, now),
      }
    })
    .sort((a, b) => b.lastSeen.localeCompare(a.lastSeen))
    .slice(0, 10)

  problems.push(...flux.problems)
  if (!nsObj) problems.unshift(`namespace ${namespace} does not exist`)

  return {
    schema: DASHBOARD_SCHEMA,
    generatedAt: new Date(now).toISOString(),
    context: kube.context,
    server: kube.server,
    namespace: { config: ns.name, name: namespace, env, exists: Boolean(nsObj), phase: nsObj?.status?.phase },
    flux,
    devLoop: session
      ? {
          pid: session.pid,
          startedAt: session.startedAt,
          lastApply: session.lastApply,
          ...(session.kept ? { kept: true } : {}),
        }
      : undefined,
    groups,
    pods: podRows,
    pvcs: pvcRows,
    events: eventRows,
    quickCommands: ns.quickCommandsFor(env),
    ...(sections ? { sections } : {}),
    healthy: problems.length === 0,
    problems,
  }
}
