// Runs a build step (the user's host command, ko, buildah …) with its output streamed line by
// line into the build's log, so the dev loop's view and page show a failing compile as it
// happened, and the error carries the last lines.
import { spawn } from 'node:child_process'

export interface StepOptions {
  cwd: string
  env?: NodeJS.ProcessEnv
  onLine: (line: string) => void
  signal?: AbortSignal
}

export class StepFailed extends Error {
  constructor(
    readonly what: string,
    readonly code: number | null,
    readonly tail: string[],
  ) {
    super(`${what} exited ${code ?? 'on a signal'}`)
  }
}

/** Runs `command args…`; resolves with stdout, rejects with StepFailed (its output is in the log). */
export function runStep(what: string, command: string, args: string[], opts: StepOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: opts.cwd,
      env: { ...process.env, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      signal: opts.signal,
    })
    const tail: string[] = []
    let stdout = ''
    const lines = (stream: 'out' | 'err') => {
      let partial = ''
      return (buf: Buffer) => {
        const text = partial + buf.toString()
        if (stream === 'out') stdout += buf.toString()
        const parts = text.split('\n')
        partial = parts.pop() ?? ''
        for (const l of parts) {
          tail.push(l)
          if (tail.length > 40) tail.shift()
          opts.onLine(l)
        }
      }
    }
    child.stdout.on('data', lines('out'))
    child.stderr.on('data', lines('err'))
    child.on('error', (err) => reject(err))
    child.on('close', (code) => {
      if (code === 0) resolve(stdout)
      else reject(new StepFailed(what, code, tail))
    })
  })
}
