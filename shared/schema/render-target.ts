// What a HelmRelease is rendered for (`.Capabilities`), beside what it is validated against:
// connected, the cluster's version and the group/versions it serves; offline, the pinned
// Kubernetes version. Either way every group/version/Kind the schemas know is added, as a
// cluster's discovery gives helm-controller both forms (`Has "policy/v1/PodDisruptionBudget"`
// is how charts pick an API), and helm's built-in list has group/versions only.
import type { Kube } from '../kube/client.ts'
import { helmTarget, type HelmRenderOptions } from '../flux/build/index.ts'
import { offlineSchemas } from './sources.ts'

export async function renderTarget(kube?: Kube): Promise<Pick<HelmRenderOptions, 'kubeVersion' | 'apiVersions'>> {
  const [target, offline] = await Promise.all([helmTarget(kube), offlineSchemas()])
  return { ...target, apiVersions: [...new Set([...(target.apiVersions ?? []), ...(await offline.apiVersions())])] }
}
