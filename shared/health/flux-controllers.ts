// Which Flux controller reconciles an object, and what the health watch says when that
// controller does not run on the cluster at all: a HelmRelease applied where no helm-controller
// runs is never observed, and waiting out a timeout on "not observed yet" tells nobody why.
// Whether a controller runs is asked of the cluster's provider (shared/cluster/flux-presence.ts
// knows the sim's processes and an ordinary cluster's Deployments); this floor only judges.
import { isFluxObject, type KubeObject, type StatusResult } from './kstatus.ts'

/**
 * The names of the Flux controllers that run, or undefined when that cannot be told (then
 * nothing is claimed missing and an unobserved object simply stays InProgress).
 */
export type FluxControllerCheck = () => Promise<ReadonlySet<string> | undefined>

const byGroup: Record<string, string> = {
  'source.toolkit.fluxcd.io': 'source-controller',
  'kustomize.toolkit.fluxcd.io': 'kustomize-controller',
  'helm.toolkit.fluxcd.io': 'helm-controller',
  'notification.toolkit.fluxcd.io': 'notification-controller',
}

/** The Flux controller that reconciles objects of this apiVersion/kind (flux2's split). */
export function fluxControllerFor(obj: Pick<KubeObject, 'apiVersion' | 'kind'>): string | undefined {
  if (!isFluxObject(obj)) return undefined
  const group = (obj.apiVersion ?? '').split('/')[0]
  if (group === 'image.toolkit.fluxcd.io')
    return obj.kind === 'ImageUpdateAutomation' ? 'image-automation-controller' : 'image-reflector-controller'
  return byGroup[group]
}

/**
 * Whether a controller has written anything for the object's current generation (a condition
 * carrying it, or status.observedGeneration): then one runs, whatever a check said a moment ago.
 */
function observedNow(obj: KubeObject): boolean {
  const generation = obj.metadata?.generation
  const status = obj.status as
    { observedGeneration?: number; conditions?: { observedGeneration?: number }[] } | undefined
  if (typeof generation !== 'number') return Boolean(status?.conditions?.length)
  return (
    status?.observedGeneration === generation ||
    Boolean(status?.conditions?.some((c) => c.observedGeneration === generation))
  )
}

/** The reason the health watch gives a Flux object whose controller does not run. */
export const CONTROLLER_MISSING = 'ControllerMissing'

/**
 * A Flux object still waiting for its controller (InProgress: never observed, or a generation
 * not observed yet) whose controller is not among those running: Failed now, naming it.
 */
export function controllerMissing(
  obj: KubeObject,
  status: StatusResult,
  running: ReadonlySet<string> | undefined,
): StatusResult | undefined {
  if (!running || status.status !== 'InProgress') return undefined
  const controller = fluxControllerFor(obj)
  if (!controller || running.has(controller) || observedNow(obj)) return undefined
  return {
    status: 'Failed',
    reason: CONTROLLER_MISSING,
    message: `no ${controller} runs on this cluster, so nothing will reconcile this ${obj.kind} (${status.message}); on the sim, \`just cluster-up --flux\` starts the Flux controllers`,
  }
}

/** What a HelmRelease's status says of its Helm release, for the views (helm-controller v1.4.0 status). */
export interface ReleaseInfo {
  chart: string
  /** the chart version of the latest release (Helm's, without the +digest helm-controller appends) */
  version: string
  /** Helm's release revision (the .vN of its storage Secret) */
  revision: number
  /** the last action helm-controller attempted: install, upgrade (or a remediation: rollback, uninstall) */
  action?: string
  /** that action's result: succeeded or failed (the Released/Remediated condition) */
  result?: 'succeeded' | 'failed'
  /** the release's state in Helm's storage: deployed, failed, superseded, … */
  helmStatus?: string
  /** when helm-controller last deployed it */
  lastDeployed?: string
  /** the last five history entries, newest first: revision, chart@version, status */
  history: { revision: number; chart: string; status: string; lastDeployed?: string }[]
}

interface Snapshot {
  version?: number
  status?: string
  chartName?: string
  chartVersion?: string
  lastDeployed?: string
}

/** The release a HelmRelease's status describes; undefined before its first release. */
export function releaseInfo(obj: KubeObject): ReleaseInfo | undefined {
  if (obj.kind !== 'HelmRelease' || !isFluxObject(obj)) return undefined
  const status = (obj.status ?? {}) as {
    history?: Snapshot[]
    lastAttemptedReleaseAction?: string
    conditions?: { type?: string; status?: string; reason?: string }[]
  }
  const history = status.history ?? []
  const latest = history[0]
  if (!latest) return undefined
  const plainVersion = (v = '') => v.replace(/\+.*$/, '')
  // the condition of the last attempt: a remediation (rollback/uninstall) overrides the release's
  const conds = status.conditions ?? []
  const remediated = conds.find((c) => c.type === 'Remediated')
  const released = conds.find((c) => c.type === 'Released')
  const last = remediated ?? released
  const match = /^(Install|Upgrade|Test|Rollback|Uninstall)(Succeeded|Failed)$/.exec(last?.reason ?? '')
  return {
    chart: latest.chartName ?? '',
    version: plainVersion(latest.chartVersion),
    revision: latest.version ?? 0,
    action: match ? match[1].toLowerCase() : status.lastAttemptedReleaseAction,
    result: match ? (match[2] === 'Succeeded' ? 'succeeded' : 'failed') : undefined,
    helmStatus: latest.status,
    lastDeployed: latest.lastDeployed,
    history: history.slice(0, 5).map((h) => ({
      revision: h.version ?? 0,
      chart: `${h.chartName}@${plainVersion(h.chartVersion)}`,
      status: h.status ?? '',
      lastDeployed: h.lastDeployed,
    })),
  }
}

/** One line for people: `app-template@4.1.1 r3 upgrade succeeded`. */
export function releaseLine(r: ReleaseInfo): string {
  return `${r.chart}@${r.version} r${r.revision}${r.action ? ` ${r.action}${r.result ? ` ${r.result}` : ''}` : ''}`
}
