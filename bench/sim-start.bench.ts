// Sim cluster start with binaries cached: fresh state dir → node Ready (ensure() returns)
// → a 2-replica Deployment Available. Target ≤ 3 s (DESIGN.md); kind takes about 60 s.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { KubeConfig } from '@kubernetes/client-node'
import { SimCluster } from '../shared/cluster/sim/index.ts'
import { clientsFor } from '../shared/kube/client.ts'
import { toolPaths } from '../shared/tools/provision.ts'
import { report, repeat } from './stats.ts'

export default async function (): Promise<void> {
  await toolPaths(['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kwok'])
  const toNode: number[] = []
  const restart: number[] = []
  const toDeploy = await repeat(3, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-bench-sim-'))
    const sim = new SimCluster({ dir })
    try {
      const t0 = performance.now()
      const info = await sim.ensure()
      toNode.push(performance.now() - t0)
      const kc = new KubeConfig()
      kc.loadFromFile(info.kubeconfig)
      const kube = clientsFor(kc)
      const labels = { app: 'web' }
      await kube.apps.createNamespacedDeployment({
        namespace: 'default',
        body: {
          metadata: { name: 'web' },
          spec: {
            replicas: 2,
            selector: { matchLabels: labels },
            template: { metadata: { labels }, spec: { containers: [{ name: 'web', image: 'nginx' }] } },
          },
        },
      })
      for (;;) {
        const d = await kube.apps.readNamespacedDeployment({ name: 'web', namespace: 'default' })
        if (
          d.status?.conditions?.some((c) => c.type === 'Available' && c.status === 'True') &&
          d.status.readyReplicas === 2
        )
          break
        await new Promise((r) => setTimeout(r, 50))
      }
      const total = performance.now() - t0
      await sim.stop() // state kept: the `cluster-down` + `cluster-up` path
      const t1 = performance.now()
      await sim.ensure()
      restart.push(performance.now() - t1)
      return total
    } finally {
      await sim.stop({ purge: true })
    }
  })
  report('sim start → node Ready (cold state)', toNode)
  report('sim start → 2-replica Deployment Available', toDeploy, 'target ≤ 3 s; kind ≈ 60 s')
  report('sim restart with state kept → node Ready', restart)
}
