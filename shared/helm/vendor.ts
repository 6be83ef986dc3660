// Vendors the charts a chartfile pins. From an HTTP repository without the helm binary: the
// repository's index.yaml names the archive and its sha256, and the archive is checked against
// it. From an oci:// repository through the pinned helm (`helm pull`, which speaks the
// registry's auth and checks the archive against the digest the chart's manifest names); the
// manifest's digest is kept in the lock, so a tag that later names another chart is refused.
// Either way the archive is unpacked beside its final place and renamed in, so a chart
// directory is always one whole version. `<dest>/.vendor-lock.json` records what each
// directory holds; a chart whose directory still matches it costs no request at all.
import { execFile } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { createReadStream, createWriteStream } from 'node:fs'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { ReadableStream as WebReadableStream } from 'node:stream/web'
import { promisify } from 'node:util'
import semver from 'semver'
import * as tar from 'tar'
import { parse as parseYaml } from 'yaml'
import { NsopsError, errorMessage } from '../core/errors.ts'
import { isPlainHttpRegistry } from '../core/registry-host.ts'
import { toolPath } from '../tools/provision.ts'
import { loadChartfile, type ChartRequirement, type Chartfile } from './chartfile.ts'

export const LOCK_FILE = '.vendor-lock.json'

const INDEX_TIMEOUT_MS = 60_000
const ARCHIVE_TIMEOUT_MS = 300_000

export interface VendoredChart {
  /** directory under dest */
  directory: string
  /** `repo/name` as in the chartfile */
  chart: string
  name: string
  version: string
  /** the repository URL from the chartfile */
  repository: string
  /** sha256 (hex) of the archive that was unpacked */
  digest: string
  /** from an oci:// repository: the digest of the chart's manifest the tag named (sha256:…) */
  manifestDigest?: string
}

export interface VendorSummary {
  fetched: VendoredChart[]
  unchanged: VendoredChart[]
  /** directories we had vendored that the chartfile no longer requires */
  removed: string[]
  dest: string
}

export type VendorEvent =
  | { step: 'index'; url: string }
  | { step: 'download'; chart: string; version: string; url: string }
  | { step: 'unpacked'; chart: string; version: string; directory: string }
  | { step: 'unchanged'; chart: string; version: string; directory: string }
  | { step: 'removed'; directory: string }
  | { step: 'warning'; message: string }

export interface VendorOptions {
  /** path of chartfile.yaml */
  chartfile: string
  /** where charts go; default `<dir of chartfile>/<directory from the chartfile, default charts>` */
  dest?: string
  onProgress?: (event: VendorEvent) => void
  /** the helm binary that pulls oci:// charts; default: the pinned helm */
  helm?: string
}

interface LockFile {
  version: 1
  charts: Record<string, VendoredChart>
}

interface IndexEntry {
  version: string
  urls: string[]
  digest?: string
}

interface Planned {
  req: ChartRequirement
  repoUrl: string
  /** where the archive comes from: its URL, or the oci:// reference */
  archiveUrl: string
  /** HTTP: the sha256 the index names, checked against the download */
  digest?: string
  /** OCI: the archive helm pulled (already checked against its manifest) and the manifest's digest */
  pulled?: { file: string; manifestDigest: string }
}

export async function vendorCharts(opts: VendorOptions): Promise<VendorSummary> {
  const cf = await loadChartfile(opts.chartfile)
  const dest = path.resolve(opts.dest ?? path.resolve(path.dirname(cf.path), cf.directory))
  const progress = opts.onProgress ?? (() => {})

  const lock = await readLock(dest, progress)
  const summary: VendorSummary = { fetched: [], unchanged: [], removed: [], dest }
  const stale: ChartRequirement[] = []
  for (const req of cf.requires) {
    const locked = lock.charts[req.directory]
    if (locked && (await matchesLock(req, repoUrlOf(cf, req), locked, dest))) {
      summary.unchanged.push(locked)
      progress({ step: 'unchanged', chart: req.chart, version: req.version, directory: req.directory })
    } else {
      stale.push(req)
    }
  }

  // Resolve every stale chart before downloading any, so a wrong pin fails with nothing changed
  // (an OCI chart is resolved by pulling it, into a folder of its own until it is unpacked).
  const pulls = stale.some((r) => isOci(repoUrlOf(cf, r)))
    ? await fs.mkdtemp(path.join(os.tmpdir(), 'nsops-oci-charts-'))
    : undefined
  try {
    const oci = pulls ? { dir: pulls, helm: opts.helm ?? (await toolPath('helm')), lock } : undefined
    const plan = await resolve(cf, stale, progress, oci)

    await fs.mkdir(dest, { recursive: true })
    for (const p of plan) {
      const vendored = await fetchAndUnpack(p, dest, progress)
      lock.charts[p.req.directory] = vendored
      await writeLock(dest, lock)
      summary.fetched.push(vendored)
    }
  } finally {
    if (pulls) await fs.rm(pulls, { recursive: true, force: true })
  }

  const wanted = new Set(cf.requires.map((r) => r.directory))
  for (const dir of Object.keys(lock.charts).sort()) {
    if (wanted.has(dir)) continue
    await fs.rm(path.join(dest, dir), { recursive: true, force: true })
    delete lock.charts[dir]
    await writeLock(dest, lock)
    summary.removed.push(dir)
    progress({ step: 'removed', directory: dir })
  }
  return summary
}

/** One line per chart for a CLI: "fetched redis 18.19.4", "up to date: redis 18.19.4", "removed old". */
export function vendorSummaryLines(s: VendorSummary): string[] {
  return [
    ...s.fetched.map((c) => `fetched ${c.directory} ${c.version}`),
    ...s.unchanged.map((c) => `up to date: ${c.directory} ${c.version}`),
    ...s.removed.map((d) => `removed ${d}`),
  ]
}

function repoUrlOf(cf: Chartfile, req: ChartRequirement): string {
  // The chartfile parser guarantees the repository exists.
  return cf.repositories.find((r) => r.name === req.repository)!.url
}

function isOci(repoUrl: string): boolean {
  return repoUrl.startsWith('oci://')
}

const run = promisify(execFile)

/**
 * `helm pull oci://<repository>/<name> --version <version>` into `dir`: the archive, and the
 * digest of the manifest the tag named. helm checks the archive against the digest that
 * manifest gives the chart layer; what it refuses is refused here in the chartfile's words.
 */
async function pullOci(
  cf: Chartfile,
  req: ChartRequirement,
  repoUrl: string,
  oci: { dir: string; helm: string; lock: LockFile },
  progress: (e: VendorEvent) => void,
): Promise<Planned> {
  const ref = `${repoUrl.replace(/\/+$/, '')}/${req.name}`
  const host = new URL(repoUrl).host
  const dir = path.join(oci.dir, req.directory)
  await fs.mkdir(dir, { recursive: true })
  progress({ step: 'download', chart: req.chart, version: req.version, url: ref })
  const args = ['pull', ref, '--version', req.version, '--destination', dir]
  if (isPlainHttpRegistry(host)) args.push('--plain-http')
  let output: string
  try {
    const { stdout, stderr } = await run(oci.helm, args, { timeout: ARCHIVE_TIMEOUT_MS, maxBuffer: 16 << 20 })
    output = stdout + stderr
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string; killed?: boolean }
    const said =
      (e.stderr ?? '')
        .trim()
        .split('\n')
        .pop()
        ?.replace(/^Error: /, '') || errorMessage(err)
    if (/mismatch(ed)? digest|digest mismatch/i.test(said)) {
      throw new NsopsError(
        `Refused ${req.chart} ${req.version}: the chart archive ${ref}:${req.version} does not match the digest its manifest names (helm: ${said}). Nothing was unpacked.`,
        {
          hint: 'The registry serves a blob that is not what the manifest promises: corrupted or tampered. Do not vendor it; tell whoever runs the registry.',
        },
      )
    }
    if (/\bnot found\b/i.test(said)) {
      throw new NsopsError(
        `${cf.path}:${req.line}: chart ${req.chart} has no version ${req.version} in ${repoUrl} (no tag ${req.version} on ${ref}).`,
        { hint: 'Check the chart name, the repository URL and the version: each version is a tag in the registry.' },
      )
    }
    throw new NsopsError(
      `Could not pull ${ref}:${req.version} for chart ${req.chart}: ${e.killed ? 'timed out' : said}.`,
      {
        cause: err,
        hint: `Are you offline? Otherwise check the repository URL of "${req.repository}" in the chartfile; a registry that needs credentials takes \`helm registry login ${host}\` first.`,
      },
    )
  }
  // helm (on stderr): "Pulled: HOST/PATH/NAME:VERSION" and "Digest: sha256:…"
  const manifestDigest = /^Digest: (sha256:[0-9a-f]{64})$/m.exec(output)?.[1]
  const file = (await fs.readdir(dir)).find((f) => f.endsWith('.tgz'))
  if (!manifestDigest || !file)
    throw new NsopsError(`helm pull ${ref} --version ${req.version} left no chart archive: ${output.trim()}`, {
      hint: 'Run the same helm pull by hand to see what the registry serves.',
    })
  // an OCI tag can be moved: the lock says which manifest this chart and version had
  const locked = oci.lock.charts[req.directory]
  if (
    locked?.manifestDigest &&
    locked.chart === req.chart &&
    locked.version === req.version &&
    locked.repository === repoUrl &&
    locked.manifestDigest !== manifestDigest
  ) {
    throw new NsopsError(
      `Refused ${req.chart} ${req.version}: the tag ${ref}:${req.version} now names the manifest ${manifestDigest}, but ${req.directory}/ was vendored from ${locked.manifestDigest}. Nothing was unpacked.`,
      {
        hint: `Someone pushed another chart under the same version. If that is intended, delete ${req.directory}/ from ${LOCK_FILE} and vendor again; otherwise pin a version nobody rewrote.`,
      },
    )
  }
  return { req, repoUrl, archiveUrl: `${ref}:${req.version}`, pulled: { file: path.join(dir, file), manifestDigest } }
}

async function matchesLock(
  req: ChartRequirement,
  repoUrl: string,
  locked: VendoredChart,
  dest: string,
): Promise<boolean> {
  if (locked.chart !== req.chart || locked.version !== req.version || locked.repository !== repoUrl) return false
  // The lock says what we unpacked; the directory must still hold it (not deleted, not swapped by hand).
  const meta = await readChartYaml(path.join(dest, req.directory)).catch(() => undefined)
  return meta?.name === req.name && meta.version === req.version
}

async function resolve(
  cf: Chartfile,
  reqs: ChartRequirement[],
  progress: (e: VendorEvent) => void,
  oci: { dir: string; helm: string; lock: LockFile } | undefined,
): Promise<Planned[]> {
  const indexes = new Map<string, { url: string; entries: Record<string, IndexEntry[]> }>()
  const plan: Planned[] = []
  for (const req of reqs) {
    const repoUrl = repoUrlOf(cf, req)
    if (isOci(repoUrl)) {
      plan.push(await pullOci(cf, req, repoUrl, oci!, progress))
      continue
    }
    let index = indexes.get(repoUrl)
    if (!index) {
      const url = new URL('index.yaml', withSlash(repoUrl)).href
      progress({ step: 'index', url })
      index = { url, entries: parseIndex(await download(url, INDEX_TIMEOUT_MS, req), url) }
      indexes.set(repoUrl, index)
    }
    const versions = index.entries[req.name]
    if (!versions || versions.length === 0) {
      const names = Object.keys(index.entries).sort()
      throw new NsopsError(
        `${cf.path}:${req.line}: chart ${req.chart} is not in the repository ${repoUrl} (${names.length} charts there${names.length ? `: ${listSome(names)}` : ''}).`,
        {
          hint: 'Check the chart name and the repository URL in the chartfile.',
        },
      )
    }
    const entry = versions.find((e) => sameVersion(e.version, req.version))
    if (!entry) {
      throw new NsopsError(
        `${cf.path}:${req.line}: chart ${req.chart} has no version ${req.version} in ${repoUrl}; available: ${listSome(sortVersions(versions.map((e) => e.version)))}.`,
        {
          hint: 'Pin one of the available versions in the chartfile.',
        },
      )
    }
    if (!entry.urls?.[0]) {
      throw new NsopsError(`The index ${index.url} lists ${req.chart} ${entry.version} without a download URL.`, {
        hint: "The repository index is broken; report it to the chart's maintainers or pin another version.",
      })
    }
    plan.push({ req, repoUrl, archiveUrl: new URL(entry.urls[0], index.url).href, digest: entry.digest })
  }
  return plan
}

async function fetchAndUnpack(p: Planned, dest: string, progress: (e: VendorEvent) => void): Promise<VendoredChart> {
  const { req } = p
  const target = path.join(dest, req.directory)
  // Beside the target, on the same filesystem, so the final rename is atomic.
  const work = path.join(dest, `.vendor-${req.directory}-${randomBytes(4).toString('hex')}`)
  const archive = path.join(work, 'chart.tgz')
  const unpacked = path.join(work, 'unpacked')
  await fs.mkdir(unpacked, { recursive: true })
  try {
    const digest = p.pulled ? await fileDigest(p.pulled.file) : await downloadChecked(p, archive, progress)
    try {
      await tar.x({ file: p.pulled?.file ?? archive, cwd: unpacked, strip: 1 })
    } catch (err) {
      throw new NsopsError(
        `Refused ${req.chart} ${req.version}: ${p.archiveUrl} is not a readable chart archive (${errorMessage(err)}).`,
        { cause: err, hint: 'Check the repository; nothing was unpacked.' },
      )
    }
    const meta = await readChartYaml(unpacked).catch((err: unknown) => {
      throw new NsopsError(
        `Refused ${req.chart} ${req.version}: the archive from ${p.archiveUrl} holds no readable Chart.yaml (${errorMessage(err)}).`,
        { cause: err, hint: 'Check the repository; nothing was unpacked.' },
      )
    })
    if (meta.name !== req.name || meta.version !== req.version) {
      throw new NsopsError(
        `Refused ${req.chart} ${req.version}: the archive from ${p.archiveUrl} holds ${meta.name} ${meta.version}.`,
        { hint: 'The repository index points at the wrong archive; nothing was unpacked.' },
      )
    }
    // Keep the old version until the new one is in place, and put it back if the swap fails.
    const old = path.join(work, 'old')
    const hadOld = await fs.rename(target, old).then(
      () => true,
      (err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return false
        throw err
      },
    )
    try {
      await fs.rename(unpacked, target)
    } catch (err) {
      if (hadOld) await fs.rename(old, target).catch(() => {})
      throw err
    }
    progress({ step: 'unpacked', chart: req.chart, version: req.version, directory: req.directory })
    return {
      directory: req.directory,
      chart: req.chart,
      name: req.name,
      version: req.version,
      repository: p.repoUrl,
      digest,
      ...(p.pulled ? { manifestDigest: p.pulled.manifestDigest } : {}),
    }
  } finally {
    await fs.rm(work, { recursive: true, force: true })
  }
}

/** An HTTP repository's archive, downloaded to `archive` and checked against the index's sha256. */
async function downloadChecked(p: Planned, archive: string, progress: (e: VendorEvent) => void): Promise<string> {
  const { req } = p
  progress({ step: 'download', chart: req.chart, version: req.version, url: p.archiveUrl })
  const digest = await downloadToFile(p.archiveUrl, archive, req)
  if (p.digest === undefined || p.digest === '') {
    // an archive nobody vouched for is not unpacked: a tampered index could drop the digest
    throw new NsopsError(
      `Refused ${req.chart} ${req.version}: the repository index lists no digest for it, so the archive cannot be checked. Nothing was unpacked.`,
      {
        hint: 'Ask the chart repository to publish digests (helm repo index does), or vendor the chart by hand into the charts directory.',
      },
    )
  } else if (p.digest.toLowerCase() !== digest) {
    throw new NsopsError(
      `Refused ${req.chart} ${req.version}: the archive ${p.archiveUrl} has sha256 ${digest}, but the repository index says ${p.digest}. Nothing was unpacked.`,
      {
        hint: 'The archive or the index was changed or corrupted in transit. Try again; if it persists, the repository is serving inconsistent files — do not vendor it.',
      },
    )
  }
  return digest
}

async function readChartYaml(dir: string): Promise<{ name: string; version: string }> {
  const doc = parseYaml(await fs.readFile(path.join(dir, 'Chart.yaml'), 'utf8')) as {
    name?: unknown
    version?: unknown
  } | null
  return { name: String(doc?.name ?? ''), version: String(doc?.version ?? '') }
}

function parseIndex(body: Buffer, url: string): Record<string, IndexEntry[]> {
  let doc: unknown
  try {
    doc = parseYaml(body.toString('utf8'))
  } catch (err) {
    throw new NsopsError(`The repository index ${url} is not valid YAML (${errorMessage(err)}).`, {
      cause: err,
      hint: 'Is the repository URL in the chartfile a Helm chart repository (the directory holding index.yaml)?',
    })
  }
  const entries = (doc as { entries?: unknown } | null)?.entries
  if (typeof entries !== 'object' || entries === null) {
    throw new NsopsError(`${url} is not a Helm repository index (no entries).`, {
      hint: 'Is the repository URL in the chartfile a Helm chart repository (the directory holding index.yaml)?',
    })
  }
  const out: Record<string, IndexEntry[]> = {}
  for (const [name, list] of Object.entries(entries as Record<string, unknown>)) {
    if (!Array.isArray(list)) continue
    out[name] = list
      .filter((e): e is Record<string, unknown> => typeof e === 'object' && e !== null && e.version !== undefined)
      // a digest YAML read as a number (all digits) is still a digest: keep its text, never drop it
      .map((e) => ({
        version: String(e.version),
        urls: Array.isArray(e.urls) ? e.urls.map(String) : [],
        digest: e.digest === undefined || e.digest === null ? undefined : String(e.digest),
      }))
  }
  return out
}

/** Exact match, tolerating only a leading `v` on either side (Helm indexes carry both forms). */
function sameVersion(a: string, b: string): boolean {
  return a === b || a.replace(/^v/, '') === b.replace(/^v/, '')
}

function sortVersions(vs: string[]): string[] {
  const valid = vs.filter((v) => semver.valid(v, { loose: true }))
  const other = vs.filter((v) => !semver.valid(v, { loose: true })).sort()
  return [...valid.sort((a, b) => semver.rcompare(a, b, { loose: true })), ...other]
}

function listSome(items: string[], max = 15): string {
  return items.length <= max ? items.join(', ') : `${items.slice(0, max).join(', ')} and ${items.length - max} more`
}

function withSlash(url: string): string {
  return url.endsWith('/') ? url : `${url}/`
}

function networkError(url: string, req: ChartRequirement, err: unknown): NsopsError {
  const cause = (err as { cause?: unknown }).cause
  const detail = cause instanceof Error ? ((cause as NodeJS.ErrnoException).code ?? cause.message) : errorMessage(err)
  const timedOut = err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')
  return new NsopsError(`Could not fetch ${url} for chart ${req.chart}: ${timedOut ? 'timed out' : detail}.`, {
    cause: err,
    hint: `Are you offline? Otherwise check the repository URL of "${req.repository}" in the chartfile.`,
  })
}

async function get(url: string, timeoutMs: number, req: ChartRequirement): Promise<Response> {
  let res: Response
  try {
    res = await fetch(url, { redirect: 'follow', signal: AbortSignal.timeout(timeoutMs) })
  } catch (err) {
    throw networkError(url, req, err)
  }
  if (!res.ok) {
    await res.body?.cancel().catch(() => {})
    throw new NsopsError(`Could not fetch ${url} for chart ${req.chart}: HTTP ${res.status} ${res.statusText}.`, {
      hint: `Check the repository URL of "${req.repository}" in the chartfile${res.status === 401 || res.status === 403 ? ' (repositories that need credentials are not supported yet)' : ''}.`,
    })
  }
  return res
}

async function download(url: string, timeoutMs: number, req: ChartRequirement): Promise<Buffer> {
  const res = await get(url, timeoutMs, req)
  try {
    return Buffer.from(await res.arrayBuffer())
  } catch (err) {
    throw networkError(url, req, err)
  }
}

async function fileDigest(file: string): Promise<string> {
  const hash = createHash('sha256')
  await pipeline(createReadStream(file), hash)
  return hash.digest('hex')
}

/** Streams to `file` and returns the sha256 (hex) of what was written. */
async function downloadToFile(url: string, file: string, req: ChartRequirement): Promise<string> {
  const res = await get(url, ARCHIVE_TIMEOUT_MS, req)
  const hash = createHash('sha256')
  try {
    await pipeline(
      Readable.fromWeb(res.body as WebReadableStream<Uint8Array>),
      async function* (source: AsyncIterable<Buffer>) {
        for await (const chunk of source) {
          hash.update(chunk)
          yield chunk
        }
      },
      createWriteStream(file),
    )
  } catch (err) {
    throw networkError(url, req, err)
  }
  return hash.digest('hex')
}

async function readLock(dest: string, progress: (e: VendorEvent) => void): Promise<LockFile> {
  const file = path.join(dest, LOCK_FILE)
  let text: string
  try {
    text = await fs.readFile(file, 'utf8')
  } catch {
    return { version: 1, charts: {} }
  }
  try {
    const lock = JSON.parse(text) as LockFile
    if (lock.version === 1 && typeof lock.charts === 'object' && lock.charts !== null) return lock
  } catch {
    /* fall through */
  }
  // A lost lock only costs a re-download; refusing to vendor over it would help nobody.
  progress({ step: 'warning', message: `${file} is unreadable; every chart will be fetched again` })
  return { version: 1, charts: {} }
}

async function writeLock(dest: string, lock: LockFile): Promise<void> {
  const file = path.join(dest, LOCK_FILE)
  const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`
  const sorted = Object.fromEntries(Object.entries(lock.charts).sort(([a], [b]) => a.localeCompare(b)))
  await fs.writeFile(tmp, `${JSON.stringify({ version: 1, charts: sorted }, null, 2)}\n`)
  await fs.rename(tmp, file)
}
