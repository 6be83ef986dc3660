// Reconnect delays as Tilt's port-forward reconciler has them (research/anchors.md Part 1 §1):
// 50 ms doubling to a 15 s cap, 10 % jitter, and a fresh start once a connection has lasted
// more than a second, so a pod that comes back is retried quickly and a broken one is not
// hammered.

export interface BackoffOptions {
  initialMs: number
  factor: number
  maxMs: number
  /** up to this fraction of the delay is added at random (k8s wait.Backoff semantics) */
  jitter: number
  /** a connection that lasted longer than this resets the delays */
  resetAfterMs: number
}

export const TILT_BACKOFF: BackoffOptions = { initialMs: 50, factor: 2, maxMs: 15_000, jitter: 0.1, resetAfterMs: 1000 }

export class Backoff {
  private attempts = 0
  private readonly opts: BackoffOptions
  private readonly random: () => number

  constructor(opts: Partial<BackoffOptions> = {}, random: () => number = Math.random) {
    this.opts = { ...TILT_BACKOFF, ...opts }
    this.random = random
  }

  /** The delay before the next try; every call doubles the base up to the cap. */
  next(): number {
    const { initialMs, factor, maxMs, jitter } = this.opts
    const base = Math.min(maxMs, initialMs * factor ** this.attempts)
    if (base < maxMs) this.attempts++
    return Math.round(base + base * jitter * this.random())
  }

  reset(): void {
    this.attempts = 0
  }

  /** Reports how long a connection lasted; one that lasted long enough proves the target works. */
  lasted(ms: number): void {
    if (ms > this.opts.resetAfterMs) this.reset()
  }
}
