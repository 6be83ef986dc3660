// Terminal output over kleur and ora. Colours only on a TTY without NO_COLOR; spinners only
// on an interactive stderr outside CI; nothing decorative when the output is data (--json).
import kleur from 'kleur'
import type { Ora } from 'ora'

let jsonMode = false

function colorWanted(stream: NodeJS.WriteStream): boolean {
  if (jsonMode) return false
  if (process.env.NO_COLOR !== undefined && process.env.NO_COLOR !== '') return false
  if (process.env.FORCE_COLOR === '0') return false
  if (process.env.TERM === 'dumb') return false
  if (process.env.FORCE_COLOR) return true
  return Boolean(stream.isTTY)
}

/** Call once from a command when it prints data (--json): no colours, no spinners. */
export function setJsonMode(on: boolean): void {
  jsonMode = on
  kleur.enabled = colorWanted(process.stdout)
}

kleur.enabled = colorWanted(process.stdout)
export const c = kleur

export function interactive(): boolean {
  // a terminal that reports no width (e.g. `script` without a size) makes ora redraw endlessly
  return (
    !jsonMode &&
    Boolean(process.stderr.isTTY) &&
    (process.stderr.columns ?? 0) > 0 &&
    !process.env.CI &&
    process.env.TERM !== 'dumb'
  )
}

/** Messages for people go to stderr so stdout stays clean for data. */
export const log = {
  info: (msg: string) => process.stderr.write(`${msg}\n`),
  step: (msg: string) => process.stderr.write(`${c.cyan('›')} ${msg}\n`),
  ok: (msg: string) => process.stderr.write(`${c.green('✔')} ${msg}\n`),
  warn: (msg: string) => process.stderr.write(`${c.yellow('⚠')} ${msg}\n`),
  fail: (msg: string) => process.stderr.write(`${c.red('✖')} ${msg}\n`),
}

export interface Spinner {
  text(msg: string): void
  succeed(msg?: string): void
  fail(msg?: string): void
  warn(msg?: string): void
  stop(): void
}

/**
 * A spinner on a TTY; elsewhere one line when it starts and one when it ends, so CI logs
 * say what happened without control codes.
 */
export function spinner(text: string): Spinner {
  if (interactive()) {
    // ora is loaded on first use, off the start-up path of commands that never spin
    let current = text
    let done = false
    let s: Ora | undefined
    void import('ora').then(({ default: ora }) => {
      if (!done) s = ora({ text: current, stream: process.stderr }).start()
    })
    const end = (how: 'succeed' | 'fail' | 'warn', m?: string) => {
      done = true
      if (s) {
        s[how](m)
        return
      }
      log[how === 'succeed' ? 'ok' : how](m ?? current)
    }
    return {
      text: (m) => {
        current = m
        if (s) s.text = m
      },
      succeed: (m) => end('succeed', m),
      fail: (m) => end('fail', m),
      warn: (m) => end('warn', m),
      stop: () => {
        done = true
        s?.stop()
      },
    }
  }
  let current = text
  if (!jsonMode) log.step(text)
  return {
    text: (m) => {
      current = m
    },
    succeed: (m) => {
      if (!jsonMode) log.ok(m ?? current)
    },
    fail: (m) => {
      if (!jsonMode) log.fail(m ?? current)
    },
    warn: (m) => {
      if (!jsonMode) log.warn(m ?? current)
    },
    stop: () => {},
  }
}

/** Left-aligned columns; widths ignore ANSI codes so coloured cells line up. */
export function table(rows: string[][], indent = '  '): string {
  const visible = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '').length
  const widths: number[] = []
  for (const row of rows)
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, visible(cell))
    })
  return rows
    .map(
      (row) =>
        indent +
        row.map((cell, i) => (i === row.length - 1 ? cell : cell + ' '.repeat(widths[i] - visible(cell)))).join('  '),
    )
    .join('\n')
}

export function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`
  const m = Math.floor(ms / 60_000)
  return `${m} min ${Math.round((ms % 60_000) / 1000)} s`
}

/** Status glyphs and colours, one table for every view (dev loop, dashboard, dev-status). */
export type HealthStatus = 'Current' | 'InProgress' | 'Failed' | 'Terminating' | 'NotFound' | 'Unknown'
export const healthMark: Record<HealthStatus, (text: string) => string> = {
  Current: (s) => c.green(`✓ ${s}`),
  InProgress: (s) => c.yellow(`… ${s}`),
  Failed: (s) => c.red(`✗ ${s}`),
  Terminating: (s) => c.magenta(`↓ ${s}`),
  NotFound: (s) => c.red(`✗ ${s}`),
  Unknown: (s) => c.yellow(`? ${s}`),
}
