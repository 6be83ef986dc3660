// Helm charts in an OCI registry (the sim's own, or the one the cluster advertises): `just chart
// push PATH|TGZ` packages a chart folder (its dependencies built first) with the pinned helm and
// pushes it as `oci://HOST/charts/NAME:VERSION`, the layout Flux's OCIRepository reads (one
// chart per repository, the chart version as tag); `just charts` lists what is there, from the
// registry's own API (/v2/_catalog, /v2/NAME/tags/list).
import { createHash } from 'node:crypto'
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import YAML from 'yaml'
import { NsopsError, errorMessage } from '../core/errors.ts'
import { toolPath } from '../tools/provision.ts'
import { advertisedRegistry, registryChoice, writeRegistryVars, type RegistryChoice } from './registry.ts'
import type { Kube } from '../kube/client.ts'

const run = promisify(execFile)

/** The repository prefix charts go under in the registry. */
export const CHARTS_PREFIX = 'charts'
/** The media type of a Helm chart's content layer (an OCIRepository's layerSelector). */
export const HELM_CHART_LAYER = 'application/vnd.cncf.helm.chart.content.v1.tar+gzip'

export interface PushedChart {
  name: string
  version: string
  digest: string
  /** oci://HOST/charts/NAME, as pushed */
  url: string
  /** the same repository as the cluster's source-controller reaches it */
  clusterUrl: string
}

async function helm(args: string[], what: string): Promise<string> {
  const bin = await toolPath('helm')
  try {
    const { stdout, stderr } = await run(bin, args, { maxBuffer: 16 << 20 })
    return `${stdout}${stderr}`
  } catch (err) {
    const e = err as { stderr?: string }
    throw new NsopsError(`${what} failed: ${(e.stderr || errorMessage(err)).trim()}`, { cause: err })
  }
}

/** Packages `source` (a chart folder, or a .tgz as is) and pushes it to the registry. */
export async function pushChart(source: string, registry: RegistryChoice): Promise<PushedChart> {
  if (!fs.existsSync(source))
    throw new NsopsError(`${source} does not exist.`, {
      hint: 'Give a chart folder (with Chart.yaml) or a packaged .tgz.',
    })
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-chart-'))
  try {
    let tgz = source
    if (fs.statSync(source).isDirectory()) {
      const chartFile = path.join(source, 'Chart.yaml')
      if (!fs.existsSync(chartFile))
        throw new NsopsError(`${source} has no Chart.yaml, so it is not a Helm chart.`, {
          hint: 'Give the chart folder itself (the one holding Chart.yaml), or a packaged .tgz.',
        })
      const chart = YAML.parse(fs.readFileSync(chartFile, 'utf8')) as { dependencies?: unknown[] }
      // the package must carry its subcharts (a library chart like app-template's `common`)
      if (chart.dependencies?.length) await helm(['dependency', 'build', source], `helm dependency build ${source}`)
      await helm(['package', source, '--destination', tmp], `helm package ${source}`)
      tgz = path.join(
        tmp,
        fs.readdirSync(tmp).find((f) => f.endsWith('.tgz'))!,
      )
    } else if (!source.endsWith('.tgz')) {
      throw new NsopsError(`${source} is neither a chart folder nor a .tgz package.`)
    }
    const target = `oci://${registry.host}/${CHARTS_PREFIX}`
    const out = await helm(
      ['push', tgz, target, ...(registry.plainHttp ? ['--plain-http'] : [])],
      `helm push ${path.basename(tgz)} ${target}`,
    )
    // helm: "Pushed: HOST/charts/NAME:VERSION" and "Digest: sha256:…"
    const pushed = /Pushed:\s*\S+\/([^/:\s]+):(\S+)/.exec(out)
    const digest = /Digest:\s*(sha256:[0-9a-f]+)/.exec(out)?.[1] ?? ''
    if (!pushed) throw new NsopsError(`helm push gave no "Pushed:" line: ${out.trim()}`)
    return {
      name: pushed[1],
      version: pushed[2],
      digest,
      url: `oci://${registry.host}/${CHARTS_PREFIX}/${pushed[1]}`,
      clusterUrl: `oci://${registry.clusterHost}/${CHARTS_PREFIX}/${pushed[1]}`,
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true })
  }
}

/** The charts in the registry: each repository under charts/ with its tags (versions). */
export async function listCharts(registry: RegistryChoice): Promise<{ name: string; versions: string[] }[]> {
  const base = `${registry.plainHttp ? 'http' : 'https'}://${registry.host}/v2`
  const get = async <T>(url: string): Promise<T> => {
    const res = await fetch(url, { signal: AbortSignal.timeout(10_000) })
    if (!res.ok) throw new NsopsError(`${url}: HTTP ${res.status}`)
    return (await res.json()) as T
  }
  const { repositories = [] } = await get<{ repositories?: string[] }>(`${base}/_catalog?n=1000`)
  const charts = repositories.filter((r) => r.startsWith(`${CHARTS_PREFIX}/`))
  return Promise.all(
    charts.map(async (repo) => {
      const { tags = [] } = await get<{ tags?: string[] | null }>(`${base}/${repo}/tags/list`)
      return { name: repo.slice(CHARTS_PREFIX.length + 1), versions: [...(tags ?? [])].sort() }
    }),
  )
}

/**
 * The annotation a published chart carries (helm push copies Chart.yaml's annotations into the
 * OCI manifest's): the digest of the chart's source files, so a publish of an unchanged chart
 * is one manifest GET, not a package and push. helm's package is not reproducible (its tar
 * headers carry the packaging time), so the package's own digest cannot tell.
 */
export const SOURCE_DIGEST_ANNOTATION = 'nsops.dev/source-digest'

interface ChartFile {
  name: string
  version: string
  type?: string
  annotations?: Record<string, string>
  dependencies?: { name: string; repository?: string }[]
}

function readChartFile(dir: string): ChartFile {
  const file = path.join(dir, 'Chart.yaml')
  try {
    return YAML.parse(fs.readFileSync(file, 'utf8')) as ChartFile
  } catch (err) {
    throw new NsopsError(`${file}: ${errorMessage(err)}`, {
      hint: 'A chart folder holds a Chart.yaml with at least apiVersion, name and version.',
    })
  }
}

/** The chart folder and the folders of its file:// dependencies (a library subchart beside it). */
function sourceDirs(dir: string): string[] {
  const deps = (readChartFile(dir).dependencies ?? [])
    .filter((d) => d.repository?.startsWith('file://'))
    .map((d) => path.resolve(dir, d.repository!.slice('file://'.length)))
  return [path.resolve(dir), ...deps.flatMap((d) => sourceDirs(d))]
}

/** What helm dependency build writes into a chart folder: not source. */
const generated = (rel: string) => rel === 'Chart.lock' || /^charts\/[^/]+\.tgz$/.test(rel)

/** sha256 over every source file of the chart and its file:// dependencies (paths and bytes). */
export function chartSourceDigest(dir: string): string {
  const h = createHash('sha256')
  const dirs = sourceDirs(dir)
  for (const d of dirs) {
    const files = (fs.readdirSync(d, { recursive: true }) as string[])
      .filter((rel) => !generated(rel) && fs.statSync(path.join(d, rel)).isFile())
      .sort()
    h.update(`${path.relative(dirs[0], d)}\0`)
    for (const rel of files)
      h.update(`${rel}\0`)
        .update(fs.readFileSync(path.join(d, rel)))
        .update('\0')
  }
  return `sha256:${h.digest('hex')}`
}

/** The application charts a namespace folder holds: <ns>/charts/<name>/Chart.yaml (library charts ride along as subcharts). */
export function namespaceCharts(nsRoot: string): string[] {
  const root = path.join(nsRoot, 'charts')
  if (!fs.existsSync(root)) return []
  return fs
    .readdirSync(root)
    .map((n) => path.join(root, n))
    .filter((d) => fs.existsSync(path.join(d, 'Chart.yaml')) && readChartFile(d).type !== 'library')
    .sort()
}

/** The source digest the registry's NAME:VERSION was published with; undefined when absent or pushed otherwise. */
async function publishedDigest(registry: RegistryChoice, name: string, version: string): Promise<string | undefined> {
  const url = `${registry.plainHttp ? 'http' : 'https'}://${registry.host}/v2/${CHARTS_PREFIX}/${name}/manifests/${version}`
  const res = await fetch(url, {
    headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
    signal: AbortSignal.timeout(10_000),
  }).catch(() => undefined)
  if (!res?.ok) return undefined
  const manifest = (await res.json()) as { annotations?: Record<string, string> }
  return manifest.annotations?.[SOURCE_DIGEST_ANNOTATION]
}

export interface PublishedChart extends PushedChart {
  /** true: the registry held this very source already, nothing was pushed */
  unchanged: boolean
  /** the chart's source folder */
  dir: string
}

/**
 * Publishes a chart folder of this repository: pushed (as pushChart) with its source digest as
 * an annotation, or left as it is when the registry's NAME:VERSION already carries that digest.
 * Packaging happens in a copy, so the working tree gets no Chart.lock or charts/*.tgz.
 */
export async function publishChart(dir: string, registry: RegistryChoice): Promise<PublishedChart> {
  const chart = readChartFile(dir)
  const digest = chartSourceDigest(dir)
  const base = { name: chart.name, version: String(chart.version), dir }
  if ((await publishedDigest(registry, chart.name, String(chart.version))) === digest)
    return {
      ...base,
      digest: '',
      url: `oci://${registry.host}/${CHARTS_PREFIX}/${chart.name}`,
      clusterUrl: `oci://${registry.clusterHost}/${CHARTS_PREFIX}/${chart.name}`,
      unchanged: true,
    }
  const dirs = sourceDirs(dir)
  // the deepest folder holding the chart and its dependencies, copied with their relative places
  let top = path.dirname(dirs[0])
  while (!dirs.every((d) => d.startsWith(`${top}${path.sep}`))) top = path.dirname(top)
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-chart-src-'))
  try {
    for (const d of dirs)
      fs.cpSync(d, path.join(tmp, path.relative(top, d)), {
        recursive: true,
        filter: (src) => !generated(path.relative(d, src)),
      })
    const copy = path.join(tmp, path.relative(top, dirs[0]))
    const chartYaml = path.join(copy, 'Chart.yaml')
    const doc = YAML.parseDocument(fs.readFileSync(chartYaml, 'utf8'))
    doc.setIn(['annotations', SOURCE_DIGEST_ANNOTATION], digest)
    fs.writeFileSync(chartYaml, doc.toString())
    return { ...(await pushChart(copy, registry)), dir, unchanged: false }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true })
  }
}

export interface RepoChartsPublished {
  registry?: RegistryChoice
  charts: PublishedChart[]
}

/**
 * Publishes chart folders to the registry the cluster advertises (KEP-1755) and writes the
 * substitution variables that point Flux at it (writeRegistryVars): what `dev-up`, the dev loop
 * and `deploy` run before Flux or helm-controller look for the chart. A cluster that advertises
 * no registry gets nothing (its charts come from wherever its OCIRepositories say).
 */
export async function publishCharts(kube: Kube, dirs: string[]): Promise<RepoChartsPublished> {
  if (!dirs.length) return { charts: [] }
  const hosting = await advertisedRegistry(kube)
  if (!hosting) return { charts: [] }
  const registry = registryChoice(hosting, `advertised by context ${kube.context}`)
  await writeRegistryVars(kube, registry)
  const charts: PublishedChart[] = []
  for (const d of dirs) charts.push(await publishChart(d, registry))
  return { registry, charts }
}

/** One line for people: `charts: nsops-app 0.1.0 unchanged in oci://…; queue 0.4.0 pushed (sha256:…)`. */
export function chartsLine(charts: PublishedChart[]): string {
  return `charts: ${charts
    .map((ch) => `${ch.name} ${ch.version} ${ch.unchanged ? 'unchanged in' : 'pushed to'} ${ch.url}`)
    .join('; ')}`
}
