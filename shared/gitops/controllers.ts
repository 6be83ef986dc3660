// The Flux controllers of the GitOps path as processes a cluster provider supervises: the
// real kustomize-controller, and on the source side the real source-controller when a
// binary can be had, else the local source (local-source.ts). Plus bootstrapFlux, which
// applies this repo's Flux objects (k8s/flux/) pointed at a given git URL.
import fs from 'node:fs'
import path from 'node:path'
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node'
import YAML from 'yaml'
import { freePort } from '../ports.ts'
import { NsopsError, errorMessage } from '../errors.ts'
import { installFluxCrds } from '../flux/crds.ts'
import { createBareRepo } from './git-server.ts'
import { fluxKinds, type FluxKind } from '../flux/kinds.ts'
import { apiMessage, connect, isApiError, type Kube } from '../kube.ts'
import { repoRoot, tsNodeArgs } from '../paths.ts'
import { toolPath } from '../tools/provision.ts'

export const FLUX_NAMESPACE = 'flux-system'
export const fluxDir = path.join(repoRoot, 'k8s', 'flux')

export interface ControllerProcess {
  name: string
  command: string
  args: string[]
  env: Record<string, string>
  /** answers 200 once the controller is up */
  healthUrl: string
}

const componentNames = ['kustomize-controller', 'source-controller', 'local-source', 'git-server']

/** Whether a supervised component is one of the Flux controllers (optional, not core). */
export function isFluxComponent(name: string): boolean {
  return componentNames.includes(name)
}

/** A source-controller binary from the tool cache or PATH; none on this project's machines. */
export async function sourceControllerBinary(): Promise<string | undefined> {
  try { return await toolPath('source-controller', { noDownload: true }) } catch { /* not a pinned tool */ }
  for (const dir of (process.env.PATH ?? '').split(path.delimiter).filter(Boolean)) {
    const p = path.join(dir, 'source-controller')
    try { fs.accessSync(p, fs.constants.X_OK); if (fs.statSync(p).isFile()) return p } catch { /* next */ }
  }
  return undefined
}

/**
 * Installs the Flux CRDs into the cluster and returns the controller processes to start,
 * source first. `dir` holds the source's storage (keep it across restarts).
 */
export const LOCAL_REPO = 'nsops.git'

/** The clone URL of the sim cluster's own git host, once its Flux controllers run. */
export function localGitUrl(fluxStateDir: string): string | undefined {
  try { return fs.readFileSync(path.join(fluxStateDir, 'git-url'), 'utf8').trim() } catch { return undefined }
}

export async function fluxControllers(opts: { kubeconfig: string; dir: string }): Promise<ControllerProcess[]> {
  await installFluxCrds(connect({ kubeconfig: opts.kubeconfig }))
  const env = { KUBECONFIG: opts.kubeconfig, RUNTIME_NAMESPACE: FLUX_NAMESPACE }
  const [kcMetrics, kcHealth, srcPort, srcMetrics, srcHealth, gitPort] = await Promise.all(Array.from({ length: 6 }, () => freePort()))
  const procs: ControllerProcess[] = []

  // The cluster's own git host: `just dev-up` pushes this repo there and points Flux at it,
  // so GitOps (and `just deploy`) works with no remote at all.
  const gitRoot = path.join(opts.dir, 'git')
  if (!fs.existsSync(path.join(gitRoot, LOCAL_REPO))) await createBareRepo(gitRoot, LOCAL_REPO)
  const gitUrl = `http://127.0.0.1:${gitPort}/${LOCAL_REPO}`
  fs.writeFileSync(path.join(opts.dir, 'git-url'), gitUrl)
  procs.push({
    name: 'git-server',
    command: process.execPath,
    args: tsNodeArgs('shared/gitops/git-server.ts', gitRoot, String(gitPort)),
    env,
    healthUrl: `${gitUrl}/info/refs?service=git-upload-pack`,
  })

  const sourceController = await sourceControllerBinary()
  if (sourceController) {
    procs.push({
      name: 'source-controller',
      command: sourceController,
      args: [
        '--watch-all-namespaces', '--log-encoding=console',
        `--storage-path=${path.join(opts.dir, 'source-controller')}`,
        `--storage-addr=127.0.0.1:${srcPort}`, `--storage-adv-addr=127.0.0.1:${srcPort}`,
        `--metrics-addr=127.0.0.1:${srcMetrics}`, `--health-addr=127.0.0.1:${srcHealth}`,
      ],
      env,
      healthUrl: `http://127.0.0.1:${srcHealth}/readyz`,
    })
  } else {
    procs.push({
      name: 'local-source',
      command: process.execPath,
      args: tsNodeArgs('shared/gitops/local-source.ts', opts.kubeconfig, path.join(opts.dir, 'local-source'), String(srcPort)),
      env,
      healthUrl: `http://127.0.0.1:${srcPort}/healthz`,
    })
  }

  procs.push({
    name: 'kustomize-controller',
    command: await toolPath('kustomize-controller'),
    args: [
      `--metrics-addr=127.0.0.1:${kcMetrics}`, `--health-addr=127.0.0.1:${kcHealth}`,
      '--watch-all-namespaces', '--concurrent=4', '--requeue-dependency=5s', '--log-encoding=console',
    ],
    env,
    healthUrl: `http://127.0.0.1:${kcHealth}/readyz`,
  })
  return procs
}

/**
 * Resolves once every controller answers its health URL; `dead` reports a crashed one, and
 * `logTail` gives the last log lines of one that is still silent at the timeout.
 */
export async function waitForControllers(procs: ControllerProcess[], dead: () => Error | undefined,
  opts: { timeoutMs?: number; logTail?: (name: string) => string } = {}): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? 60_000
  const until = Date.now() + timeoutMs
  const pending = new Set(procs)
  while (pending.size > 0) {
    const d = dead()
    if (d) throw d
    for (const p of [...pending]) {
      const ok = await fetch(p.healthUrl, { signal: AbortSignal.timeout(1000) }).then((r) => r.ok, () => false)
      if (ok) pending.delete(p)
    }
    if (pending.size === 0) return
    if (Date.now() > until) {
      const silent = [...pending].map((p) => p.name)
      const tails = silent.map((n) => opts.logTail?.(n)).filter(Boolean).map((t) => `\n${t}`).join('')
      throw new NsopsError(`Flux controllers did not become ready within ${timeoutMs / 1000} s: ${silent.join(', ')}.${tails}`, {
        hint: 'Their logs are listed by `just cluster-status`.',
      })
    }
    await new Promise((r) => setTimeout(r, 100))
  }
}

export interface FluxObjectManifest {
  apiVersion: string
  kind: FluxKind
  metadata: { name: string; namespace: string; [k: string]: unknown }
  spec: Record<string, unknown>
}

/** The Flux objects in k8s/flux/ (the files its kustomization.yaml lists). */
export function fluxManifests(dir = fluxDir): FluxObjectManifest[] {
  const read = (file: string) => {
    try { return fs.readFileSync(path.join(dir, file), 'utf8') } catch (err) {
      throw new NsopsError(`cannot read ${path.join(dir, file)}: ${errorMessage(err)}.`, {
        hint: `Every file in ${path.join(dir, 'kustomization.yaml')} \`resources\` must exist.`,
      })
    }
  }
  const index = YAML.parse(read('kustomization.yaml')) as { resources?: string[] }
  return (index.resources ?? []).flatMap((file) =>
    YAML.parseAllDocuments(read(file))
      .map((d) => d.toJS() as FluxObjectManifest)
      .filter(Boolean))
}

export interface BootstrapOptions {
  /** the git URL the GitRepository reads (the local git server's on sim) */
  repoUrl: string
  branch?: string
  /** default k8s/flux */
  dir?: string
}

/**
 * Applies k8s/flux/ (the GitRepository and one Kustomization per namespace) with the
 * GitRepository pointed at `repoUrl`, after the Flux CRDs and the flux-system namespace.
 * Idempotent (server-side apply); returns what it applied.
 */
export async function bootstrapFlux(kube: Kube, opts: BootstrapOptions): Promise<FluxObjectManifest[]> {
  if (!/^(https?|ssh):\/\//.test(opts.repoUrl)) {
    throw new NsopsError(`${opts.repoUrl} is not a URL Flux can read: a GitRepository needs http(s):// or ssh://.`)
  }
  await installFluxCrds(kube)
  const objects = fluxManifests(opts.dir).map((o) => o.kind !== 'GitRepository' ? o : {
    ...o,
    spec: { ...o.spec, url: opts.repoUrl, ref: { branch: opts.branch ?? 'main' } },
  })
  const namespaces = [...new Set(objects.map((o) => o.metadata.namespace))]
  for (const name of namespaces) {
    try {
      await kube.core.createNamespace({ body: { metadata: { name } } })
    } catch (err) {
      if (!isApiError(err, 409)) throw new NsopsError(`creating namespace ${name} failed: ${apiMessage(err)}.`)
    }
  }
  for (const obj of objects) {
    const kind = fluxKinds[obj.kind]
    if (!kind) throw new NsopsError(`${fluxDir}: ${obj.kind} ${obj.metadata?.name} is not a Flux kind nsops applies.`)
    try {
      await kube.custom.patchNamespacedCustomObject(
        { ...kind, namespace: obj.metadata.namespace, name: obj.metadata.name, body: obj, fieldManager: 'nsops', force: true },
        setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply),
      )
    } catch (err) {
      throw new NsopsError(`applying ${obj.kind}/${obj.metadata.namespace}/${obj.metadata.name} failed: ${apiMessage(err)}.`, {
        hint: `Check ${path.relative(process.cwd(), fluxDir)} (kubectl apply --dry-run=server -k k8s/flux shows the same error).`,
      })
    }
  }
  return objects
}
