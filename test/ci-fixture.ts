// A repository for `just ci` in a temp dir: this repo's files (tracked and new, as they are
// in the working tree now) committed as `main`, pushed to a bare remote, HEAD on a branch
// `change` that tracks origin/main — so the merge base is real. node_modules is linked, not
// copied. Used by test/e2e/ci.test.ts and bench/ci.bench.ts.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { repoRoot } from '../shared/core/paths.ts'
import { git } from './git-fixture.ts'

export interface CiRepo {
  root: string
  work: string
  remote: string
  out: string
}

export function ciRepo(): CiRepo {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-ci-'))
  const work = path.join(root, 'work')
  const remote = path.join(root, 'remote.git')
  const out = path.join(root, 'out')
  execFileSync('git', ['init', '-q', '--bare', '-b', 'main', remote])
  const files = execFileSync('git', ['ls-files', '-co', '--exclude-standard', '-z'], {
    cwd: repoRoot,
    encoding: 'utf8',
  })
    .split('\0')
    .filter(Boolean)
  for (const f of files) {
    const from = path.join(repoRoot, f)
    if (!fs.existsSync(from) || fs.lstatSync(from).isDirectory()) continue // deleted in the working tree; a submodule
    fs.mkdirSync(path.dirname(path.join(work, f)), { recursive: true })
    fs.copyFileSync(from, path.join(work, f))
    fs.chmodSync(path.join(work, f), fs.statSync(from).mode)
  }
  fs.symlinkSync(path.join(repoRoot, 'node_modules'), path.join(work, 'node_modules'))
  git(work, 'init', '-q')
  // the symlink is no directory, so .gitignore's `node_modules/` does not cover it
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
