// A repository for `just ci` in a temp dir: this repo's files (tracked and new, as they are
// in the working tree now) committed as `main`, pushed to a bare remote, HEAD on a branch
// `change` that tracks origin/main — so the merge base is real. node_modules is linked, not
// copied. Used by the e2e tests that run `npx just …` in a copy (test/sim-repo-fixture.ts
// gives one a sim of its own), bench/ci.bench.ts, and test/adopt-fixture.ts's parts.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { repoRoot } from '../shared/core/paths.ts'
import { git } from './git-fixture.ts'

export interface CiRepo {
  /** the temp dir holding the rest (remove it when done) */
  root: string
  /** the working clone */
  work: string
  /** the bare repository it pushed to (origin) */
  remote: string
  /** a folder for the test's output, not yet made */
  out: string
}

/** The folders of a CiRepo under a new temp dir named PREFIX…; only `root` is made. */
export function repoDirs(prefix: string): CiRepo {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
  return { root, work: path.join(root, 'work'), remote: path.join(root, 'remote.git'), out: path.join(root, 'out') }
}

/** This repository's files (tracked and new, as in the working tree now) that `keep` accepts, copied into `work` with their modes. */
export function copyRepoFiles(work: string, keep: (file: string) => boolean = () => true): void {
  const files = execFileSync('git', ['ls-files', '-co', '--exclude-standard', '-z'], {
    cwd: repoRoot,
    encoding: 'utf8',
  })
    .split('\0')
    .filter((f) => f && keep(f))
  for (const f of files) {
    const from = path.join(repoRoot, f)
    if (!fs.existsSync(from) || fs.lstatSync(from).isDirectory()) continue // deleted in the working tree; a submodule
    fs.mkdirSync(path.dirname(path.join(work, f)), { recursive: true })
    fs.copyFileSync(from, path.join(work, f))
    fs.chmodSync(path.join(work, f), fs.statSync(from).mode)
  }
}

/** `repo.work` as it is committed as `main` and pushed to a new bare `repo.remote`; HEAD on `change` tracking origin/main. node_modules is linked. */
export function publish(repo: CiRepo): CiRepo {
  const { work, remote } = repo
  fs.symlinkSync(path.join(repoRoot, 'node_modules'), path.join(work, 'node_modules'))
  execFileSync('git', ['init', '-q', '--bare', '-b', 'main', remote])
  git(work, 'init', '-q', '-b', 'main')
  // the symlink is no directory, so .gitignore's `node_modules/` does not cover it
  fs.appendFileSync(path.join(work, '.git/info/exclude'), 'node_modules\n')
  git(work, 'config', 'user.name', 'nsops test')
  git(work, 'config', 'user.email', 'test@nsops.invalid')
  git(work, 'add', '-A')
  git(work, 'commit', '-qm', 'base')
  git(work, 'remote', 'add', 'origin', remote)
  git(work, 'push', '-q', '-u', 'origin', 'main')
  git(work, 'switch', '-q', '-c', 'change', '--track', 'origin/main')
  return repo
}

export function ciRepo(): CiRepo {
  const repo = repoDirs('nsops-ci-')
  copyRepoFiles(repo.work)
  return publish(repo)
}
