// What a deploy reports: one record per step and a verdict (outcome, exit code, a summary a
// person can act on). The same object is the `--json` output (schema nsops.deploy/v1).
import type { FluxStatusRow } from '../flux/index.ts'
import type { HookReport } from './hooks.ts'

export type StepName =
  | 'preflight'
  | 'build'
  | 'secrets'
  | 'images'
  | 'validate'
  | 'flux'
  | 'diff'
  | 'confirm'
  | 'before-commit'
  | 'revalidate'
  | 'commit'
  | 'charts'
  | 'push'
  | 'reconcile'
  | 'after-deploy'
  | 'revert'
  | 'push-revert'
  | 'reconcile-revert'

export type StepStatus = 'ok' | 'warning' | 'failed' | 'skipped'

export interface DeployStep {
  name: StepName
  status: StepStatus
  /** one line for people */
  message: string
  elapsedMs: number
  /** the step's data: files, commits, rejections, the diff, Flux results */
  detail?: Record<string, unknown>
}

export type DeployOutcome =
  /** pushed, applied by Flux and healthy (exit 0) */
  | 'deployed'
  /** --rollback: the revert is pushed, applied and healthy (exit 0) */
  | 'reverted'
  | 'nothing-to-deploy'
  | 'dry-run'
  /** the prompt was answered no (exit 1) */
  | 'declined'
  /** preflight or validation refused; nothing committed or pushed (exit 1) */
  | 'refused'
  /** pushed, and nothing confirmed it applied: --push-only, or Flux gave no answer (exit 4) */
  | 'pushed-unverified'
  /** pushed and failed, left in place (--no-rollback, exit 4); or failed after a commit that was not pushed (exit 1) */
  | 'failed'
  /** failed and rolled back (exit 2) */
  | 'rolled-back'
  /** failed, and the rollback failed too; or --rollback itself failed (exit 3) */
  | 'rollback-failed'
  | 'interrupted'

export interface Verdict {
  outcome: DeployOutcome
  exitCode: number
  /** what happened and in what state things are, for people */
  summary: string
  /** what to do next */
  hint?: string
}

export interface GitState {
  branch?: string
  /** e.g. origin/main */
  upstream?: string
  /** the remote pushed to: its name and URL (set before anything is pushed) */
  remote?: { name: string; url: string }
  /** the deploy commit this run made, if any */
  committed?: string
  /** the commits this run pushed (newest last) */
  pushed: string[]
  /** revert commits this run made */
  reverts: string[]
  /** whether those reverts reached the remote */
  revertsPushed: boolean
}

export interface DeployReport extends Verdict {
  schema: 'nsops.deploy/v1'
  namespace: string
  /** the Kubernetes namespace overlays/prod deploys into */
  kubernetesNamespace: string
  mode: 'deploy' | 'dry-run' | 'rollback'
  git: GitState
  /** the namespace's Flux objects as last read, on failures */
  flux?: FluxStatusRow[]
  /** the namespace's deploy hooks that ran (beforeCommit, afterDeploy): result and output */
  hooks?: HookReport[]
  steps: DeployStep[]
}

export function newReport(namespace: string, kubernetesNamespace: string, mode: DeployReport['mode']): DeployReport {
  return {
    schema: 'nsops.deploy/v1',
    namespace,
    kubernetesNamespace,
    mode,
    outcome: 'refused',
    exitCode: 1,
    summary: '',
    git: { pushed: [], reverts: [], revertsPushed: false },
    steps: [],
  }
}
