// Strict schema validation against the pinned offline set (Kubernetes v1.36.3's OpenAPI v3 and
// the Flux CRDs, built from Go's module cache into the nsops cache) and against a real sim
// cluster's /openapi/v3: what `just validate` and deploy run before anything is committed.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { describe, it } from 'node:test'
import { buildKustomization, type ManifestObject } from '../../shared/kustomize/build.ts'
import { repoRoot } from '../../shared/core/paths.ts'
import { ClusterSchemas, fieldPath, offlineSchemas, SchemaValidator } from '../../shared/schema/index.ts'
import { toolPath } from '../../shared/tools/provision.ts'
import { testCluster } from '../harness.ts'

const deployment = (spec: Record<string, unknown>): ManifestObject => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'web', namespace: 'x', creationTimestamp: null } as never,
  spec: {
    selector: { matchLabels: { app: 'web' } },
    template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'web', image: 'nginx' }] } },
    ...spec,
  },
})

const messages = (r: { findings: { path: string; message: string }[] }) =>
  r.findings.map((f) => `${fieldPath(f.path)}: ${f.message}`).sort()

describe('schema validation', () => {
  it('the whole arr-stack prod build passes offline, strictly', async () => {
    const objects = await buildKustomization(path.join(repoRoot, 'namespaces/arr-stack/overlays/prod'))
    const r = await new SchemaValidator(await offlineSchemas()).check(objects)
    assert.deepEqual(messages(r), [])
    assert.deepEqual(r.unknownKinds, [])
    assert.equal(r.checked, objects.length)
  })

  it('mistyped and unknown fields are errors, int-or-string takes both, null means unset', async () => {
    const v = new SchemaValidator(await offlineSchemas())
    const r = await v.check([
      deployment({
        replicas: 'two',
        strategy: { rollingUpdate: { maxSurge: '25%', maxUnavailable: 1 } },
        paused: null,
      }),
      { ...deployment({}), metadata: { name: 'typo', labelz: { a: 'b' } } as never },
    ])
    assert.deepEqual(messages(r), ['metadata.labelz: unknown field', 'spec.replicas: must be integer, not "two"'])
  })

  it('a Flux Kustomization is checked against the pinned Flux CRD; an unknown kind is reported by kind', async () => {
    const v = new SchemaValidator(await offlineSchemas())
    const r = await v.check([
      {
        apiVersion: 'kustomize.toolkit.fluxcd.io/v1',
        kind: 'Kustomization',
        metadata: { name: 'k', namespace: 'flux-system' },
        spec: {
          interval: '10m',
          path: './x',
          prune: 'yes',
          sourceRef: { kind: 'GitRepository', name: 'src' },
          sourceref: {},
        },
      },
      { apiVersion: 'cert-manager.io/v1', kind: 'Certificate', metadata: { name: 'c' }, spec: {} },
    ])
    assert.deepEqual(messages(r), ['spec.prune: must be boolean, not "yes"', 'spec.sourceref: unknown field'])
    assert.deepEqual(r.unknownKinds, [
      { apiVersion: 'cert-manager.io/v1', kind: 'Certificate', objects: ['Certificate c'] },
    ])
  })

  it('a CRD in the build defines its kind for the objects beside it', async () => {
    const crd: ManifestObject = {
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: 'widgets.example.com' },
      spec: {
        group: 'example.com',
        scope: 'Namespaced',
        names: { kind: 'Widget', plural: 'widgets' },
        versions: [
          {
            name: 'v1',
            served: true,
            storage: true,
            schema: {
              openAPIV3Schema: {
                type: 'object',
                properties: { spec: { type: 'object', properties: { size: { type: 'integer' } } } },
              },
            },
          },
        ],
      },
    }
    const r = await new SchemaValidator(await offlineSchemas()).check([
      crd,
      { apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' }, spec: { size: 3 } },
      { apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'bad' }, spec: { size: 'big', colour: 'red' } },
    ])
    assert.deepEqual(messages(r), ['spec.colour: unknown field', 'spec.size: must be integer, not "big"'])
    assert.deepEqual(r.unknownKinds, [])
  })

  it("the cluster's own /openapi/v3 gives the same verdicts", async () => {
    const { kube } = await testCluster()
    const r = await new SchemaValidator(new ClusterSchemas(kube)).check([
      deployment({ replicas: 'two' }),
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' }, data: { a: 1 } },
    ])
    assert.deepEqual(messages(r), ['data.a: must be string, not 1', 'spec.replicas: must be integer, not "two"'])
    assert.match(r.source, /the cluster's OpenAPI \(context /)
  })

  it('validate --offline on a machine that never cached the schemas and cannot fetch them: a clear error and what to do', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-no-schemas-'))
    try {
      // a fresh cache, an empty Go module cache and no module proxy; kustomize from PATH
      const kustomizeDir = path.dirname(await toolPath('kustomize'))
      // flux-build (kustomize-controller's own build) has no CLI to fall back on: the machine
      // has built it (setup does), so the fresh cache holds it; only the schemas are missing
      const fluxBuild = path.dirname(path.dirname(await toolPath('flux-build')))
      fs.mkdirSync(path.join(tmp, 'cache/nsops/tools'), { recursive: true })
      fs.symlinkSync(fluxBuild, path.join(tmp, 'cache/nsops/tools/flux-build'))
      const env = {
        ...process.env,
        XDG_CACHE_HOME: path.join(tmp, 'cache'),
        GOMODCACHE: path.join(tmp, 'mod'),
        GOPROXY: 'off',
        GOFLAGS: '-mod=mod',
        PATH: `${kustomizeDir}:${process.env.PATH}`,
        NO_COLOR: '1',
      }
      const r = await promisify(execFile)(
        path.join(repoRoot, 'shared/bin/nsops.ts'),
        ['validate', 'arr-stack', '--offline'],
        { env, timeout: 120_000 },
      ).then(
        () => ({ code: 0, stderr: '' }),
        (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
      )
      assert.equal(r.code, 1, r.stderr)
      assert.match(r.stderr, /no offline schemas for Kubernetes v\d+\.\d+\.\d+ yet, and they cannot be fetched/)
      assert.match(r.stderr, /hint: .*just setup/)
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace without --debug')
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true })
    }
  })
})
