// Flux for tests. The real controllers on a sim cluster of a test's own, and what they read:
// the sim started with source-, kustomize- and helm-controller, Flux objects applied as a
// user's `kubectl apply --server-side` would, the test chart served as a real chart
// repository. And, where no controller runs, a Kustomization whose status says what it applied.
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
 * A Kustomization `name` in flux-system that no controller runs (its GitRepository `source`
 * does not exist) applying `path`; with `inventory` (kustomize-controller's ids,
 * `<namespace>_<name>_<group>_<Kind>`) its status says it applied those objects, as the
 * controller's would.
 */
export async function createIdleKustomization(
  kube: Kube,
  name: string,
  spec: { path: string; source: string },
  inventory?: string[],
): Promise<void> {
  const ks = { ...fluxKinds.Kustomization, namespace: 'flux-system', name }
  await kube.custom.createNamespacedCustomObject({
    ...ks,
    body: {
      apiVersion: `${ks.group}/${ks.version}`,
      kind: 'Kustomization',
      metadata: { name, namespace: 'flux-system' },
      spec: {
        interval: '10m',
        path: spec.path,
        prune: true,
        sourceRef: { kind: 'GitRepository', name: spec.source },
      },
    },
  })
  if (inventory)
    await kube.custom.patchNamespacedCustomObjectStatus({
      ...ks,
      body: [
        {
          op: 'add',
          path: '/status',
          value: { inventory: { entries: inventory.map((id) => ({ id, v: 'v1' })) } },
        },
      ],
    })
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
