// One small app (Deployment + Service) as YAML, for the benchmarks that build big namespaces.
export function benchApp(i: number): string {
  return `apiVersion: apps/v1
kind: Deployment
metadata: { name: app-${i}, labels: { app: app-${i} } }
spec:
  replicas: 1
  selector: { matchLabels: { app: app-${i} } }
  template:
    metadata: { labels: { app: app-${i} } }
    spec: { containers: [{ name: c, image: nginx:1.27, ports: [{ containerPort: 80 }] }] }
---
apiVersion: v1
kind: Service
metadata: { name: app-${i} }
spec: { selector: { app: app-${i} }, ports: [{ port: 80 }] }`
}
