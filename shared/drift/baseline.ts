// What "git" means for a drift report, as a directory tree to build from:
// - `applied` (default): the revision Flux last applied (the Kustomization's
//   status.lastAppliedRevision). The local clone is the same repository, so `git archive` of
//   that commit gives its tree; when the clone lacks the commit (not fetched yet), the
//   GitRepository's artifact is that revision's tree too, served by source-controller.
// - any git revision (`HEAD`, a branch, a SHA): `git archive` of it.
// - `worktree`: the files as they are now, uncommitted edits included.
// Archives go to a temp dir that `dispose` removes; nothing in the clone changes (no
// worktree metadata, no checkout, no fetch). Only the folders the build needs are unpacked
// when the caller names them (the namespace's folder, the Kustomization's path): writing and
// removing a whole repository's tree was most of a drift's time. A build that needs more
// (a base outside those folders) asks for the whole tree with `widen`.
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import os from 'node:os'
import path from 'node:path'
import { pipeline } from 'node:stream/promises'
import { promisify } from 'node:util'
import { NsopsError, errorMessage } from '../core/errors.ts'

const run = promisify(execFile)

export type BaselineKind = 'applied' | 'revision' | 'worktree'

export interface Baseline {
  kind: BaselineKind
  /** what was asked for: `applied`, `HEAD`, a SHA, `worktree` */
  requested: string
  /** the commit, when there is one (not for worktree) */
  sha?: string
  /** Flux's revision string, for `applied` (`main@sha1:…`) */
  revision?: string
  /** where the tree came from */
  from: 'git' | 'artifact' | 'worktree'
  /** the tree's root (the repository root inside it) */
  dir: string
  /** only some folders of the commit were unpacked at first (see `widen`) */
  partial: boolean
  /** unpacks the whole commit into `dir`, for a build that reaches outside the folders named */
  widen(): Promise<void>
  dispose(): void
}

const ERROR = 2

async function git(repo: string, ...args: string[]): Promise<string> {
  return (await run('git', ['-C', repo, ...args], { maxBuffer: 64 * 1024 * 1024 })).stdout.trim()
}

export async function repoRootOf(dir: string): Promise<string> {
  // the usual case, a clone's own root, without a git process (each costs ~10 ms)
  if (fs.existsSync(path.join(dir, '.git'))) return path.resolve(dir)
  try {
    return await git(dir, 'rev-parse', '--show-toplevel')
  } catch (err) {
    throw new NsopsError(`${dir} is not inside a git repository: ${errorMessage(err).split('\n')[0]}`, {
      hint: 'run drift from a clone of the repository Flux reads.',
      exitCode: ERROR,
    })
  }
}

async function hasCommit(repo: string, sha: string): Promise<boolean> {
  try {
    await git(repo, 'cat-file', '-e', `${sha}^{commit}`)
    return true
  } catch {
    return false
  }
}

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-drift-'))
}

/** `git archive <sha> [-- paths]` unpacked into `dir`: that commit's tree (or those folders of it), nothing else touched. */
async function unpack(repo: string, sha: string, dir: string, paths: string[] = []): Promise<void> {
  // tar reads git's stream directly (no tarball held in memory); both must succeed: a path
  // the commit lacks fails git, not tar
  const git = spawn('git', ['-C', repo, 'archive', '--format=tar', sha, '--', ...paths], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const tar = spawn('tar', ['-x', '-C', dir], { stdio: ['pipe', 'ignore', 'pipe'] })
  git.stdout.pipe(tar.stdin)
  tar.stdin.on('error', () => {}) // EPIPE when tar gave up: its exit code says why
  const exited = (p: ChildProcess, name: string) =>
    new Promise<void>((resolve, reject) => {
      let stderr = ''
      p.stderr?.on('data', (d: Buffer) => {
        stderr += d.toString()
      })
      p.on('error', reject)
      p.on('close', (code) =>
        code === 0 ? resolve() : reject(new Error(`${name} exited with ${code}: ${stderr.trim()}`)),
      )
    })
  await Promise.all([exited(git, 'git archive'), exited(tar, 'tar')])
}

/** The commit's tree in a temp dir: only `paths` when given and present in it, else all of it. */
async function archive(
  repo: string,
  sha: string,
  paths: string[],
): Promise<{ dir: string; partial: boolean; widen(): Promise<void> }> {
  const dir = tempDir()
  const readError = (err: unknown) =>
    new NsopsError(`could not read commit ${sha.slice(0, 12)} from ${repo}: ${errorMessage(err).split('\n')[0]}`, {
      exitCode: ERROR,
      cause: err,
    })
  let partial = false
  const whole = async () => {
    fs.rmSync(dir, { recursive: true, force: true })
    fs.mkdirSync(dir)
    await unpack(repo, sha, dir)
    partial = false
  }
  try {
    // a folder the commit does not have makes git archive fail: then the whole tree
    if (paths.length)
      partial = await unpack(repo, sha, dir, paths).then(
        () => true,
        () => false,
      )
    if (!partial) await whole()
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true })
    throw readError(err)
  }
  return {
    dir,
    partial,
    widen: async () => {
      if (partial)
        await whole().catch((err) => {
          throw readError(err)
        })
    },
  }
}

/** The source's artifact (a .tar.gz of the revision's tree) unpacked into a temp dir. */
async function fetchArtifact(url: string): Promise<string> {
  const dir = tempDir()
  const file = path.join(dir, '.artifact.tar.gz')
  try {
    await new Promise<void>((resolve, reject) => {
      const req = (url.startsWith('https:') ? https : http).get(url, (res) => {
        if (res.statusCode !== 200) {
          res.resume()
          reject(new Error(`HTTP ${res.statusCode}`))
          return
        }
        pipeline(res, fs.createWriteStream(file)).then(resolve, reject)
      })
      req.setTimeout(30_000, () => req.destroy(new Error('no answer within 30 s')))
      req.on('error', reject)
    })
    await run('tar', ['-xzf', file, '-C', dir])
    fs.rmSync(file)
    return dir
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true })
    throw err
  }
}

/** `main@sha1:abc…` or `sha1:abc…` or a bare SHA → the SHA. */
export function shaOf(revision: string | undefined): string | undefined {
  if (!revision) return undefined
  const m = /(?:^|[@:])([0-9a-f]{40}|[0-9a-f]{64})$/.exec(revision)
  return m?.[1]
}

export interface AppliedSource {
  /** status.lastAppliedRevision of the Kustomization */
  revision?: string
  /** the GitRepository's status.artifact (a promise: it is read only when the clone lacks the commit) */
  artifact?: { url?: string; revision?: string } | Promise<{ url?: string; revision?: string } | undefined>
  /** `Kustomization/flux-system/demo`, for messages */
  kustomization: string
}

/**
 * The tree to build from. `paths` (relative to the repository root) are the folders the build
 * needs; when given, only they are unpacked from git (the tree is `partial` until `widen`).
 */
export async function resolveBaseline(
  requested: string,
  repoDir: string,
  applied?: AppliedSource,
  paths: string[] = [],
): Promise<Baseline> {
  const repo = await repoRootOf(repoDir)
  const noop = () => {}
  const whole = { partial: false, widen: async () => {} }
  if (requested === 'worktree')
    return { kind: 'worktree', requested, from: 'worktree', dir: repo, ...whole, dispose: noop }
  const done = (dir: string) => () => fs.rmSync(dir, { recursive: true, force: true })
  const fromGit = async (sha: string) => {
    const tree = await archive(repo, sha, paths)
    return { ...tree, dispose: done(tree.dir) }
  }

  if (requested === 'applied') {
    if (!applied) {
      throw new NsopsError('--baseline applied needs a Flux Kustomization that manages the namespace, and none does.', {
        hint: 'use --baseline HEAD or --baseline worktree for a namespace not under Flux.',
        exitCode: ERROR,
      })
    }
    const sha = shaOf(applied.revision)
    if (!sha) {
      throw new NsopsError(
        `${applied.kustomization} has not applied any revision yet (no status.lastAppliedRevision), so there is no "applied" baseline.`,
        {
          hint: 'wait for Flux to apply it (`flux get kustomizations`), or compare with --baseline HEAD.',
          exitCode: ERROR,
        },
      )
    }
    // the clone usually has the commit: unpack it straight away, and ask whether the commit
    // is there only when that fails
    try {
      return { kind: 'applied', requested, sha, revision: applied.revision, from: 'git', ...(await fromGit(sha)) }
    } catch (err) {
      if (await hasCommit(repo, sha)) throw err
    }
    const art = await applied.artifact
    if (art?.url && shaOf(art.revision) === sha) {
      try {
        const dir = await fetchArtifact(art.url)
        return {
          kind: 'applied',
          requested,
          sha,
          revision: applied.revision,
          from: 'artifact',
          dir,
          ...whole,
          dispose: done(dir),
        }
      } catch {
        /* fall through to the error that says what to do */
      }
    }
    throw new NsopsError(
      `${applied.kustomization} last applied ${applied.revision}, and this clone does not have commit ${sha.slice(0, 12)} (nor does the source's artifact match it).`,
      {
        hint: 'fetch it (`git fetch`) and run again, or compare with --baseline HEAD.',
        exitCode: ERROR,
      },
    )
  }

  let sha: string
  try {
    sha = await git(repo, 'rev-parse', '--verify', `${requested}^{commit}`)
  } catch {
    throw new NsopsError(`--baseline ${requested} is not a commit of ${repo}.`, {
      hint: 'give `applied` (default), `worktree`, or a git revision such as HEAD, a branch or a SHA.',
      exitCode: ERROR,
    })
  }
  return { kind: 'revision', requested, sha, from: 'git', ...(await fromGit(sha)) }
}
