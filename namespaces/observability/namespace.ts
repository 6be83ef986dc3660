// Logs: promtail on every node ships container logs to Loki; Grafana in monitoring reads them.
import { defineNamespace } from '../../shared/config/namespace-config.ts'

export default defineNamespace({
  name: 'observability',
  description: 'Logs: Loki and promtail.',
  namespaces: { dev: 'observability-dev', prod: 'observability' },
  flux: { kustomization: 'observability', namespace: 'flux-system' },
  groups: [
    {
      title: 'Log store',
      apps: [{ name: 'loki', port: 3100, path: '/ready', description: 'stores and queries logs' }],
    },
    {
      title: 'Log shipping',
      apps: [{ name: 'promtail', port: 9080, path: '/targets', description: 'tails /var/log/pods on every node' }],
    },
    {
      title: 'Demo',
      apps: [{ name: 'logdemo', port: 8080, path: '/', ingress: false, description: 'built from src/logdemo on save' }],
    },
  ],
  // built on the host with go (offline: the standard library only), appended onto scratch,
  // pushed to the cluster's registry and rolled out by digest on every save of a .go file;
  // static/ goes into the running container by live sync
  images: {
    logdemo: {
      context: 'src/logdemo',
      deps: ['**/*.go', 'go.mod'],
      build: {
        kind: 'binary',
        command: 'go build -trimpath -ldflags=-s -o .build/logdemo .',
        files: { '.build/logdemo': '/logdemo', static: '/srv/static' },
        entrypoint: ['/logdemo'],
      },
      // a save under static/ is copied into the running container instead (live sync); a
      // go.mod change always rebuilds
      sync: [{ from: 'static', to: '/srv/static' }],
      fallBackOn: ['go.mod'],
    },
  },
  portForwards: [{ app: 'loki', local: 3100, remote: 3100 }],
  tasks: {
    'loki-ready': {
      description: 'wait until Loki and promtail have rolled out (after every apply of the dev loop)',
      on: 'apply',
      run: async ({ $, namespace }) => {
        await $`kubectl -n ${namespace} rollout status deploy/loki --timeout=90s`
        await $`kubectl -n ${namespace} rollout status daemonset/promtail --timeout=90s`
      },
    },
  },
  quickCommands: [
    {
      title: 'Loki readiness',
      command: 'kubectl get --raw /api/v1/namespaces/{namespace}/services/loki:http/proxy/ready',
    },
    { title: 'Follow promtail logs', command: 'kubectl -n {namespace} logs ds/promtail -f' },
  ],
})
