// kstatus in TypeScript: the one place that decides whether an object is Current. A port of
// kubernetes-sigs/cli-utils pkg/kstatus/status (the rules Flux, kpt and cli-utils wait on),
// rules and order as in research/anchors.md Part 1 §3. Pure: no API calls, `now` injectable.

export type Status = 'Current' | 'InProgress' | 'Failed' | 'Terminating' | 'NotFound' | 'Unknown'

export interface StatusResult {
  status: Status
  /** one line for a human, e.g. "Ready: 1/2" or the controller's own condition message */
  message: string
  /** a CamelCase reason when there is one (LessReady, ProgressDeadlineExceeded, ...) */
  reason?: string
}

/** An API object as read from the cluster; timestamps may be strings (raw JSON) or Dates (typed client). */
export interface KubeObject {
  apiVersion?: string
  kind?: string
  metadata?: {
    name?: string
    namespace?: string
    uid?: string
    resourceVersion?: string
    generation?: number
    creationTimestamp?: string | Date
    deletionTimestamp?: string | Date
    labels?: Record<string, string>
    annotations?: Record<string, string>
  }
  spec?: unknown
  status?: unknown
}

export interface ComputeOptions {
  /**
   * The pods the object's selector matches. Only the poller extra uses them: a ReplicaSet or
   * StatefulSet that is InProgress becomes Failed when one of its pods is Failed.
   */
  pods?: readonly KubeObject[]
}

/** How long a Pending pod may stay Unschedulable before kstatus calls it Failed. */
export const SCHEDULE_WINDOW_MS = 15_000

interface Condition {
  type?: string
  status?: string
  reason?: string
  message?: string
  /** Flux writes the generation a condition was computed for */
  observedGeneration?: number
}

type Rule = (obj: KubeObject, now: Date) => StatusResult

// ---- field access in the spirit of unstructured.NestedField: missing means default ----

function field(obj: unknown, path: string): unknown {
  let cur: unknown = obj
  for (const key of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined
    cur = (cur as Record<string, unknown>)[key]
  }
  return cur
}

function int(obj: unknown, path: string, fallback: number): number {
  const v = field(obj, path)
  return typeof v === 'number' && Number.isFinite(v) ? v : fallback
}

function str(obj: unknown, path: string, fallback = ''): string {
  const v = field(obj, path)
  return typeof v === 'string' ? v : fallback
}

function conditions(obj: unknown): Condition[] {
  const list = field(obj, 'status.conditions')
  return Array.isArray(list) ? list.filter((c): c is Condition => c !== null && typeof c === 'object') : []
}

function condition(obj: unknown, type: string): Condition | undefined {
  return conditions(obj).find((c) => c.type === type)
}

function timeOf(v: unknown): number | undefined {
  if (v instanceof Date) return v.getTime()
  if (typeof v === 'string' && v !== '') {
    const t = Date.parse(v)
    return Number.isNaN(t) ? undefined : t
  }
  return undefined
}

const current = (message: string): StatusResult => ({ status: 'Current', message })
const inProgress = (reason: string, message: string): StatusResult => ({ status: 'InProgress', message, reason })
const failed = (reason: string, message: string): StatusResult => ({ status: 'Failed', message, reason })

/** `group/Kind`, or `Kind` for the core group: the key kstatus uses to pick a kind rule. */
export function groupKind(obj: Pick<KubeObject, 'apiVersion' | 'kind'>): string {
  const apiVersion = obj.apiVersion ?? 'v1'
  const group = apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.indexOf('/')) : ''
  return group ? `${group}/${obj.kind}` : `${obj.kind}`
}

// ---- generic rules (steps 1–3) ----

function generic(obj: KubeObject): StatusResult | undefined {
  if (obj.metadata?.deletionTimestamp) return { status: 'Terminating', message: 'Resource scheduled for deletion' }

  const fluxVerdict = fluxFailure(obj)
  if (fluxVerdict) return fluxVerdict

  const generation = field(obj, 'metadata.generation')
  const observed = field(obj, 'status.observedGeneration')
  if (typeof generation === 'number' && typeof observed === 'number' && observed !== generation) {
    return inProgress(
      'LatestGenerationNotObserved',
      `${obj.kind} generation is ${generation}, but latest observed generation is ${observed}`,
    )
  }

  for (const c of conditions(obj)) {
    if (c.type === 'Reconciling' && c.status === 'True') {
      return { status: 'InProgress', message: c.message || 'Reconciling', reason: c.reason }
    }
    if (c.type === 'Stalled' && c.status === 'True') {
      return { status: 'Failed', message: c.message || 'Stalled', reason: c.reason }
    }
  }
  return undefined
}

// ---- Flux objects (an extra of nsops: cli-utils has no rule for them) ----

/**
 * helm-controller's Ready=False reasons after which nothing happens until the HelmRelease (or
 * its chart) changes, or only a retry of the same attempt (helm-controller v1.4.0,
 * api/v2/condition_types.go; RetriesExceeded and MissingRollbackTarget are its Stalled reasons).
 */
export const FLUX_TERMINAL_REASONS = new Set([
  'InstallFailed',
  'UpgradeFailed',
  'TestFailed',
  'RollbackFailed',
  'UninstallFailed',
  'RetriesExceeded',
  'MissingRollbackTarget',
])

export const isFluxObject = (obj: Pick<KubeObject, 'apiVersion'>): boolean =>
  /^[a-z0-9.-]+\.toolkit\.fluxcd\.io\//.test(obj.apiVersion ?? '')

/**
 * A Flux object that failed for its current generation: Stalled=True, or Ready=False with a
 * terminal reason. A Flux controller leaves status.observedGeneration behind when a run fails
 * (so the generic rule would read "InProgress: generation not observed" forever), but writes
 * the generation into each condition: that is what says the verdict is about this spec.
 */
function fluxFailure(obj: KubeObject): StatusResult | undefined {
  if (!isFluxObject(obj)) return undefined
  const generation = field(obj, 'metadata.generation')
  const forThisSpec = (c: Condition) =>
    typeof generation !== 'number' || typeof c.observedGeneration !== 'number' || c.observedGeneration === generation
  const ready = condition(obj, 'Ready')
  const stalled = condition(obj, 'Stalled')
  const readyFailed = ready?.status === 'False' && forThisSpec(ready)
  if (stalled?.status === 'True' && forThisSpec(stalled)) {
    // after a remediation (a rollback of the failed upgrade, an uninstall) helm-controller's
    // Ready tells of the remediation; the error that caused it stays in Released: lead with it
    const release = condition(obj, 'Released')
    if (
      readyFailed &&
      /^(Rollback|Uninstall)/.test(ready.reason ?? '') &&
      release?.status === 'False' &&
      forThisSpec(release) &&
      release.message
    ) {
      const why = `${release.message}; remediation: ${ready.message || ready.reason}`
      return failed(release.reason || ready.reason!, stalled.message ? `${why} (${stalled.message})` : why)
    }
    // helm-controller may leave Ready Unknown and say why in the release's own condition
    const released = ['Remediated', 'Released']
      .map((t) => condition(obj, t))
      .find((c) => c?.status === 'False' && forThisSpec(c))
    const detail = readyFailed ? ready.message : released?.message
    if (!readyFailed && released?.reason) {
      const why = detail && stalled.message ? `${detail} (${stalled.message})` : detail || stalled.message
      return failed(released.reason, why || 'Stalled')
    }
    const why =
      detail && stalled.message && detail !== stalled.message
        ? `${detail} (${stalled.message})`
        : detail || stalled.message
    return failed((readyFailed && ready.reason) || stalled.reason || 'Stalled', why || 'Stalled')
  }
  if (readyFailed && FLUX_TERMINAL_REASONS.has(ready.reason ?? ''))
    return failed(ready.reason!, ready.message || ready.reason!)
  // never observed: no controller has written anything yet (whether one runs at all is for
  // the health watch to say, which can ask the cluster)
  if (typeof generation === 'number' && typeof field(obj, 'status.observedGeneration') !== 'number' && !ready)
    return inProgress(NOT_OBSERVED, `${obj.kind} has not been observed by its controller yet`)
  return undefined
}

/** The reason of a Flux object no controller has written a status for. */
export const NOT_OBSERVED = 'NotObserved'

// ---- kind rules (step 4) ----

const alwaysCurrent: Rule = () => current('Resource is always ready')

const deployment: Rule = (obj) => {
  // Without progressDeadlineSeconds the controller never sets Progressing, so count it as progressing.
  let progressing = field(obj, 'spec.progressDeadlineSeconds') === undefined
  let available = false
  for (const c of conditions(obj)) {
    if (c.type === 'Progressing') {
      if (c.reason === 'ProgressDeadlineExceeded') {
        return failed('ProgressDeadlineExceeded', c.message || 'Progress deadline exceeded')
      }
      if (c.status === 'True' && c.reason === 'NewReplicaSetAvailable') progressing = true
    } else if (c.type === 'Available' && c.status === 'True') {
      available = true
    }
  }
  const spec = int(obj, 'spec.replicas', 1)
  const replicas = int(obj, 'status.replicas', 0)
  const updated = int(obj, 'status.updatedReplicas', 0)
  const ready = int(obj, 'status.readyReplicas', 0)
  const avail = int(obj, 'status.availableReplicas', 0)

  if (spec > replicas) return inProgress('LessReplicas', `Replicas: ${replicas}/${spec}`)
  if (spec > updated) return inProgress('LessUpdated', `Updated: ${updated}/${spec}`)
  if (replicas > spec) return inProgress('ExtraPods', `Pending termination: ${replicas - spec}`)
  if (updated > avail) return inProgress('LessAvailable', `Available: ${avail}/${updated}`)
  if (spec > ready) return inProgress('LessReady', `Ready: ${ready}/${spec}`)
  if (!progressing) return inProgress('ReplicaSetNotAvailable', 'ReplicaSet not Available')
  if (!available) {
    return inProgress('DeploymentNotAvailable', condition(obj, 'Available')?.message || 'Deployment not Available')
  }
  return current(`Deployment is available. Replicas: ${replicas}`)
}

const statefulSet: Rule = (obj) => {
  if (str(obj, 'spec.updateStrategy.type') === 'OnDelete') {
    return current('StatefulSet is using the ondelete update strategy')
  }
  const spec = int(obj, 'spec.replicas', 1)
  const ready = int(obj, 'status.readyReplicas', 0)
  const currentReplicas = int(obj, 'status.currentReplicas', 0)
  const updated = int(obj, 'status.updatedReplicas', 0)
  const replicas = int(obj, 'status.replicas', 0)
  const partition = int(obj, 'spec.updateStrategy.rollingUpdate.partition', -1)

  if (spec > replicas) return inProgress('LessReplicas', `Replicas: ${replicas}/${spec}`)
  if (spec > ready) return inProgress('LessReady', `Ready: ${ready}/${spec}`)
  if (replicas > spec) return inProgress('ExtraPods', `Pending termination: ${replicas - spec}`)
  if (partition !== -1) {
    if (updated < spec - partition) {
      return inProgress('PartitionRollout', `Updated: ${updated}/${spec - partition}`)
    }
    return current(`Partition rollout complete. Updated: ${updated}`)
  }
  if (spec > currentReplicas) return inProgress('LessCurrent', `Current: ${currentReplicas}/${spec}`)
  if (str(obj, 'status.currentRevision') !== str(obj, 'status.updateRevision')) {
    return inProgress('RevisionMismatch', 'Waiting for updated revision to match current')
  }
  return current(`All replicas scheduled as expected. Replicas: ${replicas}`)
}

const daemonSet: Rule = (obj) => {
  // The generic check skips objects without these fields; the DaemonSet controller always
  // sets them, so their absence means it has not acted yet.
  if (typeof field(obj, 'metadata.generation') !== 'number') {
    return inProgress('NoGeneration', 'DaemonSet metadata.generation not found')
  }
  if (typeof field(obj, 'status.observedGeneration') !== 'number') {
    return inProgress('NoObservedGeneration', 'DaemonSet status.observedGeneration not found')
  }
  const desired = int(obj, 'status.desiredNumberScheduled', -1)
  if (desired === -1) return inProgress('NoDesiredNumber', 'Missing .status.desiredNumberScheduled')
  const currentN = int(obj, 'status.currentNumberScheduled', 0)
  const updated = int(obj, 'status.updatedNumberScheduled', 0)
  const available = int(obj, 'status.numberAvailable', 0)
  const ready = int(obj, 'status.numberReady', 0)
  if (desired > currentN) return inProgress('LessCurrent', `Current: ${currentN}/${desired}`)
  if (desired > updated) return inProgress('LessUpdated', `Updated: ${updated}/${desired}`)
  if (desired > available) return inProgress('LessAvailable', `Available: ${available}/${desired}`)
  if (desired > ready) return inProgress('LessReady', `Ready: ${ready}/${desired}`)
  return current(`All replicas scheduled as expected. Replicas: ${desired}`)
}

const replicaSet: Rule = (obj) => {
  const failure = conditions(obj).find((c) => c.type === 'ReplicaFailure' && c.status === 'True')
  if (failure) return inProgress('ReplicaFailure', failure.message || 'Replica Failure condition. Check Pods')
  const spec = int(obj, 'spec.replicas', 1)
  const replicas = int(obj, 'status.replicas', 0)
  const labelled = int(obj, 'status.fullyLabeledReplicas', 0)
  const available = int(obj, 'status.availableReplicas', 0)
  const ready = int(obj, 'status.readyReplicas', 0)
  if (spec > labelled) return inProgress('LessLabelled', `Labelled: ${labelled}/${spec}`)
  if (spec > available) return inProgress('LessAvailable', `Available: ${available}/${spec}`)
  if (spec > ready) return inProgress('LessReady', `Ready: ${ready}/${spec}`)
  if (replicas > spec) return inProgress('ExtraPods', `Pending termination: ${replicas - spec}`)
  return current(`ReplicaSet is available. Replicas: ${replicas}`)
}

const pod: Rule = (obj, now) => {
  const phase = str(obj, 'status.phase')
  switch (phase) {
    case 'Succeeded':
      return current('Pod has completed successfully')
    case 'Failed':
      // kstatus: a finished pod is not going to change any more, so it is not "in progress"
      return current('Pod has completed, but not successfully')
    case 'Running': {
      if (condition(obj, 'Ready')?.status === 'True') return current('Pod is Ready')
      const statuses = field(obj, 'status.containerStatuses')
      const looping = (Array.isArray(statuses) ? statuses : [])
        .filter((cs) => str(cs, 'state.waiting.reason') === 'CrashLoopBackOff')
        .map((cs) => str(cs, 'name'))
      if (looping.length > 0) {
        return failed('ContainerCrashLooping', `Containers in CrashLoop state: ${looping.join(',')}`)
      }
      return inProgress('PodRunningNotReady', 'Pod is running but is not Ready')
    }
    case 'Pending': {
      const scheduled = condition(obj, 'PodScheduled')
      if (scheduled?.status === 'False' && scheduled.reason === 'Unschedulable') {
        // no creationTimestamp is the zero time in cli-utils: older than any window, so Failed now
        const created = timeOf(obj.metadata?.creationTimestamp) ?? 0
        if (now.getTime() - created < SCHEDULE_WINDOW_MS) {
          return inProgress('PodNotScheduled', 'Pod has not been scheduled')
        }
        return failed('PodUnschedulable', scheduled.message || 'Pod could not be scheduled')
      }
      return inProgress('PodPending', 'Pod is in the Pending phase')
    }
    case '':
      return inProgress('PodNotObserved', 'Pod phase not available')
    default:
      // kstatus returns an error here; its poller reports that as Unknown
      return { status: 'Unknown', message: `unknown pod phase ${phase}`, reason: 'UnknownPhase' }
  }
}

const pvc: Rule = (obj) => {
  const phase = str(obj, 'status.phase', 'unknown')
  if (phase !== 'Bound') return inProgress('NotBound', `PVC is not Bound. phase: ${phase}`)
  return current('PVC is Bound')
}

const service: Rule = (obj) => {
  if (str(obj, 'spec.type', 'ClusterIP') === 'LoadBalancer' && str(obj, 'spec.clusterIP') === '') {
    return inProgress('NoIPAssigned', 'ClusterIP not set. Service type: LoadBalancer')
  }
  return current('Service is ready')
}

const job: Rule = (obj) => {
  const parallelism = int(obj, 'spec.parallelism', 1)
  const completions = int(obj, 'spec.completions', parallelism)
  const succeeded = int(obj, 'status.succeeded', 0)
  const active = int(obj, 'status.active', 0)
  const failedN = int(obj, 'status.failed', 0)
  for (const c of conditions(obj)) {
    if (c.status !== 'True') continue
    if (c.type === 'Complete') return current(`Job Completed. succeeded: ${succeeded}/${completions}`)
    if (c.type === 'Failed') return failed('JobFailed', `Job Failed. failed: ${failedN}/${completions}`)
    if (c.type === 'Suspended' && field(obj, 'spec.suspend') === true) return current('Job is suspended')
  }
  if (!field(obj, 'status.startTime')) {
    return inProgress('JobNotStarted', 'Job not started')
  }
  return current(`Job in progress. success: ${succeeded}, active: ${active}, failed: ${failedN}`)
}

const crd: Rule = (obj) => {
  for (const c of conditions(obj)) {
    if (c.type === 'NamesAccepted' && c.status === 'False') {
      return failed(c.reason || 'NamesNotAccepted', c.message || 'CRD names not accepted')
    }
    if (c.type === 'Established') {
      if (c.status === 'False' && c.reason !== 'Installing') {
        return failed(c.reason || 'NotEstablished', c.message || 'CRD is not established')
      }
      if (c.status === 'True') return current('CRD is established')
    }
  }
  return inProgress('Installing', 'Install in progress')
}

const kindRules: Record<string, Rule> = {
  Service: service,
  Pod: pod,
  Secret: alwaysCurrent,
  ConfigMap: alwaysCurrent,
  PersistentVolumeClaim: pvc,
  'apps/StatefulSet': statefulSet,
  'apps/DaemonSet': daemonSet,
  'extensions/DaemonSet': daemonSet,
  'apps/Deployment': deployment,
  'extensions/Deployment': deployment,
  'apps/ReplicaSet': replicaSet,
  'extensions/ReplicaSet': replicaSet,
  'policy/PodDisruptionBudget': () => current('AllowedDisruptions has been computed.'),
  'batch/CronJob': alwaysCurrent,
  'batch/Job': job,
  'apiextensions.k8s.io/CustomResourceDefinition': crd,
}

/**
 * Kinds whose pods the poller looks at (a Failed pod turns InProgress into Failed). cli-utils
 * reaches a Deployment's pods through its ReplicaSets; we match them by the selector, so a
 * Deployment whose pods cannot be scheduled fails after the window instead of the timeout.
 */
const podControllers = new Set([
  'apps/ReplicaSet',
  'extensions/ReplicaSet',
  'apps/StatefulSet',
  'apps/Deployment',
  'apps/DaemonSet',
])

/**
 * The kstatus status of one object. `undefined`/`null` (the object does not exist) is
 * NotFound. With `pods`, ReplicaSets and StatefulSets get the poller's pod check too.
 */
export function computeStatus(
  obj: KubeObject | null | undefined,
  now: Date = new Date(),
  opts: ComputeOptions = {},
): StatusResult {
  if (!obj) return { status: 'NotFound', message: 'Resource not found' }

  const decided = generic(obj)
  if (decided) return decided

  const key = groupKind(obj)
  const rule = kindRules[key]
  if (rule) {
    const result = rule(obj, now)
    if (result.status === 'InProgress' && opts.pods && podControllers.has(key)) {
      const failedPods = opts.pods.filter((p) => computeStatus(p, now).status === 'Failed')
      if (failedPods.length > 0) {
        const first = computeStatus(failedPods[0], now)
        const count = failedPods.length === 1 ? '1 pod has' : `${failedPods.length} pods have`
        return failed(
          first.reason ?? 'PodFailed',
          `${count} failed (${failedPods[0].metadata?.name}: ${first.message})`,
        )
      }
    }
    return result
  }

  const ready = condition(obj, 'Ready')
  if (ready?.status === 'True')
    return { status: 'Current', message: ready.message || 'Resource is Ready', reason: ready.reason }
  if (ready) return { status: 'InProgress', message: ready.message || 'Resource is not Ready', reason: ready.reason }

  return current('Resource is current')
}

/**
 * The status of a set, as the kstatus aggregator computes it: any Failed → Failed, else any
 * Unknown → Unknown, else all `desired` → `desired`, else InProgress. An empty set is `desired`.
 */
export function aggregate(statuses: Iterable<Status>, desired: Status = 'Current'): Status {
  let allDesired = true
  let anyUnknown = false
  for (const s of statuses) {
    if (s === 'Failed') return 'Failed'
    if (s === 'Unknown') anyUnknown = true
    if (s !== desired) allDesired = false
  }
  if (anyUnknown) return 'Unknown'
  return allDesired ? desired : 'InProgress'
}
