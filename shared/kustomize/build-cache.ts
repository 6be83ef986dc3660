// Builds kept on disk, so that building what was built before costs a read instead of a
// kustomize run. Two keys, one rule: a hit is exactly what kustomize would build again.
//
// - A commit's folders (drift's baseline): keyed by git's own content hash of each folder
//   (its tree id: every file's name and bytes below it), the folder the build ran in and the
//   kustomize-server binary. Stored only for builds that read nothing but those folders (the
//   partial tree sufficed).
// - A working tree (validate, deploy, CI): kustomize-server lists every path the build looked
//   at (each file read, each directory listed or tested, each file looked for and missing);
//   the build is reused while each of them has the same mtime, size and inode (the rule make
//   and this repo's script bundles use). A build during which an input changed is not kept.
//
// Never kept: builds that reference a remote base or a Helm chart (those change under the
// same files), builds with in-memory overrides. NSOPS_BUILD_CACHE=0 turns both off (the
// benches measure with and without); NSOPS_DRIFT_CACHE=0 only drift's.
import { execFile } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { parse } from 'yaml'
// kustomize.ts imports this module too: its constant is read only inside functions here
import type { ManifestObject } from './build.ts'
import { KUSTOMIZATION_FILES, LOADING_FIELDS } from './files.ts'
import { cacheDir } from '../core/paths.ts'
import { writePrivateFile } from '../core/private-files.ts'
import { toolPath } from '../tools/provision.ts'

const run = promisify(execFile)
const KEEP = 200
// how kustomize recognises a remote base or resource (api/internal/git/repospec.go)
const REMOTE = /^(\w+:\/\/|git@|github\.com\/|gitlab\.com\/|bitbucket\.org\/|gh:|git::)/

export interface CachedBuild {
  /** the folder that was built, relative to the repository root */
  buildPath: string
  objects: ManifestObject[]
  /** what the caller keeps beside the build (drift: what it read besides git, the HelmReleases it rendered) */
  extra?: unknown
}

function treeBuildsDir(): string {
  return path.join(cacheDir(), 'drift-builds')
}

function enabled(): boolean {
  return process.env.NSOPS_BUILD_CACHE !== '0' && process.env.NSOPS_KUSTOMIZE_JSON !== '0'
}

export function buildCacheEnabled(): boolean {
  return enabled() && process.env.NSOPS_DRIFT_CACHE !== '0'
}

/**
 * The cache key of building `folders` at revision `rev` (and the commit it names), or undefined when it cannot be had (the
 * clone lacks the commit or a folder, no folders named, the cache off). One git process, none for a
 * commit id whose trees were asked before.
 */
export async function buildCacheKey(
  repo: string,
  rev: string,
  folders: string[],
  what: Record<string, unknown>,
): Promise<{ key: string; sha: string } | undefined> {
  // a revision that reads as an option is never a key (git 2.39's rev-parse prints --end-of-options rather than honouring it)
  if (!buildCacheEnabled() || folders.length === 0 || rev.startsWith('-')) return undefined
  try {
    const [lines, server] = await Promise.all([treeIds(repo, rev, folders), toolPath('kustomize-server')])
    const [sha, ...trees] = lines
    if (trees.length !== folders.length) return undefined
    const st = fs.statSync(server)
    return {
      sha,
      key: crypto
        .createHash('sha256')
        .update(JSON.stringify({ trees, folders, what, server, size: st.size, mtime: st.mtimeMs }))
        .digest('hex')
        .slice(0, 32),
    }
  } catch {
    return undefined
  }
}

/**
 * The commit `rev` names and the tree id of each folder in it (`git rev-parse`). A full commit
 * id names the same trees forever (git's ids are hashes of the content), so for one the answer
 * is kept beside the builds and a later drift of the same applied revision needs no git process
 * (about 10 ms of a fresh `just drift`). Only answers git gave are kept.
 */
async function treeIds(repo: string, rev: string, folders: string[]): Promise<string[]> {
  const fixed = /^([0-9a-f]{40}|[0-9a-f]{64})$/.test(rev)
  const file = path.join(treeBuildsDir(), 'tree-ids')
  // per clone: one that lacks the commit still says so (drift then reads the source's artifact)
  const key = JSON.stringify([path.resolve(repo), rev, folders])
  let known: Record<string, string[]> = {}
  if (fixed) {
    try {
      known = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, string[]>
      if (Array.isArray(known[key])) return known[key]
    } catch {
      known = {}
    }
  }
  const lines = (
    await run('git', ['-C', repo, 'rev-parse', `${rev}^{commit}`, ...folders.map((f) => `${rev}:${f}`)])
  ).stdout
    .trim()
    .split('\n')
  if (fixed && lines.length === folders.length + 1 && lines[0] === rev) {
    try {
      // the newest KEEP answers stay (insertion order: a re-added key moves to the end)
      delete known[key]
      known[key] = lines
      const kept = Object.fromEntries(Object.entries(known).slice(-KEEP))
      const tmp = `${file}.${process.pid}.tmp`
      writePrivateFile(tmp, JSON.stringify(kept))
      fs.renameSync(tmp, file)
    } catch {
      /* a cache that cannot be written is only slower */
    }
  }
  return lines
}

export function readBuild(key: string | undefined): CachedBuild | undefined {
  if (!key) return undefined
  try {
    const hit = JSON.parse(fs.readFileSync(path.join(treeBuildsDir(), `${key}.json`), 'utf8')) as CachedBuild
    return Array.isArray(hit.objects) && typeof hit.buildPath === 'string' ? hit : undefined
  } catch {
    return undefined
  }
}

/** Keeps a build made from the unpacked `folders` under `treeDir`, unless one of them references something remote. */
export function storeBuild(key: string | undefined, treeDir: string, folders: string[], build: CachedBuild): void {
  if (!key || folders.some((f) => referencesRemote(path.join(treeDir, f)))) return
  try {
    const file = path.join(treeBuildsDir(), `${key}.json`)
    const tmp = `${file}.${process.pid}.tmp`
    writePrivateFile(tmp, JSON.stringify(build))
    fs.renameSync(tmp, file)
    prune(treeBuildsDir())
  } catch {
    /* a cache that cannot be written is only slower */
  }
}

function referencesRemote(folder: string): boolean {
  let entries: fs.Dirent[]
  try {
    entries = fs.readdirSync(folder, { withFileTypes: true, recursive: true })
  } catch {
    return true
  }
  return remoteIn(entries.filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name)))
}

/** Whether any of these files is a kustomization that loads something remote (or a Helm chart). */
function remoteIn(files: string[]): boolean {
  return files.some((file) => {
    if (!KUSTOMIZATION_FILES.includes(path.basename(file))) return false
    let doc: Record<string, unknown>
    try {
      doc = parse(fs.readFileSync(file, 'utf8')) ?? {}
    } catch {
      return fs.existsSync(file)
    }
    if (doc.helmCharts || doc.helmChartInflationGenerator) return true // charts come from elsewhere
    return LOADING_FIELDS.some(
      (field) =>
        Array.isArray(doc[field]) &&
        (doc[field] as unknown[]).some((v) => typeof v === 'string' && REMOTE.test(v.trim())),
    )
  })
}

// ---- working trees ----

/** What the cache compares: absent, or kind, mtime, size and inode. */
function stampOf(p: string): string {
  return stampOfStat(fs.statSync(p, { throwIfNoEntry: false }))
}

function stampOfStat(st: fs.Stats | undefined): string {
  return st ? `${st.isDirectory() ? 'd' : 'f'}:${st.mtimeMs}:${st.size}:${st.ino}` : '-'
}

interface WorkEntry {
  server: string
  inputs: [string, string][]
  objects: ManifestObject[]
}

function workFile(dir: string, loadRestrictor: string): string {
  return path.join(
    cacheDir(),
    'builds',
    `${crypto.createHash('sha256').update(`${dir}\0${loadRestrictor}`).digest('hex').slice(0, 32)}.json`,
  )
}

function serverStamp(server: string): string {
  return `${server}:${stampOf(server)}`
}

export function workBuildsEnabled(): boolean {
  return enabled()
}

/** The kept build of `dir` (realpath) by `server`, when every path it looked at is as it was. */
export function readWorkBuild(dir: string, loadRestrictor: string, server: string): ManifestObject[] | undefined {
  if (!enabled()) return undefined
  try {
    const entry = JSON.parse(fs.readFileSync(workFile(dir, loadRestrictor), 'utf8')) as WorkEntry
    if (entry.server !== serverStamp(server) || !Array.isArray(entry.objects)) return undefined
    return entry.inputs.every(([p, stamp]) => stampOf(p) === stamp) ? entry.objects : undefined
  } catch {
    return undefined
  }
}

/**
 * Keeps a build of `dir` made from `inputs` (the paths kustomize-server says it looked at),
 * unless one of them changed after `startedAt` (the build may have read the old bytes) or a
 * kustomization among them loads something remote.
 */
export function storeWorkBuild(
  dir: string,
  loadRestrictor: string,
  server: string,
  inputs: string[],
  objects: ManifestObject[],
  startedAt: number,
): void {
  if (!enabled() || inputs.length === 0) return
  try {
    const stats = inputs.map((p) => fs.statSync(p, { throwIfNoEntry: false }))
    const stamps = inputs.map((p, i): [string, string] => [p, stampOfStat(stats[i])])
    // mtimes have a coarse grain on some filesystems: a change within a second of the build could hide
    const racy = stats.some((st) => (st?.mtimeMs ?? 0) > startedAt - 1000)
    if (racy || remoteIn(inputs)) return
    const file = workFile(dir, loadRestrictor)
    const tmp = `${file}.${process.pid}.tmp`
    writePrivateFile(tmp, JSON.stringify({ server: serverStamp(server), inputs: stamps, objects } satisfies WorkEntry))
    fs.renameSync(tmp, file)
    prune(path.dirname(file))
  } catch {
    /* a cache that cannot be written is only slower */
  }
}

/** The newest KEEP builds in `folder` stay. */
function prune(folder: string): void {
  const files = fs.readdirSync(folder).filter((f) => f.endsWith('.json'))
  if (files.length <= KEEP) return
  const aged = files.map((f) => ({ f, t: fs.statSync(path.join(folder, f)).mtimeMs })).sort((a, b) => b.t - a.t)
  for (const { f } of aged.slice(KEEP)) fs.rmSync(path.join(folder, f), { force: true })
}
