// Supervised port-forwards to a Service, the way Tilt keeps them (research/anchors.md Part 1
// §1): bound to one Ready pod behind the Service, moved to the replacement when that pod goes,
// retried with backoff when connections fail, and a status a UI can render. `kubectl
// port-forward svc/x` binds one pod and never re-attaches, hence this supervisor.
//
// Each local TCP connection gets its own client-node PortForward websocket (one port per
// call, research/ts-stack.md §2) to the pod targeted at that moment.
import { EventEmitter } from 'node:events'
import net from 'node:net'
import { PassThrough, Writable } from 'node:stream'
import { PortForward } from '@kubernetes/client-node'
import { NsopsError, errorMessage } from '../core/errors.ts'
import { apiMessage, type Kube } from '../kube/client.ts'
import { Backoff, type BackoffOptions } from './backoff.ts'
import { watchServiceTarget, type ForwardTarget, type TargetWatch } from './target.ts'

export { Backoff, TILT_BACKOFF, type BackoffOptions } from './backoff.ts'
export { resolveForwardTarget, type Resolution, type ForwardTarget } from './target.ts'

/** See Forward for what each means. */
export type ForwardStatus = 'starting' | 'active' | 'reconnecting' | 'failing' | 'error'

export interface ForwardSpec {
  namespace: string
  service: string
  /** local port; 0 picks a free one (see `forward.localPort`) */
  localPort: number
  /** the Service's port, by number or name; its targetPort picks the container port */
  remotePort: number | string
  address?: string
  /** override Tilt's reconnect timings */
  backoff?: Partial<BackoffOptions>
  /** how long a local connection waits for a pod before it is closed; default 30 s */
  holdMs?: number
  /**
   * how often an idle active forward checks that its pod still answers (a port-forward opened
   * and closed, nothing sent); default 10 s, 0: only when the target changes
   */
  probeEveryMs?: number
}

/** What a UI renders; every change is emitted as a 'status' event. */
export interface ForwardState {
  status: ForwardStatus
  namespace: string
  service: string
  url: string
  pod?: string
  containerPort?: number
  lastError?: string
  /** local connections being forwarded right now */
  connections: number
}

/** how long a probe's port-forward stays open for the node to report a failed dial */
const PROBE_SETTLE_MS = 300
const PROBE_EVERY_MS = 10_000

interface Socketish {
  close(): void
  terminate(): void
  on(ev: 'close', fn: () => void): void
  on(ev: 'error', fn: (err: Error) => void): void
}

interface Piped {
  pod: string
  ws?: Socketish
}

/**
 * One supervised forward; made by forwardService(). Status: `starting` until a Ready pod is
 * targeted the first time; `active` while one is (connections go through at once);
 * `reconnecting` when the pod went (new connections wait for the next pod); `failing` when
 * the last try to reach the pod failed — a probe or a connection: the node's kubelet does not
 * answer, nothing listens on the port — with the reason in lastError, retried with backoff
 * (new connections wait out the backoff); `error` when the local port was lost.
 *
 * A forward is probed (a port-forward to the pod opened, then closed, nothing sent) whenever
 * it targets a new pod and every probeEveryMs while idle, so a URL that does not answer is
 * shown as failing before anyone tries it (issue 24 item 0: after a sim restart a stale
 * kubelet port refused every forward while the view showed a live URL).
 */
export class Forward extends EventEmitter<{ status: [ForwardState] }> {
  status: ForwardStatus = 'starting'
  pod?: string
  containerPort?: number
  lastError?: Error
  localPort: number
  readonly address: string

  private readonly server: net.Server
  private targets?: TargetWatch
  private readonly backoff: Backoff
  private readonly portForward: PortForward
  private readonly holdMs: number
  private readonly waiting = new Map<net.Socket, NodeJS.Timeout>()
  private readonly piped = new Map<net.Socket, Piped>()
  private target?: ForwardTarget
  private everActive = false
  private pause?: NodeJS.Timeout
  private stopped = false
  private lastEmitted = ''
  /** the last try to reach the current target failed, and none succeeded since */
  private failing = false
  private probing = false
  private probeTimer?: NodeJS.Timeout

  private constructor(
    private readonly kube: Kube,
    private readonly spec: ForwardSpec,
  ) {
    super()
    this.address = spec.address ?? '127.0.0.1'
    this.localPort = spec.localPort
    this.backoff = new Backoff(spec.backoff)
    this.portForward = new PortForward(kube.kc)
    this.holdMs = spec.holdMs ?? 30_000
    this.server = net.createServer({ pauseOnConnect: true }, (socket) => this.accept(socket))
  }

  /** @internal use forwardService() */
  static async open(kube: Kube, spec: ForwardSpec): Promise<Forward> {
    const forward = new Forward(kube, spec)
    await forward.listen()
    // After the caller's `await`: a listener attached right then sees the first state too,
    // and every state after it, since the watches only start here.
    setImmediate(() => forward.begin())
    return forward
  }

  get url(): string {
    const host = net.isIPv6(this.address) ? `[${this.address}]` : this.address
    return `http://${host}:${this.localPort}`
  }

  state(): ForwardState {
    return {
      status: this.status,
      namespace: this.spec.namespace,
      service: this.spec.service,
      url: this.url,
      pod: this.pod,
      containerPort: this.containerPort,
      lastError: this.lastError?.message,
      connections: [...this.piped.values()].filter((p) => p.ws).length,
    }
  }

  private listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        this.server.off('listening', onListening)
        this.status = 'error'
        this.lastError = this.listenError(err)
        reject(this.lastError)
      }
      const onListening = () => {
        this.server.off('error', onError)
        this.server.on('error', (err) => {
          this.lastError = err
          if (!this.server.listening) this.status = 'error'
          this.refresh()
        })
        this.localPort = (this.server.address() as net.AddressInfo).port
        resolve()
      }
      this.server.once('error', onError)
      this.server.once('listening', onListening)
      this.server.listen({ port: this.spec.localPort, host: this.address, exclusive: true })
    })
  }

  private begin(): void {
    if (this.stopped) return
    this.refresh(true)
    this.targets = watchServiceTarget(
      this.kube,
      this.spec,
      () => this.retarget(),
      (err) => {
        this.lastError = err
        this.refresh()
      },
    )
  }

  private listenError(err: NodeJS.ErrnoException): NsopsError {
    const { namespace, service } = this.spec
    const where = `${this.address}:${this.spec.localPort}`
    const what = `the port-forward to Service ${namespace}/${service}`
    if (err.code === 'EADDRINUSE') {
      return new NsopsError(
        `local port ${this.spec.localPort} (${where}) is already in use, so ${what} cannot start.`,
        {
          hint:
            `Pick another local port for it (portForwards[].local in the namespace's namespace.ts), or stop the process ` +
            `that holds the port: \`ss -ltnp 'sport = :${this.spec.localPort}'\` or \`lsof -i :${this.spec.localPort}\` names it.`,
          cause: err,
        },
      )
    }
    if (err.code === 'EACCES') {
      return new NsopsError(`not allowed to listen on ${where}, so ${what} cannot start.`, {
        hint: "Ports below 1024 need privileges: pick a local port of 1024 or above in the namespace's namespace.ts.",
        cause: err,
      })
    }
    if (err.code === 'EADDRNOTAVAIL') {
      return new NsopsError(`address ${this.address} is not on this machine, so ${what} cannot listen on it.`, {
        hint: "Use 127.0.0.1 (the default) or an address of one of this machine's interfaces.",
        cause: err,
      })
    }
    return new NsopsError(`cannot listen on ${where} for ${what}: ${errorMessage(err)}.`, { cause: err })
  }

  /** The Service or its pods changed: follow the pod the Service leads to now. */
  private retarget(): void {
    if (this.stopped || !this.targets) return
    const r = this.targets.current()
    const before = this.target?.pod
    const beforePort = this.target?.containerPort
    this.target = r.target
    if (r.problem) this.lastError = new Error(r.problem)
    if (before === r.target?.pod && beforePort !== r.target?.containerPort && r.target) {
      // the Service now leads to another port of the same pod: judge that port afresh
      this.failing = false
      this.refresh()
      void this.probe()
      return
    }
    if (before !== r.target?.pod) {
      // a different pod deserves a try at once; the delays still grow if it fails too
      if (this.pause) {
        clearTimeout(this.pause)
        this.pause = undefined
      }
      if (before && this.targets.gone(before)) {
        // a deleted pod's connections would hang or reach what is left of it; clients reconnect
        for (const [socket, p] of this.piped) if (p.pod === before) socket.destroy()
      }
      this.failing = false
      this.refresh()
      if (r.target) void this.probe()
      return
    }
    this.refresh()
  }

  private refresh(force = false): void {
    if (this.stopped) return
    if (this.status !== 'error') {
      const usable = this.target !== undefined && this.pause === undefined
      if (this.target && this.failing) this.status = 'failing'
      else if (usable) {
        this.status = 'active'
        this.everActive = true
      } else this.status = this.everActive ? 'reconnecting' : 'starting'
    }
    this.pod = this.target?.pod
    this.containerPort = this.target?.containerPort
    if (this.usable()) for (const socket of [...this.waiting.keys()]) this.dispatch(socket)
    const state = this.state()
    const key = JSON.stringify(state)
    if (force || key !== this.lastEmitted) {
      this.lastEmitted = key
      this.emit('status', state)
    }
  }

  private accept(socket: net.Socket): void {
    socket.on('error', () => {}) // resets by either side end the connection, nothing more
    if (this.stopped) {
      socket.destroy()
      return
    }
    if (this.usable()) {
      this.dispatch(socket)
      return
    }
    const timer = setTimeout(() => {
      this.waiting.delete(socket)
      socket.destroy()
    }, this.holdMs)
    this.waiting.set(socket, timer)
    socket.once('close', () => {
      clearTimeout(timer)
      this.waiting.delete(socket)
    })
  }

  /** Connections go through now: a pod is targeted and no backoff is under way. */
  private usable(): boolean {
    return (this.status === 'active' || this.status === 'failing') && this.target !== undefined && !this.pause
  }

  /**
   * Opens a port-forward to the target and closes it: a refused handshake (the apiserver cannot
   * reach the node's kubelet) or an error on the error stream within PROBE_SETTLE_MS (nothing
   * listens on the container port) makes the forward failing; anything else proves it works.
   */
  private async probe(): Promise<void> {
    const target = this.target
    if (this.stopped || this.probing || !target) return
    this.probing = true
    clearTimeout(this.probeTimer)
    let remoteError = ''
    const errors = new Writable({
      write(chunk, _enc, done) {
        remoteError += String(chunk)
        done()
      },
    })
    const sink = new Writable({ write: (_c, _e, done) => done() })
    const input = new PassThrough()
    let ws: Socketish | undefined
    try {
      ws = (await this.portForward.portForward(
        this.spec.namespace,
        target.pod,
        [target.containerPort],
        sink,
        errors,
        input,
      )) as unknown as Socketish
      ws.on('error', () => {})
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, PROBE_SETTLE_MS)
        ws!.on('close', () => {
          clearTimeout(t)
          resolve()
        })
      })
    } catch (err) {
      remoteError ||= await this.refusedBecause(target, wsErrorMessage(err))
    } finally {
      ws?.terminate()
      input.destroy()
      this.probing = false
    }
    if (this.stopped || this.target?.pod !== target.pod) return
    if (remoteError) this.failed(target, remoteError.trim())
    else this.succeeded()
  }

  /**
   * A refused handshake says only "Unexpected server response: 500"; the apiserver's reason (it
   * cannot reach the node's kubelet: "dial tcp …: connection refused") is in the body, which the
   * websocket client drops. A one-byte log read goes the same way (apiserver → kubelet) and
   * brings the reason back.
   */
  private async refusedBecause(target: ForwardTarget, message: string): Promise<string> {
    if (!/Unexpected server response: 5\d\d/.test(message)) return message
    const { namespace } = this.spec
    try {
      const pod = await this.kube.core.readNamespacedPod({ name: target.pod, namespace })
      const container = pod.spec?.containers[0]?.name
      await this.kube.core.readNamespacedPodLog({ name: target.pod, namespace, container, limitBytes: 1 })
      return message
    } catch (err) {
      // `Get "https://…/containerLogs/…": dial tcp …: connect: connection refused`: the dial is the reason
      const why = apiMessage(err)
      return `the apiserver cannot reach the pod's node (its kubelet): ${/dial tcp .*$/.exec(why)?.[0] ?? why}`
    }
  }

  /** The target answered (a probe or a connection): no longer failing; probed again when idle. */
  private succeeded(): void {
    if (this.failing) {
      this.failing = false
      this.backoff.reset()
    }
    this.refresh()
    this.scheduleProbe(this.spec.probeEveryMs ?? PROBE_EVERY_MS)
  }

  private scheduleProbe(ms: number): void {
    clearTimeout(this.probeTimer)
    if (this.stopped || ms <= 0) return
    this.probeTimer = setTimeout(() => void this.probe(), ms)
    this.probeTimer.unref()
  }

  private dispatch(socket: net.Socket): void {
    const timer = this.waiting.get(socket)
    if (timer) {
      clearTimeout(timer)
      this.waiting.delete(socket)
    }
    const target = this.target
    if (!target || socket.destroyed) {
      socket.destroy()
      return
    }
    void this.pipe(socket, target)
  }

  private async pipe(socket: net.Socket, target: ForwardTarget): Promise<void> {
    const { namespace } = this.spec
    const entry: Piped = { pod: target.pod }
    this.piped.set(socket, entry)
    let remoteError = ''
    // the kubelet (or kwok) reports a failed dial to the container on the port's error stream
    const errors = new Writable({
      write(chunk, _enc, done) {
        remoteError += String(chunk)
        done()
      },
    })
    const started = Date.now()
    let ws: Socketish
    try {
      ws = (await this.portForward.portForward(
        namespace,
        target.pod,
        [target.containerPort],
        socket,
        errors,
        socket,
      )) as unknown as Socketish
    } catch (err) {
      this.piped.delete(socket)
      socket.destroy()
      this.failed(target, await this.refusedBecause(target, wsErrorMessage(err)))
      return
    }
    if (this.stopped || socket.destroyed) {
      ws.terminate()
      this.piped.delete(socket)
      return
    }
    entry.ws = ws
    this.refresh()
    // a connection that is up and has no error from the node after the probe's settle time
    // proves the target works (a keep-alive one may stay open for long)
    const settled = setTimeout(() => {
      if (!remoteError && !this.stopped && this.target?.pod === target.pod && this.piped.has(socket)) this.succeeded()
    }, PROBE_SETTLE_MS)
    socket.once('close', () => clearTimeout(settled))
    socket.once('close', () => ws.close())
    ws.on('error', () => socket.destroy())
    ws.on('close', () => {
      socket.end()
      this.piped.delete(socket)
      if (remoteError) this.failed(target, remoteError.trim())
      else {
        this.backoff.lasted(Date.now() - started)
        if (this.target?.pod === target.pod) this.succeeded()
        else this.refresh()
      }
    })
    socket.resume()
  }

  private failed(target: ForwardTarget, message: string): void {
    if (this.stopped) return
    this.lastError = new Error(
      `forwarding to pod ${this.spec.namespace}/${target.pod} port ${target.containerPort} failed: ${message}`,
    )
    if (this.target?.pod === target.pod) this.failing = true
    if (this.pause === undefined) {
      this.pause = setTimeout(() => {
        this.pause = undefined
        this.refresh()
        // still failing: try again, so a pod that answers again shows so
        if (this.failing) void this.probe()
      }, this.backoff.next())
    }
    this.refresh()
  }

  /** Closes the local port, every connection and the watches. */
  async stop(): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    if (this.pause) clearTimeout(this.pause)
    clearTimeout(this.probeTimer)
    for (const [socket, timer] of this.waiting) {
      clearTimeout(timer)
      socket.destroy()
    }
    this.waiting.clear()
    for (const [socket, p] of this.piped) {
      p.ws?.terminate()
      socket.destroy()
    }
    this.piped.clear()
    await Promise.all([this.targets?.stop(), new Promise<void>((resolve) => this.server.close(() => resolve()))])
  }
}

function wsErrorMessage(err: unknown): string {
  // a failed websocket handshake rejects with an ErrorEvent, not an Error
  const e = err as { message?: string; error?: unknown }
  if (e?.error) return errorMessage(e.error)
  return e?.message ?? String(err)
}

/**
 * Forwards `address:localPort` to the Service's `remotePort` through whichever Ready pod is
 * behind it, until `stop()`. Resolves once the local port is bound; a port that is taken
 * rejects with an NsopsError that says what to do, and nothing is left running.
 */
export function forwardService(kube: Kube, spec: ForwardSpec): Promise<Forward> {
  return Forward.open(kube, spec)
}
