// The target a HelmRelease is rendered for (`.Capabilities`): connected, the cluster's own
// version and every group/version it serves (its CRDs included), as helm-controller sees it;
// offline, the Kubernetes version nsops pins (k8s/versions.yaml) and the Flux APIs (helm knows
// the built-in ones itself), plus the CRDs in the build (helm-release.ts adds those).
import type { Kube } from '../../kube/client.ts'
import { rest } from '../../kube/rest.ts'
import { toolSpec } from '../../tools/versions.ts'
import type { HelmRenderOptions } from './helm-release.ts'

/** The Flux APIs a Flux-managed cluster serves (its controllers' CRDs). */
export const FLUX_API_VERSIONS = [
  'source.toolkit.fluxcd.io/v1',
  'source.toolkit.fluxcd.io/v1beta2',
  'kustomize.toolkit.fluxcd.io/v1',
  'helm.toolkit.fluxcd.io/v2',
  'notification.toolkit.fluxcd.io/v1',
  'notification.toolkit.fluxcd.io/v1beta3',
]

interface GroupList {
  groups: { versions: { groupVersion: string }[] }[]
}

/** Kubernetes version and API versions to render for: the cluster's when `kube` answers, else the pinned ones. */
export async function helmTarget(kube?: Kube): Promise<Pick<HelmRenderOptions, 'kubeVersion' | 'apiVersions'>> {
  if (kube) {
    try {
      const [version, groups] = await Promise.all([
        rest<{ gitVersion: string }>(kube, 'GET', '/version'),
        rest<GroupList>(kube, 'GET', '/apis'),
      ])
      return {
        kubeVersion: version.gitVersion,
        apiVersions: groups.groups.flatMap((g) => g.versions.map((v) => v.groupVersion)),
      }
    } catch {
      /* a cluster that does not say: the pinned target */
    }
  }
  return { kubeVersion: toolSpec('kubernetes').version, apiVersions: FLUX_API_VERSIONS }
}
