// Ctrl-C during a deploy. The first one stops the deploy at the next point where the state
// can be told exactly (the flow then says which commit is where and exits 130); a second one
// exits at once. Git commands finish or fail on their own: a half-written commit or push is
// never abandoned mid-way by us.
import { ExitCode } from '../core/errors.ts'
import { untilAborted } from '../core/signals.ts'

export class Interrupted extends Error {
  constructor() {
    super('interrupted')
    this.name = 'Interrupted'
  }
}

export function throwIfInterrupted(signal?: AbortSignal): void {
  if (signal?.aborted) throw new Interrupted()
}

/** Settles as `work` does, or rejects with Interrupted as soon as the signal aborts. */
export function orInterrupt<T>(work: Promise<T>, signal?: AbortSignal): Promise<T> {
  return signal ? untilAborted(work, signal, () => new Interrupted()) : work
}

/**
 * SIGINT aborts the returned signal; a second SIGINT exits 130 at once. `notice` runs on the
 * first one (to say that the deploy is stopping). Call dispose() when the deploy is over.
 */
export function interruptOnSigint(notice: () => void = () => {}): { signal: AbortSignal; dispose: () => void } {
  const ac = new AbortController()
  const onSigint = () => {
    if (ac.signal.aborted) process.exit(ExitCode.interrupted)
    notice()
    ac.abort()
  }
  process.on('SIGINT', onSigint)
  return {
    signal: ac.signal,
    dispose: () => {
      process.off('SIGINT', onSigint)
    },
  }
}
