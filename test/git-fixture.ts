// Plain git for tests that build real repositories in temp dirs. The machine may have no
// global identity, and a global config must not sign or hook our commits.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'

export const isolated = [
  '-c',
  'init.defaultBranch=main',
  '-c',
  'commit.gpgsign=false',
  '-c',
  'core.hooksPath=/dev/null',
]

export function git(dir: string, ...args: string[]): string {
  return execFileSync('git', [...isolated, ...args], {
    cwd: dir,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  }).trim()
}

export function write(dir: string, file: string, text: string): void {
  fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true })
  fs.writeFileSync(path.join(dir, file), text)
}

/** Stages everything and commits it (with an identity of its own); returns the new HEAD. */
export function commitAll(dir: string, message: string): string {
  git(dir, 'add', '-A')
  git(dir, '-c', 'user.name=t', '-c', 'user.email=t@example.com', 'commit', '-qm', message)
  return git(dir, 'rev-parse', 'HEAD')
}

/** A new repository in `dir` holding `files` (path → text) in one commit; returns its SHA. */
export function seedRepo(dir: string, files: Record<string, string>): string {
  git(dir, 'init', '-q')
  for (const [file, text] of Object.entries(files)) write(dir, file, text)
  return commitAll(dir, 'seed')
}
