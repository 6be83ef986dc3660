// Script start-up: `--help` of the nsops CLI and of a namespace script, against bare
// `node -e 0` measured in the same run. Target ≤ 150 ms median (issue 23). Each also with node's own
// compile cache (NSOPS_CODE_CACHE=node-cjs, node: the CommonJS or the ESM bundle) and with no
// cache (NSOPS_CODE_CACHE=0), and as plain `node FILE` with Node 24's built-in type stripping
// (no bundle: every module loaded and stripped on its own), interleaved run by run, against our
// V8 code cache (the default; shared/bin/run-bundled.mjs says why it stays).
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
  // [label, env, run it as `node FILE` with Node's type stripping instead of through the shebang]
  const variants: [string, Record<string, string>, boolean?][] = [
    ['our V8 code cache (default)', {}],
    ["  node's compile cache, CommonJS bundle (NSOPS_CODE_CACHE=node-cjs)", { NSOPS_CODE_CACHE: 'node-cjs' }],
    ["  node's compile cache, ESM bundle (NSOPS_CODE_CACHE=node)", { NSOPS_CODE_CACHE: 'node' }],
    ['  no code cache, ESM bundle (NSOPS_CODE_CACHE=0)', { NSOPS_CODE_CACHE: '0' }],
    ["  Node's type stripping, no bundle (node FILE)", {}, true],
  ]
  const once = (t: string, [, env, strip]: (typeof variants)[number]) =>
    strip ? time(process.execPath, [t, '--help'], elsewhere, env) : time(t, ['--help'], elsewhere, env)
  for (const t of targets) {
    // interleaved: each round runs every variant once, so load changes hit them alike
    for (const v of variants) once(t, v) // warm-up: bundle and cache made
    const ms = variants.map(() => [] as number[])
    for (let i = 0; i < n; i++) variants.forEach((variant, v) => ms[v].push(once(t, variant)))
    console.log(`${path.relative(repoRoot, t)} --help (cwd ${elsewhere})`)
    variants.forEach(([label], v) =>
      report(
        label,
        ms[v],
        v === 0
          ? `${(median(ms[v]) / median(base)).toFixed(1)}× node -e 0; target ≤ 150 ms`
          : ((d) => (d >= 0 ? `${d} ms more than ours` : `${-d} ms less than ours`))(
              Math.round(median(ms[v]) - median(ms[0])),
            ),
      ),
    )
  }
}
