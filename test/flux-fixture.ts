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
import type { Ran } from './just.ts'
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

/** One row of a `flux get` table (NAME REVISION SUSPENDED READY MESSAGE). */
export interface FluxRow {
  name: string
  revision: string
  suspended: string
  ready: string
  message: string
}

export interface FluxCli {
  /** the pinned flux binary */
  path: string
  /** `flux ARGS` against the cluster and namespace; never rejects: the code says how it ended */
  run(...args: string[]): Promise<Ran>
  /** the same, rejecting with flux's output unless it exits 0 */
  ok(...args: string[]): Promise<Ran>
  /** `flux get WHAT…` (ks NAME, sources git NAME, hr NAME): its first row */
  get(...what: string[]): Promise<FluxRow>
}

/** The real flux CLI (pinned, provisioned like every tool) as a person runs it against `kubeconfig`'s `namespace`. */
export async function fluxCli(kubeconfig: string, namespace = 'flux-system'): Promise<FluxCli> {
  const flux = await toolPath('flux')
  const cli: FluxCli = {
    path: flux,
    run: (...args) =>
      run(flux, [...args, '--namespace', namespace, '--kubeconfig', kubeconfig], { timeout: 120_000 }).then(
        ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
        (e: { code?: unknown; stdout?: string; stderr?: string }) => ({
          code: typeof e.code === 'number' ? e.code : -1,
          stdout: e.stdout ?? '',
          stderr: e.stderr ?? '',
        }),
      ),
    async ok(...args) {
      const r = await cli.run(...args)
      if (r.code !== 0) throw new Error(`flux ${args.join(' ')} exited ${r.code}:\n${r.stdout}${r.stderr}`)
      return r
    },
    async get(...what) {
      const { stdout } = await cli.ok('get', ...what)
      const [header, line = ''] = stdout.trimEnd().split('\n')
      if (!/^NAME\s+REVISION\s+SUSPENDED\s+READY\s+MESSAGE/.test(header))
        throw new Error(`flux get ${what.join(' ')}: not the table expected:\n${stdout}`)
      // by the header's columns: REVISION is empty until the object has applied once
      const at = (col: string) => line.slice(header.indexOf(col)).trim().split(/\s+/)[0] ?? ''
      const message = line.slice(header.indexOf('MESSAGE')).trim()
      return { name: at('NAME'), revision: at('REVISION'), suspended: at('SUSPENDED'), ready: at('READY'), message }
    },
  }
  return cli
}
