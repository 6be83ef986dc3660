// The dev session's logs, as one more publisher beside the loops (Tilt's log store): one
// LogFollower per namespace the loops apply into, every line keyed to its app by the pod's
// `app.kubernetes.io/name` label, kept in a bounded ring per app and published as events.
// The terminal view, the off-TTY log and the web page only render what this publishes; none
// of them reads a log. Lines carry a sequence number so a view can take a checkpoint (what
// is buffered now) and then only the lines after it, as Tilt's log checkpoints do.
//
// Secret values never leave this module: the values of the Secrets in the followed
// namespaces (the dev overlay's own, which the loop applied) are replaced by [redacted] in
// every line before it is buffered or published, as Tilt scrubs the Secrets it deployed
// (shared/logs/scrub.ts: also their base64 and JSON-escaped forms). When the Secrets cannot
// be read, the lines are withheld (their text replaced by a note saying why), never shown
// unscrubbed, and the feed reports the problem.
import { EventEmitter } from 'node:events'
import type { Kube } from '../kube/client.ts'
import { LogFollower, type LogLine } from '../logs/follower.ts'
import { Scrubber, watchSecrets } from '../logs/scrub.ts'

export type LogLevel = 'error' | 'warn' | 'info' | 'debug'

export interface FeedLine {
  /** increases by one for every line the feed publishes (a checkpoint is the last one seen) */
  seq: number
  /** the dev loop (namespace config) the line's namespace belongs to */
  loop: string
  /** the pod's app label; `other` for pods that carry none */
  app: string
  pod: string
  container: string
  /** RFC3339 time the runtime stamped on the line */
  ts: string
  line: string
  level?: LogLevel
  /** `pod/container`, set when the app runs more than one container: only then does a reader need it */
  source?: string
}

export interface LogCheckpoint {
  /** the last line's seq (0 for none): lines after it come as events */
  seq: number
  lines: FeedLine[]
  /** why the logs cannot be read right now (LogFeed.currentProblem) */
  problem?: { message: string; at: string }
}

type Events = {
  line: [FeedLine]
  /** a follower could not read something; it keeps trying */
  problem: [string]
}

/** What the feed needs of a loop: its name and the namespace it applies into. */
export interface LoggedLoop {
  readonly name: string
  readonly status: { readonly target: string }
}

const LEVEL_WORD = /\b(FATAL|PANIC|CRIT(?:ICAL)?|ERROR|ERR|WARN(?:ING)?|INFO|DEBUG|TRACE)\b/
const LEVEL_KEY = /\b(?:level|lvl|severity)"?\s*[=:]\s*"?([a-z]+)/i
const levels: Record<string, LogLevel> = {
  fatal: 'error',
  panic: 'error',
  crit: 'error',
  critical: 'error',
  error: 'error',
  err: 'error',
  warn: 'warn',
  warning: 'warn',
  info: 'info',
  debug: 'debug',
  trace: 'debug',
}

/**
 * The level a line states, if it states one: an upper-case level word (`ERROR`, `WARN`…) or a
 * `level=…` / `"level":"…"` field. A lower-case "error" in prose is not a level.
 */
export function detectLevel(text: string): LogLevel | undefined {
  const head = text.slice(0, 300)
  const key = LEVEL_KEY.exec(head)?.[1]?.toLowerCase()
  if (key && levels[key]) return levels[key]
  const word = LEVEL_WORD.exec(head)?.[1]?.toLowerCase()
  return word ? levels[word] : undefined
}

export interface LogFeedOptions {
  /** lines kept per app (default 1,000) */
  perApp?: number
}

export class LogFeed extends EventEmitter<Events> {
  private readonly rings = new Map<string, FeedLine[]>() // `${loop}/${app}` → its last lines
  private readonly sources = new Map<string, Set<string>>() // `${loop}/${app}` → followed pod/containers
  private readonly scrubbers = new Map<string, Scrubber>() // namespace → its Secrets' values
  private seq = 0
  private readonly abort = new AbortController()
  private readonly running: Promise<void>[] = []
  private readonly informers: { stop(): Promise<void> }[] = []
  private readonly perApp: number
  /** the last problem reading logs, and the line count when it came: current until a line follows */
  private lastProblem?: { message: string; seq: number; at: string }

  constructor(
    private readonly kube: Kube,
    loops: readonly LoggedLoop[],
    opts: LogFeedOptions = {},
  ) {
    super()
    this.perApp = opts.perApp ?? 1000
    // one follower per namespace, even when two loops apply into the same one
    const byTarget = new Map<string, string>()
    for (const l of loops) if (!byTarget.has(l.status.target)) byTarget.set(l.status.target, l.name)
    for (const [namespace, loop] of byTarget) this.follow(namespace, loop)
  }

  private follow(namespace: string, loop: string): void {
    // the Secrets are known before the first line is read, so none slips through unscrubbed
    const ready = this.watchSecrets(namespace)
    const key = (app: string | undefined) => `${loop}/${app ?? 'other'}`
    const started = ready.then(() => {
      if (this.abort.signal.aborted) return
      const follower = new LogFollower(this.kube.kc, { namespace, signal: this.abort.signal })
      follower.on('attach', (c) => {
        const set = this.sources.get(key(c.app)) ?? new Set<string>()
        this.sources.set(key(c.app), set.add(`${c.pod}/${c.container}`))
      })
      follower.on('detach', (c) => this.sources.get(key(c.app))?.delete(`${c.pod}/${c.container}`))
      follower.on('line', (l) => this.add(loop, l, namespace))
      follower.on('problem', (p) => this.problem(p.message))
      return follower.done
    })
    this.running.push(started.catch(() => {}))
  }

  private add(loop: string, l: LogLine, namespace: string): void {
    const app = l.app ?? 'other'
    const k = `${loop}/${app}`
    const source = `${l.pod}/${l.container}`
    const sources = this.sources.get(k) ?? new Set<string>()
    this.sources.set(k, sources.add(source))
    const scrubber = this.scrubbers.get(namespace)
    const line =
      !scrubber || scrubber.unreadable
        ? `[line withheld: ${scrubber?.unreadable ?? `the Secrets of ${namespace} are not read yet`}]`
        : scrubber.scrub(l.line)
    const level = detectLevel(line)
    const out: FeedLine = {
      seq: ++this.seq,
      loop,
      app,
      pod: l.pod,
      container: l.container,
      ts: l.ts,
      line,
      ...(level ? { level } : {}),
      ...(sources.size > 1 ? { source } : {}),
    }
    const ring = this.rings.get(k) ?? []
    ring.push(out)
    if (ring.length > this.perApp * 1.25) ring.splice(0, ring.length - this.perApp) // amortised trim
    this.rings.set(k, ring)
    this.emit('line', out)
  }

  private problem(message: string): void {
    this.lastProblem = { message, seq: this.seq, at: new Date().toISOString() }
    this.emit('problem', message)
  }

  /**
   * Why the logs cannot be read right now: the last problem (a log stream that fails, pods that
   * cannot be listed), as long as no line arrived after it; undefined while lines come.
   */
  currentProblem(): { message: string; at: string } | undefined {
    const p = this.lastProblem
    return p && p.seq === this.seq ? { message: p.message, at: p.at } : undefined
  }

  /** Buffered lines (of one loop, of one app), oldest first. */
  lines(filter: { loop?: string; app?: string } = {}): FeedLine[] {
    const out: FeedLine[] = []
    for (const [k, ring] of this.rings) {
      const [loop, app] = [k.slice(0, k.indexOf('/')), k.slice(k.indexOf('/') + 1)]
      if ((filter.loop && filter.loop !== loop) || (filter.app && filter.app !== app)) continue
      out.push(...ring.slice(-this.perApp))
    }
    return out.sort((a, b) => a.seq - b.seq)
  }

  /** Everything buffered and the seq it ends at: a view starts here and appends the events after. */
  checkpoint(): LogCheckpoint {
    const problem = this.currentProblem()
    return { seq: this.seq, lines: this.lines(), ...(problem ? { problem } : {}) }
  }

  // The Secrets of the followed namespace, decoded, so their values can be scrubbed. Only
  // this module (and its scrubber) holds them; nothing else of a Secret is kept.
  private async watchSecrets(namespace: string): Promise<void> {
    const scrubber = new Scrubber()
    this.scrubbers.set(namespace, scrubber)
    const watch = await watchSecrets(this.kube, namespace, scrubber, this.abort.signal)
    this.informers.push(watch)
    if (scrubber.unreadable) this.problem(`${scrubber.unreadable}: their lines are withheld`)
  }

  /** Stops every follower and watch; resolves once they are closed. */
  async stop(): Promise<void> {
    this.abort.abort()
    await Promise.all([...this.running, ...this.informers.map((i) => i.stop())])
  }
}
