// A sim cluster of the bench's own in a temp dir, stopped (and purged) afterwards.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { KubeConfig } from '@kubernetes/client-node'
import { SimCluster } from '../shared/cluster/sim/index.ts'
import { clientsFor, type Kube } from '../shared/kube/client.ts'

export async function withBenchCluster<T>(
  fn: (kube: Kube, kubeconfig: string, sim: SimCluster) => Promise<T>,
  opts: { flux?: boolean } = {},
): Promise<T> {
  const sim = new SimCluster({ dir: fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-bench-')) })
  try {
    const info = await sim.ensure({ flux: opts.flux })
    const kc = new KubeConfig()
    kc.loadFromFile(info.kubeconfig)
    return await fn(clientsFor(kc, info.kubeconfig), info.kubeconfig, sim)
  } finally {
    await sim.stop({ purge: true })
  }
}
