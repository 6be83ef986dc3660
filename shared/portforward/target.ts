// Which pod and container port a Service's port leads to right now: the Service and the pods
// of its namespace are watched, so a replaced pod is noticed as soon as the API says so.
import { Watch, type V1Pod, type V1Service } from '@kubernetes/client-node'
import { errorMessage } from '../core/errors.ts'
import type { Kube } from '../kube/client.ts'
import { Backoff } from './backoff.ts'

export interface ForwardTarget {
  pod: string
  containerPort: number
}

/** A target, or why there is none (shown to users as the forward's last error). */
export type Resolution = { target: ForwardTarget; problem?: undefined } | { target?: undefined; problem: string }

export interface ServicePort {
  namespace: string
  service: string
  /** the Service's port, by number or by name */
  remotePort: number | string
}

export interface TargetWatch {
  current(): Resolution
  /** true once the pod is deleted or terminating: connections to it are dead ends */
  gone(pod: string): boolean
  stop(): Promise<void>
}

const time = (t: string | Date | undefined) => (t ? new Date(t).getTime() : 0)

function ready(pod: V1Pod): boolean {
  return (
    !pod.metadata?.deletionTimestamp &&
    pod.status?.phase === 'Running' &&
    (pod.status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True')
  )
}

function matches(selector: Record<string, string>, pod: V1Pod): boolean {
  const labels = pod.metadata?.labels ?? {}
  return Object.entries(selector).every(([k, v]) => labels[k] === v)
}

/**
 * The pod a forward should use: the current one while it stays Ready (no needless
 * re-targeting), otherwise the newest Ready pod, which during a rollout is the new version.
 */
export function resolveForwardTarget(
  want: ServicePort,
  svc: V1Service | undefined,
  pods: V1Pod[],
  current?: string,
): Resolution {
  const name = `Service ${want.namespace}/${want.service}`
  if (!svc) return { problem: `${name} does not exist (yet)` }
  const selector = svc.spec?.selector ?? {}
  if (Object.keys(selector).length === 0)
    return { problem: `${name} has no selector, so there is no pod to forward to` }
  const ports = svc.spec?.ports ?? []
  const port = ports.find((p) =>
    typeof want.remotePort === 'number' ? p.port === want.remotePort : p.name === want.remotePort,
  )
  if (!port) {
    const known = ports.map((p) => (p.name ? `${p.port} (${p.name})` : String(p.port))).join(', ') || 'none'
    return { problem: `${name} has no port ${want.remotePort}; its ports: ${known}` }
  }
  if (port.protocol && port.protocol !== 'TCP')
    return { problem: `${name} port ${want.remotePort} is ${port.protocol}; only TCP can be forwarded` }
  const selectorText = Object.entries(selector)
    .map(([k, v]) => `${k}=${v}`)
    .join(',')
  const candidates = pods
    .filter((p) => matches(selector, p) && ready(p))
    .sort((a, b) => time(b.metadata?.creationTimestamp) - time(a.metadata?.creationTimestamp))
  const pod = candidates.find((p) => p.metadata?.name === current) ?? candidates[0]
  if (!pod) return { problem: `no Ready pod behind ${name} (selector ${selectorText})` }
  const podName = pod.metadata?.name ?? ''
  const targetPort = port.targetPort ?? port.port
  if (typeof targetPort === 'number') return { target: { pod: podName, containerPort: targetPort } }
  if (/^\d+$/.test(targetPort)) return { target: { pod: podName, containerPort: Number(targetPort) } }
  const named = (pod.spec?.containers ?? []).flatMap((c) => c.ports ?? []).find((p) => p.name === targetPort)
  if (!named)
    return {
      problem: `pod ${podName} has no container port named ${targetPort} (targetPort of ${name} port ${want.remotePort})`,
    }
  return { target: { pod: podName, containerPort: named.containerPort } }
}

interface Listed<T> {
  items: T[]
  metadata?: { resourceVersion?: string }
}

/**
 * List, then watch from the list's resourceVersion; a watch that ends is resumed, a failed
 * one (or 410 Gone) relists after a backoff. Stoppable at any point without leaving a request open.
 */
class ListWatch<T extends { metadata?: { name?: string } }> {
  private objects = new Map<string, T>()
  private stopped = false
  private abort?: AbortController
  private wake?: () => void
  private readonly backoff = new Backoff()
  readonly done: Promise<void>

  constructor(
    private readonly kube: Kube,
    private readonly path: string,
    private readonly list: () => Promise<Listed<T>>,
    private readonly query: Record<string, string>,
    private readonly changed: () => void,
    private readonly failed: (err: unknown) => void,
  ) {
    this.done = this.run()
  }

  items(): T[] {
    return [...this.objects.values()]
  }

  /** Whether the first list has arrived: before it, an empty cache says nothing about the cluster. */
  get synced(): boolean {
    return this.listed
  }
  private listed = false

  private async run(): Promise<void> {
    let rv = ''
    while (!this.stopped) {
      try {
        if (!rv) {
          const list = await this.list()
          if (this.stopped) return
          this.objects = new Map(list.items.map((o) => [o.metadata?.name ?? '', o]))
          rv = list.metadata?.resourceVersion ?? ''
          this.listed = true
          this.backoff.reset()
          this.changed()
        }
        const since = Date.now()
        const ended = await this.watchOnce(rv, (next) => {
          rv = next
        })
        if (ended === 'gone') rv = ''
        // a watch the server keeps closing at once must not become a busy loop
        if (Date.now() - since < 1000) await this.sleep(this.backoff.next())
      } catch (err) {
        if (this.stopped) return
        rv = ''
        this.failed(err)
        await this.sleep(this.backoff.next())
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms)
      this.wake = () => {
        clearTimeout(timer)
        resolve()
      }
    })
  }

  private watchOnce(rv: string, seen: (rv: string) => void): Promise<'ended' | 'gone'> {
    return new Promise((resolve, reject) => {
      let gone = false
      const onEvent = (type: string, obj: T & { code?: number; metadata?: { resourceVersion?: string } }) => {
        if (type === 'ERROR') {
          if (obj.code === 410) gone = true
          return
        }
        if (obj.metadata?.resourceVersion) seen(obj.metadata.resourceVersion)
        if (type === 'BOOKMARK') return
        const name = obj.metadata?.name ?? ''
        if (type === 'DELETED') this.objects.delete(name)
        else this.objects.set(name, obj)
        this.backoff.reset()
        this.changed()
      }
      const onDone = (err: unknown) => {
        this.abort = undefined
        if (err && !gone) reject(err)
        else resolve(gone ? 'gone' : 'ended')
      }
      new Watch(this.kube.kc)
        .watch(this.path, { ...this.query, resourceVersion: rv, allowWatchBookmarks: true }, onEvent, onDone)
        .then((controller) => {
          // watch() resolves after the request is made: a stop() in between must still end it
          if (this.stopped) controller.abort()
          else this.abort = controller
        }, reject)
    })
  }

  async stop(): Promise<void> {
    this.stopped = true
    this.abort?.abort()
    this.wake?.()
    await this.done.catch(() => {})
  }
}

/** Watches a Service and its namespace's pods; `onChange` runs whenever the answer may differ. */
export function watchServiceTarget(
  kube: Kube,
  want: ServicePort,
  onChange: () => void,
  onError: (err: Error) => void,
): TargetWatch {
  const { namespace, service } = want
  const failed = (what: string) => (err: unknown) =>
    onError(new Error(`watching ${what} in namespace ${namespace} failed (${errorMessage(err)}); retrying`))
  // the answer is judged only once both lists have arrived: the pods' list coming back first
  // would otherwise report "Service … does not exist (yet)" for a Service that does exist
  const whenSynced = () => {
    if (services.synced && pods.synced) onChange()
  }
  const services: ListWatch<V1Service> = new ListWatch<V1Service>(
    kube,
    `/api/v1/namespaces/${namespace}/services`,
    () => kube.core.listNamespacedService({ namespace, fieldSelector: `metadata.name=${service}` }),
    { fieldSelector: `metadata.name=${service}` },
    whenSynced,
    failed(`Service ${service}`),
  )
  // All pods of the namespace rather than the selector's: the selector can change with the Service.
  const pods: ListWatch<V1Pod> = new ListWatch<V1Pod>(
    kube,
    `/api/v1/namespaces/${namespace}/pods`,
    () => kube.core.listNamespacedPod({ namespace }),
    {},
    whenSynced,
    failed('pods'),
  )
  let last: string | undefined
  return {
    current() {
      const r = resolveForwardTarget(want, services.items()[0], pods.items(), last)
      if (r.target) last = r.target.pod
      return r
    },
    gone(pod) {
      const p = pods.items().find((x) => x.metadata?.name === pod)
      return !p || Boolean(p.metadata?.deletionTimestamp)
    },
    async stop() {
      await Promise.all([services.stop(), pods.stop()])
    },
  }
}
