// Runs a namespace's typed zx tasks and hooks (namespace.ts). zx is imported here, only when
// one runs (it costs ~80 ms to import, and most commands never need it). Each run gets `$` in
// the namespace folder with a kubeconfig pinned to the session's context (so `kubectl` inside
// a task can never reach another cluster), the session's forward URLs, and its own log: the
// commands it ran and their output, kept in .nsops/tasks/<ns>/<task>.log.
import { randomUUID } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { type LogEntry, $ } from 'zx'
import { NsopsError, errorMessage } from '../core/errors.ts'
import type { Kube } from '../kube/client.ts'
import type { Environment, NamespaceConfig } from '../config/namespace-config.ts'
import { stateDir } from '../core/paths.ts'
import { writePrivateFile } from '../core/private-files.ts'
import { sanitizeLine } from '../logs/sanitize.ts'
import type { HookName, Hooks, TaskContext } from '../config/task-types.ts'
import { toolPath } from '../tools/provision.ts'

export interface TaskRun {
  name: string
  ok: boolean
  ms: number
  at: string
  /** the failing command's exit code, when a command failed */
  exitCode?: number
  error?: string
  /** the task's log lines (commands with `$ `, then their output) */
  lines: string[]
}

export interface TaskRunOptions {
  kube: Kube
  ns: NamespaceConfig
  env: Environment
  forwards?: Record<string, string>
  signal?: AbortSignal
  /** each log line as it comes (the view, the terminal) */
  onLine?: (task: string, line: string) => void
}

const logDir = (ns: string) => path.join(stateDir(), 'tasks', ns)

/** A kubeconfig whose current context is the session's: what `kubectl` in a task talks to. */
function pinnedKubeconfig(kube: Kube, ns: string): string {
  const kc = JSON.parse(kube.kc.exportConfig()) as { 'current-context'?: string }
  kc['current-context'] = kube.context
  // one per run: tasks run side by side (an apply's task while one runs by hand)
  const file = path.join(logDir(ns), `kubeconfig.${process.pid}.${randomUUID().slice(0, 8)}`)
  writePrivateFile(file, JSON.stringify(kc))
  return file
}

async function withContext<T>(
  opts: TaskRunOptions,
  label: string,
  fn: (ctx: TaskContext) => Promise<T>,
): Promise<{ value?: T; run: TaskRun }> {
  const lines: string[] = []
  const line = (raw: string) => {
    // a task's output is shown on the terminal and the page: no control sequence but colours
    const l = sanitizeLine(raw)
    lines.push(l)
    opts.onLine?.(label, l)
  }
  const partial = new Map<string, string>()
  const sink = (entry: LogEntry) => {
    if (entry.kind === 'cmd') line(`$ ${entry.cmd}`)
    else if (entry.kind === 'stdout' || entry.kind === 'stderr') {
      // output arrives in chunks: only whole lines go to the log
      const text = (partial.get(entry.id) ?? '') + entry.data.toString()
      const parts = text.split('\n')
      partial.set(entry.id, parts.pop() ?? '')
      for (const p of parts) line(p)
    } else if (entry.kind === 'end') {
      const rest = partial.get(entry.id)
      if (rest) line(rest)
      partial.delete(entry.id)
    }
  }
  const kubeconfig = pinnedKubeconfig(opts.kube, opts.ns.name)
  // the pinned kubectl, helm and kustomize are on the task's PATH, as in the dev loop itself
  const toolDirs = (
    await Promise.all(
      ['kubectl', 'kustomize', 'helm'].map((t) =>
        toolPath(t, { noDownload: true }).then(
          (p) => path.dirname(p),
          () => undefined,
        ),
      ),
    )
  ).filter((d): d is string => Boolean(d))
  const namespace = opts.ns.namespaces[opts.env]
  const shell = $({
    cwd: opts.ns.paths.root,
    verbose: true,
    log: sink,
    ...(opts.signal ? { signal: opts.signal } : {}),
    env: {
      ...process.env,
      KUBECONFIG: kubeconfig,
      NSOPS_NAMESPACE: namespace,
      NSOPS_CONTEXT: opts.kube.context,
      PATH: [...new Set([...toolDirs, process.env.PATH ?? ''])].join(path.delimiter),
    },
  })
  const ctx: TaskContext = {
    $: shell,
    ns: opts.ns,
    kube: opts.kube,
    env: opts.env,
    namespace,
    forwards: { ...opts.forwards },
    log: line,
    signal: opts.signal ?? new AbortController().signal,
  }
  const t0 = performance.now()
  const at = new Date().toISOString()
  try {
    const value = await fn(ctx)
    return { value, run: { name: label, ok: true, ms: Math.round(performance.now() - t0), at, lines } }
  } catch (err) {
    // zx rejects with the ProcessOutput of the failed command: its exit code says what failed
    const exitCode =
      typeof (err as { exitCode?: unknown }).exitCode === 'number' ? (err as { exitCode: number }).exitCode : undefined
    const error = exitCode !== undefined ? `a command exited with code ${exitCode}` : errorMessage(err)
    line(`✖ ${error}`)
    return {
      run: {
        name: label,
        ok: false,
        ms: Math.round(performance.now() - t0),
        at,
        lines,
        error,
        ...(exitCode !== undefined ? { exitCode } : {}),
      },
    }
  } finally {
    fs.rmSync(kubeconfig, { force: true })
    // a task's output may hold what it read: only its owner reads the log
    writePrivateFile(path.join(logDir(opts.ns.name), `${label}.log`), `${lines.join('\n')}\n`)
  }
}

/** Runs a task after the tasks it names in `after` (each once, in order); stops at the first failure. */
export async function runTask(name: string, opts: TaskRunOptions): Promise<TaskRun[]> {
  const tasks = opts.ns.tasks
  if (!tasks[name]) {
    const known = Object.keys(tasks)
    throw new NsopsError(`${opts.ns.name} has no task "${name}".`, {
      hint: known.length
        ? `Its tasks: ${known.join(', ')}.`
        : `Define one under \`tasks\` in namespaces/${opts.ns.name}/namespace.ts.`,
    })
  }
  const order: string[] = []
  const visit = (n: string, path: string[]) => {
    if (path.includes(n))
      throw new NsopsError(
        `the tasks of ${opts.ns.name} depend on each other in a circle: ${[...path, n].join(' → ')}.`,
        { hint: 'Fix `after` in namespace.ts.' },
      )
    for (const dep of tasks[n].after ?? []) visit(dep, [...path, n])
    if (!order.includes(n)) order.push(n)
  }
  visit(name, [])
  const runs: TaskRun[] = []
  for (const n of order) {
    const { run } = await withContext(opts, n, (ctx) => tasks[n].run(ctx))
    runs.push(run)
    if (!run.ok) break
  }
  return runs
}

/** Runs a hook if the namespace has one; undefined when it has none. */
export async function runHook<K extends HookName>(
  hook: K,
  extra: Omit<Parameters<NonNullable<Hooks[K]>>[0], keyof TaskContext>,
  opts: TaskRunOptions,
): Promise<{ run: TaskRun; value?: Awaited<ReturnType<NonNullable<Hooks[K]>>> } | undefined> {
  const fn = opts.ns.hooks[hook] as ((ctx: TaskContext) => Promise<unknown>) | undefined
  if (!fn) return undefined
  const r = await withContext(opts, `hook-${hook}`, (ctx) => fn({ ...ctx, ...extra }))
  return r as { run: TaskRun; value?: Awaited<ReturnType<NonNullable<Hooks[K]>>> }
}

/** A failed hook as the error that stops what it guards, with its name and its last output. */
export function hookFailure(hook: HookName, run: TaskRun, stopped: string, ns: string): NsopsError {
  const tail = run.lines
    .slice(-8)
    .map((l) => `  ${l}`)
    .join('\n')
  return new NsopsError(`the ${hook} hook of ${ns} failed (${run.error}), so ${stopped}.${tail ? `\n${tail}` : ''}`, {
    hint: `Its whole output is in .nsops/tasks/${ns}/hook-${hook}.log; fix the hook in namespaces/${ns}/namespace.ts and run again.`,
  })
}
