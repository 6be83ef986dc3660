import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import {
  aggregate,
  computeStatus,
  groupKind,
  SCHEDULE_WINDOW_MS,
  type KubeObject,
} from '../../shared/health/kstatus.ts'

// Object shapes as `kubectl get -o json` returns them (trimmed to what the rules read plus
// the usual surrounding fields), so the rules are exercised on what the API really sends.

const created = '2026-11-22T05:00:00Z'
const now = new Date('2026-11-22T05:10:00Z')

function meta(name: string, extra: Record<string, unknown> = {}) {
  return {
    name,
    namespace: 'media',
    uid: 'c0ffee00-0000-4000-8000-000000000001',
    resourceVersion: '4211',
    creationTimestamp: created,
    ...extra,
  }
}

function deployment(
  patch: { spec?: Record<string, unknown>; status?: Record<string, unknown>; generation?: number } = {},
): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: meta('sonarr', { generation: patch.generation ?? 3, labels: { app: 'sonarr' } }),
    spec: {
      replicas: 2,
      selector: { matchLabels: { app: 'sonarr' } },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' } },
      progressDeadlineSeconds: 600,
      revisionHistoryLimit: 10,
      template: {
        metadata: { labels: { app: 'sonarr' } },
        spec: { containers: [{ name: 'sonarr', image: 'lscr.io/linuxserver/sonarr:4.0.9' }] },
      },
      ...patch.spec,
    },
    status: {
      observedGeneration: 3,
      replicas: 2,
      updatedReplicas: 2,
      readyReplicas: 2,
      availableReplicas: 2,
      conditions: [
        {
          type: 'Available',
          status: 'True',
          lastUpdateTime: created,
          lastTransitionTime: created,
          reason: 'MinimumReplicasAvailable',
          message: 'Deployment has minimum availability.',
        },
        {
          type: 'Progressing',
          status: 'True',
          lastUpdateTime: created,
          lastTransitionTime: created,
          reason: 'NewReplicaSetAvailable',
          message: 'ReplicaSet "sonarr-6d4b9c7f8" has successfully progressed.',
        },
      ],
      ...patch.status,
    },
  }
}

function statefulSet(spec: Record<string, unknown> = {}, status: Record<string, unknown> = {}): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: meta('postgres', { generation: 2 }),
    spec: {
      replicas: 3,
      serviceName: 'postgres',
      selector: { matchLabels: { app: 'postgres' } },
      updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 0 } },
      podManagementPolicy: 'OrderedReady',
      ...spec,
    },
    status: {
      observedGeneration: 2,
      replicas: 3,
      readyReplicas: 3,
      currentReplicas: 3,
      updatedReplicas: 3,
      availableReplicas: 3,
      currentRevision: 'postgres-5c7d8f9b6',
      updateRevision: 'postgres-5c7d8f9b6',
      collisionCount: 0,
      ...status,
    },
  }
}

function withoutPartition(): Record<string, unknown> {
  return { updateStrategy: { type: 'RollingUpdate' } }
}

function daemonSet(
  status: Record<string, unknown> = {},
  metadata: Record<string, unknown> = { generation: 1 },
): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: meta('node-exporter', metadata),
    spec: { selector: { matchLabels: { app: 'node-exporter' } }, updateStrategy: { type: 'RollingUpdate' } },
    status: {
      observedGeneration: 1,
      desiredNumberScheduled: 3,
      currentNumberScheduled: 3,
      updatedNumberScheduled: 3,
      numberAvailable: 3,
      numberReady: 3,
      numberMisscheduled: 0,
      ...status,
    },
  }
}

function replicaSet(status: Record<string, unknown> = {}): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    metadata: meta('sonarr-6d4b9c7f8', { generation: 1, labels: { app: 'sonarr', 'pod-template-hash': '6d4b9c7f8' } }),
    spec: { replicas: 2, selector: { matchLabels: { app: 'sonarr', 'pod-template-hash': '6d4b9c7f8' } } },
    status: {
      observedGeneration: 1,
      replicas: 2,
      fullyLabeledReplicas: 2,
      readyReplicas: 2,
      availableReplicas: 2,
      ...status,
    },
  }
}

function pod(status: Record<string, unknown>, creationTimestamp = created): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: meta('sonarr-6d4b9c7f8-x2x7q', {
      creationTimestamp,
      labels: { app: 'sonarr', 'pod-template-hash': '6d4b9c7f8' },
    }),
    spec: {
      containers: [{ name: 'sonarr', image: 'lscr.io/linuxserver/sonarr:4.0.9' }],
      nodeName: 'nsops-sim-node',
      restartPolicy: 'Always',
    },
    status: { qosClass: 'BestEffort', ...status },
  }
}

const runningReady = {
  phase: 'Running',
  conditions: [
    { type: 'Initialized', status: 'True', lastTransitionTime: created },
    { type: 'Ready', status: 'True', lastTransitionTime: created },
    { type: 'ContainersReady', status: 'True', lastTransitionTime: created },
    { type: 'PodScheduled', status: 'True', lastTransitionTime: created },
  ],
  containerStatuses: [
    {
      name: 'sonarr',
      ready: true,
      started: true,
      restartCount: 0,
      image: 'lscr.io/linuxserver/sonarr:4.0.9',
      state: { running: { startedAt: created } },
    },
  ],
}

const crashLooping = {
  phase: 'Running',
  conditions: [
    {
      type: 'Ready',
      status: 'False',
      reason: 'ContainersNotReady',
      message: 'containers with unready status: [sonarr]',
    },
    { type: 'PodScheduled', status: 'True' },
  ],
  containerStatuses: [
    {
      name: 'sonarr',
      ready: false,
      started: false,
      restartCount: 5,
      state: {
        waiting: {
          reason: 'CrashLoopBackOff',
          message: 'back-off 2m40s restarting failed container=sonarr pod=sonarr-6d4b9c7f8-x2x7q_media(c0ffee00)',
        },
      },
      lastState: { terminated: { exitCode: 1, reason: 'Error', startedAt: created, finishedAt: created } },
    },
  ],
}

const unschedulable = {
  phase: 'Pending',
  conditions: [
    {
      type: 'PodScheduled',
      status: 'False',
      reason: 'Unschedulable',
      lastTransitionTime: created,
      message:
        "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.",
    },
  ],
}

function job(status: Record<string, unknown>, spec: Record<string, unknown> = {}): KubeObject {
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: meta('db-migrate', { generation: 1 }),
    spec: {
      parallelism: 1,
      completions: 1,
      backoffLimit: 6,
      suspend: false,
      template: { spec: { restartPolicy: 'Never', containers: [{ name: 'migrate', image: 'migrate:1' }] } },
      ...spec,
    },
    status,
  }
}

function crd(conditions: Record<string, unknown>[]): KubeObject {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: 'kustomizations.kustomize.toolkit.fluxcd.io', generation: 1, creationTimestamp: created },
    spec: {
      group: 'kustomize.toolkit.fluxcd.io',
      names: { kind: 'Kustomization', plural: 'kustomizations' },
      scope: 'Namespaced',
    },
    status: { acceptedNames: { kind: 'Kustomization', plural: 'kustomizations' }, storedVersions: ['v1'], conditions },
  }
}

function kustomization(conditions: Record<string, unknown>[], observedGeneration = 4): KubeObject {
  return {
    apiVersion: 'kustomize.toolkit.fluxcd.io/v1',
    kind: 'Kustomization',
    metadata: { name: 'media', namespace: 'flux-system', generation: 4, creationTimestamp: created },
    spec: {
      interval: '10m',
      path: './namespaces/media/overlays/prod',
      prune: true,
      sourceRef: { kind: 'GitRepository', name: 'flux-system' },
    },
    status: { observedGeneration, lastAppliedRevision: 'main@sha1:0a1b2c3d', conditions },
  }
}

function expect(
  obj: KubeObject | undefined,
  status: string,
  message?: string | RegExp,
  opts?: Parameters<typeof computeStatus>[2],
) {
  const r = computeStatus(obj, now, opts)
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${r.message}`)
  if (typeof message === 'string') assert.equal(r.message, message)
  else if (message) assert.match(r.message, message)
  return r
}

describe('kstatus: order of evaluation', () => {
  it('a deletionTimestamp makes any object Terminating, before every other rule', () => {
    const d = deployment({ status: { observedGeneration: 1 } })
    d.metadata!.deletionTimestamp = '2026-11-22T05:09:00Z'
    expect(d, 'Terminating', 'Resource scheduled for deletion')
  })

  it('an observedGeneration behind metadata.generation is InProgress, even when the rest looks done', () => {
    const r = expect(
      deployment({ generation: 4 }),
      'InProgress',
      'Deployment generation is 4, but latest observed generation is 3',
    )
    assert.equal(r.reason, 'LatestGenerationNotObserved')
  })

  it('skips the generation check when status.observedGeneration is absent', () => {
    const obj: KubeObject = {
      apiVersion: 'example.com/v1',
      kind: 'Widget',
      metadata: meta('w', { generation: 7 }),
      spec: {},
      status: {},
    }
    expect(obj, 'Current', 'Resource is current')
  })

  it("Reconciling=True is InProgress with the controller's message", () => {
    const r = expect(
      kustomization([
        {
          type: 'Reconciling',
          status: 'True',
          reason: 'ProgressingWithRetry',
          message: 'Detecting drift for revision main@sha1:0a1b2c3d',
        },
        { type: 'Ready', status: 'False', reason: 'ReconciliationFailed', message: 'kustomize build failed' },
      ]),
      'InProgress',
      'Detecting drift for revision main@sha1:0a1b2c3d',
    )
    assert.equal(r.reason, 'ProgressingWithRetry')
  })

  it('Stalled=True is Failed', () => {
    const r = expect(
      kustomization([
        { type: 'Stalled', status: 'True', reason: 'InvalidPath', message: 'path ./nope not found' },
        { type: 'Ready', status: 'False', reason: 'InvalidPath', message: 'path ./nope not found' },
      ]),
      'Failed',
      'path ./nope not found',
    )
    assert.equal(r.reason, 'InvalidPath')
  })

  it('Reconciling and Stalled are read in list order: the first True one decides', () => {
    expect(
      kustomization([
        { type: 'Stalled', status: 'True', reason: 'BuildFailed', message: 'stalled' },
        { type: 'Reconciling', status: 'True', reason: 'Progressing', message: 'reconciling' },
      ]),
      'Failed',
      'stalled',
    )
  })

  it('the kind rule comes before the Ready condition (a Pod with Ready=False and CrashLoopBackOff is Failed)', () => {
    expect(pod(crashLooping), 'Failed')
  })

  it('Ready=True on a kind without a rule is Current', () => {
    expect(
      kustomization([
        {
          type: 'Ready',
          status: 'True',
          reason: 'ReconciliationSucceeded',
          message: 'Applied revision: main@sha1:0a1b2c3d',
        },
      ]),
      'Current',
      'Applied revision: main@sha1:0a1b2c3d',
    )
  })

  it('Ready=False on a kind without a rule is InProgress', () => {
    expect(
      kustomization([
        {
          type: 'Ready',
          status: 'False',
          reason: 'DependencyNotReady',
          message: "dependency 'flux-system/infra' is not ready",
        },
      ]),
      'InProgress',
      "dependency 'flux-system/infra' is not ready",
    )
  })

  it('Ready=Unknown on a kind without a rule is InProgress', () => {
    expect(
      kustomization([
        { type: 'Ready', status: 'Unknown', reason: 'Progressing', message: 'Reconciliation in progress' },
      ]),
      'InProgress',
    )
  })

  it('an object with no rule and no conditions is Current', () => {
    const sa: KubeObject = { apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta('sonarr') }
    expect(sa, 'Current', 'Resource is current')
  })

  it('keys kind rules by group/Kind: a Deployment of another group gets no Deployment rule', () => {
    assert.equal(groupKind({ apiVersion: 'apps/v1', kind: 'Deployment' }), 'apps/Deployment')
    assert.equal(groupKind({ apiVersion: 'v1', kind: 'Pod' }), 'Pod')
    const foreign: KubeObject = {
      apiVersion: 'example.com/v1',
      kind: 'Deployment',
      metadata: meta('x'),
      spec: { replicas: 5 },
      status: {},
    }
    expect(foreign, 'Current', 'Resource is current')
  })
})

describe('kstatus: Deployment', () => {
  it('Progressing with reason ProgressDeadlineExceeded is Failed', () => {
    const r = expect(
      deployment({
        status: {
          readyReplicas: 0,
          availableReplicas: 0,
          conditions: [
            {
              type: 'Available',
              status: 'False',
              reason: 'MinimumReplicasUnavailable',
              message: 'Deployment does not have minimum availability.',
            },
            {
              type: 'Progressing',
              status: 'False',
              reason: 'ProgressDeadlineExceeded',
              message: 'ReplicaSet "sonarr-6d4b9c7f8" has timed out progressing.',
            },
          ],
        },
      }),
      'Failed',
      'ReplicaSet "sonarr-6d4b9c7f8" has timed out progressing.',
    )
    assert.equal(r.reason, 'ProgressDeadlineExceeded')
  })

  it('spec.replicas above status.replicas is InProgress', () => {
    expect(deployment({ status: { replicas: 1 } }), 'InProgress', 'Replicas: 1/2')
  })

  it('spec.replicas above updatedReplicas is InProgress', () => {
    expect(deployment({ status: { updatedReplicas: 1 } }), 'InProgress', 'Updated: 1/2')
  })

  it('status.replicas above spec.replicas (old pods terminating) is InProgress', () => {
    expect(deployment({ status: { replicas: 3 } }), 'InProgress', 'Pending termination: 1')
  })

  it('updatedReplicas above availableReplicas is InProgress', () => {
    expect(deployment({ status: { availableReplicas: 1 } }), 'InProgress', 'Available: 1/2')
  })

  it('spec.replicas above readyReplicas is InProgress', () => {
    expect(deployment({ status: { readyReplicas: 1 } }), 'InProgress', 'Ready: 1/2')
  })

  it('a missing status counts as zero replicas and spec.replicas defaults to 1', () => {
    const d = deployment({ spec: { replicas: undefined } })
    d.status = { observedGeneration: 3 }
    expect(d, 'InProgress', 'Replicas: 0/1')
  })

  it('not progressing (Progressing without NewReplicaSetAvailable) is InProgress', () => {
    expect(
      deployment({
        status: {
          conditions: [
            { type: 'Available', status: 'True', reason: 'MinimumReplicasAvailable' },
            {
              type: 'Progressing',
              status: 'True',
              reason: 'ReplicaSetUpdated',
              message: 'ReplicaSet "sonarr-6d4b9c7f8" is progressing.',
            },
          ],
        },
      }),
      'InProgress',
      'ReplicaSet not Available',
    )
  })

  it("Available not True is InProgress, with the controller's message", () => {
    const r = expect(
      deployment({
        status: {
          conditions: [
            {
              type: 'Available',
              status: 'False',
              reason: 'MinimumReplicasUnavailable',
              message: 'Deployment does not have minimum availability.',
            },
            { type: 'Progressing', status: 'True', reason: 'NewReplicaSetAvailable' },
          ],
        },
      }),
      'InProgress',
      'Deployment does not have minimum availability.',
    )
    assert.equal(r.reason, 'DeploymentNotAvailable')
  })

  it('without progressDeadlineSeconds it counts as progressing (the controller sets no Progressing condition)', () => {
    expect(
      deployment({
        spec: { progressDeadlineSeconds: undefined },
        status: { conditions: [{ type: 'Available', status: 'True', reason: 'MinimumReplicasAvailable' }] },
      }),
      'Current',
    )
  })

  it('all replicas updated, ready and available is Current', () => {
    expect(deployment(), 'Current', 'Deployment is available. Replicas: 2')
  })
})

describe('kstatus: StatefulSet', () => {
  it('the OnDelete update strategy is Current whatever the counts', () => {
    expect(
      statefulSet({ updateStrategy: { type: 'OnDelete' } }, { readyReplicas: 0 }),
      'Current',
      'StatefulSet is using the ondelete update strategy',
    )
  })

  it('spec.replicas above status.replicas is InProgress', () => {
    expect(statefulSet({}, { replicas: 2 }), 'InProgress', 'Replicas: 2/3')
  })

  it('spec.replicas above readyReplicas is InProgress', () => {
    expect(statefulSet({}, { readyReplicas: 2 }), 'InProgress', 'Ready: 2/3')
  })

  it('status.replicas above spec.replicas is InProgress', () => {
    expect(statefulSet({ replicas: 2 }, {}), 'InProgress', 'Pending termination: 1')
  })

  it('with a partition, fewer updated than spec−partition is InProgress', () => {
    expect(
      statefulSet(
        { updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 1 } } },
        { updatedReplicas: 1 },
      ),
      'InProgress',
      'Updated: 1/2',
    )
  })

  it('with a partition, enough updated replicas is Current even while revisions differ', () => {
    expect(
      statefulSet(
        { updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 1 } } },
        { updatedReplicas: 2, currentReplicas: 1, updateRevision: 'postgres-7f9c' },
      ),
      'Current',
      'Partition rollout complete. Updated: 2',
    )
  })

  it('without a partition, spec.replicas above currentReplicas is InProgress', () => {
    expect(statefulSet(withoutPartition(), { currentReplicas: 2 }), 'InProgress', 'Current: 2/3')
  })

  it('without a partition, currentRevision different from updateRevision is InProgress', () => {
    expect(
      statefulSet(withoutPartition(), { updateRevision: 'postgres-7f9c' }),
      'InProgress',
      'Waiting for updated revision to match current',
    )
  })

  it('everything rolled out is Current', () => {
    expect(statefulSet(withoutPartition()), 'Current', 'All replicas scheduled as expected. Replicas: 3')
  })
})

describe('kstatus: DaemonSet', () => {
  it('a missing metadata.generation is InProgress', () => {
    expect(daemonSet({}, {}), 'InProgress', 'DaemonSet metadata.generation not found')
  })

  it('a missing status.observedGeneration is InProgress', () => {
    expect(daemonSet({ observedGeneration: undefined }), 'InProgress', 'DaemonSet status.observedGeneration not found')
  })

  it('a missing desiredNumberScheduled is InProgress', () => {
    expect(daemonSet({ desiredNumberScheduled: undefined }), 'InProgress', 'Missing .status.desiredNumberScheduled')
  })

  it('desired above current, updated, available or ready is InProgress', () => {
    expect(daemonSet({ currentNumberScheduled: 2 }), 'InProgress', 'Current: 2/3')
    expect(daemonSet({ updatedNumberScheduled: 2 }), 'InProgress', 'Updated: 2/3')
    expect(daemonSet({ numberAvailable: 2 }), 'InProgress', 'Available: 2/3')
    expect(daemonSet({ numberReady: 2 }), 'InProgress', 'Ready: 2/3')
  })

  it('all scheduled, updated, available and ready is Current', () => {
    expect(daemonSet(), 'Current', 'All replicas scheduled as expected. Replicas: 3')
  })
})

describe('kstatus: ReplicaSet', () => {
  it("ReplicaFailure=True is InProgress with the controller's message", () => {
    expect(
      replicaSet({
        replicas: 0,
        conditions: [
          {
            type: 'ReplicaFailure',
            status: 'True',
            reason: 'FailedCreate',
            message: 'pods "sonarr-6d4b9c7f8-" is forbidden: exceeded quota: compute',
          },
        ],
      }),
      'InProgress',
      'pods "sonarr-6d4b9c7f8-" is forbidden: exceeded quota: compute',
    )
  })

  it('spec.replicas above fullyLabeled, available or ready is InProgress', () => {
    expect(replicaSet({ fullyLabeledReplicas: 1 }), 'InProgress', 'Labelled: 1/2')
    expect(replicaSet({ availableReplicas: 1 }), 'InProgress', 'Available: 1/2')
    expect(replicaSet({ readyReplicas: 1, availableReplicas: 2 }), 'InProgress', 'Ready: 1/2')
  })

  it('status.replicas above spec.replicas is InProgress', () => {
    expect(replicaSet({ replicas: 3 }), 'InProgress', 'Pending termination: 1')
  })

  it('all replicas labelled, available and ready is Current', () => {
    expect(replicaSet(), 'Current', 'ReplicaSet is available. Replicas: 2')
  })
})

describe('kstatus: Pod', () => {
  it('Succeeded is Current', () => {
    expect(
      pod({
        phase: 'Succeeded',
        containerStatuses: [
          {
            name: 'sonarr',
            ready: false,
            restartCount: 0,
            state: { terminated: { exitCode: 0, reason: 'Completed' } },
          },
        ],
      }),
      'Current',
    )
  })

  it('Failed is Current (the pod is finished, not in progress)', () => {
    expect(
      pod({ phase: 'Failed', reason: 'Evicted', message: 'The node was low on resource: memory.' }),
      'Current',
      'Pod has completed, but not successfully',
    )
  })

  it('Running with Ready=True is Current', () => {
    expect(pod(runningReady), 'Current', 'Pod is Ready')
  })

  it('Running with a container in CrashLoopBackOff is Failed', () => {
    const r = expect(pod(crashLooping), 'Failed', 'Containers in CrashLoop state: sonarr')
    assert.equal(r.reason, 'ContainerCrashLooping')
  })

  it('Running but not Ready, without a crash loop, is InProgress', () => {
    expect(
      pod({
        ...runningReady,
        conditions: [{ type: 'Ready', status: 'False', reason: 'ContainersNotReady' }],
        containerStatuses: [
          { name: 'sonarr', ready: false, restartCount: 0, state: { running: { startedAt: created } } },
        ],
      }),
      'InProgress',
      'Pod is running but is not Ready',
    )
  })

  it('Pending and Unschedulable is InProgress for 15 s after creation, then Failed', () => {
    const young = new Date(now.getTime() - SCHEDULE_WINDOW_MS + 1000).toISOString()
    expect(pod(unschedulable, young), 'InProgress', 'Pod has not been scheduled')
    const old = new Date(now.getTime() - SCHEDULE_WINDOW_MS - 1000).toISOString()
    const r = expect(pod(unschedulable, old), 'Failed', /^0\/1 nodes are available/)
    assert.equal(r.reason, 'PodUnschedulable')
  })

  it('Unschedulable with no creationTimestamp is Failed at once (the zero time is older than the window, as in cli-utils)', () => {
    const p = pod(unschedulable)
    delete p.metadata!.creationTimestamp
    expect(p, 'Failed', /^0\/1 nodes are available/)
  })

  it('a creationTimestamp given as a Date (typed client) works the same', () => {
    const p = pod(unschedulable)
    p.metadata!.creationTimestamp = new Date(created)
    expect(p, 'Failed')
  })

  it('Pending for another reason is InProgress', () => {
    expect(
      pod({
        phase: 'Pending',
        conditions: [{ type: 'PodScheduled', status: 'True' }],
        containerStatuses: [
          { name: 'sonarr', ready: false, restartCount: 0, state: { waiting: { reason: 'ContainerCreating' } } },
        ],
      }),
      'InProgress',
      'Pod is in the Pending phase',
    )
  })

  it('no phase yet is InProgress', () => {
    expect(pod({}), 'InProgress', 'Pod phase not available')
  })
})

describe('kstatus: PersistentVolumeClaim', () => {
  const pvc = (status: Record<string, unknown>): KubeObject => ({
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: meta('config-sonarr'),
    spec: {
      accessModes: ['ReadWriteOnce'],
      resources: { requests: { storage: '1Gi' } },
      storageClassName: 'local-path',
      volumeMode: 'Filesystem',
    },
    status,
  })

  it('not Bound (WaitForFirstConsumer keeps it Pending) is InProgress', () => {
    expect(pvc({ phase: 'Pending' }), 'InProgress', 'PVC is not Bound. phase: Pending')
  })

  it('Bound is Current', () => {
    expect(
      pvc({ phase: 'Bound', accessModes: ['ReadWriteOnce'], capacity: { storage: '1Gi' } }),
      'Current',
      'PVC is Bound',
    )
  })
})

describe('kstatus: Service', () => {
  const svc = (spec: Record<string, unknown>): KubeObject => ({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta('sonarr'),
    spec: {
      ports: [{ name: 'http', port: 8989, protocol: 'TCP', targetPort: 8989 }],
      selector: { app: 'sonarr' },
      ...spec,
    },
    status: { loadBalancer: {} },
  })

  it('a LoadBalancer without a clusterIP is InProgress', () => {
    expect(svc({ type: 'LoadBalancer' }), 'InProgress', 'ClusterIP not set. Service type: LoadBalancer')
  })

  it('a LoadBalancer with a clusterIP is Current even without an ingress IP', () => {
    expect(
      svc({ type: 'LoadBalancer', clusterIP: '10.96.12.7', clusterIPs: ['10.96.12.7'] }),
      'Current',
      'Service is ready',
    )
  })

  it('a ClusterIP service is Current', () => {
    expect(svc({ type: 'ClusterIP', clusterIP: '10.96.12.8' }), 'Current')
  })
})

describe('kstatus: Job', () => {
  it('Complete=True is Current', () => {
    expect(
      job({
        startTime: created,
        completionTime: created,
        succeeded: 1,
        conditions: [
          { type: 'SuccessCriteriaMet', status: 'True' },
          { type: 'Complete', status: 'True', lastTransitionTime: created },
        ],
      }),
      'Current',
      'Job Completed. succeeded: 1/1',
    )
  })

  it('Failed=True is Failed', () => {
    const r = expect(
      job({
        startTime: created,
        failed: 7,
        conditions: [
          { type: 'FailureTarget', status: 'True', reason: 'BackoffLimitExceeded' },
          {
            type: 'Failed',
            status: 'True',
            reason: 'BackoffLimitExceeded',
            message: 'Job has reached the specified backoff limit',
          },
        ],
      }),
      'Failed',
      'Job Failed. failed: 7/1',
    )
    assert.equal(r.reason, 'JobFailed')
  })

  it('Suspended=True with spec.suspend is Current', () => {
    expect(
      job(
        { conditions: [{ type: 'Suspended', status: 'True', reason: 'JobSuspended', message: 'Job suspended' }] },
        { suspend: true },
      ),
      'Current',
      'Job is suspended',
    )
  })

  it('Suspended=True while spec.suspend is false again (resumed, not started yet) is InProgress', () => {
    expect(
      job({ conditions: [{ type: 'Suspended', status: 'True', reason: 'JobSuspended' }] }, { suspend: false }),
      'InProgress',
      'Job not started',
    )
  })

  it('no startTime is InProgress', () => {
    expect(job({}), 'InProgress', 'Job not started')
  })

  it('a running Job is Current', () => {
    expect(
      job({ startTime: created, active: 1, ready: 0 }),
      'Current',
      'Job in progress. success: 0, active: 1, failed: 0',
    )
  })
})

describe('kstatus: CustomResourceDefinition', () => {
  it('NamesAccepted=False is Failed', () => {
    expect(
      crd([
        {
          type: 'NamesAccepted',
          status: 'False',
          reason: 'MultipleNamesConflict',
          message: '"kustomizations" is already in use',
        },
        { type: 'Established', status: 'False', reason: 'NotAccepted', message: 'not all names are accepted' },
      ]),
      'Failed',
      '"kustomizations" is already in use',
    )
  })

  it('Established=False with a reason other than Installing is Failed', () => {
    expect(
      crd([
        { type: 'NamesAccepted', status: 'True', reason: 'NoConflicts' },
        { type: 'Established', status: 'False', reason: 'NotAccepted', message: 'not all names are accepted' },
      ]),
      'Failed',
      'not all names are accepted',
    )
  })

  it('Established=False while Installing is InProgress', () => {
    expect(
      crd([
        { type: 'NamesAccepted', status: 'True', reason: 'NoConflicts' },
        { type: 'Established', status: 'False', reason: 'Installing', message: 'the initial names have been accepted' },
      ]),
      'InProgress',
      'Install in progress',
    )
  })

  it('Established=True is Current', () => {
    expect(
      crd([
        { type: 'NamesAccepted', status: 'True', reason: 'NoConflicts' },
        { type: 'Established', status: 'True', reason: 'InitialNamesAccepted' },
      ]),
      'Current',
      'CRD is established',
    )
  })

  it('no conditions yet is InProgress', () => {
    expect(crd([]), 'InProgress')
  })
})

describe('kstatus: kinds that are always Current', () => {
  it('ConfigMap, Secret, CronJob and PodDisruptionBudget are Current', () => {
    expect({ apiVersion: 'v1', kind: 'ConfigMap', metadata: meta('sonarr-env') }, 'Current')
    expect({ apiVersion: 'v1', kind: 'Secret', metadata: meta('sonarr-api-key') }, 'Current')
    expect(
      {
        apiVersion: 'batch/v1',
        kind: 'CronJob',
        metadata: meta('backup', { generation: 1 }),
        spec: { schedule: '0 3 * * *', suspend: true },
        status: {},
      },
      'Current',
    )
    expect(
      {
        apiVersion: 'policy/v1',
        kind: 'PodDisruptionBudget',
        metadata: meta('sonarr', { generation: 1 }),
        spec: { minAvailable: 1 },
        status: { observedGeneration: 1, currentHealthy: 0, desiredHealthy: 1, disruptionsAllowed: 0, expectedPods: 1 },
      },
      'Current',
    )
  })
})

describe('kstatus: poller extras', () => {
  it('a missing object is NotFound', () => {
    expect(undefined, 'NotFound')
  })

  it('a pod in a phase kstatus does not know is Unknown', () => {
    expect(pod({ phase: 'Unknown' }), 'Unknown')
  })

  it('a ReplicaSet in progress whose selected pod is Failed becomes Failed', () => {
    const rs = replicaSet({ readyReplicas: 1, availableReplicas: 1 })
    const r = expect(
      rs,
      'Failed',
      /1 pod has failed \(sonarr-6d4b9c7f8-x2x7q: Containers in CrashLoop state: sonarr\)/,
      { pods: [pod(runningReady), pod(crashLooping)] },
    )
    assert.equal(r.reason, 'ContainerCrashLooping')
    expect(rs, 'InProgress', 'Available: 1/2', { pods: [pod(runningReady)] })
  })

  it('a StatefulSet in progress whose selected pod is Unschedulable for 15 s becomes Failed', () => {
    expect(statefulSet({}, { readyReplicas: 2 }), 'Failed', /1 pod has failed/, { pods: [pod(unschedulable)] })
  })

  it('a Current ReplicaSet stays Current whatever its pods say', () => {
    expect(replicaSet(), 'Current', undefined, { pods: [pod(crashLooping)] })
  })

  it('a Deployment is Failed when one of its pods is (cli-utils reaches them through its ReplicaSets; we by the selector)', () => {
    expect(deployment({ status: { readyReplicas: 1 } }), 'Failed', /1 pod has failed .*CrashLoop/, {
      pods: [pod(crashLooping)],
    })
  })
})

describe('kstatus: aggregate', () => {
  it('any Failed makes the set Failed', () => {
    assert.equal(aggregate(['Current', 'Unknown', 'Failed', 'InProgress']), 'Failed')
  })

  it('otherwise any Unknown makes it Unknown', () => {
    assert.equal(aggregate(['Current', 'Unknown', 'InProgress']), 'Unknown')
  })

  it('all Current is Current, and so is an empty set', () => {
    assert.equal(aggregate(['Current', 'Current']), 'Current')
    assert.equal(aggregate([]), 'Current')
  })

  it('anything else is InProgress (NotFound, Terminating, InProgress)', () => {
    assert.equal(aggregate(['Current', 'NotFound']), 'InProgress')
    assert.equal(aggregate(['Terminating', 'Current']), 'InProgress')
  })

  it('aggregates towards another desired status, e.g. NotFound after a delete', () => {
    assert.equal(aggregate(['NotFound', 'NotFound'], 'NotFound'), 'NotFound')
    assert.equal(aggregate(['NotFound', 'Terminating'], 'NotFound'), 'InProgress')
  })
})

// HelmReleases as helm-controller v1.4.0 writes them (internal/reconcile/atomic_release.go): a
// failed run leaves status.observedGeneration at the previous generation and writes the new
// one into each condition.
function helmRelease(conditions: Record<string, unknown>[], opts: { generation?: number; observed?: number } = {}) {
  const generation = opts.generation ?? 2
  return {
    apiVersion: 'helm.toolkit.fluxcd.io/v2',
    kind: 'HelmRelease',
    metadata: { name: 'sonarr', namespace: 'media-dev', generation, creationTimestamp: created },
    spec: { interval: '1h', chartRef: { kind: 'OCIRepository', name: 'app-template' } },
    status: { observedGeneration: opts.observed ?? generation - 1, conditions },
  } satisfies KubeObject
}

describe('kstatus: Flux objects that failed for their current spec', () => {
  const installFailed = {
    type: 'Ready',
    status: 'False',
    reason: 'InstallFailed',
    message:
      'Helm install failed for release media-dev/sonarr with chart app-template@4.1.1: Service "sonarr" is invalid: spec.ports[0].port: Invalid value: 0',
    observedGeneration: 2,
  }

  it('Stalled RetriesExceeded with Ready=False InstallFailed is Failed at once, with the Helm error and the reason InstallFailed, though observedGeneration is behind', () => {
    const r = expect(
      helmRelease([
        installFailed,
        {
          type: 'Stalled',
          status: 'True',
          reason: 'RetriesExceeded',
          message: 'Failed to install after 1 attempt(s)',
          observedGeneration: 2,
        },
        { type: 'Released', status: 'False', reason: 'InstallFailed', message: 'x', observedGeneration: 2 },
      ]),
      'Failed',
    )
    assert.equal(r.reason, 'InstallFailed')
    assert.match(r.message, /^Helm install failed .*port: Invalid value: 0 \(Failed to install after 1 attempt\(s\)\)$/)
  })

  it("a failed upgrade helm-controller rolled back (remediateLastFailure): Failed with Helm's error first, then the remediation", () => {
    // the conditions helm-controller v1.4.0 wrote for monitoring/grafana in e2e/shipped-helmrelease
    const r = expect(
      helmRelease([
        {
          type: 'Ready',
          status: 'False',
          reason: 'RollbackSucceeded',
          message: 'Helm rollback to previous release monitoring/grafana.v2 with chart nsops-app@0.1.0 succeeded',
          observedGeneration: 2,
        },
        {
          type: 'Stalled',
          status: 'True',
          reason: 'RetriesExceeded',
          message: 'Failed to upgrade after 1 attempt(s)',
          observedGeneration: 2,
        },
        {
          type: 'Released',
          status: 'False',
          reason: 'UpgradeFailed',
          message:
            'Helm upgrade failed for release monitoring/grafana with chart nsops-app@0.1.0: context deadline exceeded',
          observedGeneration: 2,
        },
        { type: 'Remediated', status: 'True', reason: 'RollbackSucceeded', message: 'x', observedGeneration: 2 },
      ]),
      'Failed',
    )
    assert.equal(r.reason, 'UpgradeFailed')
    assert.equal(
      r.message,
      'Helm upgrade failed for release monitoring/grafana with chart nsops-app@0.1.0: context deadline exceeded; remediation: Helm rollback to previous release monitoring/grafana.v2 with chart nsops-app@0.1.0 succeeded (Failed to upgrade after 1 attempt(s))',
    )
  })

  it('Ready=False UpgradeFailed while helm-controller retries (Reconciling ProgressingWithRetry) is Failed: that run is over', () => {
    const r = expect(
      helmRelease([
        { type: 'Reconciling', status: 'True', reason: 'ProgressingWithRetry', message: 'x', observedGeneration: 2 },
        { ...installFailed, reason: 'UpgradeFailed', message: 'Helm upgrade failed: timed out' },
      ]),
      'Failed',
      'Helm upgrade failed: timed out',
    )
    assert.equal(r.reason, 'UpgradeFailed')
  })

  it('a failure written for an older generation is not a verdict on the new spec: InProgress', () => {
    expect(
      helmRelease([{ ...installFailed, observedGeneration: 1 }], { generation: 2, observed: 1 }),
      'InProgress',
      'HelmRelease generation is 2, but latest observed generation is 1',
    )
  })

  it('Ready=False with a passing reason (a source not ready yet, a dependency) stays InProgress', () => {
    for (const reason of ['SourceNotReady', 'DependencyNotReady', 'ArtifactFailed'])
      expect(
        helmRelease([{ type: 'Ready', status: 'False', reason, message: 'wait', observedGeneration: 2 }], {
          observed: 2,
        }),
        'InProgress',
      )
  })

  it('a HelmRelease no controller has observed yet is InProgress (NotObserved), not Current', () => {
    const r = expect(
      { ...helmRelease([]), status: {} },
      'InProgress',
      'HelmRelease has not been observed by its controller yet',
    )
    assert.equal(r.reason, 'NotObserved')
    expect({ ...helmRelease([]), status: undefined }, 'InProgress')
  })

  it('the same rule holds for every *.toolkit.fluxcd.io kind, not for look-alike groups', () => {
    const ready = { ...installFailed, reason: 'UpgradeFailed' }
    expect({ ...helmRelease([ready]), apiVersion: 'example.com/v1', kind: 'HelmRelease' }, 'InProgress')
  })
})

describe('kstatus: a HelmRelease stalled with Ready left Unknown', () => {
  it('takes the reason and message from the Released condition (as helm-controller v1.4.0 leaves it)', () => {
    const r = computeStatus(
      {
        apiVersion: 'helm.toolkit.fluxcd.io/v2',
        kind: 'HelmRelease',
        metadata: { name: 'from-oci', namespace: 'media', generation: 1 },
        status: {
          observedGeneration: 1,
          conditions: [
            {
              type: 'Stalled',
              status: 'True',
              reason: 'RetriesExceeded',
              message: 'Failed to install after 1 attempt(s)',
              observedGeneration: 1,
            },
            {
              type: 'Ready',
              status: 'Unknown',
              reason: 'Progressing',
              message: 'Fulfilling prerequisites',
              observedGeneration: 1,
            },
            {
              type: 'Released',
              status: 'False',
              reason: 'InstallFailed',
              message: 'Helm install failed for release media/from-oci',
              observedGeneration: 1,
            },
          ],
        },
      },
      now,
    )
    assert.equal(r.status, 'Failed')
    assert.equal(r.reason, 'InstallFailed')
    assert.equal(r.message, 'Helm install failed for release media/from-oci (Failed to install after 1 attempt(s))')
  })
})
