// What tk does to an environment's evaluated output before showing or applying it, and how
// environments are found: the rules of grafana/tanka pkg/process and pkg/spec, on plain data.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { NsopsError } from '../../shared/core/errors.ts'
import {
  environmentLabel,
  knownEnvironments,
  loadEnvironment,
  type TankaEnvironment,
} from '../../shared/tanka/environments.ts'
import { exportFileName, toYamlStream } from '../../shared/tanka/export.ts'
import {
  extractObjects,
  processOutput,
  sortObjects,
  unwrapLists,
  type TankaObject,
} from '../../shared/tanka/process.ts'
import { parseJsonnetText, renderFailure } from '../../shared/tanka/render-error.ts'

const obj = (kind: string, name: string, extra: Record<string, unknown> = {}, apiVersion = 'v1'): TankaObject =>
  ({ apiVersion, kind, metadata: { name }, ...extra }) as TankaObject

function fakeEnv(root: string, spec: Partial<TankaEnvironment['spec']['spec']> = {}): TankaEnvironment {
  return {
    name: 'local',
    tkName: 'environments/local',
    dir: path.join(root, 'environments', 'local'),
    root,
    main: path.join(root, 'environments', 'local', 'main.jsonnet'),
    spec: {
      apiVersion: 'tanka.dev/v1alpha1',
      kind: 'Environment',
      metadata: {},
      spec: { namespace: 'platform', ...spec },
    },
  }
}

async function thrown(fn: () => unknown): Promise<NsopsError> {
  try {
    await fn()
  } catch (err) {
    assert.ok(err instanceof NsopsError, `expected an NsopsError, got ${String(err)}`)
    return err
  }
  assert.fail('expected an error')
}

describe('tanka: processing rendered output as tk does', () => {
  it('finds Kubernetes objects at any depth, in objects and arrays, keyed by their path', () => {
    const found = extractObjects({
      redis: { deployment_redis: obj('Deployment', 'redis', {}, 'apps/v1'), service_redis: obj('Service', 'redis') },
      list: [obj('ConfigMap', 'a'), [obj('ConfigMap', 'b')]],
      disabled: null,
    })
    assert.deepEqual([...found.keys()].sort(), [
      '.list.[0]',
      '.list.[1].[0]',
      '.redis.deployment_redis',
      '.redis.service_redis',
    ])
  })

  it('refuses a visible value that is not an object, naming where it is', async () => {
    const err = await thrown(() => extractObjects({ app: { replicas: 3 } }))
    assert.match(err.message, /at \.app, the key "replicas" holds a number/)
    assert.match(err.hint ?? '', /hide helpers and config with `::`/)
  })

  it('refuses an object with apiVersion and kind but no metadata.name', async () => {
    const err = await thrown(() => extractObjects({ cm: { apiVersion: 'v1', kind: 'ConfigMap', metadata: {} } }))
    assert.match(err.message, /the object at \.cm \(ConfigMap\) has no metadata\.name/)
  })

  it('flattens *List kinds into their items', () => {
    const list = {
      apiVersion: 'v1',
      kind: 'List',
      metadata: { name: 'x' },
      items: [obj('ConfigMap', 'a'), obj('Secret', 'b')],
    } as unknown as TankaObject
    const out = unwrapLists(extractObjects({ all: list }))
    assert.deepEqual(
      [...out.entries()].map(([k, v]) => `${k}=${v.kind}/${v.metadata.name}`),
      ['.all.items[0]=ConfigMap/a', '.all.items[1]=Secret/b'],
    )
  })

  it('defaults the namespace of namespaced kinds only, and honours tanka.dev/namespaced', () => {
    const env = fakeEnv('/r')
    const out = processOutput(
      {
        a: obj('Deployment', 'web', {}, 'apps/v1'),
        b: obj('ClusterRole', 'reader', {}, 'rbac.authorization.k8s.io/v1'),
        c: obj('Namespace', 'platform'),
        d: { ...obj('ConfigMap', 'elsewhere'), metadata: { name: 'elsewhere', namespace: 'other' } },
        e: {
          ...obj('Widget', 'w', {}, 'example.com/v1'),
          metadata: { name: 'w', annotations: { 'tanka.dev/namespaced': 'false' } },
        },
        f: { ...obj('ConfigMap', 'empty-annotations'), metadata: { name: 'empty-annotations', annotations: {} } },
      },
      env,
    )
    const ns = Object.fromEntries(out.map((o) => [o.metadata.name, o.metadata.namespace]))
    assert.deepEqual(ns, {
      web: 'platform',
      reader: undefined,
      platform: undefined,
      elsewhere: 'other',
      w: undefined,
      'empty-annotations': 'platform',
    })
    assert.equal(out.find((o) => o.metadata.name === 'empty-annotations')!.metadata.annotations, undefined)
  })

  it('adds tanka.dev/environment = sha256("<name>:<entrypoint>")[:48] only when injectLabels is set', () => {
    const root = '/r'
    const label = createHash('sha256')
      .update('environments/local:environments/local/main.jsonnet')
      .digest('hex')
      .slice(0, 48)
    assert.equal(environmentLabel(fakeEnv(root)), label)
    const withLabels = processOutput({ a: obj('ConfigMap', 'a') }, fakeEnv(root, { injectLabels: true }))
    assert.deepEqual(withLabels[0].metadata.labels, { 'tanka.dev/environment': label })
    const without = processOutput({ a: obj('ConfigMap', 'a') }, fakeEnv(root))
    assert.equal(without[0].metadata.labels, undefined)
  })

  it('adds resourceDefaults without overriding what an object sets', () => {
    const out = processOutput(
      { a: { ...obj('ConfigMap', 'a'), metadata: { name: 'a', labels: { team: 'mine' } } } },
      fakeEnv('/r', {
        resourceDefaults: { labels: { team: 'platform', tier: 'infra' }, annotations: { owner: 'ops' } },
      }),
    )
    assert.deepEqual(out[0].metadata.labels, { team: 'mine', tier: 'infra' })
    assert.deepEqual(out[0].metadata.annotations, { owner: 'ops' })
  })

  it('orders objects for apply as tk: Namespace, …, CRDs, RBAC, Services, workloads; unknown kinds last by kind, then namespace and name', () => {
    const sorted = sortObjects([
      obj('Widget', 'w', {}, 'example.com/v1'),
      obj('Deployment', 'b', {}, 'apps/v1'),
      obj('Deployment', 'a', {}, 'apps/v1'),
      obj('Service', 's'),
      obj('CustomResourceDefinition', 'widgets.example.com', {}, 'apiextensions.k8s.io/v1'),
      obj('ClusterRole', 'r', {}, 'rbac.authorization.k8s.io/v1'),
      obj('ConfigMap', 'c'),
      obj('Namespace', 'n'),
      obj('Alpha', 'x', {}, 'example.com/v1'),
      obj('StatefulSet', 'st', {}, 'apps/v1'),
      obj('ServiceAccount', 'sa'),
    ])
    assert.deepEqual(
      sorted.map((o) => `${o.kind}/${o.metadata.name}`),
      [
        'Namespace/n',
        'ServiceAccount/sa',
        'ConfigMap/c',
        'CustomResourceDefinition/widgets.example.com',
        'ClusterRole/r',
        'Service/s',
        'Deployment/a',
        'Deployment/b',
        'StatefulSet/st',
        'Alpha/x',
        'Widget/w',
      ],
    )
  })

  it('prints a YAML stream with sorted keys and names export files as tk export', () => {
    const d = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web', namespace: 'p' },
      spec: { replicas: 1 },
    } as TankaObject
    assert.equal(
      toYamlStream([d, obj('ConfigMap', 'c')]),
      'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: p\nspec:\n  replicas: 1\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n',
    )
    assert.equal(exportFileName(d), 'apps-v1.Deployment-web.yaml')
  })
})

describe('tanka: environments and errors', () => {
  let root: string
  before(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-tanka-unit-'))
    const env = (name: string, spec: object) => {
      fs.mkdirSync(path.join(root, 'environments', name), { recursive: true })
      fs.writeFileSync(path.join(root, 'environments', name, 'spec.json'), JSON.stringify(spec))
      fs.writeFileSync(path.join(root, 'environments', name, 'main.jsonnet'), '{}\n')
    }
    env('local', {
      apiVersion: 'tanka.dev/v1alpha1',
      kind: 'Environment',
      spec: { namespace: 'dev', apiServer: '127.0.0.1:6443' },
    })
    env('prod/eu', { apiVersion: 'tanka.dev/v1alpha1', kind: 'Environment', spec: {} })
    env('broken', { apiVersion: 'v1', kind: 'ConfigMap' })
    fs.mkdirSync(path.join(root, 'environments', 'no-spec'))
  })
  after(() => fs.rmSync(root, { recursive: true, force: true }))

  it('finds environments by their spec.json, nested ones included', () => {
    assert.deepEqual(knownEnvironments(root), ['broken', 'local', 'prod/eu'])
  })

  it("loads an environment by short name or tk name, with tk's defaults", () => {
    const local = loadEnvironment('local', root)
    assert.equal(local.tkName, 'environments/local')
    assert.equal(local.spec.spec.namespace, 'dev')
    assert.equal(local.spec.spec.apiServer, 'https://127.0.0.1:6443')
    assert.equal(loadEnvironment('environments/prod/eu', root).spec.spec.namespace, 'default')
  })

  it('lists the known environments for an unknown one, and refuses paths out of environments/', async () => {
    for (const name of ['staging', '../../etc', 'no-spec']) {
      const err = await thrown(() => loadEnvironment(name, root))
      assert.match(err.message, new RegExp(`unknown Tanka environment "${name.replace(/\./g, '\\.')}"`))
      assert.match(err.hint ?? '', /Known environments .*: broken, local, prod\/eu\./)
    }
  })

  it('refuses a spec.json that is not a Tanka Environment', async () => {
    const err = await thrown(() => loadEnvironment('broken', root))
    assert.match(err.message, /spec\.json: apiVersion is "v1", expected "tanka\.dev\/v1alpha1"/)
  })

  it("reads go-jsonnet's error text as tk prints it: the innermost location and the message", () => {
    const runtime = parseJsonnetText(
      'Error: evaluating jsonnet: RUNTIME ERROR: boom\n\t/x/lib/a.libsonnet:2:10-25\tfunction <f>\n\t/x/environments/local/main.jsonnet:3:6-12\tobject <anonymous>\n\tDuring manifestation\t\n',
    )
    assert.equal(runtime.message, 'boom')
    assert.deepEqual([runtime.file, runtime.line, runtime.column], ['/x/lib/a.libsonnet', 2, 10])
    assert.equal(runtime.trace?.length, 2)
    const stat = parseJsonnetText(
      'Error: evaluating jsonnet: STATIC ERROR: /x/main.jsonnet:3:3-4: Expected a comma before next field.\n',
    )
    assert.deepEqual(
      [stat.kind, stat.file, stat.line, stat.column, stat.message],
      ['static', '/x/main.jsonnet', 3, 3, 'Expected a comma before next field.'],
    )
  })

  it('turns a chart nobody vendored into "run just tk-vendor", naming the environment\'s call', () => {
    const env = fakeEnv(root)
    const err = renderFailure(env, {
      kind: 'runtime',
      message: `helmTemplate: Failed to find a chart at '${root}/charts/web': stat: no such file or directory. See https://tanka.dev/helm#failed-to-find-chart`,
      trace: [
        { file: path.join(root, 'lib', 'helm.libsonnet'), line: 11, column: 7 },
        { file: path.join(env.dir, 'main.jsonnet'), line: 4, column: 8 },
      ],
    })
    assert.match(
      err.message,
      /the Tanka environment local uses the Helm chart .*charts\/web \(used at .*environments\/local\/main\.jsonnet:4:8\), but it is not vendored\./,
    )
    assert.match(err.hint ?? '', /Run `just tk-vendor`/)
  })
})
