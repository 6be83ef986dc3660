// What tk does between evaluating an environment and showing or applying it (grafana/tanka
// pkg/process): find every Kubernetes object in the nested output, flatten `*List` kinds,
// default the namespace of namespaced kinds, add the tanka.dev/environment label and the
// spec's resourceDefaults, and order the objects for apply.
import { NsopsError } from '../core/errors.ts'
import { environmentLabel, type TankaEnvironment } from './environments.ts'

/** A Kubernetes object as an environment renders it. */
export interface TankaObject {
  apiVersion: string
  kind: string
  metadata: {
    name: string
    namespace?: string
    labels?: Record<string, string>
    annotations?: Record<string, string>
    [field: string]: unknown
  }
  [field: string]: unknown
}

export const ENVIRONMENT_LABEL = 'tanka.dev/environment'
/** tk's per-object override of whether the default namespace applies ("true"/"false"). */
export const NAMESPACED_ANNOTATION = 'tanka.dev/namespaced'

// tk's list of cluster-scoped kinds (pkg/process/namespace.go): these never get the default namespace.
const CLUSTER_WIDE_KINDS = new Set([
  'APIService',
  'CertificateSigningRequest',
  'ClusterRole',
  'ClusterRoleBinding',
  'ComponentStatus',
  'CSIDriver',
  'CSINode',
  'CustomResourceDefinition',
  'MutatingWebhookConfiguration',
  'Namespace',
  'Node',
  'NodeMetrics',
  'PersistentVolume',
  'PodSecurityPolicy',
  'PriorityClass',
  'RuntimeClass',
  'SelfSubjectAccessReview',
  'SelfSubjectRulesReview',
  'StorageClass',
  'SubjectAccessReview',
  'TokenReview',
  'ValidatingWebhookConfiguration',
  'VolumeAttachment',
  'ClusterIssuer',
])

// tk's apply order (pkg/process/sort.go, after Helm's kind_sorter); other kinds go last, by kind.
export const KIND_ORDER = [
  'Namespace',
  'NetworkPolicy',
  'ResourceQuota',
  'LimitRange',
  'PodSecurityPolicy',
  'PodDisruptionBudget',
  'ServiceAccount',
  'Secret',
  'ConfigMap',
  'StorageClass',
  'PersistentVolume',
  'PersistentVolumeClaim',
  'CustomResourceDefinition',
  'ClusterRole',
  'ClusterRoleList',
  'ClusterRoleBinding',
  'ClusterRoleBindingList',
  'Role',
  'RoleList',
  'RoleBinding',
  'RoleBindingList',
  'Service',
  'DaemonSet',
  'Pod',
  'ReplicationController',
  'ReplicaSet',
  'Deployment',
  'HorizontalPodAutoscaler',
  'StatefulSet',
  'Job',
  'CronJob',
  'Ingress',
  'APIService',
]

type Json = null | boolean | number | string | Json[] | { [key: string]: Json }
type JsonObject = { [key: string]: Json }

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function looksLikeObject(v: JsonObject): boolean {
  return typeof v.apiVersion === 'string' && v.apiVersion !== '' && typeof v.kind === 'string' && v.kind !== ''
}

function processError(message: string): NsopsError {
  return new NsopsError(message, {
    hint: "Every visible field of an environment's output must lead to Kubernetes objects (apiVersion, kind, metadata.name); hide helpers and config with `::`.",
  })
}

/** tk's manifest check: metadata is an object with a name (or generateName). */
function verify(obj: JsonObject, at: string): TankaObject {
  const meta = obj.metadata
  if (!isObject(meta)) throw processError(`the object at ${at} (${String(obj.kind)}) has no metadata.`)
  if (!(typeof meta.name === 'string' && meta.name) && !(typeof meta.generateName === 'string' && meta.generateName)) {
    throw processError(`the object at ${at} (${String(obj.kind)}) has no metadata.name.`)
  }
  return obj as unknown as TankaObject
}

/**
 * Every Kubernetes object in the evaluated output, keyed by its path (`.redis.deployment_redis`),
 * as tk's Extract: objects with apiVersion and kind are taken whole; other objects and arrays
 * are searched; null is skipped; any other value is an error naming its path.
 */
export function extractObjects(raw: unknown): Map<string, TankaObject> {
  const out = new Map<string, TankaObject>()
  const walk = (v: unknown, trail: string[]): void => {
    if (Array.isArray(v)) {
      v.forEach((item, i) => walk(item, [...trail, `[${i}]`]))
      return
    }
    if (!isObject(v)) {
      const at = `.${trail.slice(0, -1).join('.')}`
      throw processError(
        `the environment's output is not only Kubernetes objects: at ${at}, the key ${JSON.stringify(trail[trail.length - 1] ?? '')} holds a ${v === null ? 'null' : typeof v} (${JSON.stringify(v)?.slice(0, 60)}).`,
      )
    }
    const { __ksonnet: _private, ...obj } = v
    if (looksLikeObject(obj)) {
      out.set(`.${trail.join('.')}`, verify(obj, `.${trail.join('.')}`))
      return
    }
    for (const key of Object.keys(obj).sort()) {
      if (obj[key] === null) continue // what a false `if` in Jsonnet leaves
      walk(obj[key], [...trail, key])
    }
  }
  walk(raw, [])
  return out
}

/** tk's Unwrap: a `*List` with items is replaced by its items. */
export function unwrapLists(objects: Map<string, TankaObject>): Map<string, TankaObject> {
  const out = new Map<string, TankaObject>()
  for (const [at, obj] of objects) {
    if (obj.kind.endsWith('List') && Array.isArray(obj.items)) {
      obj.items.forEach((item: unknown, i: number) => {
        const where = `${at}.items[${i}]`
        if (!isObject(item) || !looksLikeObject(item))
          throw processError(`the item at ${where} is not a Kubernetes object (apiVersion and kind).`)
        out.set(where, verify(item, where))
      })
    } else {
      out.set(at, obj)
    }
  }
  return out
}

/** Sets the environment's namespace on namespaced objects that have none (tk's Namespace). */
export function defaultNamespace(objects: TankaObject[], namespace: string): void {
  if (!namespace) return
  for (const obj of objects) {
    let namespaced = !CLUSTER_WIDE_KINDS.has(obj.kind)
    const override = obj.metadata.annotations?.[NAMESPACED_ANNOTATION]
    if (override !== undefined) namespaced = override === 'true'
    if (namespaced && !obj.metadata.namespace) obj.metadata.namespace = namespace
    if (obj.metadata.annotations && Object.keys(obj.metadata.annotations).length === 0) delete obj.metadata.annotations
  }
}

/** Orders objects as tk does before an apply: by KIND_ORDER, then kind, namespace and name. */
export function sortObjects(objects: TankaObject[]): TankaObject[] {
  const rank = (kind: string) => {
    const i = KIND_ORDER.indexOf(kind)
    return i === -1 ? KIND_ORDER.length : i
  }
  const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)
  return [...objects].sort(
    (a, b) =>
      rank(a.kind) - rank(b.kind) ||
      cmp(a.kind, b.kind) ||
      cmp(a.metadata.namespace ?? '', b.metadata.namespace ?? '') ||
      cmp(a.metadata.name ?? '', b.metadata.name ?? ''),
  )
}

/** The whole of tk's processing, from evaluated output to the ordered objects `tk show` prints. */
export function processOutput(raw: unknown, env: TankaEnvironment): TankaObject[] {
  const objects = [...unwrapLists(extractObjects(raw)).values()]
  defaultNamespace(objects, env.spec.spec.namespace)
  const { injectLabels, resourceDefaults } = env.spec.spec
  for (const obj of objects) {
    // `labels:`/`annotations:` with nothing under it (as charts render them) is YAML's null:
    // the API server reads it as absent, and a diff against the live object must too
    for (const field of ['labels', 'annotations'] as const) if (obj.metadata[field] === null) delete obj.metadata[field]
    if (injectLabels)
      obj.metadata.labels = { ...(obj.metadata.labels ?? {}), [ENVIRONMENT_LABEL]: environmentLabel(env) }
    for (const [field, defaults] of [
      ['annotations', resourceDefaults?.annotations],
      ['labels', resourceDefaults?.labels],
    ] as const) {
      if (!defaults || Object.keys(defaults).length === 0) continue
      obj.metadata[field] = { ...defaults, ...(obj.metadata[field] ?? {}) }
    }
  }
  return sortObjects(objects)
}
