// Charts for an offline render, fetched with the pinned helm and cached by digest under
// ${XDG_CACHE_HOME:-~/.cache}/nsops/charts (or $NSOPS_CHARTS_CACHE): `blobs/sha256-<hex>.tgz` holds each chart package
// once, `refs/<hash>.json` says which package a reference (an OCI URL and tag, a repository,
// chart and version, a chart folder's content) resolved to. A reference that names one version
// (an exact version or tag, a digest) is answered from the cache without a request, so a render
// repeats offline; a range (`semver: ">=4.0.0"`) asks the source and falls back to the cached
// answer when the source does not answer, saying so.
import { execFile } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import semver from 'semver'
import * as tar from 'tar'
import { parse as parseYaml } from 'yaml'
import { NsopsError, errorMessage } from '../core/errors.ts'
import { cacheDir } from '../core/paths.ts'
import { toolPath } from '../tools/provision.ts'

const run = promisify(execFile)

/** How long one pull may take before the source counts as unreachable (a dropped SYN would hang helm). */
const PULL_TIMEOUT_MS = Number(process.env.NSOPS_CHART_PULL_TIMEOUT_MS) || 60_000

/** Where a chart comes from, as Flux's sources say it. */
export type ChartSource =
  /** an OCI artifact: oci://host/path/chart, with a tag, a semver range or a digest */
  | {
      type: 'oci'
      url: string
      tag?: string
      semver?: string
      digest?: string
      plainHttp?: boolean
      insecureSkipTlsVerify?: boolean
    }
  /** a chart in an HTTP(S) chart repository (index.yaml) */
  | { type: 'http'; repository: string; chart: string; version?: string; insecureSkipTlsVerify?: boolean }
  /** a chart folder (a GitRepository of this repository) */
  | { type: 'dir'; path: string }

export interface PulledChart {
  /** the chart package (.tgz) in the cache */
  file: string
  /** sha256:<hex> of the package (for an OCI chart, the manifest digest helm reports) */
  digest: string
  name: string
  version: string
  /** answered from the cache without asking the source */
  cached: boolean
  /** said when a range was answered from the cache because the source did not answer */
  note?: string
}

export interface PullOptions {
  /** never ask a source: the cache only */
  offline?: boolean
}

/** The chart cache (NSOPS_CHARTS_CACHE moves it: a test's own, a CI cache step's path). */
export function chartsCacheDir(): string {
  return process.env.NSOPS_CHARTS_CACHE || path.join(cacheDir(), 'charts')
}

/** `oci://host/charts/app@1.2.3`, `https://repo/ app@1.2.3`, `./charts/app`: a source for people. */
export function describeSource(s: ChartSource): string {
  if (s.type === 'oci') return `${s.url}${s.digest ? `@${s.digest}` : `:${s.tag ?? s.semver ?? 'latest'}`}`
  if (s.type === 'http') return `${s.chart}@${s.version ?? '*'} from ${s.repository}`
  return s.path
}

/** Whether the reference names one version, so a cached answer is the answer. */
function pinned(s: ChartSource): boolean {
  if (s.type === 'oci') return !!s.digest || (!!s.tag && s.tag !== 'latest' && !s.semver)
  if (s.type === 'http') return !!s.version && semver.valid(s.version) !== null
  return false
}

function refKey(s: ChartSource): string {
  const key =
    s.type === 'oci'
      ? `oci\0${s.url}\0${s.digest ?? ''}\0${s.semver ?? ''}\0${s.tag ?? ''}`
      : s.type === 'http'
        ? `http\0${s.repository.replace(/\/+$/, '')}\0${s.chart}\0${s.version ?? ''}`
        : `dir\0${s.path}`
  return createHash('sha256').update(key).digest('hex')
}

interface RefRecord {
  digest: string
  name: string
  version: string
  source: string
  at: string
}

function blobPath(digest: string): string {
  return path.join(chartsCacheDir(), 'blobs', `${digest.replace(':', '-')}.tgz`)
}

function readRef(s: ChartSource): RefRecord | undefined {
  try {
    const r = JSON.parse(fs.readFileSync(path.join(chartsCacheDir(), 'refs', `${refKey(s)}.json`), 'utf8')) as RefRecord
    return fs.existsSync(blobPath(r.digest)) ? r : undefined
  } catch {
    return undefined
  }
}

/** Written whole or not at all (another process may read it at the same time). */
function writeAtomic(file: string, data: string | Buffer): void {
  fs.mkdirSync(path.dirname(file), { recursive: true })
  const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`
  fs.writeFileSync(tmp, data)
  fs.renameSync(tmp, file)
}

function writeRef(s: ChartSource, r: Omit<RefRecord, 'at' | 'source'>): void {
  const rec: RefRecord = { ...r, source: describeSource(s), at: new Date().toISOString() }
  writeAtomic(path.join(chartsCacheDir(), 'refs', `${refKey(s)}.json`), JSON.stringify(rec, null, 2))
}

async function helm(args: string[], cwd?: string): Promise<string> {
  const bin = await toolPath('helm')
  const { stdout, stderr } = await run(bin, args, {
    cwd,
    maxBuffer: 64 << 20,
    timeout: PULL_TIMEOUT_MS,
    // a terminal prompt for credentials would hang a render
    env: { ...process.env, HELM_NO_PLUGINS: '1' },
  })
  return `${stdout}${stderr}`
}

/** Name and version from a chart package's Chart.yaml. */
async function chartMeta(tgz: string): Promise<{ name: string; version: string }> {
  let text = ''
  await tar.t({
    file: tgz,
    filter: (p) => /^[^/]+\/Chart\.yaml$/.test(p),
    onReadEntry: (e) => {
      const chunks: Buffer[] = []
      e.on('data', (c: Buffer) => chunks.push(c))
      e.on('end', () => (text = Buffer.concat(chunks).toString('utf8')))
    },
  })
  const meta = (parseYaml(text) ?? {}) as { name?: string; version?: string }
  return { name: String(meta.name ?? 'unknown'), version: String(meta.version ?? '0.0.0') }
}

/** Moves a pulled package into the cache under its digest. */
function keep(tgz: string, digest: string): string {
  const to = blobPath(digest)
  if (!fs.existsSync(to)) writeAtomic(to, fs.readFileSync(tgz))
  return to
}

function sha256File(file: string): string {
  return `sha256:${createHash('sha256').update(fs.readFileSync(file)).digest('hex')}`
}

/** A chart folder's content hash: every file's path and bytes (Chart.lock and charts/ too). */
function dirDigest(dir: string): string {
  const h = createHash('sha256')
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const full = path.join(d, e.name)
      if (e.isDirectory()) walk(full)
      else if (e.isFile()) h.update(`${path.relative(dir, full)}\0`).update(fs.readFileSync(full))
    }
  }
  walk(dir)
  return `sha256:${h.digest('hex')}`
}

/**
 * The chart a source names, as a package in the cache. `what` says for whom (the HelmRelease
 * and its file), for the error when the chart is neither cached nor reachable.
 */
export async function pullChart(source: ChartSource, what: string, opts: PullOptions = {}): Promise<PulledChart> {
  if (source.type === 'dir') return packageDir(source.path, what)
  const known = readRef(source)
  if (known && (pinned(source) || opts.offline)) return fromCache(known)
  if (opts.offline) throw notCached(source, what, 'offline: only the cache is read')
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-pull-'))
  try {
    const args = ['pull', '--destination', tmp]
    if (source.type === 'oci') {
      args.push(source.digest ? `${source.url}@${source.digest}` : source.url)
      const version = source.digest ? undefined : (source.semver ?? source.tag)
      if (version && version !== 'latest') args.push('--version', version)
      if (source.plainHttp) args.push('--plain-http')
      if (source.insecureSkipTlsVerify) args.push('--insecure-skip-tls-verify')
    } else {
      args.push(source.chart, '--repo', source.repository)
      if (source.version && source.version !== '*') args.push('--version', source.version)
      if (source.insecureSkipTlsVerify) args.push('--insecure-skip-tls-verify')
    }
    let out: string
    try {
      out = await helm(args)
    } catch (err) {
      const e = err as { stderr?: string; killed?: boolean }
      const why = e.killed
        ? `no answer within ${PULL_TIMEOUT_MS / 1000} s`
        : (e.stderr || errorMessage(err)).trim().replace(/^Error: /, '')
      if (known)
        return fromCache(
          known,
          `${describeSource(source)} did not answer (${why.split('\n')[0]}): using ${known.name}@${known.version} from the cache (${known.at.slice(0, 10)})`,
        )
      throw notCached(source, what, why)
    }
    const file = fs.readdirSync(tmp).find((f) => f.endsWith('.tgz'))
    if (!file) throw new NsopsError(`${what}: helm pull ${describeSource(source)} gave no chart package: ${out.trim()}`)
    const tgz = path.join(tmp, file)
    // OCI: the manifest digest helm prints (what an OCIRepository's ref.digest names); HTTP: the package's
    const digest = (source.type === 'oci' && /Digest:\s*(sha256:[0-9a-f]{64})/.exec(out)?.[1]) || sha256File(tgz)
    const meta = await chartMeta(tgz)
    const kept = keep(tgz, digest)
    writeRef(source, { digest, ...meta })
    return { file: kept, digest, ...meta, cached: false }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true })
  }
}

/** The cached package a reference recorded, answered without asking its source. */
function fromCache(known: { digest: string; name: string; version: string }, note?: string): PulledChart {
  return {
    file: blobPath(known.digest),
    digest: known.digest,
    name: known.name,
    version: known.version,
    cached: true,
    note,
  }
}

function notCached(source: ChartSource, what: string, why: string): NsopsError {
  return new NsopsError(
    `${what}: chart ${describeSource(source)} is not in the chart cache and could not be pulled: ${why.split('\n')[0]}`,
    {
      hint: `Render once where the source answers (the chart is then cached under ${chartsCacheDir()}, by digest, and later renders need no network), or check the source's URL, the chart name and version.`,
    },
  )
}

/** A chart folder packaged (its file:// dependencies built first), cached by the folder's content hash. */
async function packageDir(dir: string, what: string): Promise<PulledChart> {
  const chartFile = path.join(dir, 'Chart.yaml')
  if (!fs.existsSync(chartFile))
    throw new NsopsError(`${what}: ${dir} has no Chart.yaml, so it is not a Helm chart.`, {
      hint: "spec.chart.spec.chart is the chart folder's path in the GitRepository, e.g. ./charts/app.",
    })
  const digest = dirDigest(dir)
  const source: ChartSource = { type: 'dir', path: `${dir}\0${digest}` }
  const known = readRef(source)
  if (known) return fromCache(known)
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-package-'))
  try {
    // the copy sits as deep as its file:// dependencies reach up, each copied to the same
    // relative place: Chart.yaml and Chart.lock stay as written (the lock's digest covers them)
    const chart = (parseYaml(fs.readFileSync(chartFile, 'utf8')) ?? {}) as {
      dependencies?: { repository?: string }[]
    }
    const local = (chart.dependencies ?? [])
      .map((d) => d.repository ?? '')
      .filter((r) => r.startsWith('file://'))
      .map((r) => r.slice('file://'.length))
    const depth = Math.max(0, ...local.map((r) => r.split(/[\\/]/).filter((s) => s === '..').length))
    const copy = path.join(tmp, 'src', ...Array<string>(depth).fill('d'), path.basename(dir))
    fs.cpSync(dir, copy, { recursive: true })
    for (const rel of local) {
      const from = path.resolve(dir, rel)
      const to = path.resolve(copy, rel)
      if (fs.existsSync(from) && !fs.existsSync(to)) fs.cpSync(from, to, { recursive: true })
    }
    if (chart.dependencies?.length) {
      try {
        await helm(['dependency', 'build', copy])
      } catch (err) {
        const e = err as { stderr?: string }
        throw new NsopsError(
          `${what}: helm dependency build ${dir} failed: ${(e.stderr || errorMessage(err)).trim()}`,
          {
            hint: "Check Chart.yaml's dependencies (a file:// path is relative to the chart folder) and Chart.lock (`helm dependency update` rewrites it).",
          },
        )
      }
    }
    await helm(['package', copy, '--destination', tmp])
    const tgz = path.join(
      tmp,
      fs.readdirSync(tmp).find((f) => f.endsWith('.tgz'))!,
    )
    const meta = await chartMeta(tgz)
    const kept = keep(tgz, digest)
    writeRef(source, { digest, ...meta })
    return { file: kept, digest, ...meta, cached: false }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true })
  }
}

/** The package unpacked once (under the cache, by digest): its folder, `<dir>/<chart name>`. */
export async function unpackedChart(chart: PulledChart): Promise<string> {
  const dir = path.join(chartsCacheDir(), 'unpacked', chart.digest.replace(':', '-'))
  const root = path.join(dir, chart.name)
  if (fs.existsSync(path.join(dir, '.done'))) return root
  const tmp = `${dir}.${randomBytes(4).toString('hex')}.tmp`
  fs.mkdirSync(tmp, { recursive: true })
  await tar.x({ file: chart.file, cwd: tmp })
  // subcharts packaged inside (charts/*.tgz) unpacked beside them, for their schemas
  const unpackNested = async (d: string): Promise<void> => {
    const charts = path.join(d, 'charts')
    if (!fs.existsSync(charts)) return
    for (const e of fs.readdirSync(charts)) {
      const full = path.join(charts, e)
      if (e.endsWith('.tgz')) await tar.x({ file: full, cwd: charts })
    }
    for (const e of fs.readdirSync(charts, { withFileTypes: true }))
      if (e.isDirectory()) await unpackNested(path.join(charts, e.name))
  }
  for (const e of fs.readdirSync(tmp, { withFileTypes: true }))
    if (e.isDirectory()) await unpackNested(path.join(tmp, e.name))
  fs.writeFileSync(path.join(tmp, '.done'), '')
  try {
    fs.renameSync(tmp, dir)
  } catch {
    // another process unpacked it first
    fs.rmSync(tmp, { recursive: true, force: true })
  }
  // the package's top folder is the chart's name
  const top = fs.readdirSync(dir, { withFileTypes: true }).find((e) => e.isDirectory())
  return top ? path.join(dir, top.name) : root
}
