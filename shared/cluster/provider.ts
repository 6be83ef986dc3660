// One narrow interface for every way nsops gets a cluster (kind's providers are the model).
// Nothing above shared/cluster asks which provider it has.

export type ProviderName = 'existing' | 'kind' | 'k3d' | 'sim'

export interface ComponentStatus {
  name: string
  state: 'running' | 'stopped' | 'dead'
  pid?: number
  detail?: string
  /** the end of the component's log when it died */
  logTail?: string
}

export interface ClusterInfo {
  provider: ProviderName
  context: string
  kubeconfig: string
  server: string
  /** true when ensure() found it already running */
  reused: boolean
}

export interface EnsureOptions {
  /** also run the Flux controllers (GitOps path) */
  flux?: boolean
  /** the command's own Ctrl-C: an interrupted start stops what it started and throws */
  signal?: AbortSignal
}

/** What a provider can do, so commands never ask for its name (kind's ProviderInfo). */
export interface ProviderCapabilities {
  /** runs Flux's controllers and a git server of its own: GitOps works offline on it */
  localGitOps: boolean
}

export interface ClusterProvider {
  readonly name: ProviderName
  readonly capabilities: ProviderCapabilities
  /** Whether this provider can work here (its tool and engine); the reason when not. */
  available(): Promise<{ ok: true } | { ok: false; reason: string }>
  /** Start or find the cluster. Idempotent. */
  ensure(opts?: EnsureOptions): Promise<ClusterInfo>
  /** One line per component (or node). */
  describe(): Promise<ComponentStatus[]>
  /** Path of a kubeconfig whose current context is this cluster. */
  kubeconfig(): Promise<string>
  /** Stop what this provider started; purge also deletes its state. */
  stop(opts?: { purge?: boolean }): Promise<void>
  /** Where each component's log lives. */
  logs(): Promise<Record<string, string>>
}
