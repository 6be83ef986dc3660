// Terminal output over kleur. Colours only on a TTY without NO_COLOR; the live display of
// running tasks only on an interactive stderr outside CI; nothing decorative when the output
// is data (--json).
import kleur from 'kleur'

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
  /** what it is (the row's label) */
  text(msg: string): void
  /** what it is doing right now (the end of the row: the last line a build printed) */
  detail?(msg: string): void
  succeed(msg?: string): void
  fail(msg?: string): void
  warn(msg?: string): void
  stop(): void
}

/**
 * What is running now, as one live display at the bottom of the terminal: a row per running
 * task (a spinner frame, its label, the time since it started, what it is doing), redrawn in
 * one write every 120 ms. Parallel tasks are rows of the same display, so nothing competes
 * for the line (ora animates one spinner per stream: two at once print "[ora] Multiple
 * concurrent spinners detected" and leave fragments of each other's text). While it is up,
 * every write to stderr or stdout of this process (log lines, console, errors) goes through
 * it: the display is erased, the write lands where it stood, the display is drawn again under
 * it, so output never writes over it; each row is cut to the terminal's width, so no row wraps
 * and leaves a piece behind when it is erased. Children never share our terminal while it is
 * up (builds pipe their output into their row). Hand-written: ora and log-update draw one
 * block and know nothing of writes in between; this is that block plus the interception.
 */
interface Row {
  label: string
  detail: string
  started: number
}

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏']
const CONTROL = /\x1b\[[0-9;?]*[A-Za-z]|[\x00-\x08\x0b-\x1f\x7f]/g

type Write = (chunk: string | Uint8Array, ...rest: unknown[]) => boolean

class LiveDisplay {
  private readonly rows = new Set<Row>()
  private drawn = 0
  private frame = 0
  private timer: NodeJS.Timeout | undefined
  /** the last write through left its line open: the display waits for the newline */
  private open = false
  private readonly raw = process.stderr.write.bind(process.stderr) as Write
  private readonly saved: [NodeJS.WriteStream, Write][] = []

  add(row: Row): void {
    if (this.rows.size === 0) this.install()
    this.rows.add(row)
    this.redraw()
  }

  remove(row: Row, line?: string): void {
    this.rows.delete(row)
    let out = this.erase()
    if (line !== undefined) out += `${line}\n`
    if (this.rows.size > 0) out += this.lines()
    this.raw(out)
    if (this.rows.size === 0) this.uninstall()
  }

  private install(): void {
    for (const stream of [process.stderr, process.stdout]) {
      if (stream !== process.stderr && !stream.isTTY) continue // data to a pipe or file never touches the display
      const original = stream.write.bind(stream) as Write
      this.saved.push([stream, stream.write as Write])
      stream.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
        if (this.rows.size === 0) return original(chunk, ...rest)
        this.raw(this.erase())
        const ok = original(chunk, ...rest)
        const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString()
        if (text.length > 0) this.open = !text.endsWith('\n')
        if (!this.open) this.raw(this.lines())
        return ok
      }) as typeof stream.write
    }
    this.timer = setInterval(() => {
      this.frame = (this.frame + 1) % FRAMES.length
      this.redraw()
    }, 120)
    this.timer.unref()
    process.once('exit', this.onExit)
  }

  private readonly onExit = () => {
    if (this.drawn > 0) this.raw(this.erase())
  }

  private uninstall(): void {
    clearInterval(this.timer)
    this.timer = undefined
    for (const [stream, write] of this.saved.splice(0)) stream.write = write as typeof stream.write
    process.removeListener('exit', this.onExit)
  }

  private redraw(): void {
    if (this.open) return
    this.raw(this.erase() + this.lines())
  }

  /** Moves up over the rows drawn last and clears them; the cursor ends where the display began. */
  private erase(): string {
    const out = '\x1b[1A\x1b[2K'.repeat(this.drawn)
    this.drawn = 0
    return out === '' ? '' : `\r${out}`
  }

  private lines(): string {
    if (this.open) return ''
    const width = Math.max(20, (process.stderr.columns || 80) - 1)
    const height = Math.max(1, (process.stderr.rows || 24) - 2)
    const all = [...this.rows]
    const shown = all.length > height ? all.slice(0, height - 1) : all
    const now = Date.now()
    const out = shown.map((r) => {
      const head = `${FRAMES[this.frame]} ${r.label}`
      const tail = `  ${duration(now - r.started)}${r.detail ? `  ${r.detail}` : ''}`
      const cut = Array.from(head + tail)
        .slice(0, width)
        .join('')
      return cut.length <= head.length
        ? c.cyan(cut.slice(0, 1)) + cut.slice(1)
        : c.cyan(head.slice(0, 1)) + head.slice(1) + c.dim(cut.slice(head.length))
    })
    if (shown.length < all.length) out.push(c.dim(`  … and ${all.length - shown.length} more`))
    this.drawn = out.length
    return out.map((l) => `${l}\n`).join('')
  }
}

let display: LiveDisplay | undefined

/** One line of text for a row: no control characters, no colours, no line breaks. */
function plain(text: string): string {
  return text.replace(/\r?\n/g, ' ').replace(CONTROL, '').trim()
}

/**
 * A task in the live display on a TTY (see LiveDisplay); elsewhere one line when it starts
 * and one when it ends, so CI logs say what happened without control codes.
 */
export function spinner(text: string): Spinner {
  if (interactive()) {
    display ??= new LiveDisplay()
    const board = display
    const row: Row = { label: plain(text), detail: '', started: Date.now() }
    let done = false
    board.add(row)
    const end = (glyph: string, m?: string) => {
      if (done) return
      done = true
      board.remove(row, m === undefined && glyph === '' ? undefined : `${glyph} ${m ?? row.label}`)
    }
    return {
      text: (m) => {
        row.label = plain(m)
      },
      detail: (m) => {
        row.detail = plain(m)
      },
      succeed: (m) => end(c.green('✔'), m),
      fail: (m) => end(c.red('✖'), m),
      warn: (m) => end(c.yellow('⚠'), m),
      stop: () => end(''),
    }
  }
  let current = text
  if (!jsonMode) log.step(text)
  return {
    text: (m) => {
      current = m
    },
    detail: () => {},
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

/** `412 ms`, `3.4 s`, `2 min 5 s`: rounded once, so a carry never shows as `60 s` or `1000 ms`. */
export function duration(ms: number): string {
  if (Math.round(ms) < 1000) return `${Math.round(ms)} ms`
  const tenths = Math.round(ms / 100)
  if (tenths < 600) return `${(tenths / 10).toFixed(1)} s`
  const s = Math.round(ms / 1000)
  return `${Math.floor(s / 60)} min ${s % 60} s`
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
