// One error type for everything a user sees: a message, a hint (what to do next) and the
// documented exit code. Stack traces only with --debug.

export const ExitCode = {
  ok: 0,
  /** usage, preflight or validation error: nothing pushed, nothing applied */
  usage: 1,
  /** deploy failed and was rolled back */
  rolledBack: 2,
  /** deploy failed and the rollback failed too; also `dashboard --check` when unhealthy */
  rollbackFailed: 3,
  unhealthy: 3,
  /** deploy pushed, and did not confirm Flux applied it healthy: --push-only, no answer from Flux, --no-rollback after a failure */
  pushedUnverified: 4,
  interrupted: 130,
} as const

export class NsopsError extends Error {
  readonly hint?: string
  readonly exitCode: number

  constructor(message: string, opts: { hint?: string; exitCode?: number; cause?: unknown } = {}) {
    super(message, { cause: opts.cause })
    this.name = 'NsopsError'
    this.hint = opts.hint
    this.exitCode = opts.exitCode ?? ExitCode.usage
  }
}

/**
 * An NsopsError, also one thrown by another copy of this module (a bundled script importing
 * a namespace.ts through tsx gets two copies), so hints and exit codes survive.
 */
export function isNsopsError(err: unknown): err is NsopsError {
  return (
    err instanceof NsopsError ||
    (err instanceof Error && err.name === 'NsopsError' && typeof (err as NsopsError).exitCode === 'number')
  )
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message
  return String(err)
}

/** The text a user sees for an error: message, then the hint; the stack only when debugging. */
export function formatError(err: unknown, debug = false): string {
  if (isNsopsError(err)) {
    const lines = [`error: ${err.message}`]
    if (err.hint) lines.push(`hint: ${err.hint}`)
    if (debug && err.stack) lines.push(err.stack)
    if (debug && err.cause) lines.push(`cause: ${err.cause instanceof Error ? err.cause.stack : String(err.cause)}`)
    return lines.join('\n')
  }
  if (debug && err instanceof Error && err.stack) return `error: ${err.stack}`
  return `error: ${errorMessage(err)}\nhint: run again with --debug for the full trace, and report it if it looks like a bug.`
}
