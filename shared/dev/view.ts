// The dev loop's views. Both only render the loops' published status (one source of truth).
// On a TTY: one block per namespace with one row per app (health, ready, restarts, forward),
// redrawn in place on the alternate screen. Elsewhere (CI, `| tee`): one line per event —
// applied, a resource turning healthy or unhealthy, a forward up or down, the Flux hold — so
// a log tells the whole story.
// Logs (the session's LogFeed): on a TTY the `l` key switches from the status to the logs of
// all apps, then of one app at a time, then back (`s` goes straight back); off a TTY every
// line is printed as it comes, prefixed with its app. The `b` key shows an image's last build
// (its output; a failed one's compiler errors), one image after the other.
import { c, healthMark, interactive, log, table } from '../core/output.ts'
import type { FeedLine, LogFeed, LogLevel } from './log-feed.ts'
import type { DevStatus, LastApply, Loop } from './loop.ts'
import { appRows, worst } from './app-rows.ts'
import { releaseLine } from '../health/flux-controllers.ts'
import { IN_PLACE } from '../config/namespace-config.ts'
import { readKeys } from '../core/raw-keys.ts'

/** The key that runs a task in the view: 1–9 over every loop's tasks in order. */
function keyOf(all: DevStatus[], s: DevStatus, task: string): string {
  const i = all.flatMap((x) => (x.tasks ?? []).map((t) => `${x.namespace}/${t.name}`)).indexOf(`${s.namespace}/${task}`)
  return i >= 0 && i < 9 ? String(i + 1) : '-'
}

function taskMark(t: NonNullable<DevStatus['tasks']>[number]): string {
  if (t.state === 'running') return c.yellow('… running')
  if (t.state === 'ok') return c.green(`✓ ${t.ms} ms`)
  if (t.state === 'failed') return c.red(`✗ ${t.error ?? 'failed'}`)
  return c.dim(t.on === 'manual' ? 'manual' : `on ${t.on}`)
}

type ImageRow = NonNullable<DevStatus['images']>[number]

function imageLine(i: ImageRow): string {
  const took = i.ms === undefined ? '' : ` ${i.ms} ms${i.hostMs === undefined ? '' : ` (host build ${i.hostMs} ms)`}`
  const size = i.size ? ` · ${(i.size / 1e6).toFixed(1)} MB` : ''
  const digest = i.digest ? ` · ${i.digest.slice(0, 19)}` : ''
  const queued = i.pending ? c.yellow(' · another build queued') : ''
  if (i.state === 'building') return `${c.yellow('… building')} ${c.dim(`${i.trigger ?? ''}`)}${queued}`
  if (i.state === 'failed')
    return `${c.red(`✗ ${i.error ?? 'failed'}`)}${i.digest ? c.dim(` · still runs ${i.digest.slice(0, 19)}`) : ''}${queued}`
  if (i.state === 'ok') return `${c.green('✓')} ${c.dim(`${i.builder}${took}${digest}${size}`)}`
  if (i.state === 'syncing') return `${c.yellow('… syncing')} ${c.dim(i.trigger ?? '')}`
  if (i.state === 'synced')
    return `${c.green('✓ synced')} ${c.dim(`${i.lastSync?.files ?? 0} file(s) into ${i.lastSync?.pods ?? 0} pod(s) in ${i.lastSync?.ms ?? 0} ms${digest}`)}`
  return c.dim(i.builder)
}

function applyLine(la: LastApply): string {
  return `${la.trigger}; ${la.created} created, ${la.configured} changed, ${la.unchanged} unchanged, ${la.pruned} pruned in ${la.ms} ms`
}

export function renderDevStatus(all: DevStatus[], header: string): string {
  const out = [c.bold(header)]
  for (const s of all) {
    const la = s.lastApply
    out.push(
      '',
      `${c.bold().cyan(s.namespace)} → ${s.target}${s.inPlace ? c.yellow(` (${IN_PLACE})`) : ''}  ${c.dim(s.phase)}` +
        (la ? c.dim(`  last apply ${la.at.slice(11, 19)} (${applyLine(la)})`) : ''),
    )
    out.push(c.dim(`  flux ${s.flux}`))
    for (const w of s.fluxWarnings ?? []) out.push(c.yellow(`  ⚠ ${w}`))
    if (s.error) out.push(c.red(`  error: ${s.error}`))
    for (const f of la?.failed ?? []) out.push(c.red(`  rejected: ${f}`))
    const { apps, other } = appRows(s)
    const rows = apps.map((a) => [
      a.app,
      healthMark[a.status](a.status),
      a.ready,
      a.restarts ? c.yellow(String(a.restarts)) : '0',
      a.forward
        ? a.forwardStatus === 'active'
          ? c.cyan(a.forward)
          : a.forwardStatus === 'failing' || a.forwardStatus === 'error'
            ? c.red(`✗ ${a.forward}`)
            : c.yellow(a.forward)
        : '',
      [a.release && c.cyan(a.release), a.message && c.dim(a.message)].filter(Boolean).join(' '),
    ])
    // objects that belong to no app: one summary row, plus a row for each one that is not healthy
    const ok = other.filter((o) => o.status === 'Current').length
    if (other.length)
      rows.push([
        c.dim('other'),
        healthMark[worst(other.map((o) => o.status))](`${other.length} object${other.length === 1 ? '' : 's'}`),
        c.dim(`${ok} current`),
        '',
        '',
        '',
      ])
    for (const o of other.filter((x) => (x.status !== 'Current' && x.kind !== 'ConfigMap') || x.release))
      rows.push([
        c.dim(`  ${o.kind}/${o.name}`),
        healthMark[o.status](o.status),
        '',
        '',
        '',
        [o.release && c.cyan(releaseLine(o.release)), o.status !== 'Current' && c.dim(o.message)]
          .filter(Boolean)
          .join(' '),
      ])
    if (rows.length)
      out.push(
        table([[c.dim('APP'), c.dim('HEALTH'), c.dim('READY'), c.dim('RESTARTS'), c.dim('FORWARD'), ''], ...rows]),
      )
    for (const i of s.images ?? []) {
      out.push(`  image ${c.bold(i.name)} ${imageLine(i)}`)
      // a failed build shows its output where the user looks (the previous digest keeps running)
      if (i.state === 'failed') for (const l of i.log.slice(-8)) out.push(c.dim(`    │ ${l}`))
    }
    const tasks = (s.tasks ?? []).map((t) => `${c.bold(`[${keyOf(all, s, t.name)}]`)} ${t.name} ${taskMark(t)}`)
    if (tasks.length) out.push(`  tasks: ${tasks.join('  ')}`)
  }
  return out.join('\n')
}

/** Off a terminal: one log line per event of each loop. */
function logEvents(l: Loop): () => void {
  const health = new Map<string, string>()
  const releases = new Map<string, string>()
  const forwards = new Map<string, string>()
  let flux = ''
  let lastError: string | undefined
  let phase = ''
  let watching = false
  const tasks = new Map<string, string>()
  const images = new Map<string, string>()
  const onTaskLine = (task: string, line: string) => log.info(`${l.name}/${task}: ${line}`)
  const onApplied = (a: LastApply) =>
    log.info(`${l.name}: applied (${applyLine(a)})${a.failed.length ? `; rejected: ${a.failed.join('; ')}` : ''}`)
  const onStatus = (s: DevStatus) => {
    if (s.flux !== flux && s.flux !== 'checking') {
      if (!flux && s.inPlace) log.info(`${l.name}: ${IN_PLACE}, in ${s.target}`)
      flux = s.flux
      log.info(`${l.name}: Flux ${s.flux}`)
      for (const w of s.fluxWarnings ?? []) log.warn(`${l.name}: ${w}`)
    }
    if (s.error && s.error !== lastError) log.warn(`${l.name}: ${s.error}`)
    lastError = s.error
    for (const r of s.resources) {
      const key = `${r.kind}/${r.name}`
      // a HelmRelease: each new revision or result is an event (a values save → upgrade → r+1)
      if (r.release) {
        const line = releaseLine(r.release)
        if (releases.get(key) !== line) {
          releases.set(key, line)
          const say = `${l.name}: ${key} ${line}`
          if (r.release.result === 'failed') log.fail(say)
          else log.info(say)
        }
      }
      if (health.get(key) === r.status) continue
      const first = !health.has(key)
      health.set(key, r.status)
      if (first && r.status === 'Unknown') continue
      const line = `${l.name}: ${key} ${r.status}${r.status === 'Current' ? '' : `: ${r.reason ? `${r.reason}: ` : ''}${r.message}`}`
      if (r.status === 'Failed' || r.status === 'NotFound') log.fail(line)
      else if (r.status === 'Current') log.ok(line)
      else log.info(line)
    }
    for (const f of s.forwards) {
      const state = `${f.status}${f.pod ? ` → ${f.pod}` : ''}`
      if (forwards.get(f.app) === state) continue
      forwards.set(f.app, state)
      log.info(
        `${l.name}: forward ${f.app} ${f.url} ${f.status}${f.pod ? ` (pod ${f.pod})` : ''}${f.error ? `: ${f.error}` : ''}`,
      )
    }
    for (const i of s.images ?? []) {
      const key = `${i.state} ${i.digest ?? ''} ${i.at ?? ''}`
      if (images.get(i.name) === key) continue
      images.set(i.name, key)
      if (i.state === 'building') log.info(`${l.name}: image ${i.name} building (${i.trigger ?? ''})`)
      else if (i.state === 'ok') log.ok(`${l.name}: image ${i.name} ${imageLine(i)} → ${i.ref}`)
      else if (i.state === 'failed') {
        log.fail(`${l.name}: image ${i.name}: ${i.error}`)
        for (const line of i.log.slice(-30)) log.info(`${l.name}/${i.name}: ${line}`)
      }
    }
    for (const t of s.tasks ?? []) {
      if (tasks.get(t.name) === t.state) continue
      tasks.set(t.name, t.state)
      if (t.state === 'ok') log.ok(`${l.name}: task ${t.name} succeeded in ${t.ms} ms`)
      else if (t.state === 'failed') log.fail(`${l.name}: task ${t.name} failed: ${t.error}`)
      else if (t.state === 'running') log.info(`${l.name}: task ${t.name} running`)
    }
    if (s.phase !== phase && (s.phase === 'stopping' || s.phase === 'stopped')) log.info(`${l.name}: ${s.phase}`)
    // once: from here on a save is sure to be seen (what a script driving the loop waits for)
    if (s.phase === 'watching' && !watching) {
      watching = true
      log.info(`${l.name}: watching for saves`)
    }
    phase = s.phase
  }
  l.on('applied', onApplied)
  l.on('status', onStatus)
  l.on('taskLine', onTaskLine)
  return () => {
    l.off('applied', onApplied)
    l.off('status', onStatus)
    l.off('taskLine', onTaskLine)
  }
}

/** `[app]` (`[loop/app]` when the session has several loops), then pod/container when the app has several. */
export function logPrefix(l: FeedLine, manyLoops: boolean): string {
  return `[${manyLoops ? `${l.loop}/` : ''}${l.app}${l.source ? ` ${l.source}` : ''}]`
}

const levelColour: Record<LogLevel, (s: string) => string> = {
  error: (s) => c.red(s),
  warn: (s) => c.yellow(s),
  info: (s) => s,
  debug: (s) => c.dim(s),
}

/** Which logs the terminal shows: all apps, or one. */
export interface LogsMode {
  loop?: string
  app?: string
}

/** The logs screen: the newest lines that fit, one per row, cut to the width. */
export function renderLogs(
  lines: readonly FeedLine[],
  mode: LogsMode,
  manyLoops: boolean,
  rows: number,
  columns: number,
): string[] {
  const shown = lines
    .filter((l) => (!mode.loop || l.loop === mode.loop) && (!mode.app || l.app === mode.app))
    .slice(-Math.max(1, rows))
  // the app column only when more than one app is shown
  const width = mode.app
    ? 0
    : Math.min(24, Math.max(0, ...shown.map((l) => (manyLoops ? l.loop.length + 1 : 0) + l.app.length)))
  return shown.map((l) => {
    const app = mode.app ? '' : `${c.cyan((manyLoops ? `${l.loop}/${l.app}` : l.app).padEnd(width))} │ `
    const text = `${l.source ? `${c.dim(l.source)} ` : ''}${l.level ? levelColour[l.level](l.line) : l.line}`
    const visible = (mode.app ? 0 : width + 3) + (l.source ? l.source.length + 1 : 0) + l.line.length
    // cut long lines (colour codes do not count; a cut line loses its colour, which is fine)
    return visible > columns
      ? `${app}${`${l.source ? `${l.source} ` : ''}${l.line}`.slice(0, Math.max(10, columns - (mode.app ? 0 : width + 3) - 1))}…`
      : `${app}${text}`
  })
}

/** Which image's last build the terminal shows (the `b` key). */
export interface BuildLogMode {
  loop: string
  image: string
}

/** The build-log screen: the image's state in one line, then the newest lines of its last build that fit. */
export function renderBuildLog(
  all: DevStatus[],
  which: BuildLogMode,
  manyLoops: boolean,
  rows: number,
  columns: number,
): string[] {
  const i = all.find((s) => s.namespace === which.loop)?.images?.find((x) => x.name === which.image)
  const name = `${manyLoops ? `${which.loop}/` : ''}${which.image}`
  if (!i) return [`${c.bold().cyan('build log')} · ${name} ${c.dim('(no such image)')}`]
  const when = i.at ? c.dim(` · started ${i.at.slice(11, 19)}`) : ''
  const body = i.log
    .slice(-Math.max(1, rows - 1))
    .map((l) => (l.length > columns - 2 ? `${l.slice(0, columns - 3)}…` : l))
  return [
    `${c.bold().cyan('build log')} · ${name} ${imageLine(i)}${when}${body.length ? '' : c.dim('  (no build yet)')}`,
    ...body.map((l) => (i.state === 'failed' ? c.red(l) : l)),
  ]
}

/** Off a terminal: each log line as it comes, prefixed, and what keeps the feed from reading. */
function printLogLines(feed: LogFeed, manyLoops: boolean): () => void {
  const onLine = (l: FeedLine) => log.info(`${c.cyan(logPrefix(l, manyLoops))} ${l.line}`)
  const onProblem = (message: string) => log.warn(`logs: ${message}`)
  feed.on('line', onLine)
  feed.on('problem', onProblem)
  return () => {
    feed.off('line', onLine)
    feed.off('problem', onProblem)
  }
}

/** Draws the view for these loops until stop() is called. Attach it before the loops start. */
export function attachView(loops: Loop[], header: string, logs?: LogFeed): { stop(): void } {
  const manyLoops = loops.length > 1
  if (!interactive()) {
    const offs = [...loops.map(logEvents), ...(logs ? [printLogLines(logs, manyLoops)] : [])]
    return {
      stop() {
        for (const off of offs) off()
      },
    }
  }
  const out = process.stderr
  let timer: NodeJS.Timeout | undefined
  let stopped = false
  // undefined: the status; else the logs of every app or of one
  let mode: LogsMode | undefined
  /** `l` steps through: status → all apps → each app of each loop → status. */
  const nextMode = (): LogsMode | undefined => {
    const apps = loops.flatMap((l) => (l.status.apps ?? []).map((app) => ({ loop: l.name, app })))
    if (!mode) return {}
    const i = mode.app ? apps.findIndex((a) => a.loop === mode!.loop && a.app === mode!.app) : -1
    return i + 1 < apps.length ? apps[i + 1] : undefined
  }
  // the `b` key: the last build of one image; steps through the images, then back to the status
  let buildLog: BuildLogMode | undefined
  const nextBuildLog = (): BuildLogMode | undefined => {
    const images = loops.flatMap((l) => (l.status.images ?? []).map((i) => ({ loop: l.name, image: i.name })))
    const i = buildLog ? images.findIndex((x) => x.loop === buildLog!.loop && x.image === buildLog!.image) : -1
    return images[i + 1]
  }
  const hasImages = () => loops.some((l) => (l.status.images ?? []).length > 0)
  const draw = () => {
    if (stopped) return
    const screen = mode || buildLog
    const help = c.dim(
      `${keys.active ? `${screen ? `${mode ? 'l next app' : 'b next image'} · s status · ` : 'r re-applies · 1–9 run a task · '}${logs && !screen ? 'l logs · ' : ''}${hasImages() && !screen ? 'b build log · ' : ''}` : ''}Ctrl-C stops the loop, deletes dev-only objects and resumes what it holds in Flux`,
    )
    let lines: string[]
    if (buildLog) {
      lines = [
        c.bold(header),
        ...renderBuildLog(
          loops.map((l) => l.status),
          buildLog,
          manyLoops,
          (out.rows ?? 40) - 3,
          out.columns ?? 120,
        ),
      ]
    } else if (mode && logs) {
      const which = mode.app ? `${manyLoops ? `${mode.loop}/` : ''}${mode.app}` : 'all apps'
      // a log stream that fails (the node's kubelet does not answer …) is said, not shown as silence
      const problem = logs.currentProblem()
      const rows = (out.rows ?? 40) - (problem ? 4 : 3)
      const body = renderLogs(logs.lines(), mode, manyLoops, rows, out.columns ?? 120)
      lines = [
        c.bold(header),
        `${c.bold().cyan('logs')} · ${which}${body.length || problem ? '' : c.dim('  (no lines yet)')}`,
        ...(problem ? [c.red(`⚠ cannot reach the logs (since ${problem.at.slice(11, 19)}): ${problem.message}`)] : []),
        ...body,
      ]
    } else {
      lines = renderDevStatus(
        loops.map((l) => l.status),
        header,
      ).split('\n')
    }
    out.write(`\x1b[H${lines.map((x) => `${x}\x1b[K`).join('\n')}\n${help}\x1b[K\x1b[J`)
  }
  const schedule = () => {
    if (!timer)
      timer = setTimeout(() => {
        timer = undefined
        draw()
      }, 100)
  }
  // keys, read raw (Ctrl-C is sent on to the process group as the terminal would)
  const onKey = (ch: string) => {
    if (logs && ch === 'l') {
      buildLog = undefined
      mode = nextMode()
      draw()
      return
    }
    if (ch === 'b' && hasImages()) {
      mode = undefined
      buildLog = nextBuildLog()
      draw()
      return
    }
    if ((ch === 's' || ch === '\x1b') && (mode || buildLog)) {
      mode = undefined
      buildLog = undefined
      draw()
      return
    }
    if (ch === 'r')
      for (const l of loops) void (l as Loop & { apply?: (t: string) => Promise<void> }).apply?.('key: re-apply')
    if (ch >= '1' && ch <= '9') {
      const all = loops.flatMap((l) => (l.status.tasks ?? []).map((t) => ({ l, t: t.name })))
      const pick = all[Number(ch) - 1]
      if (pick) void (pick.l as Loop & { runTask?: (n: string) => Promise<boolean> }).runTask?.(pick.t)
    }
  }
  const keys = readKeys(onKey)
  out.write('\x1b[?1049h\x1b[?25l')
  // the terminal is restored however the process ends (a crash, a forced exit)
  const restore = () => {
    try {
      out.write('\x1b[?25h\x1b[?1049l')
    } catch {
      /* closed */
    }
    keys.stop()
  }
  process.once('exit', restore)
  for (const l of loops) l.on('status', schedule)
  // a log line redraws only while the logs are shown
  const onLine = () => {
    if (mode) schedule()
  }
  logs?.on('line', onLine)
  logs?.on('problem', onLine)
  draw()
  return {
    stop() {
      if (stopped) return
      stopped = true
      clearTimeout(timer)
      for (const l of loops) l.off('status', schedule)
      logs?.off('line', onLine)
      logs?.off('problem', onLine)
      process.off('exit', restore)
      restore()
    },
  }
}
