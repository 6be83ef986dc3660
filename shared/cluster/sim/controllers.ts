// The Flux controllers of the GitOps path as processes a cluster provider supervises: the
// real source-controller, kustomize-controller and helm-controller (each pinned and
// provisioned like every tool), and the cluster's own git server. Plus bootstrapFlux, which applies this repo's
// Flux objects (k8s/flux/) pointed at a given git URL.
import fs from 'node:fs'
import path from 'node:path'
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node'
import YAML from 'yaml'
import { freePort, reclaimPort } from '../../core/ports.ts'
import { NsopsError, errorMessage } from '../../core/errors.ts'
import { installFluxCrds } from '../../flux/crds.ts'
import { createBareRepo } from './git-server.ts'
import { fluxKinds, type FluxKind } from '../../flux/kinds.ts'
import { repositoryRoots } from '../../flux/build/index.ts'
import { apiMessage, connect, isApiError, type Kube } from '../../kube/client.ts'
import { repoRoot, tsNodeArgs } from '../../core/paths.ts'
import { toolPath } from '../../tools/provision.ts'
import { fluxComponentNames } from './flux-components.ts'

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

/** Whether a supervised component is one of the Flux controllers (optional, not core). */
export function isFluxComponent(name: string): boolean {
  return fluxComponentNames.includes(name)
}

export const LOCAL_REPO = 'nsops.git'

/** The clone URL of the sim cluster's own git host, once its Flux controllers run. */
export function localGitUrl(fluxStateDir: string): string | undefined {
  try {
    return fs.readFileSync(path.join(fluxStateDir, 'git-url'), 'utf8').trim()
  } catch {
    return undefined
  }
}

/** The URLs the git server had before (a port taken while it was down); repointLocalGit reads them. */
export function previousGitUrls(fluxStateDir: string): string[] {
  try {
    return fs.readFileSync(path.join(fluxStateDir, 'git-url.previous'), 'utf8').split('\n').filter(Boolean)
  } catch {
    return []
  }
}

/**
 * The ports of what outlives a restart in URLs: the git server's (in the GitRepository and
 * the `nsops-local` remote) and source-controller's storage (in artifact URLs). Kept in the
 * state dir and taken again when still free, so `cluster-down` / `cluster-up` changes no URL;
 * one that got taken meanwhile is replaced, and repointLocalGit fixes what named it.
 */
async function stablePorts(dir: string): Promise<{ git: number; storage: number }> {
  const file = path.join(dir, 'ports.json')
  let kept: Partial<Record<'git' | 'storage', number>> = {}
  try {
    kept = JSON.parse(fs.readFileSync(file, 'utf8'))
  } catch {
    /* first start */
  }
  const take = async (p: number | undefined) => (p && (await reclaimPort(p))) || freePort()
  const ports = { git: await take(kept.git), storage: await take(kept.storage) }
  fs.writeFileSync(file, JSON.stringify(ports))
  return ports
}

/**
 * Installs the Flux CRDs into the cluster and returns the controller processes to start.
 * `dir` holds the git server's repositories and source-controller's storage (keep it across
 * restarts).
 */
export async function fluxControllers(opts: { kubeconfig: string; dir: string }): Promise<ControllerProcess[]> {
  fs.mkdirSync(opts.dir, { recursive: true })
  const [, sourceController, kustomizeController, helmController] = await Promise.all([
    installFluxCrds(connect({ kubeconfig: opts.kubeconfig })),
    toolPath('source-controller'),
    toolPath('kustomize-controller'),
    toolPath('helm-controller'),
  ])
  const env = { KUBECONFIG: opts.kubeconfig, RUNTIME_NAMESPACE: FLUX_NAMESPACE }
  const { git: gitPort, storage: srcPort } = await stablePorts(opts.dir)
  const [kcMetrics, kcHealth, srcMetrics, srcHealth, hcMetrics, hcHealth] = await Promise.all(
    Array.from({ length: 6 }, () => freePort()),
  )
  const procs: ControllerProcess[] = []

  // The cluster's own git host: `just dev-up` pushes this repo there and points Flux at it,
  // so GitOps (and `just deploy`) works with no remote at all.
  const gitRoot = path.join(opts.dir, 'git')
  if (!fs.existsSync(path.join(gitRoot, LOCAL_REPO))) await createBareRepo(gitRoot, LOCAL_REPO)
  const gitUrl = `http://127.0.0.1:${gitPort}/${LOCAL_REPO}`
  const previous = localGitUrl(opts.dir)
  if (previous && previous !== gitUrl) {
    const history = new Set([...previousGitUrls(opts.dir), previous])
    history.delete(gitUrl)
    fs.writeFileSync(path.join(opts.dir, 'git-url.previous'), [...history].join('\n'))
  }
  fs.writeFileSync(path.join(opts.dir, 'git-url'), gitUrl)
  procs.push({
    name: 'git-server',
    command: process.execPath,
    args: tsNodeArgs('shared/cluster/sim/git-server.ts', gitRoot, String(gitPort)),
    env,
    healthUrl: `${gitUrl}/info/refs?service=git-upload-pack`,
  })

  // Out of cluster: artifacts are stored in the state dir (which it wants to exist) and served
  // on 127.0.0.1 (the advertised address goes into every artifact URL kustomize-controller
  // fetches). No leader election: one replica, and a lease left by a killed run would delay
  // the next start.
  const storage = path.join(opts.dir, 'source-controller')
  fs.mkdirSync(storage, { recursive: true })
  procs.push({
    name: 'source-controller',
    command: sourceController,
    args: [
      '--watch-all-namespaces',
      '--log-encoding=console',
      '--enable-leader-election=false',
      `--storage-path=${storage}`,
      `--storage-addr=127.0.0.1:${srcPort}`,
      `--storage-adv-addr=127.0.0.1:${srcPort}`,
      `--metrics-addr=127.0.0.1:${srcMetrics}`,
      `--health-addr=127.0.0.1:${srcHealth}`,
    ],
    env,
    healthUrl: `http://127.0.0.1:${srcHealth}/readyz`,
  })

  procs.push({
    name: 'kustomize-controller',
    command: kustomizeController,
    args: [
      `--metrics-addr=127.0.0.1:${kcMetrics}`,
      `--health-addr=127.0.0.1:${kcHealth}`,
      '--watch-all-namespaces',
      '--concurrent=4',
      '--requeue-dependency=5s',
      '--log-encoding=console',
    ],
    env,
    healthUrl: `http://127.0.0.1:${kcHealth}/readyz`,
  })

  // helm-controller v1.4.0 (Flux 2.7) beside source-controller v1.9.x: it fetches chart
  // artifacts from source-controller's storage URL and keeps Helm's release Secrets in the
  // release's storage namespace. A short graceful shutdown: its default (10 minutes) waits
  // out an install in flight, which would hold `cluster-down` as long.
  procs.push({
    name: 'helm-controller',
    command: helmController,
    args: [
      `--metrics-addr=127.0.0.1:${hcMetrics}`,
      `--health-addr=127.0.0.1:${hcHealth}`,
      '--watch-all-namespaces',
      '--enable-leader-election=false',
      '--concurrent=4',
      '--requeue-dependency=5s',
      '--graceful-shutdown-timeout=5s',
      '--log-encoding=console',
    ],
    env,
    healthUrl: `http://127.0.0.1:${hcHealth}/readyz`,
  })
  return procs
}

/**
 * Resolves once every controller answers its health URL; `dead` reports a crashed one, and
 * `logTail` gives the last log lines of one that is still silent at the timeout.
 */
export async function waitForControllers(
  procs: ControllerProcess[],
  dead: () => Error | undefined,
  opts: { timeoutMs?: number; logTail?: (name: string) => string } = {},
): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? 60_000
  const until = Date.now() + timeoutMs
  const pending = new Set(procs)
  while (pending.size > 0) {
    const d = dead()
    if (d) throw d
    for (const p of [...pending]) {
      const ok = await fetch(p.healthUrl, { signal: AbortSignal.timeout(1000) }).then(
        (r) => r.ok,
        () => false,
      )
      if (ok) pending.delete(p)
    }
    if (pending.size === 0) return
    if (Date.now() > until) {
      const silent = [...pending].map((p) => p.name)
      const tails = silent
        .map((n) => opts.logTail?.(n))
        .filter(Boolean)
        .map((t) => `\n${t}`)
        .join('')
      throw new NsopsError(
        `Flux controllers did not become ready within ${timeoutMs / 1000} s: ${silent.join(', ')}.${tails}`,
        {
          hint: 'Their logs are listed by `just cluster-status`.',
        },
      )
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
    try {
      return fs.readFileSync(path.join(dir, file), 'utf8')
    } catch (err) {
      throw new NsopsError(`cannot read ${path.join(dir, file)}: ${errorMessage(err)}.`, {
        hint: `Every file in ${path.join(dir, 'kustomization.yaml')} \`resources\` must exist.`,
      })
    }
  }
  const index = YAML.parse(read('kustomization.yaml')) as { resources?: string[] }
  return (index.resources ?? []).flatMap((file) =>
    YAML.parseAllDocuments(read(file))
      .map((d) => d.toJS() as FluxObjectManifest)
      .filter(Boolean),
  )
}

export interface BootstrapOptions {
  /** the git URL the GitRepository reads (the local git server's on sim) */
  repoUrl: string
  branch?: string
  /** the repository pushed (default this one): its own root Kustomizations when this checkout has no k8s/flux/ */
  repoDir?: string
}

/**
 * A repository adopted with `just init` keeps its Flux objects where Flux users keep them and
 * has no k8s/flux/. What `flux bootstrap` leaves on a cluster is made from its root
 * Kustomization(s) (flux-system over clusters/<name>, home-ops' cluster-apps): each root as
 * written, and the GitRepository it reads pointed at the cluster's git server. A root's build
 * usually holds that GitRepository too (gotk-sync.yaml, with the real remote and its deploy
 * key), and kustomize-controller would apply it over ours: a patch on each root keeps it on the
 * local server, on the branch pushed, without the key.
 */
async function repositoryBootstrap(repoDir: string, url: string, branch: string): Promise<FluxObjectManifest[]> {
  const roots = await repositoryRoots(repoDir)
  if (!roots.length)
    throw new NsopsError(`${repoDir} has no k8s/flux/ and no Flux Kustomization to bootstrap Flux from.`, {
      hint: '`just new-namespace NAME` writes k8s/flux/ with a Kustomization per namespace; or add your Flux Kustomizations (e.g. clusters/<name>/) and run `just init`.',
    })
  const sources = new Map<string, { name: string; namespace: string }>()
  for (const { ks, file } of roots) {
    const namespace = ks.metadata.namespace ?? 'flux-system'
    const ref = ks.spec.sourceRef
    if (ref?.kind !== 'GitRepository')
      throw new NsopsError(
        `${file ?? repoDir}: the root Kustomization ${namespace}/${ks.metadata.name} reads a ${ref?.kind ?? 'source it does not name'}; the sim's git server can only stand in for a GitRepository.`,
        { hint: 'Point its spec.sourceRef at a GitRepository of this repository to develop it on the sim.' },
      )
    sources.set(`${ref.namespace ?? namespace}/${ref.name}`, { name: ref.name, namespace: ref.namespace ?? namespace })
  }
  const GIT_API = 'source.toolkit.fluxcd.io/v1'
  const keepLocal = [...sources.values()].map(({ name, namespace }) => ({
    target: { group: 'source.toolkit.fluxcd.io', kind: 'GitRepository', name, namespace },
    // null removes a field (the remote's tag/semver/commit pins, its deploy key)
    patch: YAML.stringify({
      apiVersion: GIT_API,
      kind: 'GitRepository',
      metadata: { name, namespace },
      spec: { url, ref: { branch, tag: null, semver: null, name: null, commit: null }, secretRef: null },
    }),
  }))
  return [
    ...[...sources.values()].map(({ name, namespace }) => ({
      apiVersion: GIT_API,
      kind: 'GitRepository' as const,
      metadata: { name, namespace },
      spec: { interval: '1m', url, ref: { branch } },
    })),
    ...roots.map(({ ks }) => ({
      apiVersion: ks.apiVersion,
      kind: 'Kustomization' as const,
      metadata: { name: ks.metadata.name, namespace: ks.metadata.namespace ?? 'flux-system' },
      spec: { ...ks.spec, patches: [...(ks.spec.patches ?? []), ...keepLocal] } as Record<string, unknown>,
    })),
  ]
}

/**
 * Applies k8s/flux/ (the GitRepository and one Kustomization per namespace) with the
 * GitRepository pointed at `repoUrl`, after the Flux CRDs and the flux-system namespace; in a
 * repository without k8s/flux/, its own roots (repositoryBootstrap).
 * Idempotent (server-side apply); returns what it applied.
 */
export async function bootstrapFlux(kube: Kube, opts: BootstrapOptions): Promise<FluxObjectManifest[]> {
  if (!/^(https?|ssh):\/\//.test(opts.repoUrl)) {
    throw new NsopsError(`${opts.repoUrl} is not a URL Flux can read: a GitRepository needs http(s):// or ssh://.`)
  }
  await installFluxCrds(kube)
  // this checkout's k8s/flux/ when it has one (nsops' own shape, whichever clone is pushed);
  // else the pushed repository's own roots (a repository adopted with `just init`)
  const objects = fs.existsSync(path.join(fluxDir, 'kustomization.yaml'))
    ? fluxManifests(fluxDir).map((o) =>
        o.kind !== 'GitRepository'
          ? o
          : {
              ...o,
              spec: { ...o.spec, url: opts.repoUrl, ref: { branch: opts.branch ?? 'main' } },
            },
      )
    : await repositoryBootstrap(opts.repoDir ?? repoRoot, opts.repoUrl, opts.branch ?? 'main')
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
        {
          ...kind,
          namespace: obj.metadata.namespace,
          name: obj.metadata.name,
          body: obj,
          fieldManager: 'nsops',
          force: true,
        },
        setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply),
      )
    } catch (err) {
      throw new NsopsError(
        `applying ${obj.kind}/${obj.metadata.namespace}/${obj.metadata.name} failed: ${apiMessage(err)}.`,
        {
          hint: `Check ${path.relative(process.cwd(), fluxDir)} (kubectl apply --dry-run=server -k k8s/flux shows the same error).`,
        },
      )
    }
  }
  return objects
}
