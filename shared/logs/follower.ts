// Follows the logs of every container of a set of pods, stern-like, and publishes each line.
// The terminal command (`just logs`), the dev loop and a web page subscribe to the same
// events: a view renders lines, it never reads logs itself.
// - One stream per container run, keyed by container ID (or pod uid/name/restartCount where a
//   runtime reports none): a restart or a replaced pod is a new key and a new stream, read
//   from its start.
// - When a run is replaced, what it wrote after our last line is read with `previous: true`
//   from the last line's time before the new run is followed, so no line of it is lost.
// - A stream that ends or fails while its run is current is resumed from the last line's
//   time (LogCursor drops what was already published).
// - A read is stopped (run replaced, pod gone, Ctrl-C) whether or not the server has answered
//   it yet: a follow of a container with nothing to say is not answered until it prints, and
//   waiting for that kept a restarted container's new run from ever being followed.
import { EventEmitter } from 'node:events'
import { Writable } from 'node:stream'
import { CoreV1Api, Log, makeInformer, type KubeConfig, type LogOptions, type V1Pod } from '@kubernetes/client-node'
import { apiMessage } from '../kube/client.ts'
import { LogCursor, splitTimestamp } from './cursor.ts'
import { MAX_LINE, sanitizeLine } from './sanitize.ts'

/** characters of an unfinished line kept (the timestamp and what is shown of it) */
const MAX_PENDING = MAX_LINE + 64

export interface LogLine {
  /** the line's timestamp as the API gave it (RFC3339Nano) */
  ts: string
  pod: string
  container: string
  /** the run it came from (container ID, or uid/name#restartCount) */
  run: string
  line: string
  /** the pod's `app.kubernetes.io/name` label (or `app`), the key every view groups by */
  app?: string
}

export interface LogFollowerOptions {
  namespace: string
  /** a label selector; none = every pod of the namespace */
  selector?: string
  /** keep following (default); false reads what is there and ends */
  follow?: boolean
  /** the previous run of each container instead of the current one (implies follow: false) */
  previous?: boolean
  /** for the runs that exist when following starts: only lines newer than this many ms */
  sinceMs?: number
  /** for the runs that exist when following starts: only their last N lines */
  tail?: number
  /** only lines matching one of these */
  include?: RegExp[]
  /** no line matching one of these */
  exclude?: RegExp[]
  /** stops following; `done` resolves once everything is closed */
  signal?: AbortSignal
  /** pause before a dropped stream is resumed (default 1 s, Tilt's order) */
  retryMs?: number
}

export interface FollowedContainer {
  pod: string
  container: string
  run: string
  app?: string
}

interface Stream {
  pod: string
  app?: string
  podUid: string
  container: string
  run: string
  cursor: LogCursor
  /** --since/--tail for a run there when following began, until a line of it has been read */
  window: LogOptions
  /** stops the read in flight, answered yet or not (read()) */
  stop?: () => void
  /** the run was replaced or its pod went: stop resuming it */
  ended: boolean
  /** reads in order: the first read, resumes, the final drain */
  chain: Promise<void>
  /** the runtime reports the run as exited: a stream that ends is not resumed */
  terminated: boolean
}

type Events = {
  line: [LogLine]
  /** a container run started being followed */
  attach: [FollowedContainer]
  /** a container run is no longer followed (restarted, pod gone) */
  detach: [FollowedContainer]
  /** something worth telling a user that does not stop following */
  problem: [{ pod?: string; container?: string; message: string }]
}

/** The app a pod belongs to, by the label the rest of nsops groups by. */
export function appOfPod(pod: V1Pod): string | undefined {
  return pod.metadata?.labels?.['app.kubernetes.io/name'] ?? pod.metadata?.labels?.app
}

/** The containers (init ones first) of a pod that have started, with their current run. */
function runsOf(pod: V1Pod): { container: string; run: string; restarts: number; terminated: boolean }[] {
  const uid = pod.metadata?.uid ?? ''
  return [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])]
    .filter((s) => s.state?.running || s.state?.terminated)
    .map((s) => ({
      container: s.name,
      restarts: s.restartCount ?? 0,
      terminated: !!s.state?.terminated,
      run: s.containerID || `${uid}/${s.name}#${s.restartCount ?? 0}`,
    }))
}

export class LogFollower extends EventEmitter<Events> {
  /** resolves when following has stopped (aborted, or everything read without follow) */
  readonly done: Promise<void>
  private readonly streams = new Map<string, Stream>() // by `${podUid}/${container}`
  private readonly log: Log
  private readonly core: CoreV1Api
  /** the informer's first list is done: runs that appear from now on are read whole */
  private listed = false
  private readonly abort = new AbortController()
  private readonly follow: boolean

  constructor(
    private readonly kc: KubeConfig,
    private readonly opts: LogFollowerOptions,
  ) {
    super()
    this.log = new Log(kc)
    this.core = kc.makeApiClient(CoreV1Api)
    this.follow = !opts.previous && opts.follow !== false
    opts.signal?.addEventListener('abort', () => this.abort.abort(), { once: true })
    this.done = this.follow ? this.watch() : this.readOnce()
    this.done.catch(() => {}) // a caller may only listen for events
  }

  /** What is being followed right now. */
  containers(): FollowedContainer[] {
    return [...this.streams.values()]
      .filter((s) => !s.ended)
      .map(({ pod, container, run }) => ({ pod, container, run }))
  }

  private async readOnce(): Promise<void> {
    const pods = await this.core.listNamespacedPod({
      namespace: this.opts.namespace,
      labelSelector: this.opts.selector,
    })
    await Promise.all(
      pods.items.flatMap((pod) =>
        runsOf(pod).map(async (r) => {
          const s = this.stream(pod, r.container, r.run)
          if (this.opts.previous && r.restarts === 0) {
            this.emit('problem', {
              pod: s.pod,
              container: s.container,
              message: `container ${s.container} of pod ${s.pod} has not restarted: no previous run`,
            })
            return
          }
          await this.read(s, { previous: this.opts.previous, ...this.initialWindow() })
        }),
      ),
    )
  }

  private async watch(): Promise<void> {
    const { namespace, selector } = this.opts
    const informer = makeInformer(
      this.kc,
      `/api/v1/namespaces/${namespace}/pods`,
      () => this.core.listNamespacedPod({ namespace, labelSelector: selector }),
      selector,
    )
    informer.on('add', (p) => this.sync(p))
    informer.on('update', (p) => this.sync(p))
    informer.on('delete', (p) => this.podGone(p))
    let retry: NodeJS.Timeout | undefined
    informer.on('error', (err) => {
      if (this.abort.signal.aborted) return
      this.emit('problem', {
        message: `watching pods of ${namespace} failed (${apiMessage(err)}); retrying`,
      })
      retry = setTimeout(() => void informer.start().catch(() => {}), this.opts.retryMs ?? 1000)
    })
    await informer.start()
    this.listed = true
    await new Promise<void>((resolve) => {
      if (this.abort.signal.aborted) resolve()
      else this.abort.signal.addEventListener('abort', () => resolve(), { once: true })
    })
    clearTimeout(retry)
    await informer.stop()
    for (const s of this.streams.values()) {
      s.ended = true
      s.stop?.()
    }
    await Promise.all([...this.streams.values()].map((s) => s.chain))
  }

  private stream(pod: V1Pod, container: string, run: string): Stream {
    const s: Stream = {
      pod: pod.metadata!.name!,
      podUid: pod.metadata!.uid!,
      container,
      run,
      app: appOfPod(pod),
      cursor: new LogCursor(),
      window: {},
      ended: false,
      chain: Promise.resolve(),
      terminated: false,
    }
    this.streams.set(`${s.podUid}/${container}`, s)
    return s
  }

  private sync(pod: V1Pod): void {
    if (this.abort.signal.aborted) return
    for (const r of runsOf(pod)) {
      const key = `${pod.metadata!.uid}/${r.container}`
      const old = this.streams.get(key)
      if (old?.run === r.run) {
        old.terminated = r.terminated
        continue
      }
      const s = this.stream(pod, r.container, r.run)
      s.terminated = r.terminated
      // runs there when following began honour --since/--tail; later ones are read whole
      if (!old && !this.listed) s.window = this.initialWindow()
      s.chain = old ? this.retire(old).then(() => this.keepReading(s)) : this.keepReading(s)
    }
  }

  private initialWindow(): LogOptions {
    // client-node's Log leaves out a tailLines that is falsy, so 0 goes as the string "0"
    // (the same query parameter): without it, --tail 0 printed the whole log
    if (this.opts.tail === 0) return { tailLines: '0' as unknown as number }
    if (this.opts.tail !== undefined) return { tailLines: this.opts.tail }
    if (this.opts.sinceMs !== undefined) return { sinceSeconds: Math.max(1, Math.ceil(this.opts.sinceMs / 1000)) }
    return {}
  }

  /** A run that was replaced: stop following it, then read what it wrote after our last line. */
  private async retire(s: Stream): Promise<void> {
    s.ended = true
    s.stop?.()
    await s.chain
    this.emit('detach', { pod: s.pod, container: s.container, run: s.run, ...(s.app ? { app: s.app } : {}) })
    const since = s.cursor.sinceTime()
    s.cursor.resume()
    try {
      // no line read yet: what --since/--tail let through, not the whole run
      await this.read(s, { previous: true, ...(since ? { sinceTime: since } : s.window) })
    } catch {
      /* its pod may be gone already: nothing more can be read */
    }
  }

  // A deleted pod's streams get a moment to deliver what is in flight (a kubelet ends them
  // itself when the container stops; kwok's never end), then they are closed.
  private podGone(pod: V1Pod): void {
    for (const [key, s] of this.streams) {
      if (s.podUid !== pod.metadata?.uid) continue
      s.ended = true
      this.streams.delete(key)
      const t = setTimeout(() => s.stop?.(), this.opts.retryMs ?? 1000)
      this.abort.signal.addEventListener(
        'abort',
        () => {
          clearTimeout(t)
          s.stop?.()
        },
        { once: true },
      )
      void s.chain.then(() => {
        clearTimeout(t)
        this.emit('detach', { pod: s.pod, container: s.container, run: s.run, ...(s.app ? { app: s.app } : {}) })
      })
    }
  }

  /** Follows a run until it ends or is replaced, resuming a dropped stream from its cursor. */
  private async keepReading(s: Stream): Promise<void> {
    this.emit('attach', { pod: s.pod, container: s.container, run: s.run, ...(s.app ? { app: s.app } : {}) })
    let opts: LogOptions = { follow: true, ...s.window }
    while (!s.ended && !this.abort.signal.aborted) {
      try {
        await this.read(s, opts)
        if (s.terminated) break // it exited and said all it will say
      } catch (err) {
        if (s.ended || this.abort.signal.aborted) break
        this.emit('problem', {
          pod: s.pod,
          container: s.container,
          message: `reading the log of ${s.pod}/${s.container} failed (${apiMessage(err)}); retrying`,
        })
      }
      if (s.ended || this.abort.signal.aborted) break
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, this.opts.retryMs ?? 1000)
        this.abort.signal.addEventListener(
          'abort',
          () => {
            clearTimeout(t)
            resolve()
          },
          { once: true },
        )
      })
      const since = s.cursor.sinceTime()
      s.cursor.resume()
      opts = { follow: true, ...(since ? { sinceTime: since } : s.window) }
    }
  }

  /** One log request; resolves when its stream ends or `s.stop()` is called, answered yet or not. */
  private async read(s: Stream, opts: LogOptions): Promise<void> {
    const stop = new AbortController()
    s.stop = () => stop.abort()
    // the run was retired, its pod went or following stopped before this read began
    if (this.abort.signal.aborted || (s.ended && opts.follow)) return
    let partial = ''
    const emitLine = (raw: string) => {
      const parsed = splitTimestamp(raw)
      if (!parsed) return
      if (!s.cursor.accept(parsed.ts, parsed.nanos)) return
      if (!this.wanted(parsed.text)) return
      this.emit('line', {
        ts: parsed.ts,
        pod: s.pod,
        container: s.container,
        run: s.run,
        // shown on terminals: colours kept, other control sequences dropped, length bounded
        line: sanitizeLine(parsed.text),
        ...(s.app ? { app: s.app } : {}),
      })
    }
    let finished!: () => void
    const ended = new Promise<void>((resolve) => {
      finished = resolve
    })
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        // what was in flight when the read stopped: a retired run's last lines are read again
        // (previous: true, from the cursor), so none is lost and the cursor stays exact
        if (stop.signal.aborted) return cb()
        const text = partial + chunk.toString('utf8')
        const lines = text.split('\n')
        partial = lines.pop() ?? ''
        // a line without end (a binary written to stdout) is not kept whole: it is cut when shown
        if (partial.length > MAX_PENDING) partial = partial.slice(0, MAX_PENDING)
        for (const l of lines) emitLine(l)
        cb()
      },
      final(cb) {
        if (partial && !stop.signal.aborted) emitLine(partial)
        partial = ''
        cb()
      },
    })
    sink.on('finish', finished)
    sink.on('close', finished)
    sink.on('error', finished)
    stop.signal.addEventListener('abort', finished, { once: true })
    // client-node hands out the request's AbortController only once the server has answered
    // (its headers come with the first line): stopping ends this read at once, and the
    // request is aborted when that answer comes
    const request = this.log.log(this.opts.namespace, s.pod, s.container, sink, { ...opts, timestamps: true })
    request.then(
      (controller) => {
        if (stop.signal.aborted) controller.abort()
        else stop.signal.addEventListener('abort', () => controller.abort(), { once: true })
      },
      () => {},
    )
    // a refused request throws (keepReading retries it); a stopped one just ends
    await Promise.race([request.then(() => ended), ended])
  }

  private wanted(text: string): boolean {
    const { include, exclude } = this.opts
    if (include?.length && !include.some((r) => r.test(text))) return false
    if (exclude?.length && exclude.some((r) => r.test(text))) return false
    return true
  }
}
