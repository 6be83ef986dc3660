// A Flux repository someone already keeps (a fixture under test/fixtures/: home-ops, the seed
// homelab, flux2's example) with nsops added as a user adds it: nsops' own files (shared/, the
// justfile, package.json, tanka/, k8s/ but its Flux objects) copied beside theirs, no
// namespaces/ yet. Committed as `main`, pushed to a bare remote, HEAD on `change` tracking
// origin/main (ci diff needs a merge base). node_modules is linked, not copied.
import { execFile, execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { repoRoot } from '../shared/core/paths.ts'
import { git } from './git-fixture.ts'

export interface AdoptRepo {
  root: string
  work: string
  remote: string
  out: string
}

/** nsops' files a user copies into their repository (not its namespaces, Flux objects, tests or docs). */
const NSOPS =
  /^(shared|tanka)\/|^k8s\/(?!flux\/)|^(justfile|package\.json|package-lock\.json|tsconfig\.json|eslint\.config\.mjs|\.prettierrc\.json|\.prettierignore|\.gitignore)$/

function copy(from: string, to: string): void {
  fs.mkdirSync(path.dirname(to), { recursive: true })
  fs.copyFileSync(from, to)
  fs.chmodSync(to, fs.statSync(from).mode)
}

export function adoptRepo(fixture: string): AdoptRepo {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-adopt-'))
  const work = path.join(root, 'work')
  const remote = path.join(root, 'remote.git')
  const out = path.join(root, 'out')
  // a fixture's name under test/fixtures/, or a folder
  fs.cpSync(path.resolve(repoRoot, 'test', 'fixtures', fixture), work, { recursive: true })
  const files = execFileSync('git', ['ls-files', '-co', '--exclude-standard', '-z'], {
    cwd: repoRoot,
    encoding: 'utf8',
  })
    .split('\0')
    .filter((f) => f && NSOPS.test(f))
  for (const f of files) {
    const from = path.join(repoRoot, f)
    if (!fs.existsSync(from) || fs.lstatSync(from).isDirectory()) continue
    copy(from, path.join(work, f))
  }
  fs.symlinkSync(path.join(repoRoot, 'node_modules'), path.join(work, 'node_modules'))
  execFileSync('git', ['init', '-q', '--bare', '-b', 'main', remote])
  git(work, 'init', '-q', '-b', 'main')
  fs.appendFileSync(path.join(work, '.git/info/exclude'), 'node_modules\n')
  git(work, 'config', 'user.name', 'nsops test')
  git(work, 'config', 'user.email', 'test@nsops.invalid')
  git(work, 'add', '-A')
  git(work, 'commit', '-qm', 'base')
  git(work, 'remote', 'add', 'origin', remote)
  git(work, 'push', '-q', '-u', 'origin', 'main')
  git(work, 'switch', '-q', '-c', 'change', '--track', 'origin/main')
  return { root, work, remote, out }
}

/** `npx just ARGS` in `work`, as a user types it there (no NSOPS_/GITHUB_ settings of this run leak in). */
export function justIn(
  work: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const clean: NodeJS.ProcessEnv = { ...process.env, CI: '1', NO_COLOR: '1' }
  for (const k of Object.keys(clean)) if (k.startsWith('NSOPS_') || k.startsWith('GITHUB_')) delete clean[k]
  delete clean.NODE_OPTIONS
  return new Promise((resolve) => {
    execFile(
      'npx',
      ['just', ...args],
      { cwd: work, env: { ...clean, ...env }, maxBuffer: 64 << 20, timeout: 300_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? Number(err.code) : -1) : 0
        resolve({ code, stdout, stderr })
      },
    )
  })
}
