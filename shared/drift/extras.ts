// "Extra in the namespace": every object the namespace holds that no Kustomization's
// inventory and no build accounts for, and that no other object owns. Found by listing each
// namespaced kind discovery serves (preferred versions, listable), skipping what every
// namespace has or what a controller makes for another object (Argo CD's orphaned-resource
// exceptions, plus Events and a Service's Endpoints/EndpointSlices).
import { ApiException } from '@kubernetes/client-node'
import { mapLimit } from '../apply/order.ts'
import { rest, type LiveObject } from '../apply/rest.ts'
import type { ObjectRef } from '../apply/refs.ts'
import type { Kube } from '../kube.ts'

interface Resource { name: string; namespaced: boolean; kind: string; verbs?: string[] }
interface GroupList { groups: { name: string; preferredVersion?: { groupVersion: string } }[] }

/** Kinds no one writes by hand: events, and metrics-style read-only views. */
const NEVER_EXTRA = new Set(['/Event', 'events.k8s.io/Event', '/Binding', 'authorization.k8s.io/LocalSubjectAccessReview'])

async function namespacedKinds(kube: Kube): Promise<{ apiVersion: string; resource: Resource }[]> {
  const groups = await rest<GroupList>(kube, 'GET', '/apis')
  const versions = ['v1', ...groups.groups.map((g) => g.preferredVersion?.groupVersion).filter((v): v is string => Boolean(v))]
  const lists = await Promise.all(versions.map(async (gv) => {
    try {
      const r = await rest<{ resources: Resource[] }>(kube, 'GET', gv === 'v1' ? '/api/v1' : `/apis/${gv}`)
      return r.resources.filter((x) => x.namespaced && !x.name.includes('/') && (x.verbs ?? []).includes('list')).map((resource) => ({ apiVersion: gv, resource }))
    } catch { return [] } // an aggregated API that does not answer: nothing of it to report
  }))
  return lists.flat().filter(({ apiVersion, resource }) => !NEVER_EXTRA.has(`${apiVersion.includes('/') ? apiVersion.split('/')[0] : ''}/${resource.kind}`))
}

export interface NamespaceObjects {
  objects: LiveObject[]
  /** kinds we may not list (RBAC) or the server failed to list: said in the report */
  unreadable: string[]
}

export async function listNamespace(kube: Kube, namespace: string): Promise<NamespaceObjects> {
  const kinds = await namespacedKinds(kube)
  const unreadable: string[] = []
  const lists = await mapLimit(kinds, 16, async ({ apiVersion, resource }) => {
    const base = apiVersion === 'v1' ? '/api/v1' : `/apis/${apiVersion}`
    try {
      const list = await rest<{ items: LiveObject[] }>(kube, 'GET', `${base}/namespaces/${encodeURIComponent(namespace)}/${resource.name}`)
      return list.items.map((o) => ({ ...o, apiVersion, kind: resource.kind }))
    } catch (err) {
      if (err instanceof ApiException && err.code === 404) return []
      unreadable.push(`${resource.name}${apiVersion.includes('/') ? `.${apiVersion.split('/')[0]}` : ''} (${err instanceof ApiException ? `HTTP ${err.code}` : String(err)})`)
      return []
    }
  })
  return { objects: lists.flat(), unreadable: unreadable.sort() }
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
  if (kind === 'Secret' && (o as { type?: string }).type === 'kubernetes.io/service-account-token') return 'a ServiceAccount token'
  if (kind === 'PersistentVolumeClaim') {
    // a StatefulSet's claims carry no ownerReference (unless its retention policy deletes them)
    for (const sts of all.filter((x) => x.kind === 'StatefulSet')) {
      const tpl = ((sts.spec as { volumeClaimTemplates?: { metadata?: { name?: string } }[] } | undefined)?.volumeClaimTemplates ?? [])
      if (tpl.some((t) => new RegExp(`^${t.metadata?.name}-${sts.metadata.name}-\\d+$`).test(m.name))) return `a claim of StatefulSet ${sts.metadata.name}`
    }
  }
  if (m.labels?.['helm.toolkit.fluxcd.io/name']) return `applied by HelmRelease ${m.labels['helm.toolkit.fluxcd.io/name']}`
  return undefined
}

export function liveRef(o: LiveObject): ObjectRef {
  return { apiVersion: o.apiVersion, kind: o.kind, name: o.metadata.name, ...(o.metadata.namespace ? { namespace: o.metadata.namespace } : {}) }
}
