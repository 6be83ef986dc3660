// Before a deploy touches anything: HEAD is on a branch that tracks a remote branch, nothing
// outside the namespace is staged (it would ride along or be left behind), and there is
// something of this namespace to deploy: changes under its folder, or local commits that
// touch it and are not pushed yet.
import { simpleGit } from 'simple-git'
import { NsopsError, ExitCode, errorMessage } from '../core/errors.ts'
import type { Repo, Upstream } from '../git/repo.ts'

export interface UnpushedCommit {
  sha: string
  subject: string
  files: string[]
  /** whether it changes anything under the namespace's folder */
  touchesNamespace: boolean
}

export interface Preflight {
  branch: string
  upstream: Upstream
  head: string
  /** files under the namespace's folder with staged, unstaged or untracked changes */
  changed: string[]
  /** commits on the branch that its upstream does not have yet, oldest first */
  unpushed: UnpushedCommit[]
  /** no change under the folder and no unpushed commit touching it */
  nothingToDeploy: boolean
}

/** Is the repo-relative `file` the folder `dir` or inside it? */
export function isUnder(file: string, dir: string): boolean {
  return file === dir || file.startsWith(`${dir}/`)
}

function quote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`
}

/**
 * `nsDir` is the namespace's folder relative to the repository root (`namespaces/arr-stack`).
 * Throws NsopsError (exit 1) for a detached HEAD, a branch without upstream and staged
 * changes outside the folder, naming them.
 */
export async function preflight(repo: Repo, nsDir: string): Promise<Preflight> {
  const upstream = await repo.requireUpstream()
  const state = await repo.repoState()
  const unrelated = state.staged.filter((f) => !isUnder(f, nsDir))
  if (unrelated.length > 0) {
    throw new NsopsError(
      `changes outside ${nsDir}/ are staged in ${repo.root}: ${unrelated.join(', ')}. A deploy commits only ${nsDir}/, so nothing was committed or pushed.`,
      {
        hint: `commit them separately, or unstage them (\`git restore --staged -- ${unrelated.map(quote).join(' ')}\`), then run again.`,
        exitCode: ExitCode.usage,
      },
    )
  }
  const changed = [...new Set([...state.staged, ...state.unstaged, ...state.untracked])]
    .filter((f) => isUnder(f, nsDir))
    .sort()
  const unpushed = await unpushedCommits(repo.root, nsDir)
  return {
    branch: upstream.branch,
    upstream,
    head: await repo.headSha(),
    changed,
    unpushed,
    nothingToDeploy: changed.length === 0 && !unpushed.some((c) => c.touchesNamespace),
  }
}

/** Commits the upstream (as last fetched) does not have, oldest first, with the files each changes. */
export async function unpushedCommits(root: string, nsDir: string): Promise<UnpushedCommit[]> {
  try {
    return await logCommits(root, nsDir, ['@{upstream}..HEAD'])
  } catch (err) {
    // the upstream branch does not exist on the remote yet (set, never pushed): git names it
    if (/unknown revision|ambiguous argument|no upstream/i.test(errorMessage(err))) return []
    throw new NsopsError(`git log failed in ${root}: ${errorMessage(err).split('\n')[0]}`, {
      hint: 'run `git log @{upstream}..HEAD` by hand to see why.',
      cause: err,
    })
  }
}

/** The last `n` commits up to `tip` (default HEAD), oldest first. */
export function lastCommits(root: string, nsDir: string, n: number, tip = 'HEAD'): Promise<UnpushedCommit[]> {
  return n > 0 ? logCommits(root, nsDir, ['-n', String(n), tip]) : Promise.resolve([])
}

/** The newest commit of HEAD that changes something under the folder, or undefined. */
export async function lastCommitUnder(root: string, nsDir: string): Promise<UnpushedCommit | undefined> {
  const [last] = await logCommits(root, nsDir, ['-n', '1', 'HEAD', '--', `:(literal)${nsDir}`], false)
  if (!last) return undefined
  // the pathspec limited the file list too; the whole commit is what a revert undoes
  const [full] = await logCommits(root, nsDir, ['-n', '1', last.sha])
  return full
}

async function logCommits(root: string, nsDir: string, args: string[], reverse = true): Promise<UnpushedCommit[]> {
  const out = await simpleGit({ baseDir: root }).raw([
    'log',
    ...(reverse ? ['--reverse'] : []),
    '--no-renames',
    '--format=%x00%H%x09%s',
    '--name-only',
    ...args,
  ])
  return out
    .split('\0')
    .filter((b) => b.trim())
    .map((block) => {
      const [head, ...rest] = block.split('\n')
      const tab = head.indexOf('\t')
      const files = rest.map((l) => l.trim()).filter(Boolean)
      return {
        sha: head.slice(0, tab),
        subject: head.slice(tab + 1),
        files,
        touchesNamespace: files.some((f) => isUnder(f, nsDir)),
      }
    })
}
