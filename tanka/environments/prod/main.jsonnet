// Production: Redis with two read replicas and a password, persistent volumes for every
// stateful part, Gitea on postgres, two KEDA replicas, Flux with image automation, and
// requests sized for real load.
local platform = import 'platform.libsonnet';

(import 'infra.libsonnet') + {
  _config+:: {
    namespace: (import 'tk').env.spec.namespace,
    redis+: {
      replicas: 2,
      persistence: platform.persistence(true, '8Gi'),
      resources: platform.resources('250m', '512Mi', '1Gi'),
      passwordSecret: 'redis-auth',
    },
    gitea+: {
      persistence: platform.persistence(true, '20Gi'),
      resources: platform.resources('500m', '1Gi', '2Gi'),
      postgres: true,
    },
    keda+: { replicas: 2, resources: platform.resources('100m', '128Mi', '512Mi') },
    flux+: { imageAutomation: true, resources: platform.resources('100m', '128Mi', '1Gi') },
  },
}
