// The real Flux controllers on a sim cluster of a test's own, and what they read: the sim
// started with source-, kustomize- and helm-controller, Flux objects applied as a user's
// `kubectl apply --server-side` would, and the test chart served as a real chart repository.
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node'
import type { SimCluster } from '../shared/cluster/sim/index.ts'
import { repoRoot } from '../shared/core/paths.ts'
import { fluxKinds, type FluxKind } from '../shared/flux/kinds.ts'
import { clientsFor, type Kube } from '../shared/kube/client.ts'
import { toolPath } from '../shared/tools/provision.ts'
import { serveDir, type StaticServer } from './static-server.ts'

const run = promisify(execFile)

/** Starts (or reuses) `sim` with the Flux controllers; a client for it and its kubeconfig. */
export async function startFluxSim(sim: SimCluster): Promise<{ kube: Kube; kubeconfig: string }> {
  const info = await sim.ensure({ flux: true })
  const kc = new KubeConfig()
  kc.loadFromFile(info.kubeconfig)
  return { kube: clientsFor(kc, info.kubeconfig), kubeconfig: info.kubeconfig }
}

/** Creates or updates a Flux object by server-side apply (field manager `test`, conflicts forced). */
export function applyFluxObject(
  kube: Kube,
  kind: FluxKind,
  namespace: string,
  name: string,
  spec: Record<string, unknown>,
): Promise<unknown> {
  return kube.custom.patchNamespacedCustomObject(
    {
      ...fluxKinds[kind],
      namespace,
      name,
      fieldManager: 'test',
      force: true,
      body: {
        apiVersion: `${fluxKinds[kind].group}/${fluxKinds[kind].version}`,
        kind,
        metadata: { name, namespace },
        spec,
      },
    },
    setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply),
  )
}

/**
 * test/fixtures/charts as a chart publisher serves it: copied to `dir`/charts-src, the queue
 * chart's library dependency built, packaged with an index into `dir`/chart-repo, served on
 * 127.0.0.1 (stop it in `after`).
 */
export async function serveTestCharts(dir: string): Promise<StaticServer> {
  const helm = await toolPath('helm')
  const src = path.join(dir, 'charts-src')
  fs.cpSync(path.join(repoRoot, 'test', 'fixtures', 'charts'), src, { recursive: true })
  await run(helm, ['dependency', 'build', path.join(src, 'queue')])
  const site = path.join(dir, 'chart-repo')
  fs.mkdirSync(site)
  await run(helm, ['package', path.join(src, 'queue'), '--destination', site])
  await run(helm, ['repo', 'index', site])
  return serveDir(site)
}
