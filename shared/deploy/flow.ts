// The machinery both deploy flows share: the options, DeploySteps, which runs the named steps (timing,
// output for people, the record for --json) and knows where the commits are, and the steps
// that deploy and rollback have in common (Flux lookup, confirmation, reconcile and wait).
import path from 'node:path'
import { NsopsError, ExitCode, errorMessage } from '../core/errors.ts'
import { fluxStatus, fluxRefString } from '../flux/index.ts'
import { shortSha, type Upstream } from '../git/repo.ts'
import { connect, ensureReachable, noAnswerIn, withDeadline, type Kube, type KubeTarget } from '../kube/client.ts'
import { sourceRoot, type NamespaceConfig } from '../config/namespace-config.ts'
import { c, interactive, log as defaultLog, spinner, type Spinner } from '../core/output.ts'
import { repoRoot } from '../core/paths.ts'
import { confirm, type PromptInput } from './confirm.ts'
import {
  dependencyBlocker,
  fluxBlocker,
  kustomizationRef,
  lookupFlux,
  type FluxFound,
  type FluxLookup,
  type PushTarget,
} from './flux-target.ts'
import { Interrupted, throwIfInterrupted } from './interrupt.ts'
import { interrupted, type Phase } from './outcome.ts'
import {
  newReport,
  type DeployReport,
  type DeployStep,
  type StepName,
  type StepStatus,
  type Verdict,
} from './report.ts'
import { rollout, type RolloutResult, type RolloutStage } from './rollout.ts'

export type Logger = Record<'info' | 'step' | 'ok' | 'warn' | 'fail', (msg: string) => void>

export interface DeployOptions {
  ns: NamespaceConfig
  /** the clone Flux reads from; the CLI passes the repository nsops runs from */
  repoDir: string
  /** `rollback`: revert the namespace's last commit instead of deploying changes */
  mode?: 'deploy' | 'rollback'
  /** answer the confirmation with yes */
  yes?: boolean
  /** stop after the diff: nothing committed or pushed */
  dryRun?: boolean
  /** roll back a failed deploy (default true; --no-rollback sets false) */
  rollbackOnFailure?: boolean
  /** --push-only: validate, commit and push, and do not verify (exit 4); nothing needs to apply the push */
  pushOnly?: boolean
  /** --allow-missing-images: push manifests even when an image they name is not in its registry */
  allowMissingImages?: boolean
  /** how long Flux may take to apply and everything to turn healthy; default 5 min */
  timeoutMs?: number
  /** the commit subject; default `deploy(<ns>): …` */
  message?: string
  /** which cluster; default the one `just cluster-up` chose */
  target?: KubeTarget
  /** aborted on Ctrl-C: the flow stops where the state can be told, exit 130 */
  signal?: AbortSignal
  /** where the confirmation is read from; default process.stdin */
  input?: PromptInput
  /** where the question is written; default process.stderr */
  prompt?: NodeJS.WritableStream
  /** where the diff for people goes (not in JSON mode); default process.stdout */
  out?: NodeJS.WritableStream
  /** messages for people; default output.ts's log (stderr, spinners on a TTY) */
  log?: Logger
  /** the diff is data in the report only; nothing is printed to `out` */
  json?: boolean
  /** called as each step ends */
  onStep?: (step: DeployStep) => void
}

export const DEFAULT_TIMEOUT_MS = 5 * 60_000

export interface StepDone<T> {
  value: T
  message: string
  status?: StepStatus
  detail?: Record<string, unknown>
}

export type Cluster = { kube: Kube; offline?: undefined } | { kube?: undefined; offline: string }

/** A folder of the namespace as a repo-relative POSIX path in `repoDir` (configs name them under repoRoot). */
/** A namespace path as a repo-relative path: relative to the clone when it lies inside it. */
export function inRepo(abs: string, repoDir = repoRoot): string {
  const base = path.resolve(abs).startsWith(path.resolve(repoDir) + path.sep) ? repoDir : repoRoot
  return path.relative(base, abs).split(path.sep).join('/')
}

export class DeploySteps {
  readonly report: DeployReport
  readonly nsDir: string
  readonly overlayDir: string
  readonly log: Logger
  phase: Phase = 'before-commit'
  remote = 'the remote'
  /** the branch on the remote that is pushed to */
  remoteBranch?: string
  /** the commits a rollback is undoing, for the summary of an interruption */
  reverting: string[] = []

  constructor(readonly opts: DeployOptions) {
    const mode = opts.mode === 'rollback' ? 'rollback' : opts.dryRun ? 'dry-run' : 'deploy'
    this.report = newReport(opts.ns.name, opts.ns.namespaces.prod, mode)
    // a namespace.ts layout's files live where the repository keeps them (kubernetes/apps/<ns>)
    this.nsDir = inRepo(sourceRoot(opts.ns), opts.repoDir)
    this.overlayDir = inRepo(opts.ns.layout ? sourceRoot(opts.ns) : opts.ns.paths.overlays.prod, opts.repoDir)
    this.log = opts.log ?? defaultLog
  }

  get ns(): NamespaceConfig {
    return this.opts.ns
  }
  get timeoutMs(): number {
    return this.opts.timeoutMs ?? DEFAULT_TIMEOUT_MS
  }

  /** A spinner on a terminal, unless the step writes to the terminal itself (the prompt). */
  private task(text: string, animated: boolean): Spinner {
    if (!this.opts.log && animated) return spinner(text)
    const l = this.log
    l.step(text)
    return {
      text: () => {},
      succeed: (m) => l.ok(m ?? text),
      fail: (m) => l.fail(m ?? text),
      warn: (m) => l.warn(m ?? text),
      stop: () => {},
    }
  }

  record(step: DeployStep): void {
    this.report.steps.push(step)
    this.opts.onStep?.(step)
  }

  async step<T>(
    name: StepName,
    start: string,
    fn: (progress: (text: string) => void) => Promise<StepDone<T>>,
    animated = true,
  ): Promise<T> {
    const t0 = Date.now()
    const task = this.task(start, animated)
    // a spinner shows progress in place; elsewhere (CI logs, tests) each new state is a line
    const lines = this.opts.log ? true : !interactive() && !this.opts.json
    let last = ''
    const progress = (text: string) => {
      task.text(`${start}: ${text}`)
      if (lines && text !== last) this.log.info(`  ${(last = text)}`)
    }
    try {
      const r = await fn(progress)
      const status = r.status ?? 'ok'
      this.record({
        name,
        status,
        message: r.message,
        elapsedMs: Date.now() - t0,
        ...(r.detail ? { detail: r.detail } : {}),
      })
      if (status === 'ok') task.succeed(r.message)
      else task.warn(r.message)
      return r.value
    } catch (err) {
      const message = err instanceof Interrupted ? 'interrupted' : errorMessage(err)
      this.record({ name, status: 'failed', message, elapsedMs: Date.now() - t0 })
      task.fail(`${start}: ${err instanceof Interrupted ? 'interrupted' : 'failed'}`)
      throw err
    }
  }

  skip(name: StepName, message: string): void {
    this.record({ name, status: 'skipped', message, elapsedMs: 0 })
    this.log.warn(message)
  }

  finish(v: Verdict): DeployReport {
    Object.assign(this.report, v)
    return this.report
  }

  async cluster(): Promise<Cluster> {
    try {
      const kube = connect(this.opts.target ?? {})
      await ensureReachable(kube)
      return { kube }
    } catch (err) {
      return { offline: errorMessage(err) }
    }
  }

  /** The Kustomization's state in one line, for summaries; never throws, and never waits long. */
  async fluxLine(kube: Kube | undefined): Promise<string | undefined> {
    if (!kube) return undefined
    try {
      // a line of a summary: an API server that stopped answering does not hold the verdict
      const rows = await fluxStatus(withDeadline(kube, Date.now()), [kustomizationRef(this.ns)])
      this.report.flux = rows
      const r = rows[0]
      if (r.missing) return `${r.kind}/${r.namespace}/${r.name} not found`
      return `${r.kind}/${r.namespace}/${r.name} Ready=${r.ready}${r.reason ? ` ${r.reason}` : ''}${r.message ? `: ${r.message}` : ''}; applied revision ${r.lastAppliedRevision ?? '(none)'}`
    } catch (err) {
      return `could not be read (${errorMessage(err)})`
    }
  }
}

/** A message as a clause inside a sentence: without its final period. */
export function clause(msg: string): string {
  return msg.trim().replace(/\.$/, '')
}

export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`
}

/**
 * The verdict for an error or interruption that ended a flow: before any commit a plain
 * refusal (a non-NsopsError there is a bug and is rethrown); after it, where the commits are.
 */
export function verdictFor(f: DeploySteps, err: unknown): Verdict {
  const git = f.report.git
  const facts = {
    ns: f.ns.name,
    remote: f.remote,
    phase: f.phase,
    pushed: git.pushed,
    reverts: git.reverts,
    ...(f.reverting.length ? { reverting: f.reverting } : {}),
    ...(git.committed ? { committed: git.committed } : {}),
  }
  if (err instanceof Interrupted) return interrupted(facts)
  if (f.phase === 'before-commit') {
    if (err instanceof NsopsError)
      return {
        outcome: 'refused',
        exitCode: err.exitCode,
        summary: err.message,
        ...(err.hint ? { hint: err.hint } : {}),
      }
    throw err // a bug before anything changed: runMain shows it (with the stack under --debug)
  }
  // an error after a commit: say where things are, as for an interruption
  const state = interrupted(facts)
  const during = f.phase.includes('revert') ? 'the rollback' : 'the deploy'
  // 1 only while nothing can have reached the remote; once a push started, 4 (or 3 in a rollback)
  const mayBePushed = f.phase === 'pushing' || f.phase === 'pushed'
  return {
    outcome: during === 'the rollback' ? 'rollback-failed' : mayBePushed ? 'pushed-unverified' : 'failed',
    exitCode:
      during === 'the rollback' ? ExitCode.rollbackFailed : mayBePushed ? ExitCode.pushedUnverified : ExitCode.usage,
    summary: `${during} stopped on an error: ${clause(errorMessage(err))}${err instanceof NsopsError && err.hint ? ` (${clause(err.hint)})` : ''}. State: ${state.summary.replace(/^interrupted: /, '')}`,
    ...(state.hint ? { hint: state.hint } : {}),
  }
}

/**
 * The Kustomization(s) that manage the namespace; stops before any commit when nothing would
 * apply the push (no Flux, nothing manages the namespace, suspended, a dependsOn not Ready, a
 * source on another branch or repository). A dry run and --push-only only warn.
 */
export async function fluxStep(
  f: DeploySteps,
  kube: Kube,
  upstream: Upstream | PushTarget | undefined,
): Promise<FluxLookup> {
  const lenient = f.opts.dryRun || f.opts.pushOnly
  const refuse = (b: { reason: string; hint: string }) =>
    new NsopsError(`${b.reason}. Nothing was committed or pushed.`, { hint: b.hint })
  return f.step<FluxLookup>('flux', 'Finding the Flux Kustomization', async () => {
    const found = await lookupFlux(kube, f.ns, f.opts.repoDir)
    if (!found.found) {
      if (!lenient) throw refuse(found)
      return {
        value: found,
        status: 'warning' as const,
        message: `${found.reason}: the push will not be verified`,
        detail: { found: false, state: found.state, reason: found.reason },
      }
    }
    const blocker = fluxBlocker(found, upstream) ?? (await dependencyBlocker(kube, found))
    if (blocker && !lenient) throw refuse(blocker)
    const ks = found.kustomization
    const detail = {
      found: true,
      kustomization: fluxRefString(ks),
      managers: found.managers.map((m) => ({ kustomization: fluxRefString(m.kustomization), by: m.by, root: m.root })),
      source: found.sourceRef ? fluxRefString(found.sourceRef) : undefined,
    }
    if (blocker) return { value: found, status: 'warning' as const, message: blocker.reason, detail }
    const others =
      found.managers.length > 1
        ? ` (also managed by ${found.managers
            .slice(1)
            .map((m) => fluxRefString(m.kustomization))
            .join(', ')})`
        : ''
    return {
      value: found,
      message: `${fluxRefString(ks)} applies ${String(ks.spec?.path ?? '?')}${found.sourceRef ? ` from ${fluxRefString(found.sourceRef)}` : ''}${others}`,
      detail,
    }
  })
}

export function declined(what: string): Verdict {
  return {
    outcome: 'declined',
    exitCode: ExitCode.usage,
    summary: `not confirmed: nothing was ${what}.`,
    hint: 'run again and answer y, or pass --yes.',
  }
}

/** Shows the plan and asks (or takes --yes); false when the answer is no. */
export async function confirmStep(
  f: DeploySteps,
  title: string,
  plan: string[],
  question: string,
  what: string,
): Promise<boolean> {
  const { opts } = f
  const yes = await f.step(
    'confirm',
    'Confirming',
    async () => {
      f.log.info(`${c.bold(title)} (namespace ${f.ns.namespaces.prod}):\n${plan.map((p) => `  • ${p}`).join('\n')}`)
      const answer = await confirm(question, {
        yes: opts.yes,
        input: opts.input,
        output: opts.prompt,
        signal: opts.signal,
        what,
      })
      return answer
        ? { value: true, message: opts.yes ? 'confirmed by --yes' : 'confirmed', detail: { plan } }
        : { value: false, status: 'warning' as const, message: 'not confirmed', detail: { plan } }
    },
    false,
  )
  throwIfInterrupted(opts.signal)
  return yes
}

/**
 * The cluster's API server did not answer while the wait for Flux ran: the push stands, and
 * nothing could tell whether Flux applied it. Says what the wait was doing and which request
 * got no answer.
 */
function noAnswerResult(
  kube: Kube,
  sha: string,
  at: { stage: RolloutStage; message: string },
  request: string,
  ms: number,
  elapsedMs: number,
): RolloutResult {
  return {
    ok: false,
    sha,
    stage: at.stage,
    noAnswer: true,
    message: `the cluster's API server did not answer within ${Math.round(ms / 1000)} s (context ${kube.context}, server ${kube.server}) while the deploy waited for Flux (${clause(at.message)}; no answer to ${request})`,
    elapsedMs,
  }
}

export async function rolloutStep(
  f: DeploySteps,
  name: 'reconcile' | 'reconcile-revert',
  kube: Kube,
  flux: FluxFound,
  sha: string,
): Promise<RolloutResult> {
  return f.step(name, `Reconciling Flux at ${shortSha(sha)}`, async (progress) => {
    let r: RolloutResult
    const started = Date.now()
    // what the wait was doing, for a verdict that has to say where it stopped
    let at: { stage: RolloutStage; message: string } = { stage: 'source', message: 'reading the Flux objects' }
    // every request of the wait ends by its deadline: an API server that stops answering ends
    // it at --timeout (plus AFTER_DEADLINE_MS for a last read), not when it answers again
    const bounded = withDeadline(kube, started + f.timeoutMs)
    try {
      r = await rollout(bounded, flux, sha, {
        timeoutMs: f.timeoutMs,
        signal: f.opts.signal,
        progress: (stage, m) => {
          at = { stage, message: m }
          progress(m)
        },
        repoDir: f.opts.repoDir,
        remote: f.report.git.remote?.name,
        branch: f.remoteBranch,
        healthRecheck: name === 'reconcile-revert',
      })
    } catch (err) {
      const none = noAnswerIn(err)
      if (err instanceof Interrupted || !(none || err instanceof NsopsError)) throw err
      r = none
        ? noAnswerResult(kube, sha, at, none.what, none.ms, Date.now() - started)
        : { ok: false, sha, stage: 'kustomization', message: errorMessage(err), elapsedMs: Date.now() - started }
    }
    // a wait that ran out of time while the API server had stopped answering (its watches go
    // quiet, they do not fail) is no verdict of Flux's: one quick question tells the two apart
    if (!r.ok && r.timedOut) {
      const probe = await ensureReachable(kube, 3_000).then(
        () => undefined,
        (err: unknown) => noAnswerIn(err),
      )
      if (probe) r = noAnswerResult(kube, sha, at, probe.what, probe.ms, r.elapsedMs)
    }
    const { health, ...rest } = r
    const detail: Record<string, unknown> = { ...rest, ...(health ? { health } : {}) }
    return r.ok
      ? { value: r, message: r.message, detail }
      : { value: r, status: 'warning' as const, message: r.message, detail }
  })
}
