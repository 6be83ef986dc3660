// What the views show of one HelmRelease: its chart and where it comes from (the source's kind,
// name and URL), Helm's revision, last action and result, the last five history entries, who
// suspended it, and the values in effect as helm-controller merges them (valuesFrom in order,
// then spec.values on top) with every value that comes from a Secret masked. One model: the
// dashboard's section, --json and the web page render it and nothing else.
import { parse as parseYaml } from 'yaml'
import { errorMessage } from '../core/errors.ts'
import { replacePathValue, StrvalsError } from '../helm/strvals.ts'
import { releaseInfo, type ReleaseInfo } from '../health/flux-controllers.ts'
import { isApiError, type Kube } from '../kube/client.ts'
import { FLUX_FIELD_MANAGER, getFlux, isSuspended, type FluxObject, type FluxRef } from './kinds.ts'
import { sourceOf } from './status.ts'
import { describeSuspension, markerOf, untouchedSince } from './suspend.ts'

/** What a value from a Secret shows as (the same mark as deploy's diff of a Secret). */
export const MASKED = '***'

/** Who suspended a Flux object: nsops (its marker, untouched since), the flux CLI, or someone by hand. */
export interface SuspensionBy {
  /** `nsops`: a dev loop's hold or `just suspend`/the dashboard; `flux CLI`: `flux suspend`; `hand`: anything else */
  kind: 'nsops' | 'flux CLI' | 'hand'
  /** for people: "by nsops: user@host with `just suspend` at …", "with flux suspend", "by hand (kubectl-patch)" */
  text: string
  /** the field manager that last set spec.suspend, when managedFields tell */
  manager?: string
}

interface ManagedField {
  manager?: string
  operation?: string
  time?: string
  fieldsV1?: { 'f:spec'?: Record<string, unknown> }
}

/** The field manager that owns spec.suspend (the last one to set it), from managedFields. */
function suspendManager(obj: FluxObject): string | undefined {
  const fields = ((obj.metadata as { managedFields?: ManagedField[] }).managedFields ?? []) as ManagedField[]
  const owners = fields.filter((f) => f.fieldsV1?.['f:spec'] && 'f:suspend' in f.fieldsV1['f:spec'])
  owners.sort((a, b) => String(b.time ?? '').localeCompare(String(a.time ?? '')))
  return owners[0]?.manager
}

/**
 * Who suspended it, or undefined when it runs. nsops' marker counts only while the object's
 * generation is the one our suspend left (a `flux resume` + `flux suspend` since makes it
 * theirs); without one, the field manager of spec.suspend tells the flux CLI (`flux`, or
 * flux-client-side-apply, which nsops also writes as, but always with its marker) from a hand
 * edit (kubectl, a script).
 */
export function suspensionBy(obj: FluxObject): SuspensionBy | undefined {
  if (!isSuspended(obj)) return undefined
  const marker = markerOf(obj)
  const manager = suspendManager(obj)
  if (marker && marker !== 'unreadable marker' && untouchedSince(marker, obj))
    return { kind: 'nsops', text: `by nsops: ${describeSuspension(marker).replace(/^by /, '')}`, manager }
  // the flux CLI's patches carry its binary's name as the manager (or the field manager nsops shares with it)
  if (manager === 'flux' || manager === FLUX_FIELD_MANAGER)
    return { kind: 'flux CLI', text: 'with flux suspend (the flux CLI)', manager }
  return { kind: 'hand', text: `by hand${manager ? ` (${manager})` : ''}`, manager }
}

export interface ReleaseSource {
  kind: string
  name: string
  namespace: string
  /** the source's spec.url (oci://…, https://…) */
  url?: string
  /** an OCIRepository's tag/semver/digest, a GitRepository's branch/tag */
  ref?: string
  /** the artifact the source-controller holds */
  revision?: string
  ready?: 'True' | 'False' | 'Unknown'
  message?: string
  /** set when the source could not be read */
  missing?: boolean
}

export interface ReleaseValues {
  /** the merged values helm-controller passes to Helm; leaves from Secrets are `***` */
  effective: Record<string, unknown>
  /** where each part comes from, in merge order */
  from: {
    kind: 'ConfigMap' | 'Secret' | 'spec.values'
    name?: string
    key?: string
    targetPath?: string
    note?: string
  }[]
}

export interface HelmReleaseView {
  kind: 'HelmRelease'
  name: string
  namespace: string
  /** the chart's name (the chart.spec.chart, or the last release's chart) */
  chart: string
  /** the version the last release installed (or the version spec asks for, before the first) */
  version: string
  /** `chart@version` */
  chartVersion: string
  source?: ReleaseSource
  /** Helm's release revision (0 before the first release) */
  revision: number
  /** install, upgrade, test, rollback, uninstall */
  lastAction?: string
  lastResult?: 'succeeded' | 'failed'
  helmStatus?: string
  lastDeployed?: string
  /** the last 5 Helm releases, newest first */
  history: ReleaseInfo['history']
  ready: 'True' | 'False' | 'Unknown'
  reason?: string
  message?: string
  suspended: boolean
  suspendedBy?: SuspensionBy
  /** the release's name and namespace in Helm's storage */
  releaseName: string
  storageNamespace: string
  /** what it installs into */
  targetNamespace: string
  values: ReleaseValues
}

/** Every leaf replaced by the mask: a Secret's values are never shown, only their shape. */
export function maskLeaves(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(maskLeaves)
  if (typeof v === 'object' && v !== null)
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, maskLeaves(x)]))
  return MASKED
}

const isPlain = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/** Helm's merge of values maps (chartutil.MergeTables' order: `over` wins, maps merge). */
export function mergeValues(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base }
  for (const [k, v] of Object.entries(over)) out[k] = isPlain(v) && isPlain(out[k]) ? mergeValues(out[k], v) : v
  return out
}

interface ValuesReference {
  kind?: string
  name?: string
  valuesKey?: string
  targetPath?: string
  optional?: boolean
}

/** The values in effect: valuesFrom in order, then spec.values; a Secret's leaves masked as read. */
async function effectiveValues(kube: Kube, hr: FluxObject): Promise<ReleaseValues> {
  const namespace = hr.metadata.namespace
  const refs = (hr.spec?.valuesFrom as ValuesReference[] | undefined) ?? []
  // a copy: a targetPath is set in place, into maps shared with spec.values (as upstream does)
  const written = hr.spec?.values
  const inline = isPlain(written) ? structuredClone(written) : undefined
  let effective: Record<string, unknown> = {}
  const from: ReleaseValues['from'] = []
  for (const ref of refs) {
    const kind = ref.kind === 'Secret' ? 'Secret' : 'ConfigMap'
    const key = ref.valuesKey || 'values.yaml'
    const entry: ReleaseValues['from'][number] = { kind, name: ref.name, key }
    if (ref.targetPath) entry.targetPath = ref.targetPath
    from.push(entry)
    let raw: string | undefined
    try {
      if (kind === 'ConfigMap') {
        const cm = await kube.core.readNamespacedConfigMap({ namespace, name: ref.name ?? '' })
        raw = cm.data?.[key]
      } else {
        const s = await kube.core.readNamespacedSecret({ namespace, name: ref.name ?? '' })
        const b64 = s.data?.[key]
        raw = b64 === undefined ? undefined : Buffer.from(b64, 'base64').toString('utf8')
      }
    } catch (err) {
      entry.note = isApiError(err, 404)
        ? `not found${ref.optional ? ' (optional)' : ''}`
        : `could not be read: ${errorMessage(err)}`
      continue
    }
    if (raw === undefined) {
      entry.note = `has no key ${key}${ref.optional ? ' (optional)' : ''}`
      continue
    }
    if (ref.targetPath) {
      // helm-controller's ReplacePathValue (a Helm --set line) over the values so far and
      // spec.values; a Secret's value is set apart and masked before it joins them
      try {
        effective = mergeValues(effective, inline ?? {})
        if (kind === 'Secret') {
          const apart: Record<string, unknown> = {}
          replacePathValue(apart, ref.targetPath, raw)
          effective = mergeValues(effective, maskLeaves(apart) as Record<string, unknown>)
        } else replacePathValue(effective, ref.targetPath, raw)
      } catch (err) {
        if (!(err instanceof StrvalsError)) throw err
        entry.note = `cannot be set at targetPath ${ref.targetPath}: ${err.message}`
      }
      continue
    }
    let parsed: unknown
    try {
      parsed = parseYaml(raw)
    } catch (err) {
      entry.note = `is not YAML: ${kind === 'Secret' ? 'its content is not shown' : errorMessage(err)}`
      continue
    }
    if (!isPlain(parsed)) continue
    effective = mergeValues(effective, kind === 'Secret' ? (maskLeaves(parsed) as Record<string, unknown>) : parsed)
  }
  if (inline) {
    from.push({ kind: 'spec.values' })
    effective = mergeValues(effective, inline)
  }
  return { effective, from }
}

/** The source a HelmRelease's chart comes from, read now (spec URL, ref, artifact, readiness). */
async function releaseSource(kube: Kube, hr: FluxObject): Promise<ReleaseSource | undefined> {
  const ref = sourceOf(hr)
  if (!ref) return undefined
  const out: ReleaseSource = { kind: ref.kind, name: ref.name, namespace: ref.namespace }
  let src: FluxObject | null = null
  try {
    src =
      ref.kind in { OCIRepository: 1, HelmRepository: 1, GitRepository: 1, Bucket: 1, HelmChart: 1 }
        ? await getFlux(kube, ref as FluxRef)
        : null
  } catch {
    src = null
  }
  if (!src) return { ...out, missing: true }
  const spec = src.spec ?? {}
  if (typeof spec.url === 'string') out.url = spec.url
  const r = spec.ref as Record<string, unknown> | undefined
  const refText = r && (r.digest ?? r.semver ?? r.tag ?? r.branch ?? r.commit ?? r.name)
  if (typeof refText === 'string') out.ref = refText
  const artifact = src.status?.artifact as { revision?: string } | undefined
  if (artifact?.revision) out.revision = artifact.revision
  const ready = (src.status?.conditions as { type: string; status: string; message?: string }[] | undefined)?.find(
    (c) => c.type === 'Ready',
  )
  out.ready = ready?.status === 'True' || ready?.status === 'False' ? ready.status : 'Unknown'
  if (ready?.message) out.message = ready.message
  return out
}

/** The view of one HelmRelease, its source and values read now. */
export async function helmReleaseView(kube: Kube, hr: FluxObject): Promise<HelmReleaseView> {
  const spec = hr.spec ?? {}
  const chartSpec = (spec.chart as { spec?: { chart?: string; version?: string } } | undefined)?.spec
  const info = releaseInfo(hr)
  const status = (hr.status ?? {}) as { storageNamespace?: string; history?: { name?: string; namespace?: string }[] }
  const ready = (
    hr.status?.conditions as { type: string; status: string; reason?: string; message?: string }[] | undefined
  )?.find((c) => c.type === 'Ready')
  const targetNamespace = (spec.targetNamespace as string | undefined) ?? hr.metadata.namespace
  const releaseName =
    status.history?.[0]?.name ??
    (spec.releaseName as string | undefined) ??
    (spec.targetNamespace ? `${targetNamespace}-${hr.metadata.name}` : hr.metadata.name)
  const [source, values] = await Promise.all([releaseSource(kube, hr), effectiveValues(kube, hr)])
  const chart = info?.chart || chartSpec?.chart || source?.name || ''
  const version = info?.version || chartSpec?.version || ''
  const by = suspensionBy(hr)
  return {
    kind: 'HelmRelease',
    name: hr.metadata.name,
    namespace: hr.metadata.namespace,
    chart,
    version,
    chartVersion: version ? `${chart}@${version}` : chart,
    ...(source ? { source } : {}),
    revision: info?.revision ?? 0,
    ...(info?.action ? { lastAction: info.action } : {}),
    ...(info?.result ? { lastResult: info.result } : {}),
    ...(info?.helmStatus ? { helmStatus: info.helmStatus } : {}),
    ...(info?.lastDeployed ? { lastDeployed: info.lastDeployed } : {}),
    history: info?.history ?? [],
    ready: ready?.status === 'True' || ready?.status === 'False' ? ready.status : 'Unknown',
    ...(ready?.reason ? { reason: ready.reason } : {}),
    ...(ready?.message ? { message: ready.message } : {}),
    suspended: isSuspended(hr),
    ...(by ? { suspendedBy: by } : {}),
    releaseName,
    storageNamespace: status.storageNamespace ?? (spec.storageNamespace as string | undefined) ?? hr.metadata.namespace,
    targetNamespace,
    values,
  }
}
