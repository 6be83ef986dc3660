// The pure parts of drift: leaf diffs by JSON pointer, who set a field (managedFields), ignore
// rules and their selectors, the skip annotations, immutable-field and PVC-shrink warnings,
// Secret hashing, and namespace.ts drift.ignore validation.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { LiveObject } from '../../shared/kube/rest.ts'
import { secretHash, skipReason } from '../../shared/drift/compute.ts'
import { leafChanges, removePath, wantedChanges } from '../../shared/drift/fields.ts'
import { ignoredPaths, kustomizationRules, parseLocalRule, selectorMatches } from '../../shared/config/ignore-rules.ts'
import { settersOf } from '../../shared/drift/managers.ts'
import { immutableWarnings, parseQuantity } from '../../shared/drift/warnings.ts'
import { defineNamespace } from '../../shared/config/namespace-config.ts'

const deployment: LiveObject = {
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: {
    name: 'web',
    namespace: 'demo',
    managedFields: [
      {
        manager: 'kustomize-controller',
        operation: 'Apply',
        apiVersion: 'apps/v1',
        time: '2026-05-01T10:00:00Z',
        fieldsType: 'FieldsV1',
        fieldsV1: {
          'f:spec': {
            'f:template': {
              'f:spec': { 'f:containers': { 'k:{"name":"web"}': { '.': {}, 'f:name': {}, 'f:resources': {} } } },
            },
          },
        },
      },
      {
        manager: 'kubectl-patch',
        operation: 'Update',
        apiVersion: 'apps/v1',
        time: '2026-05-01T12:04:00Z',
        fieldsType: 'FieldsV1',
        fieldsV1: {
          'f:spec': { 'f:template': { 'f:spec': { 'f:containers': { 'k:{"name":"web"}': { 'f:image': {} } } } } },
        },
      },
      {
        manager: 'kubectl',
        operation: 'Update',
        subresource: 'scale',
        apiVersion: 'apps/v1',
        fieldsType: 'FieldsV1',
        fieldsV1: { 'f:spec': { 'f:replicas': {} } },
      },
    ] as LiveObject['metadata']['managedFields'],
  },
  spec: {
    replicas: 3,
    template: {
      spec: {
        containers: [
          { name: 'side', image: 'b' },
          { name: 'web', image: 'a:2', resources: { limits: { memory: '64Mi' } } },
        ],
      },
    },
  },
}

describe('drift fields', () => {
  it('lists every differing leaf by JSON pointer, git → live, with keys escaped', () => {
    assert.deepEqual(
      leafChanges(
        { spec: { replicas: 2, a: [1, 2] }, metadata: { annotations: { 'x/y': '1' } } },
        { spec: { replicas: 3, a: [1] }, metadata: { annotations: { 'x/y': '2' } } },
      ),
      [
        { path: '/metadata/annotations/x~1y', git: '1', live: '2' },
        { path: '/spec/a/1', git: 2 },
        { path: '/spec/replicas', git: 2, live: 3 },
      ],
    )
    assert.deepEqual(leafChanges({ a: { b: 1 } }, { a: { b: 1 } }), [])
  })
  it('compares only what git sets when there is no dry run, a number and its string alike', () => {
    assert.deepEqual(
      wantedChanges({ spec: { port: 80, image: 'a' } }, { spec: { port: '80', image: 'b', extra: true } }),
      [{ path: '/spec/image', git: 'a', live: 'b' }],
    )
  })
  it('removes an ignored path, and a missing one is no error', () => {
    const o = { spec: { replicas: 2, x: [1, 2] } }
    removePath(o, '/spec/replicas')
    removePath(o, '/spec/nothing/here')
    removePath(o, '/spec/x/0')
    assert.deepEqual(o, { spec: { x: [2] } })
  })
})

describe('drift attribution from managedFields', () => {
  it("names the manager of a keyed list item's field, and a subresource writer", () => {
    assert.deepEqual(settersOf(deployment, '/spec/template/spec/containers/1/image'), [
      { manager: 'kubectl-patch', operation: 'Update', time: '2026-05-01T12:04:00Z' },
    ])
    assert.deepEqual(settersOf(deployment, '/spec/replicas'), [
      { manager: 'kubectl', operation: 'Update', subresource: 'scale' },
    ])
    // a leaf set (`f:resources: {}`) owns what is below it
    assert.equal(
      settersOf(deployment, '/spec/template/spec/containers/1/resources/limits/memory')[0]?.manager,
      'kustomize-controller',
    )
    // the other container (index 0) is not `web`: nobody listed owns its image
    assert.deepEqual(settersOf(deployment, '/spec/template/spec/containers/0/image'), [])
  })
})

describe('drift ignore rules', () => {
  it('reads .spec.ignore targets as whole-value regular expressions, and equality selectors', () => {
    const rules = kustomizationRules(
      {
        ignore: [
          { paths: ['/spec/replicas'], target: { kind: 'Deploy.*', name: 'web', labelSelector: 'tier=front,!legacy' } },
        ],
      },
      'Kustomization/flux-system/demo',
    )
    const ref = { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', namespace: 'demo' }
    assert.deepEqual(ignoredPaths(rules, ref, { labels: { tier: 'front' } }), [
      { path: '/spec/replicas', from: 'Kustomization/flux-system/demo .spec.ignore[0]' },
    ])
    assert.deepEqual(
      ignoredPaths(rules, { ...ref, name: 'web2' }, { labels: { tier: 'front' } }),
      [],
      'name must match whole',
    )
    assert.deepEqual(ignoredPaths(rules, ref, { labels: { tier: 'front', legacy: 'y' } }), [])
    assert.equal(selectorMatches('a!=b', { a: 'c' }), true)
    assert.equal(selectorMatches('a==b', { a: 'b' }), true)
  })
  it('parses namespace.ts entries: a pointer, Kind:pointer, Kind/name:pointer; refuses the rest', () => {
    assert.deepEqual(parseLocalRule('/spec/replicas', 0), {
      paths: ['/spec/replicas'],
      from: 'namespace.ts drift.ignore[0]',
    })
    assert.deepEqual(parseLocalRule('Deployment/web.x:/spec/replicas', 1), {
      paths: ['/spec/replicas'],
      target: { kind: 'Deployment', name: 'web\\.x' },
      from: 'namespace.ts drift.ignore[1]',
    })
    assert.equal(typeof parseLocalRule('spec.replicas', 0), 'string')
    assert.throws(
      () =>
        defineNamespace({
          name: 'x',
          description: 'x',
          namespaces: { dev: 'x-dev', prod: 'x' },
          drift: { ignore: ['replicas'] },
        }),
      /drift\.ignore\[0\] must be a JSON pointer/,
    )
    assert.deepEqual(
      defineNamespace({
        name: 'x',
        description: 'x',
        namespaces: { dev: 'x-dev', prod: 'x' },
        drift: { ignore: ['/spec/replicas'] },
      }).drift.ignore,
      ['/spec/replicas'],
    )
  })
})

describe('drift skips and warnings', () => {
  it('skips as kustomize-controller does: reconcile: disabled or ssa: Ignore on either side, IfNotPresent once it exists', () => {
    assert.match(
      skipReason(undefined, { annotations: { 'kustomize.toolkit.fluxcd.io/reconcile': 'disabled' } }) ?? '',
      /on the live object/,
    )
    assert.match(skipReason({ labels: { 'kustomize.toolkit.fluxcd.io/ssa': 'Ignore' } }, {}) ?? '', /in git/)
    assert.match(
      skipReason({ annotations: { 'kustomize.toolkit.fluxcd.io/ssa': 'IfNotPresent' } }, {}) ?? '',
      /IfNotPresent/,
    )
    assert.equal(
      skipReason({ annotations: { 'kustomize.toolkit.fluxcd.io/ssa': 'IfNotPresent' } }, undefined),
      undefined,
    )
    assert.equal(skipReason({}, {}), undefined)
  })
  it('warns on immutable fields and a PVC that would shrink', () => {
    assert.match(
      immutableWarnings({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'web' }, [
        { path: '/spec/selector/matchLabels/app', git: 'a', live: 'b' },
      ])[0],
      /\/spec\/selector is immutable/,
    )
    assert.match(
      immutableWarnings({ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'db' }, [
        { path: '/spec/volumeClaimTemplates/0/spec/resources/requests/storage', git: '2Gi', live: '1Gi' },
      ])[0],
      /volumeClaimTemplates is immutable/,
    )
    assert.match(
      immutableWarnings({ apiVersion: 'batch/v1', kind: 'Job', name: 'j' }, [
        { path: '/spec/template/spec/containers/0/image', git: 'a', live: 'b' },
      ])[0],
      /\/spec\/template is immutable/,
    )
    assert.match(
      immutableWarnings({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', name: 'data' }, [
        { path: '/spec/resources/requests/storage', git: '1Gi', live: '2Gi' },
      ])[0],
      /cannot shrink/,
    )
    assert.deepEqual(
      immutableWarnings({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', name: 'data' }, [
        { path: '/spec/resources/requests/storage', git: '2Gi', live: '1500Mi' },
      ]),
      [],
    )
    assert.equal(parseQuantity('1Gi'), 2 ** 30)
    assert.equal(parseQuantity('500M'), 5e8)
    assert.equal(parseQuantity('1e3'), 1000)
  })
  it('hashes Secret values so equal bytes match and nothing of the value shows', () => {
    const h = secretHash(Buffer.from('hunter2').toString('base64'))
    assert.match(h, /^sha256:[0-9a-f]{12}$/)
    assert.equal(h, secretHash(Buffer.from('hunter2').toString('base64')))
    assert.notEqual(h, secretHash(Buffer.from('hunter3').toString('base64')))
  })
})
