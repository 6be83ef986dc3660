// Git for GitOps deploys: commit only a namespace's own paths, push without ever forcing
// (a rejected push is rebased and retried once), and undo by `git revert`, never by
// rewriting history. simple-git runs the real git; every failure a user sees is an NsopsError.
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { simpleGit, type SimpleGit, type StatusResult } from 'simple-git'
import { NsopsError, ExitCode, errorMessage } from '../core/errors.ts'

const execFileAsync = promisify(execFile)

export interface RepoState {
  root: string
  /** null when HEAD is detached */
  branch: string | null
  /** the tracking branch as git names it (`origin/main`); null when none is set */
  upstream: string | null
  ahead: number
  behind: number
  /** null in a repository without commits */
  head: string | null
  staged: string[]
  unstaged: string[]
  untracked: string[]
}

export interface Upstream {
  branch: string
  remote: string
  /** the branch's name on the remote, e.g. `main` */
  remoteBranch: string
}

export type CommitResult = { committed: true; sha: string; files: string[] } | { committed: false }

export interface PushResult {
  localSha: string
  remoteSha: string
  /** true when the first push was rejected and the commit was rebased onto the remote */
  rebased: boolean
  /** the push landed, and someone else's commit landed on top of it right after */
  overtaken: boolean
}

export interface RevertResult {
  /** the new commit */
  sha: string
  /** the commit it undoes */
  reverted: string
}

export function shortSha(sha: string): string {
  return sha.slice(0, 7)
}

export async function openRepo(dir: string): Promise<Repo> {
  if (!fs.existsSync(dir))
    throw new NsopsError(`${dir} does not exist, so it is not a git repository.`, {
      hint: 'run nsops from a clone of the repository Flux reads.',
    })
  let root: string
  try {
    root = (await simpleGit({ baseDir: dir }).revparse(['--show-toplevel'])).trim()
  } catch (err) {
    throw gitFailure('rev-parse', dir, err)
  }
  return new Repo(root)
}

// Rejections that a rebase onto the remote can fix; "[remote rejected]" (a hook, a protected
// branch) cannot be fixed that way and is reported as it is.
const nonFastForward = /\[rejected\]|non-fast-forward|\(fetch first\)|Updates were rejected because/

export class Repo {
  readonly root: string
  private readonly git: SimpleGit

  constructor(root: string) {
    this.root = root
    this.git = simpleGit({ baseDir: root })
  }

  async repoState(): Promise<RepoState> {
    const s = await this.run('status', (g) => g.status())
    return {
      root: this.root,
      branch: s.detached ? null : s.current,
      upstream: s.tracking,
      ahead: s.ahead,
      behind: s.behind,
      head: await this.headShaOrNull(),
      ...fileLists(s),
    }
  }

  /** Preflight for anything that pushes: HEAD is on a branch that tracks a remote branch. */
  async requireUpstream(): Promise<Upstream> {
    const s = await this.run('status', (g) => g.status())
    if (s.detached || !s.current) {
      const head = await this.headShaOrNull()
      throw new NsopsError(
        `HEAD is detached${head ? ` at ${shortSha(head)}` : ''} in ${this.root}: a deploy commits to a branch and pushes it, and there is no branch checked out.`,
        { hint: 'check out the branch Flux follows (e.g. `git switch main`) and run again.' },
      )
    }
    const upstream = await this.upstream(s.current)
    if (!upstream) {
      const remotes = await this.run('remote', (g) => g.getRemotes())
      const remote = remotes.length === 1 ? remotes[0].name : 'origin'
      throw new NsopsError(
        `branch "${s.current}" in ${this.root} has no upstream, so there is nowhere to push a deploy commit.`,
        { hint: `publish it and set its upstream once: \`git push -u ${remote} ${s.current}\`, then run again.` },
      )
    }
    return upstream
  }

  /** The given paths (repo-relative files or directories) that have staged, unstaged or untracked changes. */
  async changedPaths(paths: string[]): Promise<string[]> {
    const rels = paths.map((p) => this.relative(p))
    if (rels.length === 0) return []
    const s = await this.run('status', (g) => g.status(['--', ...rels.map(literal)]))
    const { staged, unstaged, untracked } = fileLists(s)
    const files = [...staged, ...unstaged, ...untracked]
    return rels.filter((p) => files.some((f) => isUnder(f, p)))
  }

  /**
   * Stages everything under `paths` (new, changed and deleted files) and commits only that.
   * Refuses, committing nothing, when changes outside `paths` are already staged: they would
   * otherwise ride along in the next commit someone makes, or be silently left behind.
   */
  async commitPaths(paths: string[], message: string): Promise<CommitResult> {
    const rels = paths.map((p) => this.relative(p))
    const { staged } = await this.repoState()
    const unrelated = staged.filter((f) => !rels.some((p) => isUnder(f, p)))
    if (unrelated.length > 0) {
      throw new NsopsError(
        `changes outside ${rels.join(', ')} are staged in ${this.root}: ${unrelated.join(', ')}. Nothing was committed.`,
        {
          hint: `commit them separately or unstage them (\`git restore --staged -- ${unrelated.map(shellQuote).join(' ')}\`), then run again.`,
          exitCode: ExitCode.usage,
        },
      )
    }
    const changed = await this.changedPaths(rels)
    if (changed.length === 0) return { committed: false }
    const specs = changed.map(literal)
    await this.run('add', (g) => g.raw(['add', '--all', '--', ...specs]))
    // a file touched and put back shows in status but stages nothing
    const files = lines(await this.run('diff', (g) => g.raw(['diff', '--cached', '--name-only', '--', ...specs])))
    if (files.length === 0) return { committed: false }
    const before = await this.headShaOrNull()
    // --only: even if something slipped into the index meanwhile, only these paths are committed
    await this.run('commit', (g) => g.raw(['commit', '--only', '-m', message, '--', ...specs]))
    const sha = await this.headSha()
    // git exits 1 with nothing on stderr when it commits nothing, which simple-git treats as success
    if (sha === before)
      throw new NsopsError(`git commit in ${this.root} did not create a commit for ${files.join(', ')}.`, {
        hint: 'run `git status` and `git commit` by hand to see why (a commit hook?).',
      })
    return { committed: true, sha, files }
  }

  /**
   * The git tree id of a folder as it is on disk now (new, changed and deleted files, as
   * `git add --all` would stage them; ignored files left out), '' when it holds no file.
   * Built in a scratch index, so the user's index is not touched: what a deploy validated
   * can later be compared with what is there, and with what a commit holds.
   */
  async folderTree(dir: string): Promise<string> {
    const rel = this.relative(dir)
    const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-index-'))
    const index = path.join(scratch, 'index')
    try {
      // start from the user's index (its stat cache spares re-reading unchanged files)
      const real = path.resolve(this.root, (await this.git.raw(['rev-parse', '--git-path', 'index'])).trim())
      if (fs.existsSync(real)) fs.copyFileSync(real, index)
      // git itself with GIT_INDEX_FILE (simple-git refuses to pass the user's environment on)
      const g = (args: string[]) =>
        execFileAsync('git', args, { cwd: this.root, env: { ...process.env, GIT_INDEX_FILE: index } })
      try {
        await g(['add', '--all', '--', literal(rel)])
      } catch (err) {
        // no file there now, nor in the index: the folder is empty
        if (!/did not match any files/.test(String((err as { stderr?: string }).stderr))) throw err
      }
      const tree = (await g(['write-tree', `--prefix=${rel}/`]).catch(() => ({ stdout: '' }))).stdout.trim()
      return tree === EMPTY_TREE ? '' : tree
    } catch (err) {
      throw gitFailure('add', this.root, err)
    } finally {
      fs.rmSync(scratch, { recursive: true, force: true })
    }
  }

  /** The tree id of `dir` in a commit, '' when the commit has no such folder. */
  async treeAt(commit: string, dir: string): Promise<string> {
    const out = await this.git
      .raw(['rev-parse', '--verify', '--quiet', `${commit}:${this.relative(dir)}`])
      .catch(() => '')
    return out.trim()
  }

  /** The first parent of a commit, '' for a root commit. */
  async parentOf(sha: string): Promise<string> {
    return (await this.git.raw(['rev-parse', '--verify', '--quiet', `${sha}^`]).catch(() => '')).trim()
  }

  /** The files (relative to `dir`) that differ between two of its trees ('' is the empty folder). */
  async filesBetween(a: string, b: string): Promise<string[]> {
    const out = await this.run('diff-tree', (g) =>
      g.raw(['diff-tree', '-r', '--name-only', a || EMPTY_TREE, b || EMPTY_TREE]),
    )
    return lines(out)
  }

  /**
   * Pushes a commit of the current branch to its upstream, never forcing: `sha` exactly (a
   * commit made on top of it meanwhile stays local), HEAD when none is given. A push rejected
   * because the remote moved on is rebased onto the remote (`pull --rebase --autostash`) and
   * retried once, only while `sha` is still HEAD (a rebase moves the whole branch); when the
   * rebase conflicts it is aborted, so the local commit stays as it was.
   */
  async push(sha?: string): Promise<PushResult> {
    const up = await this.requireUpstream()
    const target = `${up.remote}/${up.remoteBranch}`
    let commit = sha ?? (await this.headSha())
    const refspec = () => `${commit}:refs/heads/${up.remoteBranch}` // no leading '+': never a forced update
    let rebased = false
    try {
      await this.git.raw(['push', up.remote, refspec()])
    } catch (err) {
      if (!nonFastForward.test(errorMessage(err))) throw gitFailure('push', this.root, err)
      const head = await this.headSha()
      if (head !== commit)
        throw new NsopsError(
          `push to ${target} was rejected because the remote has new commits, and ${shortSha(commit)} cannot be rebased onto them: the branch has a newer commit ${shortSha(head)} on top of it, made while the deploy ran. Nothing was pushed; your commits are kept locally.`,
          {
            hint: `in ${this.root}: \`git pull --rebase ${up.remote} ${up.remoteBranch}\`, look at what \`git log @{upstream}..\` lists, then run the deploy again.`,
            cause: err,
          },
        )
      await this.rebaseOnto(up)
      rebased = true
      commit = await this.headSha()
      try {
        await this.git.raw(['push', up.remote, refspec()])
      } catch (again) {
        if (!nonFastForward.test(errorMessage(again))) throw gitFailure('push', this.root, again)
        throw new NsopsError(
          `push to ${target} was rejected twice: the remote moved on again while the commit ${shortSha(await this.headSha())} was being rebased. Your commit is kept locally; nothing was pushed.`,
          {
            hint: `run the deploy again, or push by hand: \`git -C ${shellQuote(this.root)} pull --rebase ${up.remote} ${up.remoteBranch} && git -C ${shellQuote(this.root)} push\`.`,
            cause: again,
          },
        )
      }
    }
    const localSha = commit
    const remoteSha = await this.remoteSha(up.remoteBranch)
    // the push itself succeeded (git said so); a remote already past it means someone pushed
    // on top right after: Flux applies their commit, which contains ours (the deploy checks
    // that by ancestry), so this is no error
    return {
      localSha,
      remoteSha: remoteSha ?? localSha,
      rebased,
      overtaken: remoteSha !== null && remoteSha !== localSha,
    }
  }

  /** The URL `git push` uses for a remote (its pushurl, else its url). */
  async remoteUrl(remote: string): Promise<string | undefined> {
    const out = await this.git.raw(['remote', 'get-url', '--push', remote]).catch(() => '')
    return out.trim() || undefined
  }

  /** Fetches the remote's branch so commits Flux reports can be looked at; never throws (ancestry then says no). */
  async fetchQuietly(remote: string, branch: string): Promise<void> {
    await this.git.raw(['fetch', '--quiet', remote, `refs/heads/${branch}`]).catch(() => undefined)
  }

  /** Whether `ancestor` is `descendant` or one of its ancestors (`git merge-base --is-ancestor`). */
  async isAncestor(ancestor: string, descendant: string): Promise<boolean> {
    try {
      await this.git.raw(['merge-base', '--is-ancestor', ancestor, descendant])
      return true
    } catch {
      return false // not an ancestor (exit 1), or the commit is unknown here
    }
  }

  /** Undoes a commit with a new commit (`git revert`); history is never rewritten. */
  async revertCommit(sha: string, message?: string): Promise<RevertResult> {
    const target = await this.resolveCommit(sha)
    const { staged } = await this.repoState()
    if (staged.length > 0) {
      throw new NsopsError(
        `cannot revert ${shortSha(target)} in ${this.root}: changes are staged (${staged.join(', ')}) and a revert would overwrite them.`,
        {
          hint: `commit them or unstage them (\`git restore --staged -- ${staged.map(shellQuote).join(' ')}\`), then run again.`,
        },
      )
    }
    try {
      await this.git.raw(['revert', '--no-commit', target])
    } catch (err) {
      const msg = errorMessage(err)
      const conflicted = lines(await this.git.raw(['diff', '--name-only', '--diff-filter=U']).catch(() => ''))
      await this.abortRevert()
      if (/would be overwritten/.test(msg)) {
        throw new NsopsError(
          `cannot revert ${shortSha(target)} in ${this.root}: local changes to files it touches would be overwritten. ${firstLines(msg)}`,
          {
            hint: 'commit or stash those changes (`git stash`), then run again.',
            cause: err,
          },
        )
      }
      if (conflicted.length > 0) {
        throw new NsopsError(
          `reverting ${shortSha(target)} conflicts with later commits in ${conflicted.join(', ')}; the revert was aborted and nothing changed.`,
          {
            hint: `revert by hand: \`git revert ${shortSha(target)}\`, resolve the conflicts, \`git revert --continue\`, then push.`,
            cause: err,
          },
        )
      }
      throw gitFailure('revert', this.root, err)
    }
    const files = lines(await this.run('diff', (g) => g.raw(['diff', '--cached', '--name-only'])))
    if (files.length === 0) {
      await this.abortRevert()
      throw new NsopsError(
        `reverting ${shortSha(target)} changes nothing: its changes are already undone on this branch.`,
        {
          hint: '`git log` shows the commits that touched the same files.',
        },
      )
    }
    const subject = (await this.run('log', (g) => g.raw(['log', '-1', '--format=%s', target]))).trim()
    const body = `This reverts commit ${target}.`
    const text = `${message ?? `Revert "${subject}"`}\n\n${body}`
    const before = await this.headSha()
    await this.run('commit', (g) => g.raw(['commit', '-m', text]))
    const after = await this.headSha()
    if (after === before)
      throw new NsopsError(`git commit did not create the revert of ${shortSha(target)} in ${this.root}.`, {
        hint: 'run `git status` to see the state, then `git revert --abort`.',
      })
    return { sha: after, reverted: target }
  }

  async headSha(): Promise<string> {
    const sha = await this.headShaOrNull()
    if (!sha)
      throw new NsopsError(`${this.root} has no commits yet.`, {
        hint: 'make a first commit and push it with `git push -u origin main`.',
      })
    return sha
  }

  /** The commit `branch` points at on the upstream's remote (`git ls-remote`); null when the remote has no such branch. */
  async remoteSha(branch?: string): Promise<string | null> {
    const up = await this.requireUpstream()
    const name = branch ?? up.remoteBranch
    const out = await this.run('ls-remote', (g) => g.raw(['ls-remote', up.remote, `refs/heads/${name}`]))
    const sha = out.trim().split(/\s+/)[0]
    return sha || null
  }

  private async rebaseOnto(up: Upstream): Promise<void> {
    const local = await this.headSha()
    try {
      await this.git.raw(['pull', '--rebase', '--autostash', '--no-edit', up.remote, up.remoteBranch])
      if (!(await this.rebaseInProgress())) return
    } catch (err) {
      if (!(await this.rebaseInProgress())) {
        const msg = errorMessage(err)
        throw new NsopsError(
          `push to ${up.remote}/${up.remoteBranch} was rejected because the remote has new commits, and \`git pull --rebase\` could not start in ${this.root}: ${firstLines(msg)}. Your commit ${shortSha(local)} is kept locally; nothing was pushed.`,
          { hint: hintFor(msg), cause: err },
        )
      }
    }
    const conflicted = lines(await this.git.raw(['diff', '--name-only', '--diff-filter=U']).catch(() => ''))
    await this.run('rebase --abort', (g) => g.raw(['rebase', '--abort']))
    const where = conflicted.length > 0 ? ` in ${conflicted.join(', ')}` : ''
    throw new NsopsError(
      `push to ${up.remote}/${up.remoteBranch} was rejected because the remote has new commits, and rebasing your commit ${shortSha(local)} onto them conflicts${where}. The rebase was aborted: your commit is kept locally, nothing was pushed.`,
      {
        hint: `in ${this.root}: \`git pull --rebase ${up.remote} ${up.remoteBranch}\`, resolve the conflicts (\`git status\` lists them), \`git add\` the files and \`git rebase --continue\`, then \`git push\` (or run the deploy again).`,
      },
    )
  }

  private async rebaseInProgress(): Promise<boolean> {
    for (const dir of ['rebase-merge', 'rebase-apply']) {
      const p = (await this.git.raw(['rev-parse', '--git-path', dir])).trim()
      if (fs.existsSync(path.resolve(this.root, p))) return true
    }
    return false
  }

  private async abortRevert(): Promise<void> {
    // with no revert in progress git says so; the index and tree are then already clean
    await this.git.raw(['revert', '--abort']).catch(() => undefined)
  }

  private async resolveCommit(sha: string): Promise<string> {
    try {
      return (await this.git.raw(['rev-parse', '--verify', '--end-of-options', `${sha}^{commit}`])).trim()
    } catch (err) {
      throw new NsopsError(`${sha} is not a commit in ${this.root}.`, {
        hint: '`git log --oneline` lists the commits on this branch.',
        cause: err,
      })
    }
  }

  private async headShaOrNull(): Promise<string | null> {
    // `rev-parse -q --verify` exits 1 quietly without commits; simple-git then returns ''
    const out = await this.run('rev-parse', (g) => g.raw(['rev-parse', '-q', '--verify', 'HEAD'])).catch(() => '')
    return out.trim() || null
  }

  private async upstream(branch: string): Promise<Upstream | null> {
    if (!branch) return null
    const remote = (await this.run('config', (g) => g.getConfig(`branch.${branch}.remote`))).value
    const merge = (await this.run('config', (g) => g.getConfig(`branch.${branch}.merge`))).value
    if (!remote || !merge) return null
    return { branch, remote, remoteBranch: merge.replace(/^refs\/heads\//, '') }
  }

  /** A repo-relative POSIX path; absolute paths inside the repository are accepted too. */
  private relative(p: string): string {
    const rel = path.relative(this.root, path.resolve(this.root, p))
    if (rel === '..' || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel)) {
      throw new NsopsError(`${p} is outside the repository ${this.root}.`, {
        hint: 'give paths relative to the repository root, e.g. `namespaces/<ns>`.',
      })
    }
    return rel === '' ? '.' : rel.split(path.sep).join('/')
  }

  private async run<T>(what: string, fn: (g: SimpleGit) => Promise<T>): Promise<T> {
    try {
      return await fn(this.git)
    } catch (err) {
      throw gitFailure(what, this.root, err)
    }
  }
}

/**
 * A git URL reduced to what names the repository: host (lower case, default port dropped)
 * and path (without a trailing `.git` or `/`), whatever the scheme, user or password:
 * `git@github.com:me/repo.git`, `ssh://git@github.com/me/repo` and
 * `https://token@github.com/me/repo/` are one repository. Local paths stay paths.
 */
export function normalizeGitUrl(url: string): string {
  let u = url.trim()
  const scp = /^(?:[^@/\s]+@)?([^:/\s]+):(?!\/)(.+)$/.exec(u)
  if (scp && !/^[a-z][a-z0-9+.-]*:\/\//i.test(u)) u = `ssh://${scp[1]}/${scp[2]}`
  let host = ''
  let p = u
  const m = /^([a-z][a-z0-9+.-]*):\/\/(?:[^@/]*@)?([^/]*)(\/.*)?$/i.exec(u)
  if (m) {
    const scheme = m[1].toLowerCase()
    host = m[2].toLowerCase().replace(/:(22|80|443)$/, '')
    if (scheme === 'file') host = ''
    p = m[3] ?? '/'
  } else {
    p = path.resolve(u)
  }
  p = decodeURIComponent(p)
    .replace(/\/+$/, '')
    .replace(/\.git$/, '')
    .replace(/\/+$/, '')
  return `${host}${p}`
}

export function sameRepository(a: string, b: string): boolean {
  return normalizeGitUrl(a) === normalizeGitUrl(b)
}

function fileLists(s: StatusResult): Pick<RepoState, 'staged' | 'unstaged' | 'untracked'> {
  const staged: string[] = []
  const unstaged: string[] = []
  const untracked: string[] = []
  for (const f of s.files) {
    if (f.index === '?') {
      untracked.push(f.path)
      continue
    }
    if (f.index !== ' ') {
      staged.push(f.path)
      if (f.from && f.from !== f.path) staged.push(f.from)
    }
    if (f.working_dir !== ' ') unstaged.push(f.path)
  }
  return { staged, unstaged, untracked }
}

/** git's id of the tree with nothing in it */
const EMPTY_TREE = '4b825dc642cb6eb9a060e54bf8d69288fbee4904'

function isUnder(file: string, dir: string): boolean {
  return dir === '.' || file === dir || file.startsWith(`${dir}/`)
}

/** Paths are names, not globs: `[` or `*` in a file name must not widen what is committed. */
function literal(rel: string): string {
  return `:(literal)${rel}`
}

function lines(out: string): string[] {
  return out
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
}

function firstLines(msg: string, n = 6): string {
  return msg
    .trim()
    .split('\n')
    .filter((l) => l.trim())
    .slice(0, n)
    .join(' ')
    .replace(/\s+/g, ' ')
}

function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`
}

function hintFor(msg: string): string {
  if (/Cannot autostash|not uptodate/.test(msg))
    return 'git could not set your uncommitted changes aside for the rebase; commit or stash them (`git stash -u`), then run again.'
  if (/ENOENT|spawn git/.test(msg))
    return 'git is not installed or not on PATH; install git (e.g. `apt-get install git`) and run again.'
  if (/not a git repository/i.test(msg) && !/does not appear to be a git repository/.test(msg))
    return 'run nsops from a clone of the repository Flux reads.'
  if (
    /Authentication failed|Permission denied|could not read Username|terminal prompts disabled|\b40[13]\b/.test(msg)
  ) {
    return 'the remote refused your credentials: check `git remote -v`, your SSH key (`ssh -T git@HOST`) or credential helper, then run again.'
  }
  if (
    /does not appear to be a git repository|No such remote|No configured push destination|repository '.*' not found/i.test(
      msg,
    )
  ) {
    return 'the remote does not exist or has moved: check `git remote -v` and the upstream (`git branch -vv`).'
  }
  if (
    /Could not resolve host|Connection refused|timed out|unable to access|Network is unreachable|early EOF|Could not read from remote/.test(
      msg,
    )
  ) {
    return 'the remote is unreachable: check the network and the remote URL (`git remote -v`), then run again.'
  }
  return 'run the same git command by hand in the repository to see the full output.'
}

function gitFailure(what: string, root: string, err: unknown): NsopsError {
  if (err instanceof NsopsError) return err
  const msg = errorMessage(err)
  return new NsopsError(`git ${what} failed in ${root}: ${firstLines(msg)}`, { hint: hintFor(msg), cause: err })
}
