// The typed part of "typed zx": what a namespace's tasks and hooks (namespace.ts) receive and
// must return. Tasks are Tilt's local_resource / cmd_button; hooks run at fixed points of the
// dev loop, deploy and dashboard. Only types here: zx itself is imported when a task runs.
import type { Shell } from 'zx'
import type { Kube } from '../kube/client.ts'
import type { Environment, NamespaceConfig } from './namespace-config.ts'

export interface TaskContext {
  /** zx's `$`, in the namespace folder, with KUBECONFIG and the context of the session */
  $: Shell
  /** the namespace's config */
  ns: NamespaceConfig
  /** typed Kubernetes clients for the session's cluster (core, apps, custom, objects) */
  kube: Kube
  /** the environment and its Kubernetes namespace */
  env: Environment
  namespace: string
  /** the dev session's port-forward URLs by app (`forwards.sonarr` → http://127.0.0.1:8989) */
  forwards: Record<string, string>
  /** a line in the task's own log */
  log: (line: string) => void
  /** aborted when the loop stops or the user interrupts */
  signal: AbortSignal
}

export interface TaskSpec {
  description?: string
  /** when it runs by itself: `manual` (just task, the web page), after every `apply`, after an apply caused by a `save` */
  on?: 'manual' | 'apply' | 'save'
  /** tasks that must have succeeded first (run before this one, in order) */
  after?: string[]
  run: (ctx: TaskContext) => Promise<unknown>
}

export interface ApplyInfo {
  trigger: string
  created: number
  configured: number
  unchanged: number
  pruned: number
  failed: string[]
}

export interface DashboardSection {
  title: string
  rows: string[][]
}

export interface Hooks {
  /** dev: before each apply; a failure skips that apply (nothing half-applied) */
  beforeApply?: (ctx: TaskContext) => Promise<unknown>
  /** dev: after each apply */
  afterApply?: (ctx: TaskContext & { applied: ApplyInfo }) => Promise<unknown>
  /**
   * deploy: after validation, before the diff and the commit (not in a dry run); what it
   * changes under the namespace folder is committed too (validated again when it touched
   * base/, overlays/prod/ or components/), a change anywhere else is refused. `files`: what is
   * about to be committed, relative to the namespace folder.
   */
  beforeCommit?: (ctx: TaskContext & { files: string[] }) => Promise<unknown>
  /** deploy: after Flux applied and the workloads are healthy; a failure rolls back like a health failure */
  afterDeploy?: (ctx: TaskContext & { revision: string }) => Promise<unknown>
  /** dashboard: extra sections (cached, with a timeout) */
  dashboardSections?: (ctx: TaskContext) => Promise<DashboardSection[]>
}

export type HookName = keyof Hooks
