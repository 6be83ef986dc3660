// Builds of a committed tree, kept on disk by what they were built from. A drift report
// builds the namespace as git had it at one commit (the revision Flux applied, or HEAD):
// unpacking that commit's folders and running kustomize is most of a report's own time, and
// the answer cannot change while those folders do not. The key is git's own content hash of
// each folder (its tree id: every file's name and bytes below it), the folder the build ran
// in and the kustomize-server binary, so a hit is the build kustomize would make again.
// Stored only for builds that read nothing but those folders (the partial tree sufficed) and
// reference nothing remote (a remote base can change under the same tree id).
// NSOPS_DRIFT_CACHE=0 turns it off (bench/drift measures both).
import { execFile } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { parse } from 'yaml'
import type { ManifestObject } from '../kustomize.ts'
import { cacheDir } from '../paths.ts'
import { toolPath } from '../tools/provision.ts'

const run = promisify(execFile)
const KEEP = 200
const KUSTOMIZATION_FILES = new Set(['kustomization.yaml', 'kustomization.yml', 'Kustomization'])
// how kustomize recognises a remote base or resource (api/internal/git/repospec.go)
const REMOTE = /^(\w+:\/\/|git@|github\.com\/|gitlab\.com\/|bitbucket\.org\/|gh:|git::)/
// the fields that load other kustomizations or files by location
const LOADING = ['resources', 'bases', 'components', 'crds', 'configurations', 'generators', 'transformers', 'validators']

export interface CachedBuild {
  /** the folder that was built, relative to the repository root */
  buildPath: string
  objects: ManifestObject[]
}

function dir(): string {
  return path.join(cacheDir(), 'drift-builds')
}

export function buildCacheEnabled(): boolean {
  return process.env.NSOPS_DRIFT_CACHE !== '0' && process.env.NSOPS_KUSTOMIZE_JSON !== '0'
}

/**
 * The cache key of building `folders` at revision `rev` (and the commit it names), or undefined when it cannot be had (the
 * clone lacks the commit or a folder, no folders named, the cache off). One git process.
 */
export async function buildKey(repo: string, rev: string, folders: string[], what: Record<string, unknown>): Promise<{ key: string; sha: string } | undefined> {
  // a revision that reads as an option is never a key (git 2.39's rev-parse prints --end-of-options rather than honouring it)
  if (!buildCacheEnabled() || folders.length === 0 || rev.startsWith('-')) return undefined
  try {
    const [lines, server] = await Promise.all([
      run('git', ['-C', repo, 'rev-parse', `${rev}^{commit}`, ...folders.map((f) => `${rev}:${f}`)]).then((r) => r.stdout.trim().split('\n')),
      toolPath('kustomize-server'),
    ])
    const [sha, ...trees] = lines
    if (trees.length !== folders.length) return undefined
    const st = fs.statSync(server)
    return { sha, key: crypto.createHash('sha256').update(JSON.stringify({ trees, folders, what, server, size: st.size, mtime: st.mtimeMs })).digest('hex').slice(0, 32) }
  } catch {
    return undefined
  }
}

export function readBuild(key: string | undefined): CachedBuild | undefined {
  if (!key) return undefined
  try {
    const hit = JSON.parse(fs.readFileSync(path.join(dir(), `${key}.json`), 'utf8')) as CachedBuild
    return Array.isArray(hit.objects) && typeof hit.buildPath === 'string' ? hit : undefined
  } catch {
    return undefined
  }
}

/** Keeps a build made from the unpacked `folders` under `treeDir`, unless one of them references something remote. */
export function storeBuild(key: string | undefined, treeDir: string, folders: string[], build: CachedBuild): void {
  if (!key || folders.some((f) => referencesRemote(path.join(treeDir, f)))) return
  try {
    fs.mkdirSync(dir(), { recursive: true })
    const file = path.join(dir(), `${key}.json`)
    const tmp = `${file}.${process.pid}.tmp`
    fs.writeFileSync(tmp, JSON.stringify(build))
    fs.renameSync(tmp, file)
    prune()
  } catch { /* a cache that cannot be written is only slower */ }
}

function referencesRemote(folder: string): boolean {
  let entries: fs.Dirent[]
  try { entries = fs.readdirSync(folder, { withFileTypes: true, recursive: true }) } catch { return true }
  return entries.some((e) => {
    if (!e.isFile() || !KUSTOMIZATION_FILES.has(e.name)) return false
    let doc: Record<string, unknown>
    try { doc = parse(fs.readFileSync(path.join(e.parentPath ?? e.path, e.name), 'utf8')) ?? {} } catch { return true }
    if (doc.helmCharts || doc.helmChartInflationGenerator) return true // charts come from elsewhere
    return LOADING.some((field) => Array.isArray(doc[field]) && (doc[field] as unknown[]).some((v) => typeof v === 'string' && REMOTE.test(v.trim())))
  })
}

/** The newest KEEP builds stay. */
function prune(): void {
  const files = fs.readdirSync(dir()).filter((f) => f.endsWith('.json'))
  if (files.length <= KEEP) return
  const aged = files.map((f) => ({ f, t: fs.statSync(path.join(dir(), f)).mtimeMs })).sort((a, b) => b.t - a.t)
  for (const { f } of aged.slice(KEEP)) fs.rmSync(path.join(dir(), f), { force: true })
}
