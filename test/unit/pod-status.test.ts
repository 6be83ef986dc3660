import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { podStatus, whyNotReady, type PodLike } from '../../shared/health/pod-status.ts'

// Pod shapes as the API returns them for the situations kubectl and k9s print.

const t0 = '2026-11-22T05:00:00Z'

function pod(
  status: PodLike['status'],
  spec: Partial<NonNullable<PodLike['spec']>> = {},
  metadata: Partial<NonNullable<PodLike['metadata']>> = {},
): PodLike {
  return {
    metadata: { name: 'sonarr-6d4b9c7f8-x2x7q', namespace: 'media', creationTimestamp: t0, ...metadata },
    spec: { containers: [{ name: 'sonarr' }], ...spec },
    status,
  }
}

const readyConditions = [
  { type: 'PodReadyToStartContainers', status: 'True' },
  { type: 'Initialized', status: 'True' },
  { type: 'Ready', status: 'True' },
  { type: 'ContainersReady', status: 'True' },
  { type: 'PodScheduled', status: 'True' },
]

const notReadyConditions = [
  { type: 'Initialized', status: 'True' },
  { type: 'Ready', status: 'False', reason: 'ContainersNotReady', message: 'containers with unready status: [sonarr]' },
  {
    type: 'ContainersReady',
    status: 'False',
    reason: 'ContainersNotReady',
    message: 'containers with unready status: [sonarr]',
  },
  { type: 'PodScheduled', status: 'True' },
]

const running = { running: { startedAt: t0 } }

describe('pod status column', () => {
  it('a ready pod is Running 1/1 and healthy', () => {
    const s = podStatus(
      pod({
        phase: 'Running',
        conditions: readyConditions,
        containerStatuses: [{ name: 'sonarr', ready: true, started: true, restartCount: 0, state: running }],
      }),
    )
    assert.deepEqual([s.status, s.ready, s.restarts, s.healthy], ['Running', '1/1', 0, true])
    assert.equal(
      whyNotReady(
        pod({
          phase: 'Running',
          conditions: readyConditions,
          containerStatuses: [{ name: 'sonarr', ready: true, started: true, restartCount: 0, state: running }],
        }),
      ),
      undefined,
    )
  })

  it('shows CrashLoopBackOff with the restart count and when it last restarted', () => {
    const p = pod({
      phase: 'Running',
      conditions: notReadyConditions,
      containerStatuses: [
        {
          name: 'sonarr',
          ready: false,
          started: false,
          restartCount: 5,
          state: {
            waiting: {
              reason: 'CrashLoopBackOff',
              message: 'back-off 2m40s restarting failed container=sonarr pod=sonarr-6d4b9c7f8-x2x7q_media(8f0e)',
            },
          },
          lastState: {
            terminated: { exitCode: 1, reason: 'Error', startedAt: t0, finishedAt: '2026-11-22T05:07:30Z' },
          },
        },
      ],
    })
    const s = podStatus(p)
    assert.deepEqual([s.status, s.ready, s.restarts, s.healthy], ['CrashLoopBackOff', '0/1', 5, false])
    assert.equal(s.lastRestartAt?.toISOString(), '2026-11-22T05:07:30.000Z')
    assert.equal(
      whyNotReady(p),
      'container sonarr: CrashLoopBackOff (back-off 2m40s restarting failed container; last exit 1 Error)',
    )
  })

  it('shows ImagePullBackOff and says which image', () => {
    const p = pod({
      phase: 'Pending',
      conditions: notReadyConditions,
      containerStatuses: [
        {
          name: 'sonarr',
          ready: false,
          started: false,
          restartCount: 0,
          state: {
            waiting: {
              reason: 'ImagePullBackOff',
              message: 'Back-off pulling image "lscr.io/linuxserver/sonarr:nope"',
            },
          },
        },
      ],
    })
    assert.equal(podStatus(p).status, 'ImagePullBackOff')
    assert.equal(
      whyNotReady(p),
      'container sonarr: ImagePullBackOff (Back-off pulling image "lscr.io/linuxserver/sonarr:nope")',
    )
  })

  it('shows OOMKilled for a container killed for memory', () => {
    const p = pod({
      phase: 'Running',
      conditions: notReadyConditions,
      containerStatuses: [
        {
          name: 'sonarr',
          ready: false,
          restartCount: 1,
          state: { terminated: { exitCode: 137, reason: 'OOMKilled', finishedAt: t0 } },
        },
      ],
    })
    assert.equal(podStatus(p).status, 'OOMKilled')
    assert.equal(whyNotReady(p), 'container sonarr: OOMKilled (exit code 137)')
  })

  it('shows ExitCode:N (or Signal:N) when a terminated container has no reason', () => {
    const exited = pod({
      phase: 'Running',
      containerStatuses: [{ name: 'sonarr', ready: false, restartCount: 0, state: { terminated: { exitCode: 3 } } }],
    })
    assert.equal(podStatus(exited).status, 'ExitCode:3')
    const signalled = pod({
      phase: 'Running',
      containerStatuses: [
        { name: 'sonarr', ready: false, restartCount: 0, state: { terminated: { exitCode: 0, signal: 9 } } },
      ],
    })
    assert.equal(podStatus(signalled).status, 'Signal:9')
  })

  it('a finished Job pod is Completed and counts as healthy', () => {
    const p = pod(
      {
        phase: 'Succeeded',
        conditions: [{ type: 'Ready', status: 'False', reason: 'PodCompleted' }],
        containerStatuses: [
          {
            name: 'migrate',
            ready: false,
            restartCount: 0,
            state: { terminated: { exitCode: 0, reason: 'Completed', finishedAt: t0 } },
          },
        ],
      },
      { containers: [{ name: 'migrate' }] },
    )
    const s = podStatus(p)
    assert.deepEqual([s.status, s.ready, s.healthy], ['Completed', '0/1', true])
    assert.equal(whyNotReady(p), undefined)
  })

  it('a container that completed next to one still running keeps the pod Running (or NotReady)', () => {
    const statuses = [
      { name: 'app', ready: true, restartCount: 0, state: running },
      { name: 'oneshot', ready: false, restartCount: 0, state: { terminated: { exitCode: 0, reason: 'Completed' } } },
    ]
    const spec = { containers: [{ name: 'app' }, { name: 'oneshot' }] }
    assert.equal(
      podStatus(pod({ phase: 'Running', conditions: readyConditions, containerStatuses: statuses }, spec)).status,
      'Running',
    )
    assert.equal(
      podStatus(pod({ phase: 'Running', conditions: notReadyConditions, containerStatuses: statuses }, spec)).status,
      'NotReady',
    )
  })

  it('shows Init:N/M while init containers run', () => {
    const p = pod(
      {
        phase: 'Pending',
        conditions: [{ type: 'Initialized', status: 'False', reason: 'ContainersNotInitialized' }],
        initContainerStatuses: [
          {
            name: 'wait-db',
            ready: true,
            restartCount: 0,
            state: { terminated: { exitCode: 0, reason: 'Completed' } },
          },
          { name: 'migrate', ready: false, restartCount: 0, state: running },
        ],
        containerStatuses: [
          { name: 'sonarr', ready: false, restartCount: 0, state: { waiting: { reason: 'PodInitializing' } } },
        ],
      },
      { initContainers: [{ name: 'wait-db' }, { name: 'migrate' }] },
    )
    assert.equal(podStatus(p).status, 'Init:1/2')
    assert.equal(whyNotReady(p), 'init container migrate: running (1/2 done)')
  })

  it('shows Init:<Reason> when an init container is stuck, and Init:ExitCode:N when it failed without one', () => {
    const stuck = pod(
      {
        phase: 'Pending',
        initContainerStatuses: [
          {
            name: 'chown',
            ready: false,
            restartCount: 3,
            state: {
              waiting: {
                reason: 'CrashLoopBackOff',
                message: 'back-off 40s restarting failed container=chown pod=x_media(1)',
              },
            },
          },
        ],
      },
      { initContainers: [{ name: 'chown' }] },
    )
    const s = podStatus(stuck)
    assert.deepEqual([s.status, s.restarts], ['Init:CrashLoopBackOff', 3])
    assert.equal(
      whyNotReady(stuck),
      'init container chown: CrashLoopBackOff (back-off 40s restarting failed container)',
    )
    const exited = pod(
      {
        phase: 'Pending',
        initContainerStatuses: [
          { name: 'chown', ready: false, restartCount: 0, state: { terminated: { exitCode: 2 } } },
        ],
      },
      { initContainers: [{ name: 'chown' }] },
    )
    assert.equal(podStatus(exited).status, 'Init:ExitCode:2')
  })

  it('counts a started sidecar (restartable init container) in READY and keeps the main container status', () => {
    const p = pod(
      {
        phase: 'Running',
        conditions: readyConditions,
        initContainerStatuses: [{ name: 'vpn', ready: true, started: true, restartCount: 1, state: running }],
        containerStatuses: [{ name: 'qbittorrent', ready: true, started: true, restartCount: 2, state: running }],
      },
      { initContainers: [{ name: 'vpn', restartPolicy: 'Always' }], containers: [{ name: 'qbittorrent' }] },
    )
    const s = podStatus(p)
    assert.deepEqual([s.status, s.ready, s.restarts, s.healthy], ['Running', '2/2', 3, true])
  })

  it('shows Terminating for a pod being deleted, and Pending before scheduling', () => {
    const deleting = pod(
      {
        phase: 'Running',
        conditions: readyConditions,
        containerStatuses: [{ name: 'sonarr', ready: true, restartCount: 0, state: running }],
      },
      {},
      { deletionTimestamp: '2026-11-22T05:09:00Z' },
    )
    assert.deepEqual([podStatus(deleting).status, podStatus(deleting).healthy], ['Terminating', false])
    assert.equal(whyNotReady(deleting), 'Terminating')
    assert.equal(podStatus(pod({ phase: 'Pending' })).status, 'Pending')
  })

  it('shows the pod-level reason for an evicted pod', () => {
    const p = pod({
      phase: 'Failed',
      reason: 'Evicted',
      message: 'The node was low on resource: memory. Threshold quantity: 100Mi, available: 80Mi.',
    })
    assert.equal(podStatus(p).status, 'Evicted')
    assert.equal(
      whyNotReady(p),
      'Evicted: The node was low on resource: memory. Threshold quantity: 100Mi, available: 80Mi.',
    )
  })

  it('shows SchedulingGated for a gated pod', () => {
    const p = pod({
      phase: 'Pending',
      conditions: [
        {
          type: 'PodScheduled',
          status: 'False',
          reason: 'SchedulingGated',
          message: 'Scheduling is blocked due to non-empty scheduling gates',
        },
      ],
    })
    assert.equal(podStatus(p).status, 'SchedulingGated')
    assert.equal(whyNotReady(p), 'SchedulingGated: Scheduling is blocked due to non-empty scheduling gates')
  })
})

describe('why a pod is not ready', () => {
  it("names the scheduler's reason for an unschedulable pod", () => {
    const p = pod({
      phase: 'Pending',
      conditions: [
        {
          type: 'PodScheduled',
          status: 'False',
          reason: 'Unschedulable',
          message:
            "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.",
        },
      ],
    })
    assert.equal(
      whyNotReady(p),
      "Unschedulable: 0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.",
    )
  })

  it('prefers the container that cannot progress over one that is merely starting', () => {
    const p = pod(
      {
        phase: 'Pending',
        conditions: notReadyConditions,
        containerStatuses: [
          { name: 'exporter', ready: false, restartCount: 0, state: { waiting: { reason: 'ContainerCreating' } } },
          {
            name: 'sonarr',
            ready: false,
            restartCount: 0,
            state: { waiting: { reason: 'CreateContainerConfigError', message: 'secret "sonarr-api-key" not found' } },
          },
        ],
      },
      { containers: [{ name: 'exporter' }, { name: 'sonarr' }] },
    )
    assert.equal(whyNotReady(p), 'container sonarr: CreateContainerConfigError (secret "sonarr-api-key" not found)')
  })

  it('says a running container is not ready yet when its readiness probe has not passed', () => {
    const p = pod({
      phase: 'Running',
      conditions: notReadyConditions,
      containerStatuses: [{ name: 'sonarr', ready: false, started: true, restartCount: 0, state: running }],
    })
    assert.equal(podStatus(p).status, 'Running')
    assert.equal(whyNotReady(p), 'container sonarr: running but not ready')
  })

  it('names unmet readiness gates', () => {
    const p = pod(
      {
        phase: 'Running',
        conditions: [
          {
            type: 'Ready',
            status: 'False',
            reason: 'ReadinessGatesNotReady',
            message: 'corresponding condition of pod readiness gate "target-health.elbv2.k8s.aws/web" does not exist.',
          },
          { type: 'ContainersReady', status: 'True' },
          { type: 'PodScheduled', status: 'True' },
        ],
        containerStatuses: [{ name: 'sonarr', ready: true, restartCount: 0, state: running }],
      },
      { readinessGates: [{ conditionType: 'target-health.elbv2.k8s.aws/web' }] },
    )
    assert.equal(podStatus(p).healthy, false)
    assert.equal(
      whyNotReady(p),
      'ReadinessGatesNotReady: corresponding condition of pod readiness gate "target-health.elbv2.k8s.aws/web" does not exist.',
    )
  })
})
