// The watches behind a health wait: one list+watch (client-node informer) per collection
// (kind and namespace), started once, restarted with backoff when the watch breaks or the
// list is refused for now, and stopped together. They only report "something changed in
// this collection"; what that means for an object's health is evaluate.ts's job.
import { makeInformer, type Informer, type KubernetesObject, type ObjectCache } from '@kubernetes/client-node'
import type { Kube } from '../kube/client.ts'
import { collectionPath } from './discovery.ts'

export interface Collection {
  path: string
  informer: Informer<KubernetesObject> & ObjectCache<KubernetesObject>
  apiVersion: string
  kind: string
  namespace?: string
  /** the last list/watch error, cleared by the next successful list */
  error?: unknown
  started?: Promise<void>
}

const restartBackoffMs = { first: 100, max: 5000 }
export const CRDS = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions'

export class Informers {
  private readonly collections = new Map<string, Collection>()
  private readonly timers = new Set<NodeJS.Timeout>()
  private stopping = false

  /**
   * `changed(col, obj)`: an add/update/delete of `obj`, or (obj undefined) a list, an error or
   * a restart after which anything in the collection may read differently.
   */
  constructor(
    private readonly kube: Kube,
    private readonly changed: (col: Collection, obj?: KubernetesObject) => void,
  ) {}

  get stopped(): boolean {
    return this.stopping
  }

  get(path: string): Collection | undefined {
    return this.collections.get(path)
  }

  /** A live object from a collection's cache. */
  live(apiVersion: string, plural: string, name: string, namespace?: string): KubernetesObject | undefined {
    return this.collections.get(collectionPath(apiVersion, plural, namespace))?.informer.get(name, namespace)
  }

  later(ms: number, fn: () => void): NodeJS.Timeout {
    const t = setTimeout(() => {
      this.timers.delete(t)
      fn()
    }, ms)
    this.timers.add(t)
    return t
  }

  clear(t: NodeJS.Timeout | undefined): void {
    if (!t) return
    clearTimeout(t)
    this.timers.delete(t)
  }

  /** Watches one collection (once; a second call waits for the first list). */
  async watch(apiVersion: string, kind: string, plural: string, namespace?: string): Promise<Collection> {
    const path = collectionPath(apiVersion, plural, namespace)
    const existing = this.collections.get(path)
    if (existing) {
      await existing.started
      return existing
    }
    const listed = async () => {
      const list = await this.kube.objects.list(apiVersion, kind, namespace)
      col.error = undefined
      // an empty list fires no events, yet it may change a status (Unknown → NotFound)
      setImmediate(() => this.changed(col))
      return list
    }
    const informer = makeInformer<KubernetesObject>(this.kube.kc, path, listed)
    const col: Collection = { path, informer, apiVersion, kind, namespace }
    this.collections.set(path, col)
    let backoff = restartBackoffMs.first
    let retrying = false
    const restart = () => {
      // list+watch again, backing off: the watch broke (API restart, network blip) or the
      // list was refused for now (a CRD's storage still initialising, 429, 503)
      if (this.stopping || retrying) return
      retrying = true
      this.later(backoff, () => {
        retrying = false
        if (!this.stopping) void informer.start()
      })
      backoff = Math.min(backoff * 2, restartBackoffMs.max)
    }
    const onChange = (obj?: KubernetesObject) => {
      backoff = restartBackoffMs.first
      this.changed(col, obj)
    }
    informer.on('add', onChange)
    informer.on('update', onChange)
    informer.on('delete', onChange)
    informer.on('error', (err: unknown) => {
      if (this.stopping) return
      col.error = err
      this.changed(col)
      restart()
    })
    col.started = informer.start().then(async () => {
      // stopped while this list was in flight: stop() has already run
      if (this.stopping) await informer.stop()
    })
    await col.started
    return col
  }

  /** Kinds nobody serves yet (a CRD applied with its objects): `onCrd` sees each CRD as it changes. */
  async watchCrds(onCrd: (crd: KubernetesObject) => void): Promise<void> {
    if (this.collections.has(CRDS)) return
    const informer = makeInformer<KubernetesObject>(this.kube.kc, CRDS, () =>
      this.kube.objects.list('apiextensions.k8s.io/v1', 'CustomResourceDefinition'),
    )
    this.collections.set(CRDS, {
      path: CRDS,
      informer,
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
    })
    informer.on('add', onCrd)
    informer.on('update', onCrd)
    informer.on('error', () => {})
    await informer.start()
    if (this.stopping) await informer.stop()
  }

  async stop(): Promise<void> {
    this.stopping = true
    for (const t of this.timers) clearTimeout(t)
    this.timers.clear()
    await Promise.allSettled([...this.collections.values()].map((c) => c.informer.stop()))
  }
}
