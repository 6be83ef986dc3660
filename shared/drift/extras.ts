// "Extra in the namespace": every object the namespace holds that no Kustomization's
// inventory and no build accounts for, and that no other object owns. Found by listing each
// namespaced kind discovery serves (preferred versions, listable; the lists also give drift
// the live side of each compare, see NamespaceListing), skipping what every
// namespace has or what a controller makes for another object (Argo CD's orphaned-resource
// exceptions, plus Events and a Service's Endpoints/EndpointSlices).
import { ApiException } from '@kubernetes/client-node'
import { aggregatedDiscovery, METADATA_LIST, resourcePath, rest, type LiveObject } from '../kube/rest.ts'
import type { ObjectRef } from '../kube/refs.ts'
import type { Kube } from '../kube/client.ts'

interface Resource {
  name: string
  namespaced: boolean
  kind: string
  verbs?: string[]
}
interface GroupList {
  groups: { name: string; preferredVersion?: { groupVersion: string } }[]
}

/** Kinds no one writes by hand: events, and metrics-style read-only views. */
const NEVER_EXTRA = new Set([
  '/Event',
  'events.k8s.io/Event',
  '/Binding',
  'authorization.k8s.io/LocalSubjectAccessReview',
])

type NamespacedKind = { apiVersion: string; resource: Resource }

/** The namespaced, listable kinds of each group's preferred version (the first the server lists). */
async function aggregatedKinds(kube: Kube): Promise<NamespacedKind[] | undefined> {
  const discovery = await aggregatedDiscovery(kube)
  if (!discovery) return undefined // an older server or a proxy: ask per group
  const out: NamespacedKind[] = []
  for (const g of discovery.groups) {
    const v = g.versions[0]
    if (!v) continue
    for (const r of v.resources) if (r.namespaced) out.push({ apiVersion: v.apiVersion, resource: r })
  }
  return out
}

async function perGroupKinds(kube: Kube): Promise<NamespacedKind[]> {
  const groups = await rest<GroupList>(kube, 'GET', '/apis')
  const versions = [
    'v1',
    ...groups.groups.map((g) => g.preferredVersion?.groupVersion).filter((v): v is string => Boolean(v)),
  ]
  const lists = await Promise.all(
    versions.map(async (gv) => {
      try {
        const r = await rest<{ resources: Resource[] }>(kube, 'GET', gv === 'v1' ? '/api/v1' : `/apis/${gv}`)
        return r.resources.filter((x) => x.namespaced).map((resource) => ({ apiVersion: gv, resource }))
      } catch {
        return []
      } // an aggregated API that does not answer: nothing of it to report
    }),
  )
  return lists.flat()
}

async function namespacedKinds(kube: Kube): Promise<NamespacedKind[]> {
  const kinds = (await aggregatedKinds(kube).catch(() => undefined)) ?? (await perGroupKinds(kube))
  return kinds.filter(
    ({ apiVersion, resource }) =>
      !resource.name.includes('/') &&
      (resource.verbs ?? []).includes('list') &&
      !NEVER_EXTRA.has(`${apiVersion.includes('/') ? apiVersion.split('/')[0] : ''}/${resource.kind}`),
  )
}

export interface NamespaceObjects {
  objects: LiveObject[]
  /** kinds we may not list (RBAC) or the server failed to list: said in the report */
  unreadable: string[]
}

/** find() when the listing cannot speak for the object: ask the server for it. */
export const UNLISTED = Symbol('unlisted')

/** Lists in flight at once: what the API server answers side by side without queueing them. */
const LIST_CONCURRENCY = 16

/**
 * Kinds a controller makes for another object (a Deployment's ReplicaSets and Pods, a
 * Service's endpoints...): listed last, as drift rarely compares them, and their lists are the
 * longest; and as metadata only (what tells an extra: owners, labels, who wrote it), which
 * the API server encodes in a fraction of the time. A compare of one reads it whole (find()
 * does not speak for them).
 */
const MADE_FOR_OTHERS = new Set([
  'Pod',
  'ReplicaSet',
  'ControllerRevision',
  'Endpoints',
  'EndpointSlice',
  'Lease',
  'Job',
])

/**
 * Every object of the namespace, one list per kind. The lists also answer "what is live" for
 * the objects drift compares (`find`), so comparing needs no GET per object: half the
 * requests, which is what a drift of a few hundred objects waits on. A list is as current as a
 * GET made at the same moment, and the dry run that follows reads the server's state anyway
 * (a moved resourceVersion makes the compare read again). The kinds a compare waits on are
 * listed first: each find() moves its kind to the head of the lists not yet asked for.
 */
export class NamespaceListing {
  /** per kind: its objects by name, undefined when its list failed */
  private readonly lists: Promise<Map<string, Promise<Map<string, LiveObject> | undefined>>>
  private readonly unreadable: string[] = []
  /** the kinds not listed yet, in the order they will be */
  private waiting: NamespacedKind[] = []
  private running = 0
  private readonly settle = new Map<string, (items: Map<string, LiveObject> | undefined) => void>()
  /** every list answered (or failed); rejects only when discovery itself failed */
  readonly all: Promise<NamespaceObjects>

  constructor(
    private readonly kube: Kube,
    readonly namespace: string,
  ) {
    this.lists = namespacedKinds(kube).then((kinds) => {
      const out = new Map<string, Promise<Map<string, LiveObject> | undefined>>()
      for (const k of kinds)
        out.set(
          kindKey(k.apiVersion, k.resource.kind),
          new Promise((resolve) => this.settle.set(kindKey(k.apiVersion, k.resource.kind), resolve)),
        )
      const last = (k: NamespacedKind) => (MADE_FOR_OTHERS.has(k.resource.kind) ? 1 : 0)
      this.waiting = [...kinds].sort((a, b) => last(a) - last(b)) // stable: discovery's order otherwise
      this.next()
      return out
    })
    this.all = this.lists.then(async (m) => {
      const lists = await Promise.all(m.values())
      return { objects: lists.flatMap((l) => (l ? [...l.values()] : [])), unreadable: this.unreadable.sort() }
    })
  }

  /** Starts lists while fewer than LIST_CONCURRENCY are in flight; each settles its kind's promise. */
  private next(): void {
    while (this.running < LIST_CONCURRENCY && this.waiting.length) {
      const k = this.waiting.shift()!
      this.running++
      // list() never rejects
      void this.list(k.apiVersion, k.resource).then((items) => {
        this.running--
        this.settle.get(kindKey(k.apiVersion, k.resource.kind))!(items)
        this.next()
      })
    }
  }

  private async list(apiVersion: string, resource: Resource): Promise<Map<string, LiveObject> | undefined> {
    try {
      // a metadata-only list of nothing says `items: null`
      const list = await rest<{ items: LiveObject[] | null }>(
        this.kube,
        'GET',
        resourcePath(apiVersion, resource, this.namespace),
        MADE_FOR_OTHERS.has(resource.kind) ? { accept: METADATA_LIST } : {},
      )
      return new Map((list.items ?? []).map((o) => [o.metadata.name, { ...o, apiVersion, kind: resource.kind }]))
    } catch (err) {
      if (err instanceof ApiException && err.code === 404) return new Map()
      this.unreadable.push(
        `${resource.name}${apiVersion.includes('/') ? `.${apiVersion.split('/')[0]}` : ''} (${err instanceof ApiException ? `HTTP ${err.code}` : String(err)})`,
      )
      return undefined
    }
  }

  /**
   * The live object as its kind's list saw it, undefined when the list has no such object, or
   * UNLISTED when no list speaks for it (another namespace, a version discovery does not
   * prefer, a list that failed).
   */
  async find(ref: ObjectRef): Promise<LiveObject | undefined | typeof UNLISTED> {
    if (ref.namespace !== this.namespace) return UNLISTED
    let lists: Map<string, Promise<Map<string, LiveObject> | undefined>>
    try {
      lists = await this.lists
    } catch {
      return UNLISTED
    }
    // listed as metadata only: the compare needs the whole object
    if (MADE_FOR_OTHERS.has(ref.kind)) return UNLISTED
    const key = kindKey(ref.apiVersion, ref.kind)
    // a compare waits on this kind: it is listed next (a no-op once it has been asked for)
    const at = this.waiting.findIndex((k) => kindKey(k.apiVersion, k.resource.kind) === key)
    if (at > 0) this.waiting.unshift(...this.waiting.splice(at, 1))
    const items = await lists.get(key)
    return items ? items.get(ref.name) : UNLISTED
  }
}

function kindKey(apiVersion: string, kind: string): string {
  return `${apiVersion} ${kind}`
}

/** Why an object every namespace has (or a controller made) is not "extra", or undefined. */
export function builtIn(o: LiveObject, all: LiveObject[]): string | undefined {
  const { kind, metadata: m } = o
  if ((m.ownerReferences as unknown[] | undefined)?.length) return 'owned by another object'
  if (kind === 'ConfigMap' && m.name === 'kube-root-ca.crt') return 'every namespace has it'
  if (kind === 'ServiceAccount' && m.name === 'default') return 'every namespace has it'
  const services = new Set(all.filter((x) => x.kind === 'Service' && x.apiVersion === 'v1').map((x) => x.metadata.name))
  if (kind === 'Endpoints' && services.has(m.name)) return "its Service's endpoints"
  if (kind === 'EndpointSlice' && m.labels?.['kubernetes.io/service-name']) return "its Service's endpoints"
  if (kind === 'Secret' && (o as { type?: string }).type === 'kubernetes.io/service-account-token')
    return 'a ServiceAccount token'
  if (kind === 'PersistentVolumeClaim') {
    // a StatefulSet's claims carry no ownerReference (unless its retention policy deletes them)
    for (const sts of all.filter((x) => x.kind === 'StatefulSet')) {
      const tpl =
        (sts.spec as { volumeClaimTemplates?: { metadata?: { name?: string } }[] } | undefined)?.volumeClaimTemplates ??
        []
      if (tpl.some((t) => new RegExp(`^${t.metadata?.name}-${sts.metadata.name}-\\d+$`).test(m.name)))
        return `a claim of StatefulSet ${sts.metadata.name}`
    }
  }
  if (m.labels?.['helm.toolkit.fluxcd.io/name'])
    return `applied by HelmRelease ${m.labels['helm.toolkit.fluxcd.io/name']}`
  return undefined
}

export function liveRef(o: LiveObject): ObjectRef {
  return {
    apiVersion: o.apiVersion,
    kind: o.kind,
    name: o.metadata.name,
    ...(o.metadata.namespace ? { namespace: o.metadata.namespace } : {}),
  }
}
