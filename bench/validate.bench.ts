// Validate = kustomize build + server-side dry run of every object, for a 40-object and a
// 400-object overlay, against `kubectl kustomize DIR | kubectl apply --dry-run=server -f -`
// on the same cluster in the same run. Target: at least as fast. Ours is measured as the
// library call (what `just validate` and deploy run) and as a fresh process would pay it
// (plus node + tsx start-up, measured separately by bench/startup).
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { applyObjects } from '../shared/apply/apply.ts'
import { buildKustomization } from '../shared/kustomize.ts'
import { toolPath } from '../shared/tools/provision.ts'
import { withBenchCluster } from './cluster.ts'
import { median, report } from './stats.ts'

function overlay(objects: number): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `nsops-bench-kz-${objects}-`))
  const base = path.join(dir, 'base')
  fs.mkdirSync(base)
  const resources: string[] = []
  for (let i = 0; i < objects / 2; i++) {
    fs.writeFileSync(path.join(base, `app-${i}.yaml`), `apiVersion: apps/v1
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
spec: { selector: { app: app-${i} }, ports: [{ port: 80 }] }
`)
    resources.push(`app-${i}.yaml`)
  }
  fs.writeFileSync(path.join(base, 'kustomization.yaml'), `resources:\n${resources.map((r) => `  - ${r}`).join('\n')}\n`)
  const ov = path.join(dir, 'overlay')
  fs.mkdirSync(ov)
  fs.writeFileSync(path.join(ov, 'kustomization.yaml'), 'namespace: default\nlabels:\n  - pairs: { env: bench }\nresources:\n  - ../base\n')
  return ov
}

export default async function (): Promise<void> {
  const kubectl = await toolPath('kubectl')
  await withBenchCluster(async (kube, kubeconfig) => {
    for (const n of [40, 400]) {
      const dir = overlay(n)
      const ours: number[] = []
      const theirs: number[] = []
      for (let i = 0; i < 5; i++) {
        let t0 = performance.now()
        const objects = await buildKustomization(dir)
        const r = await applyObjects(kube, objects, { dryRun: true, concurrency: 16 })
        if (r.failed.length) throw new Error(r.failed[0].message)
        ours.push(performance.now() - t0)
        t0 = performance.now()
        execFileSync('sh', ['-c', `"${kubectl}" kustomize "${dir}" | "${kubectl}" --kubeconfig "${kubeconfig}" apply --dry-run=server -f - >/dev/null`])
        theirs.push(performance.now() - t0)
      }
      report(`baseline: kubectl kustomize | kubectl apply --dry-run=server (${n} objects)`, theirs)
      report(`build + server dry-run, nsops library (${n} objects)`, ours, `${(median(theirs) / median(ours)).toFixed(1)}× kubectl`)
      fs.rmSync(path.dirname(dir), { recursive: true, force: true })
    }
  })
}
