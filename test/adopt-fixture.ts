// A Flux repository someone already keeps (a fixture under test/fixtures/: home-ops, the seed
// homelab, flux2's example) with nsops added as a user adds it: nsops' own files (shared/, the
// justfile, package.json, tanka/, k8s/ but its Flux objects) copied beside theirs, no
// namespaces/ yet. Committed as `main`, pushed to a bare remote, HEAD on `change` tracking
// origin/main (ci diff needs a merge base). node_modules is linked, not copied. The copying and
// publishing are ci-fixture.ts's, with a filter.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { repoRoot } from '../shared/core/paths.ts'
import { copyRepoFiles, publish, repoDirs, type CiRepo } from './ci-fixture.ts'
import { runJust, type Ran } from './just.ts'

/** nsops' files a user copies into their repository (not its namespaces, Flux objects, tests or docs). */
const NSOPS =
  /^(shared|tanka)\/|^k8s\/(?!flux\/)|^(justfile|package\.json|package-lock\.json|tsconfig\.json|eslint\.config\.mjs|\.prettierrc\.json|\.prettierignore|\.gitignore)$/

export type AdoptRepo = CiRepo

export function adoptRepo(fixture: string): AdoptRepo {
  const repo = repoDirs('nsops-adopt-')
  // a fixture's name under test/fixtures/, or a folder
  fs.cpSync(path.resolve(repoRoot, 'test', 'fixtures', fixture), repo.work, { recursive: true })
  copyRepoFiles(repo.work, (f) => NSOPS.test(f))
  return publish(repo)
}

/**
 * nsops' files copied into the folder `work` (node_modules linked), as a user adds nsops to a
 * repository they already have; returns the top-level names it added (files and folders).
 */
export function addNsops(work: string): string[] {
  const top = new Set<string>(['node_modules'])
  copyRepoFiles(work, (f) => {
    if (!NSOPS.test(f)) return false
    top.add(f.split('/')[0])
    return true
  })
  fs.symlinkSync(path.join(repoRoot, 'node_modules'), path.join(work, 'node_modules'))
  return [...top]
}

/** The environment of a user's `npx just` in a CI log: no NSOPS_/GITHUB_ settings of this run leak in. */
function userEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const clean: NodeJS.ProcessEnv = { ...process.env, CI: '1', NO_COLOR: '1' }
  for (const k of Object.keys(clean)) if (k.startsWith('NSOPS_') || k.startsWith('GITHUB_')) delete clean[k]
  delete clean.NODE_OPTIONS
  return { ...clean, ...env }
}

/** `npx just ARGS` in `work`, as a user types it there. */
export function justIn(work: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Ran> {
  return runJust(work, args, userEnv(env), { timeout: 300_000 })
}

/**
 * justIn while it runs, for a test that acts meanwhile (on what it prints): in a process group
 * of its own, so `process.kill(-child.pid)` ends npx, just and nsops together.
 */
export function spawnJustIn(work: string, args: string[], env: NodeJS.ProcessEnv = {}): ChildProcessWithoutNullStreams {
  const child = spawn('npx', ['just', ...args], { cwd: work, env: userEnv(env), detached: true })
  child.stdin.end()
  return child
}
