// A bound on one step: for waits on something outside the process (a cluster that stopped
// answering, a child process) that have no deadline of their own. The step itself is not
// cancelled: the caller moves on, says what was left, and the process exit ends the rest.

/** Why a step was given up: it did not settle within its bound. */
export class TimedOut extends Error {}

/** Settles as `step` does, or rejects with TimedOut after `ms`. */
export function within<T>(step: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimedOut(`${what} did not finish within ${Math.round(ms / 1000)} s`)), ms)
  })
  return Promise.race([step, late]).finally(() => clearTimeout(timer))
}
