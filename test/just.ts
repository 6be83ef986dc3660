// `npx just …` as a user types it, for the tests that go through that door: in this repository
// (`just`), or in a copy of it with an environment of the test's own (`runJust`).
import { execFile } from 'node:child_process'
import { repoRoot } from '../shared/core/paths.ts'

export interface Ran {
  code: number
  stdout: string
  stderr: string
}

/**
 * `npx just ARGS` in `cwd` with exactly `env`; never rejects: `code` is the exit code, -1 when
 * it did not exit by itself (killed at `timeout`). `input` is what the user answers on stdin
 * (closed either way, so a question nobody answers ends instead of waiting).
 */
export function runJust(
  cwd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  { input, timeout = 240_000 }: { input?: string; timeout?: number } = {},
): Promise<Ran> {
  return new Promise((resolve) => {
    const child = execFile(
      'npx',
      ['just', ...args],
      { cwd, env, timeout, maxBuffer: 64 << 20 },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? Number(err.code) : -1) : 0
        resolve({ code, stdout, stderr })
      },
    )
    child.stdin?.end(input ?? '')
  })
}

/** `npx just ARGS` in this repository, as a user types it; `input` is what they answer on stdin. */
export function just(args: string[], env: NodeJS.ProcessEnv = {}, input?: string, timeout = 240_000): Promise<Ran> {
  return runJust(repoRoot, args, { ...process.env, CI: '1', NO_COLOR: '1', ...env }, { input, timeout })
}
