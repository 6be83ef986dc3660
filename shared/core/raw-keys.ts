// Single keys from a terminal, for the live views (dev view, dashboard --watch).
//
// Raw mode turns off the terminal's own Ctrl-C, so \x03 is sent on as the terminal would:
// SIGINT to our whole process group (npx and just included), and every other key goes to
// the view. Off a terminal (CI, a pipe) nothing is read and `active` is false.

export interface RawKeys {
  /** whether keys are read (stdin is a terminal) */
  readonly active: boolean
  /** raw mode off and stdin released; safe to call twice and after the terminal closed */
  stop(): void
}

export function readKeys(onKey: (ch: string) => void, stdin: NodeJS.ReadStream = process.stdin): RawKeys {
  const active = Boolean(stdin.isTTY && typeof stdin.setRawMode === 'function')
  const onData = (buf: Buffer) => {
    for (const ch of buf.toString()) {
      if (ch !== '\x03') {
        onKey(ch)
        continue
      }
      try {
        process.kill(0, 'SIGINT')
      } catch {
        process.kill(process.pid, 'SIGINT')
      }
    }
  }
  if (active) {
    stdin.setRawMode(true)
    stdin.resume()
    stdin.on('data', onData)
  }
  let stopped = !active
  return {
    active,
    stop() {
      if (stopped) return
      stopped = true
      try {
        stdin.off('data', onData)
        stdin.setRawMode(false)
        stdin.pause()
      } catch {
        /* closed */
      }
    },
  }
}
