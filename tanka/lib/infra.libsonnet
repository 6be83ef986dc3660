// The platform's infrastructure, one chart each from charts/ (vendored by `just tk-vendor`):
// Redis (job queue), Gitea (git + CI), KEDA (scales CI agents), Flux (GitOps controllers).
// Environments override _config; every chart value they can differ in is read from there.
local helm = (import 'helm.libsonnet').new(std.thisFile);
local platform = import 'platform.libsonnet';

{
  _config:: {
    // spec.namespace of the environment: redis and gitea live there
    namespace: error 'set _config.namespace (usually (import "tk").env.spec.namespace)',
    kedaNamespace: 'keda',
    fluxNamespace: 'flux-system',

    redis: {
      // 0: one standalone master; more: master plus that many read replicas
      replicas: 0,
      persistence: platform.persistence(false, '1Gi'),
      resources: platform.resources('50m', '64Mi', '128Mi'),
      // Secret (key `password`) created outside the repo; null disables auth (local only)
      passwordSecret: null,
    },
    gitea: {
      persistence: platform.persistence(false, '1Gi'),
      resources: platform.resources('100m', '256Mi', '512Mi'),
      // postgres (the chart's bitnami subchart) when true, else sqlite in the data volume
      postgres: false,
      // Secret with `username` and `password` for the admin user, created outside the repo
      adminSecret: 'gitea-admin',
    },
    keda: {
      replicas: 1,
      resources: platform.resources('50m', '64Mi', '256Mi'),
    },
    flux: {
      // image automation is for clusters that push image updates back to git
      imageAutomation: false,
      resources: platform.resources('50m', '64Mi', '512Mi'),
    },
  },

  local c = self._config,

  namespaces: {
    platform: platform.namespace(c.namespace),
    keda: platform.namespace(c.kedaNamespace),
    flux: platform.namespace(c.fluxNamespace),
  },

  redis: helm.template('redis', '../charts/redis', {
    namespace: c.namespace,
    values: {
      architecture: if c.redis.replicas > 0 then 'replication' else 'standalone',
      auth: if c.redis.passwordSecret == null then { enabled: false } else {
        enabled: true,
        existingSecret: c.redis.passwordSecret,
        existingSecretPasswordKey: 'password',
      },
      master: { persistence: c.redis.persistence, resources: c.redis.resources },
      replica: {
        replicaCount: c.redis.replicas,
        persistence: c.redis.persistence,
        resources: c.redis.resources,
      },
    },
  }),

  gitea: helm.template('gitea', '../charts/gitea', {
    namespace: c.namespace,
    values: {
      replicaCount: 1,  // the data volume is ReadWriteOnce
      persistence: c.gitea.persistence,
      resources: c.gitea.resources,
      gitea: {
        admin: { existingSecret: c.gitea.adminSecret },
        config: {
          database: if c.gitea.postgres then { DB_TYPE: 'postgres' } else { DB_TYPE: 'sqlite3' },
          session: { PROVIDER: 'memory' },
          cache: { ADAPTER: 'memory' },
          queue: { TYPE: 'level' },
        },
      },
      postgresql: {
        enabled: c.gitea.postgres,
        primary: { persistence: c.gitea.persistence },
      },
      'postgresql-ha': { enabled: false },
      'redis-cluster': { enabled: false },
    },
  }),

  keda: helm.template('keda', '../charts/keda', {
    namespace: c.kedaNamespace,
    values: {
      operator: { replicaCount: c.keda.replicas },
      metricsServer: { replicaCount: c.keda.replicas },
      webhooks: { replicaCount: c.keda.replicas },
      resources: {
        operator: c.keda.resources,
        metricServer: c.keda.resources,
        webhooks: c.keda.resources,
      },
    },
  }),

  flux: helm.template('flux2', '../charts/flux2', {
    namespace: c.fluxNamespace,
    values: {
      installCRDs: true,
      imageAutomationController: { create: c.flux.imageAutomation },
      imageReflectionController: { create: c.flux.imageAutomation },
      helmController: { resources: c.flux.resources },
      kustomizeController: { resources: c.flux.resources },
      notificationController: { resources: c.flux.resources },
      sourceController: { resources: c.flux.resources },
    },
  }),
}
