// runDeploy as the end-to-end tests call it: no confirmation asked, its log, diff and prompt
// swallowed (the tests assert on the report it returns). A module of its own, beside
// gitops-fixture.ts, so that what only starts a GitOps world (the dev driver) does not load
// the deploy flow.
import { Writable } from 'node:stream'
import { runDeploy } from '../../shared/deploy/run.ts'
import type { DeployOptions } from '../../shared/deploy/flow.ts'
import type { DeployReport } from '../../shared/deploy/report.ts'
import type { GitOpsWorld } from './gitops-fixture.ts'

const sink = () =>
  new Writable({
    write(_c, _e, cb) {
      cb()
    },
  })
const quiet = { info() {}, step() {}, ok() {}, warn() {}, fail() {} }

/** runDeploy with nothing printed. */
export function runDeployQuietly(opts: Omit<DeployOptions, 'log' | 'out' | 'prompt'>): Promise<DeployReport> {
  return runDeploy({ ...opts, log: quiet, out: sink(), prompt: sink() })
}

/** A deploy of the world's namespace from its working clone, confirmed, waiting up to 2 minutes. */
export function deployWorld(w: GitOpsWorld, extra: Partial<DeployOptions> = {}): Promise<DeployReport> {
  return runDeployQuietly({
    ns: w.ns,
    repoDir: w.work,
    yes: true,
    target: { kubeconfig: w.kubeconfig },
    timeoutMs: 120_000,
    ...extra,
  })
}
