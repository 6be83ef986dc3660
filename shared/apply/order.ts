// In what order a set goes to the API server: Namespaces and CRDs first (everything else may
// live in them or be one of their kinds), custom resources once their CRD is Established,
// the rest side by side with a bounded number of requests in flight.
import type { Kube } from '../kube/client.ts'
import type { ManifestObject } from '../kustomize/build.ts'
import { groupOf } from '../kube/refs.ts'
import { rest } from '../kube/rest.ts'
import { NsopsError } from '../core/errors.ts'

export const CRD_API_VERSION = 'apiextensions.k8s.io/v1'

export function isCrd(obj: { apiVersion: string; kind: string }): boolean {
  return obj.kind === 'CustomResourceDefinition' && groupOf(obj.apiVersion) === 'apiextensions.k8s.io'
}

export function isFirstPhase(obj: ManifestObject): boolean {
  return (obj.kind === 'Namespace' && obj.apiVersion === 'v1') || isCrd(obj)
}

interface CrdSpec {
  group?: string
  names?: { kind?: string }
  versions?: { name?: string }[]
}

/** `group/version/Kind` of every kind the set's CRDs define → the CRD's name. */
export function kindsDefinedBy(objects: ManifestObject[]): Map<string, string> {
  const out = new Map<string, string>()
  for (const obj of objects.filter(isCrd)) {
    const spec = (obj.spec ?? {}) as CrdSpec
    for (const v of spec.versions ?? []) out.set(`${spec.group}/${v.name}/${spec.names?.kind}`, obj.metadata.name)
  }
  return out
}

export function kindKey(obj: { apiVersion: string; kind: string }): string {
  return `${obj.apiVersion}/${obj.kind}`
}

interface CrdStatus {
  status?: { conditions?: { type: string; status: string; reason?: string; message?: string }[] }
}

/**
 * Waits until the CRD's API is served (Established=True). A short poll: a CRD is usually
 * Established within tens of milliseconds of its creation, sooner than a watch is set up.
 * Fails with the CRD's own condition message (NamesAccepted=False says which name clashes).
 */
export async function waitForEstablished(kube: Kube, crdName: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let last = 'no status yet'
  for (let delay = 20; ; delay = Math.min(delay * 2, 250)) {
    const crd = await rest<CrdStatus>(
      kube,
      'GET',
      `/apis/${CRD_API_VERSION}/customresourcedefinitions/${encodeURIComponent(crdName)}`,
    )
    const conditions = crd.status?.conditions ?? []
    if (conditions.some((c) => c.type === 'Established' && c.status === 'True')) return
    const blocking = conditions.find((c) => c.status === 'False' && c.message)
    if (blocking) last = `${blocking.type}=False: ${blocking.message}`
    if (Date.now() + delay > deadline) {
      throw new NsopsError(
        `CustomResourceDefinition ${crdName} is not Established after ${timeoutMs} ms (${last}), so its custom resources cannot be applied yet.`,
        {
          hint: `read its conditions with \`kubectl get crd ${crdName} -o yaml\` (NamesAccepted=False names the CRD that already uses its names), fix the CRD in the overlay and save again.`,
        },
      )
    }
    await new Promise((r) => setTimeout(r, delay))
  }
}

/** Runs fn over items with at most `limit` calls in flight; results in input order. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length)
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const i = next++
      results[i] = await fn(items[i], i)
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker))
  return results
}
