// Where a container's log was read up to, so a new request for it resumes without
// duplicating or losing a line. The API's `sinceTime` has whole seconds (the apiserver passes
// it on to the kubelet as RFC3339), so a resumed read starts up to a second early: lines
// before the last one's timestamp are dropped, and of the lines carrying exactly that
// timestamp as many as were already emitted. Timestamps are compared as nanoseconds: the
// kubelet writes RFC3339Nano without trailing zeros, so text does not sort.

/** `2024-01-02T03:04:05.123456789Z` (or with an offset) → nanoseconds since the epoch. */
export function timestampNanos(ts: string): bigint | undefined {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/.exec(ts)
  if (!m) return undefined
  const secondsMs = Date.parse(`${m[1]}${m[3]}`)
  if (Number.isNaN(secondsMs)) return undefined
  return BigInt(secondsMs) * 1_000_000n + BigInt((m[2] ?? '').padEnd(9, '0'))
}

/** Splits a line of `timestamps: true` output into its timestamp and its text. */
export function splitTimestamp(raw: string): { ts: string; nanos: bigint; text: string } | undefined {
  const sp = raw.indexOf(' ')
  const ts = sp < 0 ? raw : raw.slice(0, sp)
  const nanos = timestampNanos(ts)
  if (nanos === undefined) return undefined
  return { ts, nanos, text: sp < 0 ? '' : raw.slice(sp + 1) }
}

export class LogCursor {
  private last: bigint | undefined
  private atLast = 0
  /** lines with the last timestamp still to skip in the current read */
  private skip = 0
  /** the last line's timestamp as the API gave it */
  lastTs: string | undefined

  /** Called when a new read of the same container starts (from `sinceTime()`). */
  resume(): void {
    this.skip = this.atLast
  }

  /** Whether the line is new; records it when it is. */
  accept(ts: string, nanos: bigint): boolean {
    if (this.last !== undefined && nanos < this.last) return false
    if (this.last !== undefined && nanos === this.last) {
      if (this.skip > 0) {
        this.skip--
        return false
      }
      this.atLast++
      return true
    }
    this.last = nanos
    this.lastTs = ts
    this.atLast = 1
    this.skip = 0
    return true
  }

  /** The `sinceTime` to resume from: the last line's second (the API rounds it down anyway). */
  sinceTime(): string | undefined {
    if (this.last === undefined) return undefined
    return new Date(Number(this.last / 1_000_000n)).toISOString().replace(/\.\d{3}Z$/, 'Z')
  }
}
