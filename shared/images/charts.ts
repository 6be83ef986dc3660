// Helm charts in an OCI registry (the sim's own, or the one the cluster advertises): `just chart
// push PATH|TGZ` packages a chart folder (its dependencies built first) with the pinned helm and
// pushes it as `oci://HOST/charts/NAME:VERSION`, the layout Flux's OCIRepository reads (one
// chart per repository, the chart version as tag); `just charts` lists what is there, from the
// registry's own API (/v2/_catalog, /v2/NAME/tags/list).
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import YAML from 'yaml'
import { NsopsError, errorMessage } from '../core/errors.ts'
import { toolPath } from '../tools/provision.ts'
import type { RegistryChoice } from './registry.ts'

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
