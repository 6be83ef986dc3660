// A real terminal for tests: a tmux server of our own (its own socket), one pane running a
// command as its program. The command's processes sit in the terminal's foreground process
// group, so Ctrl-C (send-keys C-c) reaches npx, just and node exactly as it does for a person
// at a keyboard, and closing the pane sends SIGHUP as closing a terminal window does.
import { execFile, execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { until } from './until.ts'

const run = promisify(execFile)

export function tmuxAvailable(): boolean {
  try {
    execFileSync('tmux', ['-V'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/**
 * The environment of a person at a terminal, for `Terminal.open`: PATH, HOME, TERM, USER and
 * those of XDG_CACHE_HOME (nsops' tool cache) and `passOn` that are set here, nothing of the
 * test runner's (CI, NODE_OPTIONS with its reporters); then `extra`.
 */
export function personEnv(extra: Record<string, string> = {}, passOn: string[] = []): Record<string, string> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? os.homedir(),
    TERM: 'xterm-256color',
    USER: os.userInfo().username,
  }
  for (const name of ['XDG_CACHE_HOME', ...passOn]) if (process.env[name]) env[name] = process.env[name]
  return { ...env, ...extra }
}

export class Terminal {
  private readonly socket = `nsops-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`

  private env: Record<string, string> = {}

  private constructor() {}

  /**
   * Runs `argv` in a new 160×50 terminal from a shell, as a person would type it; the shell
   * prints `EXIT=<status>` when it ends and stays, so the screen can be read afterwards.
   */
  static async open(argv: string[], opts: { cwd: string; env: Record<string, string> }): Promise<Terminal> {
    const t = new Terminal()
    // the server (and so the pane) gets exactly this environment: nothing of the test
    // runner's (CI, NODE_OPTIONS with its reporters) leaks into what a person would run
    t.env = opts.env
    const quoted = argv.map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ')
    // an interactive shell survives the Ctrl-C meant for its foreground job; `trap` does
    // that here (a trap, not an ignore: the command still gets the default disposition)
    const line = `trap 'true' INT; ${quoted}; echo "EXIT=$?"; exec sleep 3600`
    await t.tmux(
      '-f',
      '/dev/null',
      'new-session',
      '-d',
      '-s',
      't',
      '-x',
      '160',
      '-y',
      '50',
      '-c',
      opts.cwd,
      'sh',
      '-c',
      line,
    )
    return t
  }

  async tmux(...args: string[]): Promise<string> {
    return (await run('tmux', ['-L', this.socket, ...args], { env: this.env })).stdout
  }

  /** What the screen shows now (the alternate screen when a full-screen view is up). */
  screen(): Promise<string> {
    return this.tmux('capture-pane', '-p', '-t', 't')
  }

  async waitFor(pattern: RegExp, timeoutMs = 120_000): Promise<string> {
    let last = ''
    try {
      await until(
        `the terminal to show ${pattern}`,
        async () => {
          last = await this.screen()
          return pattern.test(last)
        },
        timeoutMs,
      )
    } catch (err) {
      throw new Error(`${(err as Error).message}; the screen:\n${last}`, { cause: err })
    }
    return last
  }

  /** Presses keys (tmux names: C-c, Enter). */
  press(...keys: string[]): Promise<string> {
    return this.tmux('send-keys', '-t', 't', ...keys)
  }

  /** The pid of the terminal's shell; the command's processes are below it. */
  async pid(): Promise<number> {
    return Number((await this.tmux('display', '-p', '-t', 't', '#{pane_pid}')).trim())
  }

  /** The command's exit status as the shell saw it, once it has ended. */
  async exitStatus(): Promise<number | undefined> {
    const m = /EXIT=(\d+)/.exec(await this.screen())
    return m ? Number(m[1]) : undefined
  }

  async waitExit(timeoutMs = 120_000): Promise<number> {
    return until('the command in the terminal to exit', () => this.exitStatus(), timeoutMs)
  }

  /** Whether a full-screen view holds the alternate screen now. */
  async alternateScreen(): Promise<boolean> {
    return (await this.tmux('display', '-p', '-t', 't', '#{alternate_on}')).trim() === '1'
  }

  /** Whether the terminal is back to normal: main screen, cursor shown. */
  async restored(): Promise<boolean> {
    const [alt, cursor] = (await this.tmux('display', '-p', '-t', 't', '#{alternate_on} #{cursor_flag}'))
      .trim()
      .split(' ')
    return alt === '0' && cursor === '1'
  }

  /** Closes the terminal (the program gets SIGHUP, as from a closed window). */
  async hangUp(): Promise<void> {
    await this.tmux('kill-session', '-t', 't').catch(() => {})
  }

  async close(): Promise<void> {
    await this.tmux('kill-server').catch(() => {})
    // tmux leaves its socket file behind when the server is killed (or exits with its last
    // session): one file per test terminal in /tmp/tmux-<uid>, unless removed here
    const tmpdir = this.env.TMUX_TMPDIR || process.env.TMUX_TMPDIR || '/tmp'
    fs.rmSync(path.join(tmpdir, `tmux-${process.getuid?.() ?? 0}`, this.socket), { force: true })
  }
}
