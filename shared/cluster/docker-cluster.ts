// `kind` and `k3d`: clusters in Docker containers, used only when a Docker engine answers.
// The two differ only in their commands, so one class takes a table of them.
import { execFile } from 'node:child_process'
import fsp from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'
import { NsopsError } from '../core/errors.ts'
import { repoRoot, stateDir } from '../core/paths.ts'
import { commandExists, dockerEngineAnswers } from './docker.ts'
import {
  applyConfigMap,
  ensureKindRegistry,
  k3dConfigWithRegistry,
  removeOwnedRegistry,
  wireKindRegistry,
  type ApplyConfigMap,
} from './docker-registry.ts'
import type { ClusterInfo, ClusterProvider, ComponentStatus } from './provider.ts'

const run = promisify(execFile)

interface Commands {
  tool: 'kind' | 'k3d'
  install: string
  list: string[]
  create: (name: string, config: string) => string[]
  kubeconfig: (name: string) => string[]
  delete: (name: string) => string[]
}

const table: Record<'kind' | 'k3d', Commands> = {
  kind: {
    tool: 'kind',
    install: 'https://kind.sigs.k8s.io/docs/user/quick-start/#installation',
    list: ['get', 'clusters'],
    create: (n, config) => ['create', 'cluster', '--name', n, '--config', config, '--wait', '120s'],
    kubeconfig: (n) => ['get', 'kubeconfig', '--name', n],
    delete: (n) => ['delete', 'cluster', '--name', n],
  },
  k3d: {
    tool: 'k3d',
    install: 'https://k3d.io/#installation',
    list: ['cluster', 'list', '--no-headers'],
    create: (n, config) => ['cluster', 'create', n, '--config', config, '--wait'],
    kubeconfig: (n) => ['kubeconfig', 'get', n],
    delete: (n) => ['cluster', 'delete', n],
  },
}

export class DockerCluster implements ClusterProvider {
  private readonly cmd: Commands
  // kind and k3d run real nodes: Flux comes from `flux install`, as on any cluster
  readonly capabilities = { localGitOps: false }
  constructor(
    readonly name: 'kind' | 'k3d',
    private readonly clusterName = 'nsops',
    // how the KEP-1755 ConfigMap reaches the cluster (a test without an apiserver records it)
    private readonly apply: ApplyConfigMap = applyConfigMap,
  ) {
    this.cmd = table[name]
  }

  async available() {
    if (!(await commandExists(this.cmd.tool)))
      return { ok: false as const, reason: `${this.cmd.tool} is not installed (${this.cmd.install})` }
    return dockerEngineAnswers()
  }

  private async require(): Promise<void> {
    const a = await this.available()
    if (!a.ok) {
      throw new NsopsError(`the ${this.name} provider cannot run here: ${a.reason}.`, {
        hint: `Start Docker and install ${this.cmd.tool}, or use the sim provider (\`just cluster-up\`), which needs neither.`,
      })
    }
  }

  private async exists(): Promise<boolean> {
    const { stdout } = await run(this.cmd.tool, this.cmd.list)
    return stdout.split('\n').some((l) => l.trim().split(/\s+/)[0] === this.clusterName)
  }

  get context(): string {
    return `${this.name}-${this.clusterName}`
  }

  async kubeconfig(): Promise<string> {
    const file = path.join(stateDir(), this.name, 'kubeconfig')
    await fsp.mkdir(path.dirname(file), { recursive: true })
    const { stdout } = await run(this.cmd.tool, this.cmd.kubeconfig(this.clusterName))
    await fsp.writeFile(file, stdout, { mode: 0o600 })
    return file
  }

  async ensure(): Promise<ClusterInfo> {
    await this.require()
    const reused = await this.exists()
    // the registry comes first: kind's nodes name it, k3d creates it from its config
    if (this.name === 'kind') {
      const registry = await ensureKindRegistry()
      if (!reused)
        await run(this.cmd.tool, this.cmd.create(this.clusterName, path.join(repoRoot, 'k8s/kind.yaml')), {
          maxBuffer: 64 << 20,
        })
      const kubeconfig = await this.kubeconfig()
      await wireKindRegistry(this.clusterName, registry, kubeconfig, this.apply)
      return { provider: this.name, context: this.context, kubeconfig, server: '', reused }
    }
    if (!reused) {
      const { file } = await k3dConfigWithRegistry()
      await run(this.cmd.tool, this.cmd.create(this.clusterName, file), { maxBuffer: 64 << 20 })
    }
    return { provider: this.name, context: this.context, kubeconfig: await this.kubeconfig(), server: '', reused }
  }

  async describe(): Promise<ComponentStatus[]> {
    const a = await this.available()
    if (!a.ok) return [{ name: this.name, state: 'stopped', detail: a.reason }]
    return [{ name: `${this.name} cluster ${this.clusterName}`, state: (await this.exists()) ? 'running' : 'stopped' }]
  }

  async stop(): Promise<void> {
    await this.require()
    if (await this.exists()) await run(this.cmd.tool, this.cmd.delete(this.clusterName))
    await removeOwnedRegistry(this.name)
  }

  async logs(): Promise<Record<string, string>> {
    return {}
  }
}
