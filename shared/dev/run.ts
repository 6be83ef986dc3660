// Runs dev loops until Ctrl-C / SIGTERM / SIGHUP / an error, and always cleans up: every
// exit path stops forwards, deletes dev-only objects and resumes Flux (research: forgotten
// suspends). Signals are handled by shared/core/signals.ts, installed before start-up and kept
// through the cleanup, so a second signal (wrappers relay one) never cuts it short.
// `--ci` is `tilt ci`: apply once, wait (failing fast), verdict, and leave the stack running.
import { ExitCode, errorMessage } from '../core/errors.ts'
import { within } from '../core/deadline.ts'
import { guardContext } from '../kube/guard.ts'
import type { Kube } from '../kube/client.ts'
import type { NamespaceConfig } from '../config/namespace-config.ts'
import { c, duration, log } from '../core/output.ts'
import { writePrivateFile } from '../core/private-files.ts'
import { Shutdown } from '../core/signals.ts'
import { readSecrets, type Scrubber } from '../logs/scrub.ts'
import { LogFeed } from './log-feed.ts'
import { DevLoop, type DevLoopOptions, type Loop } from './loop.ts'
import { attachView } from './view.ts'
import { eventRow } from '../kube/events.ts'

export interface RunOptions extends DevLoopOptions {
  /** like `tilt ci`: apply once, wait for health, verdict; the stack stays (unless `down`) */
  ci?: boolean
  /** with ci: tear everything down after the verdict */
  down?: boolean
  timeoutMs?: number
  /** with ci: write every resource's status, the events and pods' last log lines here */
  outputSnapshot?: string
  /** the command's shutdown handler, when it installed one before its own start-up */
  shutdown?: Shutdown
  /** the web page (never with ci): the command passes how to start it (web/ sits above dev/) */
  ui?: false | { start: (ctx: UiContext) => Promise<{ url: string; close(): Promise<void> }> }
}

/** What the web page is given to render: the loops' status and the log feed, and how to stop the session. */
export interface UiContext {
  loops: Loop[]
  kube: Kube
  logs?: LogFeed
  stop: () => void
  note: (line: string) => void
}

export async function runDevLoops(
  kube: Kube,
  configs: NamespaceConfig[],
  opts: RunOptions,
  extra: Loop[] = [],
): Promise<number> {
  guardContext(kube.context, kube.server, 'apply dev overlays')
  const loops: Loop[] = []
  const shutdown = opts.shutdown ?? new Shutdown()
  // a forced exit: each loop says what it leaves, and records it in its session
  const leftover = () => {
    const left = loops.map((l) => l.leftover?.()).filter(Boolean)
    return left.length ? `${left.join('\n')}\nRun \`just dev-down\` to finish the cleanup.` : 'Nothing was left behind.'
  }
  shutdown.setLeftover(leftover)
  const onCrash = (err: unknown) => {
    log.fail(`dev loop crashed: ${errorMessage(err)}`)
    shutdown.stop('crash')
  }
  process.on('uncaughtException', onCrash)
  process.on('unhandledRejection', onCrash)
  const stopped = new Promise<void>((resolve) => {
    if (shutdown.stopping) resolve()
    shutdown.signal.addEventListener('abort', () => resolve(), { once: true })
  })
  for (const ns of configs) {
    loops.push(
      new DevLoop(kube, ns, {
        ...opts,
        watch: !opts.ci,
        forwards: opts.ci ? false : opts.forwards,
        // --ci: a dependsOn dependency gets no longer than the verdict's own timeout
        ...(opts.ci ? { dependencyTimeoutMs: opts.timeoutMs ?? 300_000 } : {}),
        signal: shutdown.signal,
      }),
    )
  }
  loops.push(...extra)
  // the pods' logs, published beside the loops' status for the view and the page (not in
  // --ci: its snapshot keeps each pod's last lines instead)
  const logs = opts.ci ? undefined : new LogFeed(kube, loops)
  // the web page serves the same status; it is up before the loops start, like the view
  let ui: { url: string; close(): Promise<void> } | undefined
  if (!opts.ci && opts.ui) {
    ui = await opts.ui
      .start({ loops, kube, logs, stop: () => shutdown.stop('web'), note: (line) => log.info(c.dim(line)) })
      .catch((err) => {
        log.warn(`web page not started: ${errorMessage(err)}`)
        return undefined
      })
    if (ui) log.info(`web: ${ui.url}`)
  }
  // the view subscribes before anything starts: off a terminal every event is a log line
  let view: { stop(): void } | undefined = attachView(
    loops,
    `nsops dev · context ${kube.context} · ${kube.server}${ui ? ` · ${ui.url}` : ''}`,
    logs,
  )
  const endView = () => {
    view?.stop()
    view = undefined
  }
  let code: number = ExitCode.ok
  let keep = false
  try {
    const t0 = performance.now()
    const startAll = (async () => {
      for (const l of loops) {
        if (shutdown.stopping) return
        await l.start()
      }
    })()
    await Promise.race([startAll, stopped])
    if (shutdown.stopping) return shutdown.exitCode
    if (opts.ci) {
      const results = await Promise.race([
        Promise.all(loops.map((l) => l.waitHealthy(opts.timeoutMs ?? 300_000))),
        stopped.then(() => undefined),
      ])
      if (!results) return shutdown.exitCode
      endView()
      keep = !opts.down
      const failedApply = loops.filter((l) => l.status.lastApply?.failed.length || l.status.phase === 'error')
      const bad = results.filter((r) => !r.ok)
      if (opts.outputSnapshot) await writeSnapshot(kube, opts.outputSnapshot, loops)
      if (bad.length === 0 && failedApply.length === 0) {
        log.ok(
          `SUCCESS. All workloads are healthy (${loops.map((l) => l.name).join(', ')}) in ${duration(performance.now() - t0)}.`,
        )
        code = ExitCode.ok
      } else {
        for (const l of failedApply)
          log.fail(`${l.name}: ${l.status.error ?? ''} ${(l.status.lastApply?.failed ?? []).join('; ')}`)
        for (const r of bad) log.fail(r.report)
        code = 1
      }
      return code
    }
    await stopped
    return shutdown.exitCode
  } finally {
    endView()
    const logsStopped = logs?.stop() // nothing reads them from here on; the cleanup deletes pods
    shutdown.stop('done')
    process.off('uncaughtException', onCrash)
    process.off('unhandledRejection', onCrash)
    const notes = await Promise.all(
      loops.map((l) =>
        l
          .stop({ keep, progress: (d) => shutdown.setDoing(d) })
          .catch((err) => [`${l.name}: cleanup failed: ${errorMessage(err)}`]),
      ),
    )
    for (const n of notes.flat()) log.info(c.dim(n))
    // the page and the log streams are local, but a log stream may wait on a cluster that no
    // longer answers: what has not closed by then closes with the process
    await within(Promise.all([ui?.close(), logsStopped]), 10_000, 'closing the page and the log streams').catch(
      () => {},
    )
    shutdown.dispose()
  }
}

/** `--output-snapshot`: what `tilt ci --output-snapshot-on-exit` keeps, as JSON. */
export async function writeSnapshot(kube: Kube, file: string, loops: Loop[]): Promise<void> {
  const namespaces = [...new Set(loops.map((l) => l.status.target))]
  const events = Object.fromEntries(
    await Promise.all(
      namespaces.map(async (ns) => {
        const list = await kube.core.listNamespacedEvent({ namespace: ns }).catch(() => ({ items: [] }))
        return [ns, list.items.map(eventRow)]
      }),
    ),
  )
  // the pods' last lines, with the values of their namespace's Secrets scrubbed (CI uploads
  // this file); when the Secrets cannot be read the lines are withheld, and the file says why
  const scrubbers = new Map<string, Scrubber>()
  const logs: Record<string, string[]> = {}
  for (const l of loops) {
    for (const r of l.status.resources) {
      for (const p of r.pods ?? []) {
        const namespace = r.namespace ?? l.status.target
        // a pod's last lines when the node serves logs (sim answers once it writes them)
        const text = await kube.core
          .readNamespacedPodLog({ name: p.name, namespace, tailLines: 20 })
          .catch(() => undefined)
        if (typeof text !== 'string') continue
        let scrubber = scrubbers.get(namespace)
        if (!scrubber) scrubbers.set(namespace, (scrubber = await readSecrets(kube, namespace)))
        logs[`${namespace}/${p.name}`] = scrubber.unreadable
          ? [`[lines withheld: ${scrubber.unreadable}]`]
          : text
              .split('\n')
              .filter(Boolean)
              .map((line) => scrubber.scrub(line))
      }
    }
  }
  for (const [ns, s] of scrubbers)
    if (s.unreadable) log.warn(`--output-snapshot: ${s.unreadable}; withheld ${ns}'s lines`)
  const snapshot = {
    at: new Date().toISOString(),
    context: kube.context,
    loops: loops.map((l) => l.status),
    events,
    logs,
  }
  writePrivateFile(file, `${JSON.stringify(snapshot, null, 2)}\n`)
  log.info(c.dim(`snapshot written to ${file}`))
}
