// A small GitOps world for end-to-end tests: a sim cluster of its own running the real
// source-controller and kustomize-controller, a smart-HTTP git server with a bare repo, a
// working clone holding one namespace (`demo`), and Flux objects that deploy its prod overlay.
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { SimCluster } from '../../shared/cluster/sim/index.ts'
import { createBareRepo, startGitServer, type GitServer } from '../../shared/cluster/sim/git-server.ts'
import type { Kube } from '../../shared/kube/client.ts'
import { repoRoot } from '../../shared/core/paths.ts'
import {
  defineNamespace,
  namespacePaths,
  type FluxHoldPolicy,
  type NamespaceConfig,
} from '../../shared/config/namespace-config.ts'
import { startFluxSim } from '../flux-fixture.ts'

const run = promisify(execFile)

export const DEMO = 'demo'

export interface GitOpsWorld {
  kube: Kube
  kubeconfig: string
  sim: SimCluster
  git: GitServer
  repoUrl: string
  work: string
  ns: NamespaceConfig
  git$(...args: string[]): Promise<string>
  write(rel: string, text: string): void
  commitAndPush(message: string): Promise<string>
  ks(): Promise<FluxKs>
  waitApplied(sha: string, timeoutMs?: number): Promise<FluxKs>
  stop(): Promise<void>
}

export interface FluxKs {
  metadata: { annotations?: Record<string, string>; generation?: number }
  spec: { suspend?: boolean }
  status?: {
    lastAppliedRevision?: string
    conditions?: { type: string; status: string; reason?: string; message?: string }[]
  }
}

export const settings = (mode: string) => `apiVersion: v1
kind: ConfigMap
metadata: { name: settings }
data: { mode: ${mode} }
`

const web = `apiVersion: apps/v1
kind: Deployment
metadata: { name: web, labels: { app.kubernetes.io/name: web } }
spec:
  replicas: 2
  selector: { matchLabels: { app.kubernetes.io/name: web } }
  template:
    metadata: { labels: { app.kubernetes.io/name: web } }
    spec:
      containers:
        - name: web
          image: traefik/whoami:v1.10.3
          readinessProbe: { httpGet: { path: /health, port: 80 } }
          resources: { limits: { memory: 64Mi } }
`

/** The fixture namespace's config, with its paths in the working clone (not this repo). */
export function demoNamespace(work: string, devNs = DEMO, hold: FluxHoldPolicy = 'auto'): NamespaceConfig {
  const base = defineNamespace({
    name: DEMO,
    description: 'e2e fixture',
    namespaces: { dev: devNs, prod: DEMO },
    flux: { kustomization: DEMO, hold },
    groups: [{ title: 'Apps', apps: [{ name: 'web', port: 80 }] }],
  })
  return { ...base, paths: namespacePaths(path.join(work, 'namespaces', DEMO)) }
}

/**
 * A new working clone in `work` on `main`, with a test identity and no signing: `git$` runs git
 * in it, `write` puts a file in it (its folders made).
 */
export async function newWorkClone(
  work: string,
): Promise<{ git$: (...args: string[]) => Promise<string>; write: (rel: string, text: string) => void }> {
  const git$ = async (...args: string[]) => (await run('git', ['-C', work, ...args])).stdout.trim()
  await run('git', ['-c', 'init.defaultBranch=main', 'init', work])
  for (const [k, v] of [
    ['user.name', 'nsops test'],
    ['user.email', 'test@nsops.local'],
    ['commit.gpgsign', 'false'],
  ])
    await git$('config', k, v)
  const write = (rel: string, text: string) => {
    fs.mkdirSync(path.dirname(path.join(work, rel)), { recursive: true })
    fs.writeFileSync(path.join(work, rel), text)
  }
  return { git$, write }
}

/**
 * What Flux needs before a Kustomization applies `namespace` from git: the namespace,
 * flux-system (unless it is there), and a GitRepository `source` in flux-system reading the
 * main branch of `url`. Returns how to create more Flux objects (v1) in flux-system.
 */
export async function fluxGitSource(
  kube: Kube,
  namespace: string,
  source: string,
  url: string,
): Promise<(plural: string, group: string, body: object) => Promise<unknown>> {
  await kube.core.createNamespace({ body: { metadata: { name: namespace } } })
  await kube.core.createNamespace({ body: { metadata: { name: 'flux-system' } } }).catch(() => {})
  const create = (plural: string, group: string, body: object) =>
    kube.custom.createNamespacedCustomObject({ group, version: 'v1', namespace: 'flux-system', plural, body })
  await create('gitrepositories', 'source.toolkit.fluxcd.io', {
    apiVersion: 'source.toolkit.fluxcd.io/v1',
    kind: 'GitRepository',
    metadata: { name: source },
    spec: { url, interval: '10m', ref: { branch: 'main' } },
  })
  return create
}

/**
 * The demo namespace's dev loop in a process of its own (test/e2e/dev-driver.ts, with `hold`),
 * once it says it has started: for tests that kill it with SIGKILL. A driver that exits or does
 * not start within a minute is killed and its output thrown.
 */
export async function startDevDriver(
  w: Pick<GitOpsWorld, 'kubeconfig' | 'work'>,
  hold: FluxHoldPolicy,
  env: NodeJS.ProcessEnv,
): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      `file://${repoRoot}/node_modules/tsx/dist/esm/index.mjs`,
      path.join(repoRoot, 'test/e2e/dev-driver.ts'),
      w.kubeconfig,
      w.work,
      hold,
    ],
    { env, stdio: ['ignore', 'pipe', 'pipe'] },
  )
  let out = ''
  child.stdout.on('data', (b) => {
    out += b
  })
  child.stderr.on('data', (b) => {
    out += b
  })
  const end = Date.now() + 60_000
  while (!out.includes('READY')) {
    if (Date.now() > end || child.exitCode !== null) {
      child.kill('SIGKILL')
      throw new Error(`driver did not start: ${out}`)
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  return child
}

export async function gitOpsWorld(opts: { devNamespace?: string } = {}): Promise<GitOpsWorld> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-gitops-'))
  const sim = new SimCluster({ dir: path.join(tmp, 'sim') })
  let git: GitServer | undefined
  try {
    const { kube, kubeconfig } = await startFluxSim(sim)
    const reposRoot = path.join(tmp, 'repos')
    fs.mkdirSync(reposRoot)
    await createBareRepo(reposRoot, 'nsops.git')
    git = await startGitServer({ root: reposRoot })
    const repoUrl = git.urlFor('nsops.git')
    const work = path.join(tmp, 'work')
    const { git$, write } = await newWorkClone(work)
    const devNs = opts.devNamespace ?? DEMO
    write(`namespaces/${DEMO}/base/kustomization.yaml`, 'resources: [web.yaml, settings.yaml]\n')
    write(`namespaces/${DEMO}/base/web.yaml`, web)
    write(`namespaces/${DEMO}/base/settings.yaml`, settings('prod-v1'))
    write(`namespaces/${DEMO}/overlays/prod/kustomization.yaml`, `namespace: ${DEMO}\nresources: [../../base]\n`)
    write(
      `namespaces/${DEMO}/overlays/dev/kustomization.yaml`,
      `namespace: ${devNs}\nresources: [../../base, dev-only.yaml]\npatches:\n  - path: settings-dev.yaml\n  - target: { kind: Deployment, name: web }\n    patch: '[{"op": "replace", "path": "/spec/replicas", "value": 1}]'\n`,
    )
    write(
      `namespaces/${DEMO}/overlays/dev/dev-only.yaml`,
      'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: dev-only }\ndata: { debug: "true" }\n',
    )
    write(`namespaces/${DEMO}/overlays/dev/settings-dev.yaml`, settings('dev'))
    await git$('add', '-A')
    await git$('commit', '-qm', 'demo: first version')
    await git$('remote', 'add', 'origin', repoUrl)
    await git$('push', '-q', '-u', 'origin', 'main')

    const flux = await fluxGitSource(kube, DEMO, 'demo-src', repoUrl)
    await flux('kustomizations', 'kustomize.toolkit.fluxcd.io', {
      apiVersion: 'kustomize.toolkit.fluxcd.io/v1',
      kind: 'Kustomization',
      metadata: { name: DEMO },
      spec: {
        interval: '10m',
        timeout: '90s',
        path: `./namespaces/${DEMO}/overlays/prod`,
        prune: true,
        wait: true,
        targetNamespace: DEMO,
        sourceRef: { kind: 'GitRepository', name: 'demo-src' },
      },
    })

    const ns = demoNamespace(work, devNs)

    const ks = async () =>
      (await kube.custom.getNamespacedCustomObject({
        group: 'kustomize.toolkit.fluxcd.io',
        version: 'v1',
        namespace: 'flux-system',
        plural: 'kustomizations',
        name: DEMO,
      })) as FluxKs
    const world: GitOpsWorld = {
      kube,
      kubeconfig,
      sim,
      git,
      repoUrl,
      work,
      ns,
      git$,
      write,
      ks,
      async commitAndPush(message) {
        await git$('add', '-A')
        await git$('commit', '-qm', message)
        await git$('push', '-q', 'origin', 'main')
        return git$('rev-parse', 'HEAD')
      },
      async waitApplied(sha, timeoutMs = 90_000) {
        const end = Date.now() + timeoutMs
        for (;;) {
          const k = await ks()
          const ready = k.status?.conditions?.find((c) => c.type === 'Ready')
          if (ready?.status === 'True' && k.status?.lastAppliedRevision?.endsWith(sha)) return k
          if (Date.now() > end) throw new Error(`Flux did not apply ${sha}: ${JSON.stringify(k.status?.conditions)}`)
          await new Promise((r) => setTimeout(r, 200))
        }
      },
      async stop() {
        await git?.stop()
        await sim.stop({ purge: true })
        fs.rmSync(tmp, { recursive: true, force: true })
      },
    }
    return world
  } catch (err) {
    await git?.stop()
    await sim.stop({ purge: true })
    fs.rmSync(tmp, { recursive: true, force: true })
    throw err
  }
}
