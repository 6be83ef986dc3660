// Integration tests share one real cluster per test run: the sim cluster, started on first
// use in a temp state dir and stopped when the run ends (also when it fails), or an existing
// cluster when NSOPS_TEST_CONTEXT names a context. Each test works in a namespace of its own.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { KubeConfig } from '@kubernetes/client-node'
import { clientsFor, type Kube } from '../shared/kube/client.ts'
import { SimCluster } from '../shared/cluster/sim/index.ts'

export interface TestCluster {
  kube: Kube
  kubeconfig: string
  context: string
  sim?: SimCluster
}

let started: Promise<TestCluster> | undefined
let sim: SimCluster | undefined

function killOnExit(cluster: SimCluster): void {
  // last resort if the run dies without reaching `after`: no process may outlive it
  process.once('exit', () => {
    try {
      const state = JSON.parse(fs.readFileSync(path.join(cluster.dir, 'state.json'), 'utf8')) as {
        components: { pid: number }[]
      }
      for (const c of state.components) {
        try {
          process.kill(c.pid, 'SIGKILL')
        } catch {
          /* gone */
        }
      }
      fs.rmSync(cluster.dir, { recursive: true, force: true })
    } catch {
      /* stopped already */
    }
  })
}

export function testCluster(): Promise<TestCluster> {
  started ??= (async () => {
    const context = process.env.NSOPS_TEST_CONTEXT
    if (context) {
      const kc = new KubeConfig()
      kc.loadFromDefault()
      kc.setCurrentContext(context)
      const kubeconfig = process.env.KUBECONFIG ?? path.join(os.homedir(), '.kube', 'config')
      return { kube: clientsFor(kc, kubeconfig), kubeconfig, context }
    }
    sim = new SimCluster({ dir: fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-test-sim-')) })
    killOnExit(sim)
    const info = await sim.ensure()
    const kc = new KubeConfig()
    kc.loadFromFile(info.kubeconfig)
    return { kube: clientsFor(kc, info.kubeconfig), kubeconfig: info.kubeconfig, context: info.context, sim }
  })()
  return started
}

export async function stopTestCluster(): Promise<void> {
  if (sim) await sim.stop({ purge: true })
}

let counter = 0

/** A fresh namespace for one test; the returned cleanup deletes it (call it in `after`). */
export async function testNamespace(prefix: string): Promise<{ name: string; cleanup: () => Promise<void> }> {
  const { kube } = await testCluster()
  const name = `${prefix}-${process.pid}-${++counter}`
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '-')
    .slice(0, 63)
  await kube.core.createNamespace({ body: { metadata: { name, labels: { 'nsops.dev/test': 'true' } } } })
  return {
    name,
    cleanup: async () => {
      try {
        await kube.core.deleteNamespace({ name })
      } catch {
        /* already gone */
      }
    },
  }
}
