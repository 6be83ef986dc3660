// The drift report: one typed model for the terminal, `-o json` (schema nsops.drift/v1,
// docs/drift-json.md) and the dashboard's summary.
import type { ObjectRef } from '../kube/refs.ts'
import type { Json } from './fields.ts'
import type { FieldSetter } from './managers.ts'

export const DRIFT_SCHEMA = 'nsops.drift/v1'

export type DriftClass = 'in-sync' | 'modified' | 'missing' | 'gone-from-git' | 'extra' | 'skipped'
export const DRIFT_CLASSES: readonly DriftClass[] = [
  'modified',
  'missing',
  'gone-from-git',
  'extra',
  'skipped',
  'in-sync',
]

export interface DriftChange {
  /** JSON pointer */
  path: string
  /** what git sets (absent: git does not set it); Secret values are `sha256:<12 hex>` */
  git?: Json
  /** what is live (absent: not there live); Secret values are `sha256:<12 hex>` */
  live?: Json
  /** who set the live value, newest first (from managedFields); empty when it is gone live */
  setBy: FieldSetter[]
}

export interface DriftObject {
  ref: ObjectRef
  class: DriftClass
  /** modified: the fields Flux's apply would change */
  changes?: DriftChange[]
  /** a modified Secret: the keys whose values differ (values are never shown) */
  secretKeys?: string[]
  /** skipped: why; extra/gone-from-git: a note */
  reason?: string
  /** gone-from-git: whether Flux deletes it on the next reconcile */
  willPrune?: boolean
  /** gone-from-git: it carries kustomize.toolkit.fluxcd.io/prune: disabled */
  pruneDisabled?: boolean
  /** changes a re-apply cannot make (immutable fields, a PVC shrink) */
  warnings?: string[]
  /** the API server refused the dry run: its message; the changes then compare the manifest with live */
  dryRunError?: string
  /** fields left out by ignore rules (pointers), where they matched */
  ignored?: string[]
  /** made by this HelmRelease (`namespace/name`): compared with its live Helm release's manifest */
  helmRelease?: string
  /** why this object's drift stays for now (its HelmRelease is suspended, and by whom) */
  context?: string
}

export interface DriftSuspension {
  /** the suspended Flux object, `Kind/namespace/name` (a Kustomization, or a HelmRelease) */
  kustomization: string
  /** "by hand", or "by user@host (pid N, session S) at T" */
  by: string
  user?: string
  host?: string
  session?: string
  since?: string
  /** what resuming it does to the drift */
  note: string
}

export interface DriftReport {
  schema: typeof DRIFT_SCHEMA
  generatedAt: string
  context: string
  server: string
  namespace: { config: string; name: string }
  /** what "git" is here */
  source: {
    /** `flux`: the managing Kustomization's build; `local`: overlays/prod, the namespace being under no Flux Kustomization */
    mode: 'flux' | 'local'
    kustomization?: {
      name: string
      namespace: string
      by: string
      root: boolean
      suspended: boolean
      prune: boolean
      lastAppliedRevision?: string
    }
    note: string
    /** the folder built, relative to the repository root */
    path: string
    /** the namespace's other Kustomizations built beside it (home-ops' shape: one per app), each with its own spec: `namespace/name` */
    also?: string[]
    /** the namespace's HelmReleases whose objects are compared with their live Helm release's manifest */
    helmReleases?: {
      name: string
      namespace: string
      release: string
      /** the live Helm release's revision and status */
      revision: number
      status: string
      /** `rendered`: the chart rendered offline for the HelmRelease in the baseline build; `release-manifest`: the live release's stored manifest */
      baseline: 'rendered' | 'release-manifest'
      /** chart@version rendered */
      chart?: string
    }[]
    baseline: {
      kind: 'applied' | 'revision' | 'worktree'
      requested: string
      sha?: string
      revision?: string
      from: 'git' | 'artifact' | 'worktree'
    }
  }
  /** exit 0 when false */
  drifted: boolean
  counts: Record<DriftClass, number>
  objects: DriftObject[]
  /** the ignore rules in force, and where each comes from */
  ignoreRules: { from: string; paths: string[]; target?: Record<string, string> }[]
  suspensions: DriftSuspension[]
  /** objects left out (SOPS-encrypted Secrets) and kinds that could not be listed */
  notChecked: { object: string; reason: string }[]
  /** report-level warnings */
  warnings: string[]
  tookMs: number
}

/** The dashboard's drift section (`dashboard.ts --drift`): counts and the first objects per class. */
export interface DriftSummary {
  namespace: string
  drifted: boolean
  counts: Record<DriftClass, number>
  /** `Deployment/arr-stack/sonarr: /spec/replicas set by kubectl`, at most 10 */
  items: string[]
  suspensions: string[]
  baseline: string
  tookMs: number
}

export function summarizeDrift(r: DriftReport): DriftSummary {
  const name = (o: DriftObject) => `${o.ref.kind}/${o.ref.namespace ? `${o.ref.namespace}/` : ''}${o.ref.name}`
  const items = r.objects
    .filter((o) => o.class !== 'in-sync' && o.class !== 'skipped')
    .slice(0, 10)
    .map((o) => {
      if (o.class !== 'modified') return `${name(o)}: ${o.class}`
      const fields = (o.changes ?? [])
        .slice(0, 3)
        .map((c) => `${c.path}${c.setBy[0] ? ` by ${c.setBy[0].manager}` : ''}`)
      return `${name(o)}${o.helmRelease ? ` (HelmRelease ${o.helmRelease})` : ''}: ${fields.join(', ')}${(o.changes?.length ?? 0) > 3 ? ', …' : ''}`
    })
  const b = r.source.baseline
  return {
    namespace: r.namespace.name,
    drifted: r.drifted,
    counts: r.counts,
    items,
    suspensions: r.suspensions.map((s) => `${s.kustomization} suspended ${s.by}: ${s.note}`),
    baseline: b.kind === 'worktree' ? 'worktree' : `${b.requested} ${b.sha?.slice(0, 12) ?? ''}`.trim(),
    tookMs: r.tookMs,
  }
}
