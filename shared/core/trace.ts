// NSOPS_TRACE=1: each phase of a command on stderr with the time since node started, for
// finding where a slow run spends its time (`NSOPS_TRACE=1 just drift arr-stack`). Costs
// nothing when unset.
const on = process.env.NSOPS_TRACE === '1'

export function trace(phase: string): void {
  if (on) process.stderr.write(`trace ${Math.round(performance.now())} ms ${phase}\n`)
}
