// `sim`: a real control plane as local processes (etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler) with kwok simulating a node, so pods get
// scheduled and turn Ready without Docker. Recipe: research/control-plane.md §3.
import fs from 'node:fs'
import fsp from 'node:fs/promises'
import https from 'node:https'
import path from 'node:path'
import YAML from 'yaml'
import { NsopsError } from '../../core/errors.ts'
import { answersOk } from '../../core/http-probe.ts'
import { withFileLock } from '../../core/lock.ts'
import { stateDir, tsNodeArgs } from '../../core/paths.ts'
import { freePort, reclaimPort } from '../../core/ports.ts'
import { toolPaths } from '../../tools/provision.ts'
import type { ClusterInfo, ClusterProvider, ComponentStatus, EnsureOptions } from '../provider.ts'
import { installKwokCrds, registerNode, untilSettled } from './bootstrap.ts'
import { ensurePki, type Pki } from './pki.ts'
import { isRunning, logTail, startComponent, stopComponents, type ComponentRecord } from './processes.ts'
import { REGISTRY_COMPONENT, advertiseRegistry, registryProcess, untilRegistryAnswers } from './registry.ts'
import { fluxComponentNames } from './flux-components.ts'
import { fluxControllers, localGitUrl, waitForControllers } from './controllers.ts'
import { repointLocalGit } from './local-remote.ts'
import { connect } from '../../kube/client.ts'

export const SIM_CONTEXT = 'nsops-sim'
export { SIM_NODE } from './bootstrap.ts'

interface SimState {
  apiserverPort: number
  components: ComponentRecord[]
  startedAt: string
  /** names of the Flux controller components: optional, see ensureFlux() */
  flux?: string[]
  /** host:port of the sim's OCI registry (registry.ts); restarted by ensure() when it died */
  registry?: string
}

export interface SimOptions {
  /** state directory; default <repo>/.nsops/sim. Tests use a temp dir of their own. */
  dir?: string
  /** progress messages (spinner text) */
  onProgress?: (msg: string) => void
}

export class SimCluster implements ClusterProvider {
  // the sim runs Flux's controllers and a git server of its own beside the control plane
  readonly capabilities = { localGitOps: true }
  readonly name = 'sim' as const
  readonly dir: string
  private onProgress: (msg: string) => void

  constructor(opts: SimOptions = {}) {
    this.dir = opts.dir ?? path.join(stateDir(), 'sim')
    this.onProgress = opts.onProgress ?? (() => {})
  }

  get kubeconfigPath(): string {
    return path.join(this.dir, 'kubeconfig')
  }
  /** where simulated containers' CRI log files live (container-logs.ts has the layout) */
  get podLogRoot(): string {
    return path.join(this.dir, 'pods')
  }
  private get stateFile(): string {
    return path.join(this.dir, 'state.json')
  }
  private get logDir(): string {
    return path.join(this.dir, 'logs')
  }

  async available() {
    return { ok: true as const }
  }

  private readState(): SimState | undefined {
    try {
      return JSON.parse(fs.readFileSync(this.stateFile, 'utf8')) as SimState
    } catch {
      return undefined
    }
  }

  private writeState(state: SimState): void {
    fs.writeFileSync(`${this.stateFile}.tmp`, JSON.stringify(state, null, 2))
    fs.renameSync(`${this.stateFile}.tmp`, this.stateFile)
  }

  async kubeconfig(): Promise<string> {
    return this.kubeconfigPath
  }

  async logs(): Promise<Record<string, string>> {
    const state = this.readState()
    return Object.fromEntries((state?.components ?? []).map((c) => [c.name, c.logFile]))
  }

  async describe(): Promise<ComponentStatus[]> {
    const state = this.readState()
    if (!state) return []
    return state.components.map((c) => {
      if (isRunning(c)) return { name: c.name, state: 'running' as const, pid: c.pid }
      return {
        name: c.name,
        state: 'dead' as const,
        pid: c.pid,
        detail: `log: ${c.logFile}`,
        logTail: logTail(c.logFile),
      }
    })
  }

  /** Running and answering: every component alive and the apiserver ready. */
  async isUp(): Promise<boolean> {
    const state = this.readState()
    if (!state) return false
    const core = state.components.filter((c) => !state.flux?.includes(c.name) && c.name !== REGISTRY_COMPONENT)
    if (core.length === 0 || !core.every(isRunning)) return false
    return readyz(state.apiserverPort, await ensurePki(this.dir), 2000)
  }

  async ensure(opts: EnsureOptions = {}): Promise<ClusterInfo> {
    await fsp.mkdir(this.logDir, { recursive: true })
    return withFileLock(path.join(this.dir, '.lock'), async () => {
      if (await this.isUp()) {
        await this.ensureRegistry()
        if (opts.flux) await this.ensureFlux()
        return this.info(true)
      }
      const stale = this.readState()
      if (stale?.components.some(isRunning)) {
        this.onProgress('stopping the remains of an earlier run')
        await stopComponents(stale.components)
      }
      await this.start(opts)
      if (opts.flux) await this.ensureFlux()
      return this.info(false)
    })
  }

  private info(reused: boolean): ClusterInfo {
    return { provider: 'sim', context: SIM_CONTEXT, kubeconfig: this.kubeconfigPath, server: this.server(), reused }
  }

  private server(): string {
    return `https://127.0.0.1:${this.readState()?.apiserverPort ?? 0}`
  }

  /**
   * kwok's server (the simulated kubelet) takes the port it had before when it is still free,
   * so what named it stays right; registerNode() puts the port in the Node's status either way.
   */
  private async kubeletPort(): Promise<number> {
    const file = path.join(this.dir, 'kubelet-port')
    let kept: number | undefined
    try {
      kept = Number(fs.readFileSync(file, 'utf8').trim()) || undefined
    } catch {
      /* first start */
    }
    const port = (kept && (await reclaimPort(kept))) || (await freePort())
    fs.writeFileSync(file, String(port))
    return port
  }

  private async start(opts: EnsureOptions): Promise<void> {
    this.onProgress('provisioning binaries')
    const bin = await toolPaths([
      'etcd',
      'kube-apiserver',
      'kube-controller-manager',
      'kube-scheduler',
      'kwok',
      'registry',
    ])
    const [ec, ep, em, ap, cp, sp] = await Promise.all(Array.from({ length: 6 }, () => freePort()))
    const kp = await this.kubeletPort()
    const registry = await registryProcess(bin.registry, this.registryDir)
    const kubeconfig = this.kubeconfigPath
    // made while etcd starts (it needs none): the apiserver is the first to need them
    const pkiReady = ensurePki(this.dir)
    pkiReady.catch(() => {
      /* awaited below */
    })
    const state: SimState = {
      apiserverPort: ap,
      components: [],
      startedAt: new Date().toISOString(),
      registry: registry.host,
    }
    const log = (n: string) => path.join(this.logDir, `${n}.log`)
    let interrupted = false
    const launch = (name: string, cmd: string, args: string[], env?: NodeJS.ProcessEnv) => {
      if (interrupted) throw new Error('interrupted')
      const rec = startComponent(name, cmd, args, log(name), env)
      state.components.push(rec)
      this.writeState(state) // written at once: a killed cluster-up leaves pids the next run can stop
      return rec
    }

    // A start interrupted midway takes down what it started. A command that handles signals
    // itself (dev-up) passes its AbortSignal and gets an error back; otherwise (cluster-up)
    // the signal is ours and we exit with its code.
    let stoppedAll: Promise<void> | undefined
    const abort = async (sig: NodeJS.Signals | 'aborted') => {
      interrupted = true
      stoppedAll = stopComponents(state.components, 3000)
      await stoppedAll
      if (sig !== 'aborted') process.exit(sig === 'SIGINT' ? 130 : 143)
    }
    const onAbort = () => void abort('aborted')
    const onSignal = (sig: NodeJS.Signals) => void abort(sig)
    if (opts.signal) opts.signal.addEventListener('abort', onAbort, { once: true })
    else {
      process.once('SIGINT', onSignal)
      process.once('SIGTERM', onSignal)
    }
    try {
      this.onProgress('starting etcd and kube-apiserver, preparing certificates')
      const etcdUrl = `http://127.0.0.1:${ec}`
      launch('etcd', bin.etcd, [
        '--name',
        'n0',
        '--data-dir',
        path.join(this.dir, 'etcd'),
        '--unsafe-no-fsync',
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=http://127.0.0.1:${ep}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${ep}`,
        `--initial-cluster=n0=http://127.0.0.1:${ep}`,
        `--listen-metrics-urls=http://127.0.0.1:${em}`,
      ])
      // the registry needs nothing of the cluster: it starts now and is ready long before the node
      launch(registry.name, registry.command, registry.args, registry.env)
      const pki = await pkiReady
      await writeKubeconfig(kubeconfig, pki, ap)
      // Two settings for a cluster with one user, measured on a validate of 400 objects (server
      // dry runs; bench/README.md): Priority and Fairness off (it shares a server fairly between
      // users and controllers; here all are the user's, and as system:masters exempt anyway), and
      // the collector at 2x its default heap (GOGC=200; about 90 MB more): together some 15-25 %
      // less of the apiserver's CPU per request, on the cores the user's commands share with it.
      const apiserver = launch(
        'kube-apiserver',
        bin['kube-apiserver'],
        [
          `--etcd-servers=${etcdUrl}`,
          '--bind-address=127.0.0.1',
          '--advertise-address=127.0.0.1',
          `--secure-port=${ap}`,
          `--tls-cert-file=${pki.serverCert}`,
          `--tls-private-key-file=${pki.serverKey}`,
          `--client-ca-file=${pki.caCert}`,
          `--token-auth-file=${pki.tokenFile}`,
          '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
          `--service-account-key-file=${pki.saPub}`,
          `--service-account-signing-key-file=${pki.saKey}`,
          '--service-cluster-ip-range=10.96.0.0/12',
          '--authorization-mode=Node,RBAC',
          '--allow-privileged=true',
          '--profiling=false',
          '--enable-priority-and-fairness=false',
        ],
        { GOGC: '200' },
      )
      // the node processes take a second to load: they start now, beside the apiserver, and
      // wait for it (and for kwok's CRDs) themselves
      launch(
        'local-path-provisioner',
        process.execPath,
        tsNodeArgs('shared/cluster/sim/local-path-provisioner.ts', kubeconfig, path.join(this.dir, 'volumes')),
      )
      // what the simulated pods' containers would do: write their logs, answer on their ports
      launch(
        'simulated-containers',
        process.execPath,
        tsNodeArgs('shared/cluster/sim/simulated-containers.ts', kubeconfig, this.podLogRoot),
      )
      await this.waitReady(ap, pki, apiserver, state.components)

      this.onProgress('starting controller-manager, scheduler and kwok')
      const kcArgs = [
        `--kubeconfig=${kubeconfig}`,
        `--authentication-kubeconfig=${kubeconfig}`,
        `--authorization-kubeconfig=${kubeconfig}`,
        '--leader-elect=false',
        '--bind-address=127.0.0.1',
        // the defaults (20 qps for the controllers, 50 for the scheduler) make a big apply
        // wait on the control plane: creating 250 ReplicaSets and pods is all they do here
        '--kube-api-qps=300',
        '--kube-api-burst=600',
      ]
      launch('kube-controller-manager', bin['kube-controller-manager'], [
        ...kcArgs,
        `--secure-port=${cp}`,
        `--service-account-private-key-file=${pki.saKey}`,
        `--root-ca-file=${pki.caCert}`,
        '--use-service-account-credentials=false',
        '--cluster-name=nsops-sim',
        '--profiling=false',
        // a claim whose update lost a conflict waits for this resync (15 s by default, as long
        // as kstatus lets a pod be Unschedulable); the local-path provisioner binds the rest
        '--pvclaimbinder-sync-period=3s',
      ])
      launch('kube-scheduler', bin['kube-scheduler'], [...kcArgs, `--secure-port=${sp}`, '--profiling=false'])
      // kwok lists its CRDs when it starts and looks again for a missing one only after a
      // backoff of up to a minute: they are installed (and Established) before it starts.
      // The Node and StorageClasses go in meanwhile: kwok takes over a Node that exists.
      this.onProgress(
        "registering the node and the local-path StorageClass, installing kwok's CRDs, advertising the registry",
      )
      await Promise.all([
        installKwokCrds(kubeconfig),
        registerNode(kubeconfig, kp),
        advertiseRegistry(kubeconfig, registry.host),
      ])
      // kwok's server stands in for the kubelet: --node-port puts its port in the Node's
      // daemonEndpoints so the apiserver can proxy port-forward and logs to it; the
      // PortForward and Logs objects (k8s/sim/kwok-crds.yaml) say where a pod's port goes and
      // which file is a container's log.
      launch('kwok', bin.kwok, [
        `--kubeconfig=${kubeconfig}`,
        '--manage-all-nodes=true',
        '--node-lease-duration-seconds=40',
        '--cidr=10.0.0.1/24',
        '--node-ip=10.0.0.1',
        `--server-address=127.0.0.1:${kp}`,
        `--node-port=${kp}`,
        '--enable-crds=ClusterPortForward,PortForward,Logs,ClusterLogs,Exec',
      ])

      this.onProgress('waiting for the node')
      const dead = () => this.deadComponent(state.components)
      await Promise.all([untilSettled(kubeconfig, dead), untilRegistryAnswers(registry.host, dead)])
    } catch (err) {
      // interrupted: the signal handler is stopping everything and exits 130; a component it
      // stopped must not be reported as a crash meanwhile
      if (interrupted && !opts.signal) await new Promise(() => {})
      if (interrupted) {
        await stoppedAll
        throw new NsopsError('the cluster start was interrupted; everything it had started is stopped.', {
          exitCode: 130,
        })
      }
      await stopComponents(state.components, 3000)
      throw err
    } finally {
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
      opts.signal?.removeEventListener('abort', onAbort)
    }
  }

  // ---- the OCI registry (shared/cluster/sim/registry.ts) ----
  private get registryDir(): string {
    return path.join(this.dir, 'registry')
  }

  /** host:port of the sim's registry (plain HTTP), once the cluster has started; else undefined. */
  registryHost(): string | undefined {
    return this.readState()?.registry
  }

  // Like the Flux controllers it does not count for isUp(): a registry that died (or a cluster
  // started before the sim had one) gets one started here, on its old port when it is free.
  private async ensureRegistry(): Promise<void> {
    const state = this.readState()
    if (!state) return
    const old = state.components.filter((c) => c.name === REGISTRY_COMPONENT)
    if (state.registry && old.length && old.every(isRunning)) return
    this.onProgress('starting the registry')
    await stopComponents(old)
    const bin = await toolPaths(['registry'])
    const registry = await registryProcess(bin.registry, this.registryDir)
    state.components = state.components.filter((c) => !old.includes(c))
    const rec = startComponent(
      registry.name,
      registry.command,
      registry.args,
      path.join(this.logDir, `${registry.name}.log`),
      registry.env,
    )
    state.components.push(rec)
    state.registry = registry.host
    this.writeState(state)
    await Promise.all([
      advertiseRegistry(this.kubeconfigPath, registry.host),
      untilRegistryAnswers(registry.host, () => this.deadComponent([rec])),
    ])
  }

  // ---- Flux controllers (the GitOps path; shared/cluster/sim/controllers.ts) ----
  // Optional components: started after the node is up, by any ensure({ flux: true }), also on
  // a cluster that runs without them; one that died is started again there. They do not
  // count for isUp(), so a dead controller never restarts the whole cluster.
  private async ensureFlux(): Promise<void> {
    const state = this.readState()
    if (!state)
      throw new NsopsError('the sim cluster has no state to add the Flux controllers to.', {
        hint: 'start it first: `just cluster-up --flux` (or `just dev-up`).',
      })
    const flux = state.components.filter((c) => state.flux?.includes(c.name))
    // a cluster started by an older nsops may lack a component added since (helm-controller)
    const complete = fluxComponentNames.every((n) => state.flux?.includes(n))
    if (complete && state.flux!.every((n) => flux.some((c) => c.name === n && isRunning(c)))) return
    await stopComponents(flux)
    state.components = state.components.filter((c) => !flux.includes(c))
    this.onProgress('installing the Flux CRDs and starting the Flux controllers')
    const procs = await fluxControllers({ kubeconfig: this.kubeconfigPath, dir: path.join(this.dir, 'flux') })
    state.flux = procs.map((p) => p.name)
    for (const p of procs) {
      state.components.push(startComponent(p.name, p.command, p.args, path.join(this.logDir, `${p.name}.log`), p.env))
      this.writeState(state)
    }
    await waitForControllers(procs, () => this.deadComponent(state.components), {
      logTail: (name) => {
        const c = state.components.find((x) => x.name === name)
        return c ? `last lines of ${c.logFile}:\n${logTail(c.logFile)}` : ''
      },
    })
    // a git server that could not keep its port: what named the old URL follows it
    const fluxDir = path.join(this.dir, 'flux')
    const moved = await repointLocalGit(connect({ kubeconfig: this.kubeconfigPath }), fluxDir)
    const what = [
      ...moved.gitRepositories.map((g) => `GitRepository ${g}`),
      ...moved.kustomizations.map((k) => `the patch of Kustomization ${k}`),
      ...moved.remotes.map((r) => `the remote in ${r}`),
    ]
    if (what.length) this.onProgress(`the git server moved to ${localGitUrl(fluxDir)}: re-pointed ${what.join(', ')}`)
  }

  /** A component that has died, reported with the tail of its log. */
  private deadComponent(components: ComponentRecord[]): NsopsError | undefined {
    const dead = components.find((c) => !isRunning(c))
    if (!dead) return undefined
    return new NsopsError(
      `sim cluster: ${dead.name} exited during start-up. Last lines of ${dead.logFile}:\n${logTail(dead.logFile)}`,
      {
        hint: 'If the log shows a port or data problem, `just cluster-down --purge` starts the cluster from scratch.',
      },
    )
  }

  private async waitReady(port: number, pki: Pki, apiserver: ComponentRecord, all: ComponentRecord[]): Promise<void> {
    const until = Date.now() + 60_000
    while (Date.now() < until) {
      const dead = this.deadComponent(all)
      if (dead) throw dead
      if (await readyz(port, pki, 1000)) return
      await new Promise((r) => setTimeout(r, 50))
    }
    throw new NsopsError(
      `sim cluster: kube-apiserver did not become ready within 60 s. Last lines of its log:\n${logTail(apiserver.logFile)}`,
    )
  }

  async stop(opts: { purge?: boolean } = {}): Promise<void> {
    const state = this.readState()
    if (state) {
      // controllers first (they talk to the apiserver), then the apiserver, then etcd:
      // an apiserver whose etcd died first may ignore SIGTERM
      const byName = (names: string[]) => state.components.filter((c) => names.includes(c.name))
      const last = ['kube-apiserver', 'etcd']
      await stopComponents(state.components.filter((c) => !last.includes(c.name)))
      await stopComponents(byName(['kube-apiserver']))
      await stopComponents(byName(['etcd']))
      fs.rmSync(this.stateFile, { force: true })
    }
    if (opts.purge) await fsp.rm(this.dir, { recursive: true, force: true })
  }
}

function readyz(port: number, pki: Pki, timeoutMs: number): Promise<boolean> {
  return answersOk((onResponse) =>
    https.get(
      {
        host: '127.0.0.1',
        port,
        path: '/readyz',
        timeout: timeoutMs,
        ca: fs.readFileSync(pki.caCert),
        cert: fs.readFileSync(pki.adminCert),
        key: fs.readFileSync(pki.adminKey),
      },
      onResponse,
    ),
  )
}

async function writeKubeconfig(file: string, pki: Pki, port: number): Promise<void> {
  const b64 = (f: string) => fs.readFileSync(f).toString('base64')
  const doc = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: SIM_CONTEXT,
        cluster: { server: `https://127.0.0.1:${port}`, 'certificate-authority-data': b64(pki.caCert) },
      },
    ],
    users: [
      {
        name: `${SIM_CONTEXT}-admin`,
        // the token, not the client certificate: cheaper for the apiserver per request (pki.ts)
        user: { token: fs.readFileSync(pki.adminToken, 'utf8').trim() },
      },
    ],
    contexts: [{ name: SIM_CONTEXT, context: { cluster: SIM_CONTEXT, user: `${SIM_CONTEXT}-admin` } }],
    'current-context': SIM_CONTEXT,
  }
  await fsp.writeFile(file, YAML.stringify(doc), { mode: 0o600 })
}
