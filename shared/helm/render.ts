// `helm template` of a pulled chart (shared/helm/pull.ts), as helm-controller's install would
// render it: the release name and namespace, the values, the Kubernetes version and API
// versions of the target (`.Capabilities`), CRDs from crds/ when the policy installs them.
// Schema validation is ours (values-schema.ts: no network), so helm runs with
// --skip-schema-validation. Each rendered object keeps the template it came from (helm's
// `# Source:` line), for errors. A render is a pure function of its inputs, so its output is
// cached beside the charts (<chart cache>/rendered) by their hash: a release whose
// chart, values and target did not change costs no helm process.
import { execFile } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { parse as parseYaml } from 'yaml'
import { NsopsError, errorMessage } from '../core/errors.ts'
import { toolPath, toolSpec } from '../tools/provision.ts'
import type { ManifestObject } from '../kube/refs.ts'
import { chartsCacheDir, type PulledChart } from './pull.ts'

const run = promisify(execFile)

export interface RenderChartOptions {
  releaseName: string
  namespace: string
  values: Record<string, unknown>
  /** `v1.36.3`; default: the Kubernetes version nsops pins (k8s/versions.yaml) */
  kubeVersion?: string
  /** group/versions (and group/version/Kind) the target serves beyond the built-in ones (CRDs) */
  apiVersions?: string[]
  /** render crds/ too (the CRD policy installs them) */
  includeCrds?: boolean
  /** who asks (the HelmRelease and its file), for errors */
  what: string
  /**
   * Runs before helm when these inputs were not rendered before (the values schema check): it
   * throws to refuse them, or returns notes (what it skipped) kept with the render, so an
   * unchanged release costs neither the check nor helm.
   */
  check?: () => string[]
}

export interface RenderedObject {
  object: ManifestObject
  /** `app/templates/service.yaml`, from helm's `# Source:` line */
  template?: string
  /** a hook (helm.sh/hook): run around an install, not part of the release's manifest */
  hook: boolean
  crd: boolean
}

export interface RenderedChart {
  objects: RenderedObject[]
  /** the helm process was skipped: the same inputs were rendered before */
  cached: boolean
  /** what the check said (kept with the render) */
  notes: string[]
}

function renderCacheDir(): string {
  return path.join(chartsCacheDir(), 'rendered')
}

/** Renders a chart package; throws an NsopsError with helm's message (a template's file:line) on failure. */
export async function renderChart(chart: PulledChart, opts: RenderChartOptions): Promise<RenderedChart> {
  const kubeVersion = opts.kubeVersion ?? toolSpec('kubernetes').version
  const apiVersions = [...new Set(opts.apiVersions ?? [])].sort()
  const key = createHash('sha256')
    .update(
      JSON.stringify([
        toolSpec('helm').version,
        chart.digest,
        opts.releaseName,
        opts.namespace,
        opts.values,
        kubeVersion,
        apiVersions,
        !!opts.includeCrds,
      ]),
    )
    .digest('hex')
  const cached = path.join(renderCacheDir(), `${key}.json`)
  let kept: { text: string; notes: string[] } | undefined
  try {
    kept = JSON.parse(fs.readFileSync(cached, 'utf8')) as { text: string; notes: string[] }
  } catch {
    kept = undefined
  }
  if (kept) return { objects: parseRendered(kept.text, opts.what), cached: true, notes: kept.notes }
  const notes = opts.check?.() ?? []
  const text = await helmTemplate(chart, opts, kubeVersion, apiVersions)
  fs.mkdirSync(renderCacheDir(), { recursive: true })
  const tmp = `${cached}.${randomBytes(4).toString('hex')}.tmp`
  fs.writeFileSync(tmp, JSON.stringify({ text, notes }))
  fs.renameSync(tmp, cached)
  return { objects: parseRendered(text, opts.what), cached: false, notes }
}

async function helmTemplate(
  chart: PulledChart,
  opts: RenderChartOptions,
  kubeVersion: string,
  apiVersions: string[],
): Promise<string> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-render-'))
  try {
    const valuesFile = path.join(tmp, 'values.json')
    fs.writeFileSync(valuesFile, JSON.stringify(opts.values))
    const args = [
      'template',
      opts.releaseName,
      chart.file,
      '--namespace',
      opts.namespace,
      '--values',
      valuesFile,
      '--kube-version',
      kubeVersion,
      '--skip-schema-validation',
      opts.includeCrds ? '--include-crds' : '--skip-crds',
    ]
    if (apiVersions.length) args.push('--api-versions', apiVersions.join(','))
    try {
      const { stdout } = await run(await toolPath('helm'), args, { maxBuffer: 256 << 20, timeout: 120_000 })
      return stdout
    } catch (err) {
      const e = err as { stderr?: string }
      const msg = (e.stderr || errorMessage(err)).trim().replace(/^Error: /, '')
      throw new NsopsError(`${opts.what}: chart ${chart.name}@${chart.version} does not render: ${msg}`, {
        hint: 'helm names the template and line; the values the HelmRelease gives (spec.values, valuesFrom) are usually what it chokes on.',
      })
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true })
  }
}

/** helm template's stream: documents after `---`, each with a `# Source:` comment. */
export function parseRendered(text: string, what: string): RenderedObject[] {
  const out: RenderedObject[] = []
  for (const chunk of text.split(/^---[ \t]*$/m)) {
    if (!chunk.trim()) continue
    const template = /^# Source: (.+)$/m.exec(chunk)?.[1]?.trim()
    let v: unknown
    try {
      v = parseYaml(chunk)
    } catch (err) {
      throw new NsopsError(
        `${what}: ${template ?? 'a template'} renders YAML that does not parse: ${errorMessage(err).split('\n')[0]}`,
        { hint: 'Run `helm template` on the chart with the same values and look at that template.' },
      )
    }
    if (v === null || typeof v !== 'object') continue
    const items = isList(v) ? ((v as { items?: unknown[] }).items ?? []) : [v]
    for (const item of items) {
      if (item === null || typeof item !== 'object') continue
      const object = item as ManifestObject
      if (!object.metadata) object.metadata = { name: '' }
      const hook = !!object.metadata.annotations?.['helm.sh/hook']
      out.push({ object, template, hook, crd: !!template && /\/crds\//.test(template) })
    }
  }
  return out
}

function isList(v: object): boolean {
  const o = v as { kind?: unknown; apiVersion?: unknown; items?: unknown }
  return typeof o.kind === 'string' && o.kind.endsWith('List') && o.apiVersion === 'v1' && Array.isArray(o.items)
}

/** Kinds that live outside namespaces (helm applies namespaced ones to the release's namespace). */
const CLUSTER_SCOPED = new Set([
  'Namespace',
  'Node',
  'PersistentVolume',
  'ClusterRole',
  'ClusterRoleBinding',
  'CustomResourceDefinition',
  'StorageClass',
  'CSIDriver',
  'CSINode',
  'VolumeAttachment',
  'PriorityClass',
  'IngressClass',
  'RuntimeClass',
  'ValidatingWebhookConfiguration',
  'MutatingWebhookConfiguration',
  'ValidatingAdmissionPolicy',
  'ValidatingAdmissionPolicyBinding',
  'MutatingAdmissionPolicy',
  'MutatingAdmissionPolicyBinding',
  'APIService',
  'CertificateSigningRequest',
  'FlowSchema',
  'PriorityLevelConfiguration',
  'ClusterIssuer',
  'DeviceClass',
])

/** Sets the release namespace on namespaced objects that name none; `clusterKinds` adds CRD-defined cluster-scoped kinds. */
export function placeInNamespace(objects: ManifestObject[], namespace: string, clusterKinds: Set<string>): void {
  for (const o of objects) {
    if (o.metadata.namespace || CLUSTER_SCOPED.has(o.kind) || clusterKinds.has(o.kind)) continue
    o.metadata.namespace = namespace
  }
}
