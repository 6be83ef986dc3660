// What helm-controller would apply for a HelmRelease, rendered offline (as flux-local and flate
// do): the chart from its source — an OCIRepository (spec.chartRef, or a HelmRepository of
// `type: oci`), an HTTP HelmRepository, a GitRepository path in this repository's checkout —
// pulled with the pinned helm and cached by digest (shared/helm/pull.ts); the values in
// helm-controller's order (valuesFrom in order, targetPath entries set as strvals does, then
// spec.values over them: fluxcd/pkg/chartutil ChartValuesFromReferences); checked against the
// chart's values.schema.json without the network (shared/helm/values-schema.ts); rendered by
// `helm template` for the release name helm-controller uses (releaseName, else
// `<targetNamespace>-<name>`, shortened past 53 characters with a hash as its
// release.ShortenName does) in targetNamespace, for the target's Kubernetes version and API
// versions; CRDs per the install CRD policy; spec.postRenderers (kustomize patches and images)
// then spec.commonMetadata and the labels helm-controller puts on everything it makes
// (helm.toolkit.fluxcd.io/name|namespace). Each rendered object remembers its release and
// template, so a schema error on it names the HelmRelease's file, the values path and the
// template (locateRendered).
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import semver from 'semver'
import YAML, { LineCounter, parseAllDocuments, type Document } from 'yaml'
import { NsopsError } from '../../core/errors.ts'
import type { ManifestObject } from '../../kube/refs.ts'
import { buildKustomization } from '../../kustomize/build.ts'
import { describeSource, pullChart, unpackedChart, type ChartSource, type PulledChart } from '../../helm/pull.ts'
import { placeInNamespace, renderChart, type RenderedObject } from '../../helm/render.ts'
import { checkValuesSchema } from '../../helm/values-schema.ts'
import { replacePathValue, StrvalsError } from '../../helm/strvals.ts'
import { CHARTS_PREFIX, HELM_CHART_LAYER, namespaceCharts } from '../../images/charts.ts'
import { RELEASE_NAME_LABEL, RELEASE_NAMESPACE_LABEL } from '../helm-release.ts'
import type { LeafContext, LeafRenderer } from './kustomization.ts'

export interface HelmRenderOptions {
  /** the target's Kubernetes version (`.Capabilities.KubeVersion`); default: the pinned one */
  kubeVersion?: string
  /** API versions the target serves beyond the built-in ones (`.Capabilities.APIVersions`) */
  apiVersions?: string[]
  /** the chart cache only, no request to any source */
  offline?: boolean
  /** what a warning line says (a remote $ref skipped, a cached chart used for an unreachable source) */
  warn?: (message: string) => void
}

export interface RenderedRelease {
  /** the HelmRelease as the Kustomization builds it */
  release: ManifestObject
  /** `namespace/name` */
  id: string
  /** where it is written, relative to the source root, when found there */
  file?: string
  releaseName: string
  /** where its objects go (spec.targetNamespace, else its own) */
  namespace: string
  /** where helm keeps the release (spec.storageNamespace, else its own) */
  storageNamespace: string
  chart: { name: string; version: string; digest: string; source: string }
  /** where the chart was pulled from (a cache of renders asks it again for the digest) */
  chartSource: ChartSource
  values: Record<string, unknown>
  /** what helm-controller applies: the release manifest, and the CRDs its policy installs */
  objects: ManifestObject[]
  /** hooks (helm.sh/hook): run around an install or upgrade, not kept in the manifest */
  hooks: ManifestObject[]
  /** remote $refs of the chart's values schema that were not checked */
  skipped: string[]
  /** chart and render both came from the cache */
  cached: boolean
}

interface HelmReleaseSpec {
  chart?: {
    spec?: {
      chart: string
      version?: string
      sourceRef: { kind: string; name: string; namespace?: string }
      valuesFiles?: string[]
    }
  }
  chartRef?: { kind: string; name: string; namespace?: string }
  releaseName?: string
  targetNamespace?: string
  storageNamespace?: string
  values?: Record<string, unknown>
  valuesFrom?: { kind: string; name: string; valuesKey?: string; targetPath?: string; optional?: boolean }[]
  postRenderers?: {
    kustomize?: {
      patches?: { patch: string; target?: Record<string, unknown> }[]
      images?: Record<string, unknown>[]
    }
  }[]
  commonMetadata?: { labels?: Record<string, string>; annotations?: Record<string, string> }
  install?: { crds?: string; disableSchemaValidation?: boolean }
  upgrade?: { crds?: string }
  suspend?: boolean
}

const origins = new WeakMap<ManifestObject, { release: RenderedRelease; template?: string }>()

/** The release and template a rendered object came from. */
export function renderedOrigin(o: ManifestObject): { release: RenderedRelease; template?: string } | undefined {
  return origins.get(o)
}

/** helm-controller's release.ShortenName: past 53 characters, 40 of them, a dash and 12 of the name's sha256. */
export function shortenReleaseName(name: string): string {
  if (name.length <= 53) return name
  const sum = createHash('sha256').update(name).digest('hex')
  return `${name.slice(0, 53 - 13)}-${sum.slice(0, 12)}`
}

/** helm-controller's GetReleaseName, shortened as it installs. */
export function releaseNameOf(hr: ManifestObject): string {
  const spec = (hr.spec ?? {}) as HelmReleaseSpec
  const name =
    spec.releaseName || (spec.targetNamespace ? `${spec.targetNamespace}-${hr.metadata.name}` : hr.metadata.name)
  return shortenReleaseName(name)
}

/** helm-controller's MergeMaps: maps merge, anything else in `b` replaces. */
export function mergeMaps(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a }
  for (const [k, v] of Object.entries(b)) {
    const av = out[k]
    if (isMap(v) && isMap(av)) out[k] = mergeMaps(av, v)
    else out[k] = v
  }
  return out
}

const isMap = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/**
 * valuesFrom's targetPath, set as helm-controller v1.4.0 sets it (fluxcd/pkg chartutil
 * ReplacePathValue): the text `<targetPath>=<value>` parsed as one Helm `--set` line — a comma
 * in the value ends it (`\,` keeps it), `{a,b}` is a list, the value is typed unless quoted.
 * In place, as upstream does (nested maps shared with spec.values are changed too). Throws
 * StrvalsError with Helm's message.
 */
export function setTargetPath(values: Record<string, unknown>, target: string, raw: string): void {
  replacePathValue(values, target, raw)
}

function hrId(hr: ManifestObject): string {
  return `${hr.metadata.namespace ?? 'default'}/${hr.metadata.name}`
}

/** Looks up a Flux source or values object: the same build first, then the caller's lookup (the tree). */
async function find(
  ctx: LeafContext,
  kind: string,
  namespace: string,
  name: string,
): Promise<ManifestObject | undefined> {
  const here = ctx.objects.find(
    (o) => o.kind === kind && o.metadata.name === name && (o.metadata.namespace ?? namespace) === namespace,
  )
  return here ?? (await ctx.lookup?.({ kind, namespace, name }))
}

/** Where the HelmRelease is written in the source: a file (relative) and its YAML document, for lines. */
interface Written {
  file: string
  abs: string
  doc: Document
  lines: LineCounter
}

const writtenCache = new Map<string, { mtime: number; docs: { doc: Document; lines: LineCounter }[] }>()

function yamlFilesUnder(dir: string, out: string[] = []): string[] {
  if (!fs.existsSync(dir)) return out
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (e.name === '.git' || e.name === 'node_modules' || e.name.startsWith('.')) continue
    const full = path.join(dir, e.name)
    if (e.isDirectory()) yamlFilesUnder(full, out)
    else if (/\.ya?ml$/.test(e.name)) out.push(full)
  }
  return out
}

function writtenIn(ctx: LeafContext, hr: ManifestObject): Written | undefined {
  const start = path.resolve(ctx.sourceRoot, ctx.kustomization.spec.path ?? '.')
  const search = (dir: string): Written | undefined => {
    for (const file of yamlFilesUnder(dir)) {
      const mtime = fs.statSync(file).mtimeMs
      let entry = writtenCache.get(file)
      if (!entry || entry.mtime !== mtime) {
        const text = fs.readFileSync(file, 'utf8')
        const lines = new LineCounter()
        const docs = text.includes('HelmRelease')
          ? parseAllDocuments(text, { lineCounter: lines }).flatMap((d) =>
              'errors' in d && !d.errors.length ? [{ doc: d, lines }] : [],
            )
          : []
        entry = { mtime, docs }
        writtenCache.set(file, entry)
      }
      for (const d of entry.docs) {
        const v = d.doc.toJS() as { kind?: string; metadata?: { name?: string } } | null
        if (v?.kind === 'HelmRelease' && v.metadata?.name === hr.metadata.name)
          return { file: path.relative(ctx.sourceRoot, file), abs: file, doc: d.doc, lines: d.lines }
      }
    }
    return undefined
  }
  return search(start) ?? (start !== path.resolve(ctx.sourceRoot) ? search(ctx.sourceRoot) : undefined)
}

const written = new WeakMap<RenderedRelease, Written>()

/** `file:line` of a path in the HelmRelease as written (the longest prefix written there). */
function lineOf(w: Written, segments: (string | number)[]): number | undefined {
  for (let n = segments.length; n > 0; n--) {
    const node = w.doc.getIn(segments.slice(0, n), true) as { range?: [number, number, number] } | undefined
    if (node?.range) return w.lines.linePos(node.range[0]).line
  }
  return undefined
}

/** The chart source a HelmRelease names, resolved through its OCIRepository/HelmRepository/GitRepository. */
async function chartSource(hr: ManifestObject, ctx: LeafContext, what: string): Promise<ChartSource> {
  const spec = (hr.spec ?? {}) as HelmReleaseSpec
  const ns = hr.metadata.namespace ?? 'default'
  const missing = (kind: string, name: string, namespace: string) =>
    new NsopsError(`${what}: its chart source ${kind} ${namespace}/${name} is not in the repository's Flux builds.`, {
      hint: `Add the ${kind} to a Kustomization of this repository (beside the HelmRelease, as home-ops does), or fix the reference's name and namespace.`,
    })
  if (spec.chartRef) {
    const ref = spec.chartRef
    const namespace = ref.namespace ?? ns
    const src = await find(ctx, ref.kind, namespace, ref.name)
    if (!src) throw missing(ref.kind, ref.name, namespace)
    if (ref.kind === 'OCIRepository') return ownChart(ociRepositorySource(src, what), ctx.sourceRoot)
    if (ref.kind === 'HelmChart') {
      const s = (src.spec ?? {}) as { chart: string; version?: string; sourceRef: { kind: string; name: string } }
      return chartSpecSource({ chart: s.chart, version: s.version, sourceRef: s.sourceRef }, namespace, ctx, what)
    }
    throw new NsopsError(`${what}: spec.chartRef.kind ${ref.kind} is not one helm-controller reads.`, {
      hint: 'chartRef names an OCIRepository or a HelmChart; for a HelmRepository use spec.chart.spec.',
    })
  }
  if (spec.chart?.spec) return chartSpecSource(spec.chart.spec, ns, ctx, what)
  throw new NsopsError(`${what}: it has neither spec.chart nor spec.chartRef.`, {
    hint: 'Give spec.chartRef (an OCIRepository) or spec.chart.spec (chart, version, sourceRef).',
  })
}

function ociRepositorySource(src: ManifestObject, what: string): ChartSource {
  const s = (src.spec ?? {}) as {
    url?: string
    ref?: { tag?: string; semver?: string; digest?: string }
    layerSelector?: { mediaType?: string; operation?: string }
    insecure?: boolean
  }
  const at = `OCIRepository ${src.metadata.namespace ?? ''}/${src.metadata.name}`
  if (!s.url?.startsWith('oci://'))
    throw new NsopsError(`${what}: ${at} has spec.url ${s.url ?? '(none)'}, not an oci:// URL.`)
  const media = s.layerSelector?.mediaType
  if (media && media !== HELM_CHART_LAYER)
    throw new NsopsError(
      `${what}: ${at} selects layers of type ${media}; nsops renders charts pushed as Helm charts (${HELM_CHART_LAYER}).`,
      { hint: 'Push the chart with `helm push` (or `just chart push`), whose layer is the Helm chart content type.' },
    )
  return {
    type: 'oci',
    url: s.url,
    digest: s.ref?.digest,
    semver: s.ref?.semver,
    tag: s.ref?.tag ?? (s.ref?.digest || s.ref?.semver ? undefined : 'latest'),
    plainHttp: s.insecure === true,
  }
}

/**
 * A chart this repository holds and publishes (namespaces/<ns>/charts/<name>, pushed by
 * `just dev-up`/deploy as oci://REGISTRY/charts/<name>:<version>): rendered from its folder, so
 * the repository validates offline and before the chart is published. Any other source as is.
 */
function ownChart(source: ChartSource, repoDir: string): ChartSource {
  if (source.type !== 'oci' || source.digest) return source
  const m = new RegExp(`/${CHARTS_PREFIX}/([^/]+)$`).exec(source.url)
  if (!m) return source
  const nsDir = path.join(repoDir, 'namespaces')
  if (!fs.existsSync(nsDir)) return source
  for (const ns of fs.readdirSync(nsDir)) {
    for (const dir of namespaceCharts(path.join(nsDir, ns))) {
      const meta = (YAML.parse(fs.readFileSync(path.join(dir, 'Chart.yaml'), 'utf8')) ?? {}) as {
        name?: string
        version?: string
      }
      if (meta.name !== m[1] || !meta.version) continue
      const fits = source.semver
        ? semver.satisfies(meta.version, source.semver)
        : !source.tag || source.tag === 'latest' || source.tag === meta.version
      if (fits) return { type: 'dir', path: dir }
    }
  }
  return source
}

async function chartSpecSource(
  c: { chart: string; version?: string; sourceRef: { kind: string; name: string; namespace?: string } },
  ns: string,
  ctx: LeafContext,
  what: string,
): Promise<ChartSource> {
  const namespace = c.sourceRef.namespace ?? ns
  const src = await find(ctx, c.sourceRef.kind, namespace, c.sourceRef.name)
  if (c.sourceRef.kind === 'GitRepository') {
    // the chart folder from the local checkout: the repository nsops runs in is the one Flux reads
    const dir = path.resolve(ctx.sourceRoot, c.chart)
    if (!dir.startsWith(path.resolve(ctx.sourceRoot)))
      throw new NsopsError(`${what}: spec.chart.spec.chart ${c.chart} leaves the repository.`)
    return { type: 'dir', path: dir }
  }
  if (!src)
    throw new NsopsError(
      `${what}: its chart source ${c.sourceRef.kind} ${namespace}/${c.sourceRef.name} is not in the repository's Flux builds.`,
      { hint: `Add the ${c.sourceRef.kind} to a Kustomization of this repository, or fix spec.chart.spec.sourceRef.` },
    )
  if (c.sourceRef.kind !== 'HelmRepository')
    throw new NsopsError(`${what}: charts from a ${c.sourceRef.kind} are not rendered offline by nsops.`, {
      hint: 'Use an OCIRepository, a HelmRepository or a GitRepository of this repository.',
    })
  const s = (src.spec ?? {}) as { url?: string; type?: string; insecure?: boolean }
  const version = c.version && c.version !== '*' ? c.version : undefined
  if (s.type === 'oci' || s.url?.startsWith('oci://')) {
    const exact = version && semver.valid(version) !== null
    return {
      type: 'oci',
      url: `${s.url!.replace(/\/+$/, '')}/${c.chart}`,
      ...(exact ? { tag: version } : { semver: version ?? '*' }),
      plainHttp: s.insecure === true,
    }
  }
  if (!s.url) throw new NsopsError(`${what}: HelmRepository ${namespace}/${c.sourceRef.name} has no spec.url.`)
  return { type: 'http', repository: s.url, chart: c.chart, version }
}

/** A ConfigMap's or Secret's key, as text (Secret data decoded). */
function dataOf(o: ManifestObject, key: string): string | undefined {
  if (o.kind === 'Secret') {
    const sd = (o as { stringData?: Record<string, string> }).stringData?.[key]
    if (sd !== undefined) return sd
    const d = (o as { data?: Record<string, string> }).data?.[key]
    return d === undefined ? undefined : Buffer.from(d, 'base64').toString('utf8')
  }
  return (o as { data?: Record<string, string> }).data?.[key]
}

const isSops = (o: ManifestObject) => o.kind === 'Secret' && typeof (o as { sops?: unknown }).sops === 'object'

/**
 * helm-controller's values (fluxcd/pkg chartutil ChartValuesFromReferences): valuesFrom in order
 * (targetPath entries over spec.values), spec.values last. Exported for the tests.
 */
export async function valuesOf(
  hr: ManifestObject,
  ctx: LeafContext,
  what: string,
  warn: (m: string) => void,
): Promise<{ values: Record<string, unknown>; fromRefs: Map<string, string> }> {
  const spec = (hr.spec ?? {}) as HelmReleaseSpec
  const ns = hr.metadata.namespace ?? 'default'
  // a copy, as helm-controller reads spec.values afresh: a targetPath changes maps in place
  const values = isMap(spec.values) ? structuredClone(spec.values) : {}
  let result: Record<string, unknown> = {}
  const fromRefs = new Map<string, string>()
  for (const [i, ref] of (spec.valuesFrom ?? []).entries()) {
    const key = ref.valuesKey || 'values.yaml'
    const label = `spec.valuesFrom[${i}] (${ref.kind} ${ns}/${ref.name}, key ${key})`
    if (ref.kind !== 'ConfigMap' && ref.kind !== 'Secret')
      throw new NsopsError(`${what}: ${label}: kind ${ref.kind} is not a ConfigMap or Secret.`)
    const obj = await find(ctx, ref.kind, ns, ref.name)
    if (!obj) {
      if (ref.optional) continue
      throw new NsopsError(`${what}: ${label} is not in the repository's Flux builds.`, {
        hint: 'Create it in a Kustomization of this repository (a configMapGenerator beside the HelmRelease), or mark the reference `optional: true`.',
      })
    }
    if (isSops(obj)) {
      warn(`${what}: ${label} is SOPS-encrypted (only Flux can decrypt it): rendered without it`)
      continue
    }
    const data = dataOf(obj, key)
    if (data === undefined) {
      if (ref.optional) continue
      throw new NsopsError(`${what}: ${label}: the ${ref.kind} has no key ${key}.`, {
        hint: 'Name the key in valuesKey (default values.yaml), or mark the reference `optional: true`.',
      })
    }
    if (ref.targetPath) {
      result = mergeMaps(result, values)
      try {
        setTargetPath(result, ref.targetPath, data)
      } catch (err) {
        if (!(err instanceof StrvalsError)) throw err
        throw new NsopsError(
          `${what}: ${label}: helm-controller cannot set targetPath ${ref.targetPath} to the ${ref.kind}'s value${ref.kind === 'Secret' ? '' : ` ${JSON.stringify(data.length > 80 ? `${data.slice(0, 80)}…` : data)}`}: ${ref.kind === 'Secret' ? err.message.replace(/"(?:[^"\\]|\\.)*"/g, '"…"') : err.message}.`,
          {
            hint: 'helm-controller parses `<targetPath>=<value>` as one Helm --set line: a comma in the value starts another key=value (write it \\, to keep it), `{a,b}` is a list, and `\\` escapes the next character; or drop targetPath and write the values as YAML under the key.',
          },
        )
      }
      fromRefs.set(ref.targetPath, label)
      continue
    }
    let parsed: unknown
    try {
      parsed = YAML.parse(data) ?? {}
    } catch (err) {
      throw new NsopsError(`${what}: ${label} is not YAML: ${(err as Error).message.split('\n')[0]}`)
    }
    if (!isMap(parsed)) throw new NsopsError(`${what}: ${label} is not a YAML mapping of values.`)
    for (const leaf of leafPaths(parsed)) fromRefs.set(leaf, label)
    result = mergeMaps(result, parsed)
  }
  return { values: mergeMaps(result, values), fromRefs }
}

function leafPaths(v: unknown, prefix = ''): string[] {
  if (!isMap(v)) return prefix ? [prefix] : []
  return Object.entries(v).flatMap(([k, x]) => leafPaths(x, prefix ? `${prefix}.${k}` : k))
}

/** CRDs' group/versions (and group/version/Kind) in a set of objects, for `.Capabilities.APIVersions`. */
function crdApis(objects: ManifestObject[]): { apis: string[]; clusterKinds: Set<string> } {
  const apis: string[] = []
  const clusterKinds = new Set<string>()
  for (const o of objects) {
    if (o.kind !== 'CustomResourceDefinition') continue
    const s = (o.spec ?? {}) as {
      group?: string
      scope?: string
      names?: { kind?: string }
      versions?: { name: string }[]
    }
    if (!s.group) continue
    for (const v of s.versions ?? []) apis.push(`${s.group}/${v.name}`, `${s.group}/${v.name}/${s.names?.kind ?? ''}`)
    if (s.scope === 'Cluster' && s.names?.kind) clusterKinds.add(s.names.kind)
  }
  return { apis, clusterKinds }
}

/** spec.postRenderers' kustomize patches and images, run by the pinned kustomize over the rendered objects. */
async function postRender(objects: RenderedObject[], spec: HelmReleaseSpec, what: string): Promise<RenderedObject[]> {
  const kustomizes = (spec.postRenderers ?? []).map((p) => p.kustomize).filter((k) => !!k)
  if (!kustomizes.length) return objects
  const key = (o: ManifestObject) => `${o.apiVersion}/${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`
  let current = objects
  for (const k of kustomizes) {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-post-render-'))
    try {
      fs.writeFileSync(path.join(tmp, 'rendered.yaml'), current.map((r) => YAML.stringify(r.object)).join('---\n'))
      fs.writeFileSync(
        path.join(tmp, 'kustomization.yaml'),
        YAML.stringify({
          apiVersion: 'kustomize.config.k8s.io/v1beta1',
          kind: 'Kustomization',
          resources: ['rendered.yaml'],
          ...(k.patches?.length ? { patches: k.patches } : {}),
          ...(k.images?.length ? { images: k.images } : {}),
        }),
      )
      let built: ManifestObject[]
      try {
        built = await buildKustomization(tmp)
      } catch (err) {
        throw new NsopsError(`${what}: spec.postRenderers fail: ${(err as Error).message.split('\n')[0]}`, {
          hint: 'helm-controller runs the same kustomize patches over the rendered chart: check each patch and its target.',
        })
      }
      // kustomize keeps every object (a patch changes fields, not identity): carry each one's template over
      const byKey = new Map(current.map((r) => [key(r.object), r]))
      current = built.map((o) => {
        const was = byKey.get(key(o))
        return { object: o, template: was?.template, hook: was?.hook ?? false, crd: was?.crd ?? false }
      })
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true })
    }
  }
  return current
}

function addMetadata(
  o: ManifestObject,
  field: 'labels' | 'annotations',
  add: Record<string, string> | undefined,
): void {
  if (!add) return
  o.metadata[field] = { ...(o.metadata[field] ?? {}), ...add }
}

/** Renders one HelmRelease of a build into what helm-controller would apply. */
export async function renderHelmRelease(
  hr: ManifestObject,
  ctx: LeafContext,
  opts: HelmRenderOptions = {},
): Promise<RenderedRelease> {
  const warn = opts.warn ?? (() => {})
  const spec = (hr.spec ?? {}) as HelmReleaseSpec
  const hrNs = hr.metadata.namespace ?? 'default'
  const w = writtenIn(ctx, hr)
  const what = `HelmRelease ${hrId(hr)}${w ? ` (${w.file})` : ''}`
  const source = await chartSource(hr, ctx, what)
  const chart: PulledChart = await pullChart(source, what, { offline: opts.offline })
  if (chart.note) warn(`${what}: ${chart.note}`)
  const { values, fromRefs } = await valuesOf(hr, ctx, what, warn)
  const releaseName = releaseNameOf(hr)
  const namespace = spec.targetNamespace || hrNs
  const release: RenderedRelease = {
    release: hr,
    id: hrId(hr),
    file: w?.file,
    releaseName,
    namespace,
    storageNamespace: spec.storageNamespace || hrNs,
    chart: { name: chart.name, version: chart.version, digest: chart.digest, source: describeSource(source) },
    chartSource: source,
    values,
    objects: [],
    hooks: [],
    skipped: [],
    cached: chart.cached,
  }
  if (w) written.set(release, w)
  // the chart's values schema, checked here (helm's own check would fetch remote $refs); run
  // only when these inputs were not rendered before (renderChart keeps what it skipped)
  const root = spec.install?.disableSchemaValidation ? undefined : await unpackedChart(chart)
  const checkValues = (): string[] => {
    if (!root) return []
    const check = checkValuesSchema(root, values)
    if (check.problems.length) {
      const lines = check.problems.map((p) => {
        const valuesPath = p.path ? `spec.values.${p.path}` : 'spec.values'
        const from = p.path && fromRefs.get(p.path)
        const line = w && !from ? lineOf(w, ['spec', 'values', ...splitPath(p.path)]) : undefined
        const at = from ? ` (set by ${from})` : w ? ` (${w.file}${line ? `:${line}` : ''})` : ''
        return `${valuesPath}${at}: ${p.message}${p.chart !== chart.name ? ` (schema of ${p.chart})` : ''}`
      })
      throw new NsopsError(
        `${what}: its values do not meet chart ${chart.name}@${chart.version}'s values.schema.json (${lines.length === 1 ? '1 error' : `${lines.length} errors`}):\n  ${lines.join('\n  ')}`,
        {
          hint: "Fix the values named above (helm-controller would fail the install on them too); the chart's values.schema.json says what each takes.",
        },
      )
    }
    return check.skipped
  }
  const build = crdApis(ctx.objects)
  const policy = spec.install?.crds || 'Create'
  const rendered = await renderChart(chart, {
    releaseName,
    namespace,
    values,
    kubeVersion: opts.kubeVersion,
    apiVersions: [...(opts.apiVersions ?? []), ...build.apis],
    includeCrds: policy !== 'Skip',
    what,
    check: checkValues,
  })
  release.cached = release.cached && rendered.cached
  release.skipped = rendered.notes
  if (release.skipped.length)
    warn(
      `${what}: chart ${chart.name}@${chart.version}'s values schema $refs ${release.skipped.length === 1 ? 'a schema' : `${release.skipped.length} schemas`} it does not ship, not checked (no network at render time): ${release.skipped.join(', ')}`,
    )
  // crds/ is installed apart from the release, as helm does: no post-renderer, no
  // commonMetadata, only helm-controller's origin labels (its CRD visitor); the v1.4.0
  // controller on the sim agrees (integration/helm-render-controller)
  const post = [
    ...rendered.objects.filter((r) => r.crd),
    ...(await postRender(
      rendered.objects.filter((r) => !r.crd),
      spec,
      what,
    )),
  ]
  const chartCrds = crdApis(post.map((r) => r.object))
  const clusterKinds = new Set([...build.clusterKinds, ...chartCrds.clusterKinds])
  placeInNamespace(
    post.map((r) => r.object),
    namespace,
    clusterKinds,
  )
  for (const r of post) {
    if (!r.crd) {
      addMetadata(r.object, 'labels', spec.commonMetadata?.labels)
      addMetadata(r.object, 'annotations', spec.commonMetadata?.annotations)
    }
    addMetadata(r.object, 'labels', { [RELEASE_NAME_LABEL]: hr.metadata.name, [RELEASE_NAMESPACE_LABEL]: hrNs })
    origins.set(r.object, { release, template: r.template })
    if (r.hook) release.hooks.push(r.object)
    else release.objects.push(r.object)
  }
  // CRDs first, as helm installs them before the release
  release.objects.sort(
    (a, b) => Number(b.kind === 'CustomResourceDefinition') - Number(a.kind === 'CustomResourceDefinition'),
  )
  return release
}

function splitPath(p: string): (string | number)[] {
  return p
    .split(/\.|(?=\[)/)
    .filter(Boolean)
    .map((s) => (/^\[\d+\]$/.test(s) ? Number(s.slice(1, -1)) : s))
}

/** A LeafRenderer for FluxBuildOptions.leaves: the objects helm-controller would apply (hooks not among them). */
export function helmReleaseRenderer(
  opts: HelmRenderOptions = {},
  onRelease?: (r: RenderedRelease) => void,
): LeafRenderer {
  return async (obj, ctx) => {
    const r = await renderHelmRelease(obj, ctx, opts)
    onRelease?.(r)
    return r.objects
  }
}

/** The values paths whose value is `value`, best first (the one whose key is `key`). */
function valuesPathsOf(values: unknown, value: unknown, key: string | undefined, prefix = ''): string[] {
  const out: string[] = []
  const walk = (v: unknown, p: string) => {
    if (Array.isArray(v)) v.forEach((x, i) => walk(x, `${p}[${i}]`))
    else if (isMap(v)) for (const [k, x] of Object.entries(v)) walk(x, p ? `${p}.${k}` : k)
    else if (v === value) out.push(p)
  }
  walk(values, prefix)
  return out.sort((a, b) => Number(b.endsWith(`.${key}`)) - Number(a.endsWith(`.${key}`)))
}

/**
 * Places a schema finding on a rendered object: the HelmRelease's file (and the line of the
 * values path that gave the bad value, when one holds it), with the template named. False for
 * an object no HelmRelease rendered.
 */
export function locateRendered(f: {
  object: ManifestObject
  path: string
  file?: string
  line?: number
  note?: string
}): boolean {
  const origin = renderedOrigin(f.object)
  if (!origin) return false
  const { release } = origin
  const w = written.get(release)
  const segs = f.path
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
  let value: unknown = f.object
  for (const s of segs) value = isMap(value) || Array.isArray(value) ? (value as Record<string, unknown>)[s] : undefined
  const paths =
    value === undefined || isMap(value) || Array.isArray(value) ? [] : valuesPathsOf(release.values, value, segs.at(-1))
  const notes = [`rendered by HelmRelease ${release.id} from chart ${release.chart.name}@${release.chart.version}`]
  if (origin.template) notes.push(`template ${origin.template}`)
  if (paths.length) notes.push(`values path spec.values.${paths[0]}`)
  f.note = notes.join(', ')
  if (w) {
    f.file = w.abs
    f.line = paths.length ? lineOf(w, ['spec', 'values', ...splitPath(paths[0])]) : lineOf(w, ['spec', 'values'])
  }
  return true
}
