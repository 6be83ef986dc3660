// How a long-running command (a dev loop, dev-up) is stopped: one handler for SIGINT,
// SIGTERM and SIGHUP, installed before start-up and kept until the cleanup has finished.
//
// The first signal aborts `signal` (start-up stops where it is, the loop ends, cleanup
// starts). Further signals never kill the process while it cleans up — wrappers between a
// terminal and node (npx, just) may deliver a second one right after the first — they print
// what the cleanup is still doing. Only a person pressing Ctrl-C twice more, within a few
// seconds, forces the exit; then it prints what is left and the command that finishes it.
// A closed stdout or stderr (`| head -1`, a closed terminal) stops output, never cleanup.
//
// A stop nobody can cut short — SIGHUP (the terminal is gone), SIGTERM (a script, dev-down),
// a closed pipe — has a deadline instead: a cleanup still running after it ends the process
// the way a forced exit does (what is left, and the command that finishes it). Without one, a
// cleanup waiting on a cluster that stopped answering kept a process with no terminal alive
// for good. The cleanup's own steps are bounded too (dev/loop.ts): this is the backstop.
import { ExitCode } from './errors.ts'

/**
 * Settles as `work` does, or rejects as soon as `signal` aborts: with `reason()` when given, else
 * the signal's reason. What `work` still does is left to finish on its own (a late failure of it
 * is not reported: nobody is listening any more).
 */
export function untilAborted<T>(work: Promise<T>, signal: AbortSignal, reason?: () => unknown): Promise<T> {
  const why = () => (reason ? reason() : signal.reason)
  if (signal.aborted) {
    work.catch(() => {})
    return Promise.reject(why())
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      work.catch(() => {})
      reject(why())
    }
    signal.addEventListener('abort', onAbort, { once: true })
    work.then(
      (v) => {
        signal.removeEventListener('abort', onAbort)
        resolve(v)
      },
      (err) => {
        signal.removeEventListener('abort', onAbort)
        reject(err)
      },
    )
  })
}

/** Signals closer together than this come from one key press relayed by wrappers. */
const RELAY_WINDOW_MS = 300
/** Two presses within this window, after the first, force the exit. */
const FORCE_WINDOW_MS = 3000
/** How long a cleanup no person can force may run: above the sum of its bounded steps (dev/loop.ts). */
export const UNATTENDED_CLEANUP_MS = 6 * 60_000

// `web`: the page's stop button, a normal end of the session
const exitCodes: Record<string, number> = {
  SIGINT: ExitCode.interrupted,
  SIGTERM: 143,
  SIGHUP: 129,
  EPIPE: 141,
  web: 0,
}

export interface ShutdownOptions {
  /** what a forced exit leaves behind and how to finish it (printed on force) */
  leftover?: () => string
  /** where messages go; default stderr while it is open */
  say?: (msg: string) => void
  /** the process to listen on (tests pass their own emitter) */
  proc?: NodeJS.Process
  /** how to exit on force; default process.exit */
  exit?: (code: number) => void
  /** the deadline of a cleanup after SIGHUP, SIGTERM or a closed pipe; default UNATTENDED_CLEANUP_MS */
  unattendedMs?: number
}

export class Shutdown {
  private readonly ac = new AbortController()
  /** what stopped us: a signal name, 'EPIPE' (the reader went away), or an error */
  reason?: string
  private doing = 'stopping'
  private lastSignalAt = 0
  private lastPressAt = 0
  private readonly handler = (sig: NodeJS.Signals) => this.onSignal(sig)
  private readonly pipeHandler = (err: NodeJS.ErrnoException) => this.onStreamError(err)
  private readonly proc: NodeJS.Process
  private streamsOpen = true
  private deadline?: NodeJS.Timeout

  constructor(private opts: ShutdownOptions = {}) {
    this.proc = opts.proc ?? process
    for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) this.proc.on(s, this.handler)
    this.proc.stdout?.on?.('error', this.pipeHandler)
    this.proc.stderr?.on?.('error', this.pipeHandler)
  }

  /** Aborted by the first signal (or stop()). */
  get signal(): AbortSignal {
    return this.ac.signal
  }

  get stopping(): boolean {
    return this.ac.signal.aborted
  }

  /** The exit code for how we were stopped (130 for Ctrl-C). */
  get exitCode(): number {
    return exitCodes[this.reason ?? ''] ?? ExitCode.usage
  }

  /** Stop for another reason (an error, the loop ended on its own). */
  stop(reason: string): void {
    if (this.stopping) return
    this.reason = reason
    this.ac.abort(reason)
  }

  /** What a forced exit leaves behind (known only once the loops exist). */
  setLeftover(fn: () => string): void {
    this.opts.leftover = fn
  }

  /** What the cleanup is doing now; shown when another signal arrives. */
  setDoing(text: string): void {
    this.doing = text
  }

  /** Removes the handlers: call after the cleanup has finished. */
  dispose(): void {
    // the stream handlers stay: a write after a closed pipe must not crash the exit
    for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) this.proc.off(s, this.handler)
    clearTimeout(this.deadline)
  }

  private say(msg: string): void {
    if (this.opts.say) {
      this.opts.say(msg)
      return
    }
    if (!this.streamsOpen) return
    try {
      this.proc.stderr.write(`${msg}\n`)
    } catch {
      /* closed terminal */
    }
  }

  private onSignal(sig: NodeJS.Signals): void {
    const now = Date.now()
    const relayed = now - this.lastSignalAt < RELAY_WINDOW_MS
    this.lastSignalAt = now
    // also a SIGHUP during a cleanup Ctrl-C began: the terminal that could force it is gone
    if (sig !== 'SIGINT') this.unattended()
    if (!this.stopping) {
      this.reason = sig
      this.lastPressAt = now
      this.ac.abort(sig)
      return
    }
    // SIGTERM and SIGHUP (a wrapper, a closed terminal, `kill`) never force: only a person does
    if (sig !== 'SIGINT' || relayed) {
      this.say(`… still ${this.doing}`)
      return
    }
    if (now - this.lastPressAt < FORCE_WINDOW_MS && this.pressedOnce) {
      this.forceExit(`forced exit while ${this.doing}.`)
      return
    }
    this.pressedOnce = true
    this.lastPressAt = now
    this.say(
      `… still ${this.doing}. Press Ctrl-C again within ${FORCE_WINDOW_MS / 1000} s to force the exit (cleanup is then left unfinished).`,
    )
  }

  private pressedOnce = false

  private forceExit(why: string): void {
    this.say(why)
    const left = this.opts.leftover?.()
    if (left) this.say(left)
    ;(this.opts.exit ?? ((code: number) => this.proc.exit(code)))(this.exitCode)
  }

  /** Arms the deadline of a cleanup no person can force (once; dispose() disarms it). */
  private unattended(): void {
    if (this.deadline) return
    const ms = this.opts.unattendedMs ?? UNATTENDED_CLEANUP_MS
    this.deadline = setTimeout(
      () =>
        this.forceExit(`the cleanup did not finish within ${Math.round(ms / 1000)} s (still ${this.doing}): exiting.`),
      ms,
    )
    // the command's own work keeps the process alive; this timer only ends it
    this.deadline.unref()
  }

  private onStreamError(err: NodeJS.ErrnoException): void {
    // EPIPE / EIO: whoever read our output is gone; keep quiet, stop, and still clean up
    if (err.code !== 'EPIPE' && err.code !== 'EIO') throw err
    this.streamsOpen = false
    this.stop('EPIPE')
    this.unattended()
  }
}
