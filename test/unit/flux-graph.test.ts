// The Flux tree the dashboard, --json and the page render (flux/graph.ts), on objects shaped as
// the API returns them: a root Kustomization applies two per-app Kustomizations (one waits for
// the other), the second applies a HelmRelease and its OCIRepository; the release's Deployment
// hangs under it by helm-controller's labels, a plain Deployment under the Kustomization whose
// inventory holds it; suspensions and per-object holds say who holds a node.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { fluxGraph, graphLines } from '../../shared/flux/graph.ts'
import type { FluxObject } from '../../shared/flux/kinds.ts'

const ready = { conditions: [{ type: 'Ready', status: 'True', reason: 'ReconciliationSucceeded', message: 'ok' }] }
const inv = (...ids: [string, string, string, string, string][]) => ({
  inventory: { entries: ids.map(([ns, name, group, kind, v]) => ({ id: `${ns}_${name}_${group}_${kind}`, v })) },
})
const ks = (name: string, spec: Record<string, unknown>, status: Record<string, unknown> = {}): FluxObject => ({
  apiVersion: 'kustomize.toolkit.fluxcd.io/v1',
  kind: 'Kustomization',
  metadata: { name, namespace: 'flux-system', generation: 1 },
  spec: { sourceRef: { kind: 'GitRepository', name: 'flux-system' }, ...spec },
  status: { observedGeneration: 1, ...ready, ...status },
})

describe('the Flux tree on the cluster', () => {
  const root = ks(
    'cluster-apps',
    {},
    inv(
      ['flux-system', 'db', 'kustomize.toolkit.fluxcd.io', 'Kustomization', 'v1'],
      ['flux-system', 'app', 'kustomize.toolkit.fluxcd.io', 'Kustomization', 'v1'],
    ),
  )
  const db = ks('db', {}, inv(['media', 'postgres', 'apps', 'Deployment', 'v1']))
  const app = ks(
    'app',
    { dependsOn: [{ name: 'db' }], suspend: true },
    inv(
      ['media', 'sonarr', 'helm.toolkit.fluxcd.io', 'HelmRelease', 'v2'],
      ['media', 'app-template', 'source.toolkit.fluxcd.io', 'OCIRepository', 'v1'],
    ),
  )
  const hr: FluxObject = {
    apiVersion: 'helm.toolkit.fluxcd.io/v2',
    kind: 'HelmRelease',
    metadata: { name: 'sonarr', namespace: 'media', generation: 2 },
    spec: { chartRef: { kind: 'OCIRepository', name: 'app-template' } },
    status: {
      observedGeneration: 2,
      ...ready,
      history: [{ chartName: 'app-template', chartVersion: '4.1.1+ef6098b833e7', version: 3, status: 'deployed' }],
    },
  }
  const git: FluxObject = {
    apiVersion: 'source.toolkit.fluxcd.io/v1',
    kind: 'GitRepository',
    metadata: { name: 'flux-system', namespace: 'flux-system', generation: 1 },
    status: { observedGeneration: 1, ...ready, artifact: { revision: 'main@sha1:abc' } },
  }
  const oci: FluxObject = {
    apiVersion: 'source.toolkit.fluxcd.io/v1',
    kind: 'OCIRepository',
    metadata: { name: 'app-template', namespace: 'media', generation: 1 },
    status: { observedGeneration: 1, ...ready, artifact: { revision: '4.1.1@sha256:ef60' } },
  }
  const deployment = (name: string, labels: Record<string, string> = {}, annotations: Record<string, string> = {}) => ({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: 'media', generation: 1, labels, annotations },
    spec: { replicas: 1 },
    status: { observedGeneration: 1, replicas: 1, readyReplicas: 1, availableReplicas: 1, updatedReplicas: 1 },
  })
  const g = fluxGraph({
    managers: [app],
    allKustomizations: [root, db, app],
    helmReleases: [hr],
    sources: [git, oci],
    workloads: [
      deployment('sonarr', { 'helm.toolkit.fluxcd.io/name': 'sonarr', 'helm.toolkit.fluxcd.io/namespace': 'media' }),
      deployment('postgres', {}, { 'kustomize.toolkit.fluxcd.io/reconcile': 'disabled', 'nsops.dev/held-by': '{}' }),
    ],
  })
  const node = (id: string) => g.nodes.find((n) => n.id === id)

  it('source → root Kustomization → the Kustomizations it applies → HelmRelease → workloads; a dependency is drawn in', () => {
    assert.deepEqual(g.roots, ['GitRepository/flux-system/flux-system'])
    assert.deepEqual(node('GitRepository/flux-system/flux-system')?.children, [
      'Kustomization/flux-system/cluster-apps',
    ])
    assert.deepEqual(node('Kustomization/flux-system/cluster-apps')?.children.sort(), [
      'Kustomization/flux-system/app',
      'Kustomization/flux-system/db',
    ])
    assert.deepEqual(node('Kustomization/flux-system/app')?.children.sort(), [
      'HelmRelease/media/sonarr',
      'OCIRepository/media/app-template',
    ])
    assert.deepEqual(node('HelmRelease/media/sonarr')?.children, ['Deployment/media/sonarr'])
    assert.deepEqual(node('Kustomization/flux-system/db')?.children, ['Deployment/media/postgres'])
  })

  it('dependsOn edges, state and who holds each node', () => {
    assert.deepEqual(node('Kustomization/flux-system/app')?.dependsOn, ['Kustomization/flux-system/db'])
    assert.equal(node('HelmRelease/media/sonarr')?.revision, 'app-template@4.1.1 r3')
    assert.equal(node('HelmRelease/media/sonarr')?.ready, 'True')
    const a = node('Kustomization/flux-system/app')!
    assert.equal(a.suspended, true)
    assert.match(a.heldBy ?? '', /^suspended by hand/)
    assert.match(
      node('Deployment/media/postgres')?.heldBy ?? '',
      /held from Flux \(kustomize\.toolkit\.fluxcd\.io\/reconcile: disabled, by an nsops dev loop\)/,
    )
    const lines = graphLines(g)
    assert.equal(lines[0], 'GitRepository/flux-system/flux-system  Current  main@sha1:abc')
    assert.ok(
      lines.some((l) =>
        /^\s+├─ Kustomization\/flux-system\/app  \S+  suspended by hand.*⇠ waits for Kustomization\/db/.test(l),
      ),
      lines.join('\n'),
    )
  })
})
