// Which API resource serves a kind, and the collection path to list and watch it. Discovery
// goes through client-node's KubernetesObjectApi (GET /api/v1, /apis/<group>/<version>, cached
// per client), so repeated waits do not repeat it.
import { KubernetesObjectApi } from '@kubernetes/client-node'
import { NsopsError, errorMessage } from '../core/errors.ts'
import { apiClient, apiMessage, isApiError, type Kube } from '../kube/client.ts'

export interface Resolved {
  plural: string
  namespaced: boolean
}

// resource() is protected; a subclass exposes it
class Discovery extends KubernetesObjectApi {
  lookup(apiVersion: string, kind: string) {
    return this.resource(apiVersion, kind)
  }
}
// per client, not per KubeConfig: a client bounded by a deadline (withDeadline) bounds its
// discovery requests too
const discoveries = new WeakMap<Kube, Discovery>()
function discoveryFor(kube: Kube): Discovery {
  let d = discoveries.get(kube)
  if (!d) {
    d = apiClient(kube, Discovery)
    discoveries.set(kube, d)
  }
  return d
}

export function unreachable(kube: Kube, err: unknown): NsopsError {
  return new NsopsError(
    `the cluster does not answer: context ${kube.context}, server ${kube.server} (${errorMessage(err)}).`,
    {
      hint: `Is it running? For the local cluster run \`just cluster-up\`; otherwise check \`kubectl --context ${kube.context} get nodes\`.`,
      cause: err,
    },
  )
}

/** An HTTP answer (the API is there but said no) as opposed to no answer at all. */
export function httpStatusOf(err: unknown): number | undefined {
  if (isApiError(err)) return err.code
  const code = (err as { statusCode?: unknown; code?: unknown } | null)?.statusCode
  return typeof code === 'number' ? code : undefined
}

/** The resource serving apiVersion/kind; undefined when the group/version is not served (yet). */
export async function resolve(kube: Kube, apiVersion: string, kind: string): Promise<Resolved | undefined> {
  try {
    const r = await discoveryFor(kube).lookup(apiVersion, kind)
    return r ? { plural: r.name, namespaced: r.namespaced } : undefined
  } catch (err) {
    // 404: the group/version is not served (yet): a CRD not installed is NotFound, not an error
    if (httpStatusOf(err) === 404) return undefined
    if (httpStatusOf(err) === undefined) throw unreachable(kube, err)
    throw new NsopsError(`discovery of ${apiVersion} ${kind} failed: ${apiMessage(err)}.`, { cause: err })
  }
}

export function collectionPath(apiVersion: string, plural: string, namespace?: string): string {
  const root = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`
  return namespace ? `${root}/namespaces/${encodeURIComponent(namespace)}/${plural}` : `${root}/${plural}`
}
