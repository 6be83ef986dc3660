// The pod STATUS, READY and RESTARTS columns as `kubectl get pods` and k9s show them, and a
// one-line "why is this pod not ready" for reports. Same derivation as kubectl's printPod
// (research/anchors.md Part 1 §5), so what we print matches what users see elsewhere.

type Timestamp = string | Date

export interface ContainerStatusLike {
  name: string
  ready?: boolean
  started?: boolean
  restartCount?: number
  state?: ContainerStateLike
  lastState?: ContainerStateLike
}

interface ContainerStateLike {
  waiting?: { reason?: string; message?: string }
  running?: { startedAt?: Timestamp }
  terminated?: {
    exitCode?: number
    signal?: number
    reason?: string
    message?: string
    startedAt?: Timestamp
    finishedAt?: Timestamp
  }
}

/** The parts of a Pod this module reads; V1Pod and raw watch JSON both fit. */
export interface PodLike {
  metadata?: { name?: string; namespace?: string; creationTimestamp?: Timestamp; deletionTimestamp?: Timestamp }
  spec?: {
    containers?: { name: string }[]
    initContainers?: { name: string; restartPolicy?: string }[]
    readinessGates?: { conditionType: string }[]
  }
  status?: {
    phase?: string
    reason?: string
    message?: string
    conditions?: { type: string; status: string; reason?: string; message?: string }[]
    initContainerStatuses?: ContainerStatusLike[]
    containerStatuses?: ContainerStatusLike[]
  }
}

export interface PodStatus {
  /** the STATUS column: Running, Pending, Init:1/2, Init:CrashLoopBackOff, CrashLoopBackOff, OOMKilled, Completed, ExitCode:1, Terminating, ... */
  status: string
  /** the READY column, "x/y" (restartable init containers, i.e. sidecars, count) */
  ready: string
  readyContainers: number
  totalContainers: number
  restarts: number
  lastRestartAt?: Date
  /** k9s' notion: every container ready, Ready=True, not terminating; a Completed pod is healthy too */
  healthy: boolean
}

function toDate(t: Timestamp | undefined): Date | undefined {
  if (t === undefined) return undefined
  const d = t instanceof Date ? t : new Date(t)
  return Number.isNaN(d.getTime()) ? undefined : d
}

function later(a: Date | undefined, b: Timestamp | undefined): Date | undefined {
  const d = toDate(b)
  if (!d) return a
  return !a || d > a ? d : a
}

function conditionTrue(pod: PodLike, type: string): boolean {
  return pod.status?.conditions?.find((c) => c.type === type)?.status === 'True'
}

function terminatedReason(t: NonNullable<ContainerStateLike['terminated']>, prefix = ''): string {
  if (t.reason) return `${prefix}${t.reason}`
  if (t.signal) return `${prefix}Signal:${t.signal}`
  return `${prefix}ExitCode:${t.exitCode ?? 0}`
}

export function podStatus(pod: PodLike): PodStatus {
  const phase = pod.status?.phase ?? ''
  let status = pod.status?.reason || phase
  if (pod.status?.conditions?.some((c) => c.type === 'PodScheduled' && c.reason === 'SchedulingGated'))
    status = 'SchedulingGated'

  const initSpecs = new Map((pod.spec?.initContainers ?? []).map((c) => [c.name, c]))
  const isSidecar = (name: string) => initSpecs.get(name)?.restartPolicy === 'Always'
  let total = pod.spec?.containers?.length ?? 0
  for (const c of initSpecs.values()) if (c.restartPolicy === 'Always') total++

  let ready = 0
  let restarts = 0
  let sidecarRestarts = 0
  let lastRestartAt: Date | undefined
  let lastSidecarRestartAt: Date | undefined
  let initializing = false

  const initStatuses = pod.status?.initContainerStatuses ?? []
  for (let i = 0; i < initStatuses.length; i++) {
    const cs = initStatuses[i]
    restarts += cs.restartCount ?? 0
    lastRestartAt = later(lastRestartAt, cs.lastState?.terminated?.finishedAt)
    if (isSidecar(cs.name)) {
      sidecarRestarts += cs.restartCount ?? 0
      lastSidecarRestartAt = later(lastSidecarRestartAt, cs.lastState?.terminated?.finishedAt)
    }
    const terminated = cs.state?.terminated
    const waiting = cs.state?.waiting
    if (terminated && (terminated.exitCode ?? 0) === 0) continue
    if (isSidecar(cs.name) && cs.started) {
      if (cs.ready) ready++
      continue
    }
    initializing = true
    if (terminated) status = terminatedReason(terminated, 'Init:')
    else if (waiting?.reason && waiting.reason !== 'PodInitializing') status = `Init:${waiting.reason}`
    else status = `Init:${i}/${initSpecs.size}`
    break
  }

  if (!initializing || conditionTrue(pod, 'Initialized')) {
    restarts = sidecarRestarts
    lastRestartAt = lastSidecarRestartAt
    let hasRunning = false
    let errorReason = ''
    // kubectl walks the containers backwards, so the first container's reason wins
    const statuses = [...(pod.status?.containerStatuses ?? [])].reverse()
    for (const cs of statuses) {
      restarts += cs.restartCount ?? 0
      lastRestartAt = later(lastRestartAt, cs.lastState?.terminated?.finishedAt)
      const terminated = cs.state?.terminated
      if (cs.state?.waiting?.reason) {
        status = cs.state.waiting.reason
      } else if (terminated) {
        status = terminatedReason(terminated)
        if ((terminated.exitCode ?? 0) !== 0) errorReason = status
      } else if (cs.ready && cs.state?.running) {
        hasRunning = true
        ready++
      }
    }
    // a finished container next to a running one: the pod is still running
    if (status === 'Completed') {
      if (hasRunning && conditionTrue(pod, 'Ready')) status = 'Running'
      else if (errorReason) status = errorReason
      else if (hasRunning) status = 'NotReady'
    }
  }

  if (pod.metadata?.deletionTimestamp) {
    if (pod.status?.reason === 'NodeLost') status = 'Unknown'
    else if (phase !== 'Failed' && phase !== 'Succeeded') status = 'Terminating'
  }

  const healthy =
    !pod.metadata?.deletionTimestamp &&
    (phase === 'Succeeded' ||
      (phase === 'Running' &&
        ready === total &&
        conditionTrue(pod, 'Ready') &&
        (pod.spec?.readinessGates ?? []).every((g) => conditionTrue(pod, g.conditionType))))

  return {
    status: status || 'Unknown',
    ready: `${ready}/${total}`,
    readyContainers: ready,
    totalContainers: total,
    restarts,
    lastRestartAt,
    healthy,
  }
}

// Reasons that mean a container cannot make progress on its own, worst first.
const stuckReasons = [
  'CrashLoopBackOff',
  'ImagePullBackOff',
  'ErrImagePull',
  'InvalidImageName',
  'ErrImageNeverPull',
  'CreateContainerConfigError',
  'CreateContainerError',
  'RunContainerError',
  'PreStartHookError',
  'PostStartHookError',
]

function oneLine(s: string | undefined): string {
  return (s ?? '').replace(/\s+/g, ' ').trim()
}

function waitingDetail(cs: ContainerStatusLike): string {
  // the kubelet appends "container=<name> pod=<pod>_<ns>(<uid>)": noise next to our own label
  const parts = [oneLine(cs.state?.waiting?.message).replace(/\s*container=\S+\s+pod=\S+$/, ' container')]
  const last = cs.lastState?.terminated
  if (last) parts.push(`last exit ${last.exitCode ?? '?'}${last.reason ? ` ${last.reason}` : ''}`)
  return parts.filter(Boolean).join('; ')
}

function containerProblem(cs: ContainerStatusLike, label: string): { rank: number; text: string } | undefined {
  const waiting = cs.state?.waiting
  const terminated = cs.state?.terminated
  if (waiting?.reason) {
    const detail = waitingDetail(cs)
    const idx = stuckReasons.indexOf(waiting.reason)
    return { rank: idx >= 0 ? idx : 50, text: `${label} ${cs.name}: ${waiting.reason}${detail ? ` (${detail})` : ''}` }
  }
  if (terminated) {
    if ((terminated.exitCode ?? 0) === 0 && (terminated.reason ?? 'Completed') === 'Completed') return undefined
    const msg = oneLine(terminated.message)
    return {
      rank: 20,
      text: `${label} ${cs.name}: ${terminatedReason(terminated)} (exit code ${terminated.exitCode ?? '?'}${msg ? `: ${msg}` : ''})`,
    }
  }
  if (!cs.ready)
    return { rank: 60, text: `${label} ${cs.name}: ${cs.state?.running ? 'running but not ready' : 'not started'}` }
  return undefined
}

/**
 * Why a pod is not ready, in one line ("container sonarr: CrashLoopBackOff (...)",
 * "Unschedulable: 0/1 nodes are available: ..."); undefined when it is healthy.
 */
export function whyNotReady(pod: PodLike): string | undefined {
  const { healthy, status } = podStatus(pod)
  if (healthy) return undefined
  if (pod.metadata?.deletionTimestamp) return 'Terminating'

  const phase = pod.status?.phase
  if (phase === 'Failed') {
    const reason = pod.status?.reason || status
    const msg = oneLine(pod.status?.message)
    return msg ? `${reason}: ${msg}` : `pod failed (${reason})`
  }

  const scheduled = pod.status?.conditions?.find((c) => c.type === 'PodScheduled')
  if (scheduled?.status === 'False') {
    return `${scheduled.reason || 'NotScheduled'}${scheduled.message ? `: ${oneLine(scheduled.message)}` : ''}`
  }

  // init containers run in order: the first one not done is the one holding the pod back
  const inits = pod.status?.initContainerStatuses ?? []
  const initSpecs = pod.spec?.initContainers ?? []
  for (let i = 0; i < inits.length; i++) {
    const cs = inits[i]
    if (cs.state?.terminated && (cs.state.terminated.exitCode ?? 0) === 0) continue
    const sidecar = initSpecs.find((c) => c.name === cs.name)?.restartPolicy === 'Always'
    if (sidecar && cs.started && cs.ready) continue
    if (!sidecar && (cs.state?.running || cs.state?.waiting?.reason === 'PodInitializing')) {
      return `init container ${cs.name}: running (${i}/${initSpecs.length} done)`
    }
    const problem = containerProblem(cs, 'init container')
    if (problem) return problem.text
  }

  const problems = (pod.status?.containerStatuses ?? [])
    .map((cs) => containerProblem(cs, 'container'))
    .filter((p): p is { rank: number; text: string } => p !== undefined)
    .sort((a, b) => a.rank - b.rank)
  if (problems.length > 0) return problems[0].text

  const readyCond = pod.status?.conditions?.find((c) => c.type === 'Ready')
  if (readyCond && readyCond.status !== 'True') {
    return `${readyCond.reason || 'NotReady'}${readyCond.message ? `: ${oneLine(readyCond.message)}` : ''}`
  }
  return status
}
