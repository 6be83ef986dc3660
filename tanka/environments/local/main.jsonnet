// Local development (sim, kind or k3d): one of everything, no persistent volumes (data
// lives as long as the pod), small requests, Redis without auth, Gitea on sqlite.
local platform = import 'platform.libsonnet';

(import 'infra.libsonnet') + {
  _config+:: {
    namespace: (import 'tk').env.spec.namespace,
    redis+: { replicas: 0, persistence: platform.persistence(false, '1Gi') },
    gitea+: { persistence: platform.persistence(false, '1Gi'), postgres: false },
    keda+: { replicas: 1 },
    flux+: { imageAutomation: false },
  },
}
