// How an applied object is named: in results, in the inventory, in messages.
import type { KubernetesObject, V1ObjectMeta } from '@kubernetes/client-node'

/** A manifest as it goes to the API server: apiVersion, kind and metadata.name are present. */
export interface ManifestObject extends KubernetesObject {
  apiVersion: string
  kind: string
  metadata: V1ObjectMeta & { name: string }
  [field: string]: unknown
}

export interface ObjectRef {
  apiVersion: string
  kind: string
  /** absent for cluster-scoped objects */
  namespace?: string
  name: string
}

/** The API group of an apiVersion: `apps/v1` → `apps`, `v1` → `` (core). */
export function groupOf(apiVersion: string): string {
  const slash = apiVersion.indexOf('/')
  return slash < 0 ? '' : apiVersion.slice(0, slash)
}

export function refOf(obj: ManifestObject): ObjectRef {
  const r: ObjectRef = { apiVersion: obj.apiVersion, kind: obj.kind, name: obj.metadata.name }
  if (obj.metadata.namespace) r.namespace = obj.metadata.namespace
  return r
}

/**
 * Identity without the version (`apps/Deployment/shop/web`, `/Namespace//shop`): the same
 * object read through another apiVersion is still the same object.
 */
export function refKey(r: ObjectRef): string {
  return `${groupOf(r.apiVersion)}/${r.kind}/${r.namespace ?? ''}/${r.name}`
}

/** For people: `Deployment/shop/web`, `Namespace/shop` (the form kube.ts `ref` prints). */
export function refString(r: ObjectRef): string {
  return `${r.kind}/${r.namespace ? `${r.namespace}/` : ''}${r.name}`
}
