// `just ci e2e`: what the seeds' `tilt ci` job does on kind, on the Docker-free sim cluster.
// `cluster-up --flux` (sim with Flux's own controllers), `dev-up --ci` of the changed
// namespaces (fail fast on kstatus Failed; the stack is kept for the checks and whatever the
// job runs after), each namespace's `checks`, and — whatever happened, a failure or Ctrl-C
// included — the artifact directory: the --output-snapshot JSON, every sim component's log,
// events, `kubectl get all` and pod descriptions of each namespace, each check's log.
// cluster-up and dev-up run as the commands a user would type (child processes of this one),
// so CI exercises exactly their code paths and exit codes.
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { errorMessage } from '../core/errors.ts'
import type { CheckSpec, NamespaceConfig } from '../config/namespace-config.ts'
import { repoRoot, stateDir } from '../core/paths.ts'
import { resolveTarget } from '../kube/target.ts'
import { connect } from '../kube/client.ts'
import { runTask } from '../tasks/run.ts'
import { toolPath } from '../tools/provision.ts'

export interface CheckResult {
  namespace: string
  name: string
  ok: boolean
  ms: number
  exitCode?: number
  error?: string
  log: string
}

export interface E2eResult {
  ok: boolean
  /** the step that failed first, when one did */
  failed?: 'cluster-up' | 'dev-up' | 'checks'
  clusterUp?: number
  devUp?: number
  checks: CheckResult[]
  artifacts: string
  /** what the artifact directory could not collect, and why */
  notes: string[]
}

export interface E2eOptions {
  namespaces: NamespaceConfig[]
  /** the artifact directory (created; emptied of a previous run's e2e files) */
  out: string
  /** dev-up --ci's --timeout (Go duration) */
  timeout?: string
  /** each check's limit in ms */
  checkTimeoutMs?: number
  signal?: AbortSignal
  /** every line the children and checks print */
  onLine?: (line: string) => void
}

const nsops = path.join(repoRoot, 'shared', 'bin', 'nsops.ts')

/** Runs a command with its output to `onLine` and to `logFile`; resolves with its exit code. */
function runLogged(
  cmd: string,
  args: string[],
  opts: {
    logFile: string
    env?: NodeJS.ProcessEnv
    cwd?: string
    timeoutMs?: number
    signal?: AbortSignal
    onLine?: (l: string) => void
  },
): Promise<number> {
  fs.mkdirSync(path.dirname(opts.logFile), { recursive: true })
  const log = fs.createWriteStream(opts.logFile)
  return new Promise((resolve) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd ?? repoRoot,
      env: { ...process.env, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(opts.timeoutMs ? { timeout: opts.timeoutMs } : {}),
      ...(opts.signal ? { signal: opts.signal, killSignal: 'SIGINT' as const } : {}),
    })
    let partial = ''
    const onData = (chunk: Buffer) => {
      log.write(chunk)
      const parts = (partial + chunk.toString()).split('\n')
      partial = parts.pop() ?? ''
      for (const p of parts) opts.onLine?.(p)
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    child.on('error', (err) => {
      if (!(err as { name?: string }).name?.includes('Abort')) log.write(`\n${errorMessage(err)}\n`)
    })
    child.on('close', (code, sig) => {
      if (partial) opts.onLine?.(partial)
      log.end(() => resolve(code ?? (sig === 'SIGINT' ? 130 : 1)))
    })
  })
}

export async function runE2e(opts: E2eOptions): Promise<E2eResult> {
  const dir = path.join(opts.out, 'e2e')
  fs.rmSync(dir, { recursive: true, force: true })
  fs.mkdirSync(dir, { recursive: true })
  const result: E2eResult = { ok: false, checks: [], artifacts: dir, notes: [] }
  const line = opts.onLine ?? (() => {})
  try {
    result.clusterUp = await runLogged(nsops, ['cluster-up', '--flux'], {
      logFile: path.join(dir, 'cluster-up.log'),
      signal: opts.signal,
      onLine: line,
    })
    if (result.clusterUp !== 0) {
      result.failed = 'cluster-up'
      return result
    }
    const names = opts.namespaces.map((n) => n.name)
    result.devUp = await runLogged(
      nsops,
      [
        'dev-up',
        ...names,
        '--ci',
        '--timeout',
        opts.timeout ?? '5m',
        '--output-snapshot',
        path.join(dir, 'snapshot.json'),
      ],
      { logFile: path.join(dir, 'dev-up.log'), env: { CI: process.env.CI ?? '1' }, signal: opts.signal, onLine: line },
    )
    if (result.devUp !== 0) {
      result.failed = 'dev-up'
      return result
    }
    for (const ns of opts.namespaces) {
      for (const check of ns.checks) {
        if (opts.signal?.aborted) break
        const r = await runCheck(ns, check, {
          dir,
          timeoutMs: opts.checkTimeoutMs ?? 300_000,
          signal: opts.signal,
          onLine: line,
        })
        result.checks.push(r)
      }
    }
    if (result.checks.some((c) => !c.ok)) {
      result.failed = 'checks'
      return result
    }
    result.ok = true
    return result
  } finally {
    await collectArtifacts(opts.namespaces, dir, result)
    fs.writeFileSync(
      path.join(dir, 'summary.json'),
      `${JSON.stringify({ schema: 'nsops.ci-e2e/v1', ...result }, null, 2)}\n`,
    )
  }
}

async function kubeFor() {
  return connect(resolveTarget())
}

async function runCheck(
  ns: NamespaceConfig,
  check: CheckSpec,
  o: { dir: string; timeoutMs: number; signal?: AbortSignal; onLine: (l: string) => void },
): Promise<CheckResult> {
  const logFile = path.join(o.dir, 'checks', ns.name, `${check.name}.log`)
  const namespace = ns.namespaces.dev
  const t0 = performance.now()
  const label = (l: string) => o.onLine(`[${ns.name}/${check.name}] ${l}`)
  const kube = await kubeFor()
  if (check.task !== undefined) {
    const runs = await runTask(check.task, { kube, ns, env: 'dev', signal: o.signal, onLine: (_t, l) => label(l) })
    fs.mkdirSync(path.dirname(logFile), { recursive: true })
    fs.writeFileSync(
      logFile,
      `${runs.flatMap((r) => [`# task ${r.name}: ${r.ok ? 'ok' : r.error}`, ...r.lines]).join('\n')}\n`,
    )
    const bad = runs.find((r) => !r.ok)
    return {
      namespace: ns.name,
      name: check.name,
      ok: !bad,
      ms: Math.round(performance.now() - t0),
      log: path.relative(o.dir, logFile),
      ...(bad
        ? { error: `task ${bad.name}: ${bad.error}`, ...(bad.exitCode !== undefined ? { exitCode: bad.exitCode } : {}) }
        : {}),
    }
  }
  // kubectl in the check talks to the cluster e2e ran on and no other: a kubeconfig whose
  // current context is that one, outside the artifact directory (it holds credentials)
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-check-'))
  try {
    const kc = JSON.parse(kube.kc.exportConfig()) as Record<string, unknown>
    kc['current-context'] = kube.context
    const kubeconfig = path.join(tmp, 'kubeconfig')
    fs.writeFileSync(kubeconfig, JSON.stringify(kc), { mode: 0o600 })
    const dirs = (
      await Promise.all(
        ['kubectl', 'kustomize', 'helm'].map((t) =>
          toolPath(t, { noDownload: true }).then(
            (p) => path.dirname(p),
            () => undefined,
          ),
        ),
      )
    ).filter(Boolean) as string[]
    const command = check.run.replaceAll('{namespace}', namespace)
    label(`$ ${command}`)
    const code = await runLogged('bash', ['-c', command], {
      logFile,
      cwd: ns.paths.root,
      timeoutMs: o.timeoutMs,
      signal: o.signal,
      onLine: label,
      env: {
        KUBECONFIG: kubeconfig,
        NSOPS_NAMESPACE: namespace,
        NSOPS_CONTEXT: kube.context,
        PATH: [...new Set([...dirs, process.env.PATH ?? ''])].join(path.delimiter),
      },
    })
    const ms = Math.round(performance.now() - t0)
    return {
      namespace: ns.name,
      name: check.name,
      ok: code === 0,
      ms,
      log: path.relative(o.dir, logFile),
      ...(code === 0
        ? {}
        : {
            exitCode: code,
            error:
              ms >= o.timeoutMs ? `timed out after ${Math.round(o.timeoutMs / 1000)}s` : `exited with code ${code}`,
          }),
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true })
  }
}

/** Everything a failed run needs to be understood afterwards; each part on its own, so one failing leaves the rest. */
async function collectArtifacts(namespaces: NamespaceConfig[], dir: string, result: E2eResult): Promise<void> {
  const simLogs = path.join(stateDir(), 'sim', 'logs')
  if (fs.existsSync(simLogs)) fs.cpSync(simLogs, path.join(dir, 'sim-logs'), { recursive: true })
  else
    result.notes.push(
      `no sim component logs: ${path.relative(repoRoot, simLogs)} does not exist (the cluster is not this checkout's sim)`,
    )
  if (result.clusterUp !== 0) return
  let kubectl: string
  try {
    kubectl = await toolPath('kubectl', { noDownload: true })
  } catch (err) {
    result.notes.push(`no kubectl output: ${errorMessage(err)}`)
    return
  }
  const t = resolveTarget()
  // kubectl's --kubeconfig takes one file; a list ($KUBECONFIG's form) goes as KUBECONFIG
  const list = t.kubeconfig?.includes(path.delimiter)
  const target = [
    ...(t.kubeconfig && !list ? ['--kubeconfig', t.kubeconfig] : []),
    ...(t.context ? ['--context', t.context] : []),
  ]
  const env = list ? { ...process.env, KUBECONFIG: t.kubeconfig } : undefined
  const take = async (file: string, args: string[]) => {
    const code = await runLogged(kubectl, [...target, ...args], {
      logFile: path.join(dir, file),
      timeoutMs: 60_000,
      env,
    })
    if (code !== 0) result.notes.push(`kubectl ${args.join(' ')} exited ${code} (see ${file})`)
  }
  await take('cluster/nodes.txt', ['get', 'nodes', '-o', 'wide'])
  await take('cluster/flux.txt', [
    'get',
    'gitrepositories.source.toolkit.fluxcd.io,kustomizations.kustomize.toolkit.fluxcd.io',
    '-A',
  ])
  await Promise.all(
    namespaces.map(async (ns) => {
      const n = ns.namespaces.dev
      await take(`namespaces/${ns.name}/get-all.txt`, ['get', 'all,pvc,configmap,ingress', '-n', n, '-o', 'wide'])
      await take(`namespaces/${ns.name}/events.txt`, ['get', 'events', '-n', n, '--sort-by=.lastTimestamp'])
      await take(`namespaces/${ns.name}/describe-pods.txt`, ['describe', 'pods', '-n', n])
    }),
  )
}

/** The step's summary line. */
export function e2eSummary(r: E2eResult, namespaces: string[]): string {
  const checks = r.checks.length
    ? `; checks ${r.checks.filter((c) => c.ok).length}/${r.checks.length} passed${
        r.checks.some((c) => !c.ok)
          ? ` (failed: ${r.checks
              .filter((c) => !c.ok)
              .map((c) => `${c.namespace}/${c.name}`)
              .join(', ')})`
          : ''
      }`
    : ''
  const what = r.ok
    ? `${namespaces.join(', ')} healthy on the cluster${checks}`
    : r.failed === 'cluster-up'
      ? `the cluster did not start (exit ${r.clusterUp})`
      : r.failed === 'dev-up'
        ? `dev-up --ci of ${namespaces.join(', ')} failed (exit ${r.devUp})`
        : `${namespaces.join(', ')} healthy, but checks failed${checks}`
  return `${what}; artifacts in ${path.relative(process.cwd(), r.artifacts) || '.'}`
}
