// Metrics: Prometheus scrapes itself, node-exporter and annotated pods; Grafana shows them
// (and the logs in observability's Loki).
import { defineNamespace } from '../../shared/namespace-config.ts'

export default defineNamespace({
  name: 'monitoring',
  description: 'Metrics: Prometheus, node-exporter and Grafana.',
  namespaces: { dev: 'monitoring-dev', prod: 'monitoring' },
  flux: { kustomization: 'monitoring', namespace: 'flux-system' },
  domains: { dev: 'monitoring.localhost', prod: 'home.example' },
  groups: [
    {
      title: 'Metrics',
      apps: [
        { name: 'prometheus', port: 9090, ingress: false, description: 'scrapes and stores metrics' },
        { name: 'node-exporter', port: 9100, path: '/metrics', ingress: false, description: 'host metrics, one per node' },
      ],
    },
    {
      title: 'Dashboards',
      apps: [{ name: 'grafana', port: 3000, description: 'dashboards over Prometheus and Loki' }],
    },
  ],
  portForwards: [
    { app: 'grafana', local: 3000, remote: 3000 },
    { app: 'prometheus', local: 9090, remote: 9090 },
  ],
  quickCommands: [
    {
      title: 'Scrape targets (through the API server proxy)',
      command: "kubectl get --raw '/api/v1/namespaces/{namespace}/services/prometheus:http/proxy/api/v1/targets?state=active'",
    },
    { title: 'Follow Grafana logs', command: 'kubectl -n {namespace} logs deploy/grafana -f' },
  ],
})
