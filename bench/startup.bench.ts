// Script start-up: `--help` of the nsops CLI and of a namespace script, against bare
// `node -e 0` measured in the same run. Target ≤ 400 ms median. Each also without the V8 code
// cache (NSOPS_CODE_CACHE=0: the ESM bundle run through import(), as before the cache).
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { repoRoot } from '../shared/core/paths.ts'
import { median, report } from './stats.ts'

function time(cmd: string, args: string[], cwd: string, env: Record<string, string> = {}): number {
  const t0 = performance.now()
  execFileSync(cmd, args, { cwd, stdio: 'ignore', env: { ...process.env, ...env } })
  return performance.now() - t0
}

export default async function (): Promise<void> {
  const elsewhere = os.tmpdir() // scripts must start from any working directory
  const n = 15
  const run = (cmd: string, args: string[], env: Record<string, string> = {}) => {
    time(cmd, args, elsewhere, env) // warm-up
    return Array.from({ length: n }, () => time(cmd, args, elsewhere, env))
  }
  const base = run(process.execPath, ['-e', '0'])
  report('baseline: node -e 0', base)
  const targets = [
    path.join(repoRoot, 'shared/bin/nsops.ts'),
    path.join(repoRoot, 'namespaces/arr-stack/dashboard.ts'),
    path.join(repoRoot, 'namespaces/arr-stack/dev.ts'),
    path.join(repoRoot, 'namespaces/arr-stack/deploy.ts'),
  ].filter((f) => fs.existsSync(f))
  for (const t of targets) {
    const ms = run(t, ['--help'])
    report(
      `${path.relative(repoRoot, t)} --help (cwd ${elsewhere})`,
      ms,
      `${(median(ms) / median(base)).toFixed(1)}× node -e 0; target ≤ 400 ms`,
    )
    const esm = run(t, ['--help'], { NSOPS_CODE_CACHE: '0' })
    report(
      '  the same without the code cache (NSOPS_CODE_CACHE=0)',
      esm,
      `code cache saves ${Math.round(median(esm) - median(ms))} ms`,
    )
  }
}
