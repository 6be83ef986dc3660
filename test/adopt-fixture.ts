// A Flux repository someone already keeps (a fixture under test/fixtures/: home-ops, the seed
// homelab, flux2's example) with nsops added as a user adds it: nsops' own files (shared/, the
// justfile, package.json, tanka/, k8s/ but its Flux objects) copied beside theirs, no
// namespaces/ yet. Committed as `main`, pushed to a bare remote, HEAD on `change` tracking
// origin/main (ci diff needs a merge base). node_modules is linked, not copied. The copying and
// publishing are ci-fixture.ts's, with a filter.
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

/** `npx just ARGS` in `work`, as a user types it there (no NSOPS_/GITHUB_ settings of this run leak in). */
export function justIn(work: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Ran> {
  const clean: NodeJS.ProcessEnv = { ...process.env, CI: '1', NO_COLOR: '1' }
  for (const k of Object.keys(clean)) if (k.startsWith('NSOPS_') || k.startsWith('GITHUB_')) delete clean[k]
  delete clean.NODE_OPTIONS
  return runJust(work, args, { ...clean, ...env }, { timeout: 300_000 })
}
