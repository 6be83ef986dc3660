// The Flux kinds nsops works with, where their API lives, and the few raw API calls every
// other flux module makes. Flux objects are read at their URLs with the plural spelled out: no
// discovery, so a CRD installed a moment ago is usable at once; over the one HTTP/2 connection
// of kube/rest.ts (client-node opens a TLS connection per call).
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node'
import { NsopsError } from '../core/errors.ts'
import { apiMessage, isApiError, type Kube } from '../kube/client.ts'
import { rest } from '../kube/rest.ts'
import type { KubeObject } from '../health/kstatus.ts'

export const fluxKinds = {
  Kustomization: { group: 'kustomize.toolkit.fluxcd.io', version: 'v1', plural: 'kustomizations' },
  HelmRelease: { group: 'helm.toolkit.fluxcd.io', version: 'v2', plural: 'helmreleases' },
  GitRepository: { group: 'source.toolkit.fluxcd.io', version: 'v1', plural: 'gitrepositories' },
  OCIRepository: { group: 'source.toolkit.fluxcd.io', version: 'v1', plural: 'ocirepositories' },
  HelmRepository: { group: 'source.toolkit.fluxcd.io', version: 'v1', plural: 'helmrepositories' },
  HelmChart: { group: 'source.toolkit.fluxcd.io', version: 'v1', plural: 'helmcharts' },
  Bucket: { group: 'source.toolkit.fluxcd.io', version: 'v1', plural: 'buckets' },
} as const

export type FluxKind = keyof typeof fluxKinds

/** The kinds a namespace's suspension covers: the appliers, never their sources. */
export type ApplierKind = 'Kustomization' | 'HelmRelease'

export interface FluxRef {
  kind: FluxKind
  namespace: string
  name: string
}

/** A Flux object as read from the cluster (raw JSON: timestamps are strings). */
export interface FluxObject extends KubeObject {
  kind: FluxKind
  metadata: NonNullable<KubeObject['metadata']> & { name: string; namespace: string }
  spec?: Record<string, unknown>
  status?: Record<string, unknown>
}

/** Field manager for our writes to Flux objects: kustomize-controller folds `kubectl*`
 * managers into its own and then removes their fields (research/anchors.md Part 1 §2). */
export const FLUX_FIELD_MANAGER = 'flux-client-side-apply'

export function fluxRefOf(obj: FluxObject | FluxRef): FluxRef {
  if ('metadata' in obj) return { kind: obj.kind, namespace: obj.metadata.namespace, name: obj.metadata.name }
  return { kind: obj.kind, namespace: obj.namespace, name: obj.name }
}

export function fluxRefString(r: FluxRef | FluxObject): string {
  const { kind, namespace, name } = fluxRefOf(r)
  return `${kind}/${namespace}/${name}`
}

export function apiVersionOf(kind: FluxKind): string {
  return `${fluxKinds[kind].group}/${fluxKinds[kind].version}`
}

/** The collection URL a watch on one kind in one namespace uses. */
export function fluxCollectionPath(kind: FluxKind, namespace: string): string {
  const k = fluxKinds[kind]
  return `/apis/${k.group}/${k.version}/namespaces/${namespace}/${k.plural}`
}

function withKind(kind: FluxKind, obj: unknown): FluxObject {
  const o = obj as FluxObject
  return { ...o, kind, apiVersion: o.apiVersion ?? apiVersionOf(kind) }
}

/** The URL of a kind's objects: in one namespace, or cluster-wide. */
function collectionPath(kind: FluxKind, namespace?: string): string {
  const k = fluxKinds[kind]
  return `/apis/${k.group}/${k.version}${namespace === undefined ? '' : `/namespaces/${encodeURIComponent(namespace)}`}/${k.plural}`
}

/** The object, or null when it (or its CRD) does not exist. */
export async function getFlux(kube: Kube, r: FluxRef): Promise<FluxObject | null> {
  try {
    const obj = await rest<unknown>(kube, 'GET', `${collectionPath(r.kind, r.namespace)}/${encodeURIComponent(r.name)}`)
    return withKind(r.kind, obj)
  } catch (err) {
    if (isApiError(err, 404)) return null
    throw apiFailure(`reading ${fluxRefString(r)}`, kube, err)
  }
}

/** A freshly installed CRD answers 429/503 "storage is (re)initializing" for a moment. */
async function retryBusy<T>(fn: () => Promise<T>, ms = 10_000): Promise<T> {
  const end = Date.now() + ms
  for (;;) {
    try {
      return await fn()
    } catch (err) {
      if (!(isApiError(err, 429) || isApiError(err, 503)) || Date.now() > end) throw err
      await new Promise((r) => setTimeout(r, 200))
    }
  }
}

/**
 * Every object of a kind, cluster-wide or in the given namespaces. A missing CRD is an
 * empty list (HelmRelease on a cluster without helm-controller); a cluster-wide list that
 * RBAC forbids falls back to the `fallbackNamespaces`.
 */
export async function listFlux(
  kube: Kube,
  kind: FluxKind,
  opts: { namespaces?: string[]; fallbackNamespaces?: string[] } = {},
): Promise<FluxObject[]> {
  const k = fluxKinds[kind]
  const list = async (namespace?: string) =>
    (await retryBusy(() => rest<{ items: unknown[] }>(kube, 'GET', collectionPath(kind, namespace)))).items.map((o) =>
      withKind(kind, o),
    )
  const inNamespaces = async (namespaces: string[]) => {
    const lists = await Promise.all(
      namespaces.map(async (namespace) => {
        try {
          return await list(namespace)
        } catch (err) {
          if (isApiError(err, 404)) return []
          throw apiFailure(`listing ${k.plural} in ${namespace}`, kube, err)
        }
      }),
    )
    return lists.flat()
  }
  if (opts.namespaces) return inNamespaces([...new Set(opts.namespaces)])
  try {
    return await list()
  } catch (err) {
    if (isApiError(err, 404)) return []
    if (isApiError(err, 403) && opts.fallbackNamespaces) return inNamespaces([...new Set(opts.fallbackNamespaces)])
    throw apiFailure(`listing ${k.plural}`, kube, err)
  }
}

/** Whether the kind's CRD is installed (a 404 on its collection says it is not). */
export async function crdInstalled(kube: Kube, kind: FluxKind): Promise<boolean> {
  try {
    await rest(kube, 'GET', collectionPath(kind), { query: { limit: '1' } })
    return true
  } catch (err) {
    if (isApiError(err, 404)) return false
    return true // forbidden and friends: it exists, we just may not list it cluster-wide
  }
}

/** A JSON merge patch written as the Flux CLI's field manager; returns the object after it. */
export async function mergePatchFlux(
  kube: Kube,
  r: FluxRef,
  body: Record<string, unknown>,
  fieldManager = FLUX_FIELD_MANAGER,
): Promise<FluxObject> {
  const k = fluxKinds[r.kind]
  const obj = await kube.custom.patchNamespacedCustomObject(
    { ...k, namespace: r.namespace, name: r.name, body, fieldManager },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  )
  return withKind(r.kind, obj)
}

export function apiFailure(what: string, kube: Kube, err: unknown): NsopsError {
  if (isApiError(err, 403)) {
    return new NsopsError(`${what} is forbidden in context ${kube.context}: ${apiMessage(err)}.`, {
      hint: 'Your user needs get/list/watch/patch on the Flux kinds (kustomizations, helmreleases, gitrepositories).',
      cause: err,
    })
  }
  return new NsopsError(`${what} failed (context ${kube.context}, server ${kube.server}): ${apiMessage(err)}.`, {
    hint: 'Check that the cluster answers (`just dashboard` or `kubectl get ns`), then run the command again.',
    cause: err,
  })
}

// ---- status accessors shared by reconcile, suspend and status ----

/** A condition as Flux writes it (health/kstatus.ts reads the looser Kubernetes shape for any kind). */
export interface FluxCondition {
  type: string
  status: 'True' | 'False' | 'Unknown'
  reason?: string
  message?: string
  observedGeneration?: number
  lastTransitionTime?: string
}

export function conditionOf(obj: FluxObject | null | undefined, type: string): FluxCondition | undefined {
  const list = obj?.status?.conditions
  if (!Array.isArray(list)) return undefined
  return (list as FluxCondition[]).find((c) => c?.type === type)
}

export function statusString(obj: FluxObject | null | undefined, key: string): string | undefined {
  const v = obj?.status?.[key]
  return typeof v === 'string' ? v : undefined
}

export function isSuspended(obj: FluxObject): boolean {
  return obj.spec?.suspend === true
}
