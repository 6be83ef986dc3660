// `npx just …` as a user types it, in this repository, for the tests that go through that door.
import { execFile } from 'node:child_process'
import { repoRoot } from '../shared/core/paths.ts'

export interface Ran {
  code: number
  stdout: string
  stderr: string
}

/** `npx just ARGS` in this repository, as a user types it; `input` is what they answer on stdin. */
export function just(args: string[], env: NodeJS.ProcessEnv = {}, input?: string, timeout = 240_000): Promise<Ran> {
  return new Promise((resolve) => {
    const child = execFile(
      'npx',
      ['just', ...args],
      { cwd: repoRoot, env: { ...process.env, CI: '1', NO_COLOR: '1', ...env }, timeout, maxBuffer: 32 << 20 },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? Number(err.code) : -1) : 0
        resolve({ code, stdout, stderr })
      },
    )
    child.stdin?.end(input ?? '')
  })
}
