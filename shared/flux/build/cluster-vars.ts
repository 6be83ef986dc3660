// substituteFrom read from a cluster, as the controller reads it: the ConfigMap or Secret in
// the Kustomization's namespace, or nothing when it is not there (the build then skips an
// optional reference and refuses a required one).
import { isApiError, type Kube } from '../../kube/client.ts'
import { rest } from '../../kube/rest.ts'
import type { ManifestObject } from '../../kube/refs.ts'
import type { VarsLookup } from './kustomization.ts'

export function clusterVars(kube: Kube): VarsLookup {
  return async ({ kind, namespace, name }) => {
    try {
      const plural = kind === 'ConfigMap' ? 'configmaps' : 'secrets'
      const o = await rest<object>(
        kube,
        'GET',
        `/api/v1/namespaces/${encodeURIComponent(namespace)}/${plural}/${encodeURIComponent(name)}`,
      )
      return { ...o, apiVersion: 'v1', kind } as ManifestObject
    } catch (err) {
      if (isApiError(err, 404)) return undefined
      throw err
    }
  }
}
