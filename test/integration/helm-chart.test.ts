// The Tanka path against a chart with the features real upstream charts use
// (test/fixtures/charts/queue: kubeVersion, a library subchart, Capabilities checks, crds/,
// hooks), packaged by the pinned helm, served from a chart repository on 127.0.0.1, vendored
// by the chartfile and rendered: by the renderer object for object as `helm template` renders
// it, by tanka/'s own lib and local environment with every Deployment in the namespace the
// environment means, and for the Kubernetes version of the cluster it is meant for.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { after, before, describe, it } from 'node:test'
import { parseAllDocuments, stringify } from 'yaml'
import { vendorCharts } from '../../shared/helm/vendor.ts'
import { ensureReachable } from '../../shared/kube/client.ts'
import { repoRoot } from '../../shared/core/paths.ts'
import { loadEnvironment } from '../../shared/tanka/environments.ts'
import { extractObjects, type TankaObject } from '../../shared/tanka/process.ts'
import { renderEnvironment } from '../../shared/tanka/render.ts'
import { evaluateEnvironment } from '../../shared/tanka/renderer.ts'
import { toolPath } from '../../shared/tools/provision.ts'
import { testCluster } from '../harness.ts'
import { just } from '../just.ts'
import { serveDir, type StaticServer } from '../static-server.ts'

const run = promisify(execFile)
const fixtures = path.join(repoRoot, 'test', 'fixtures', 'charts')
const key = (o: TankaObject) => `${o.kind}/${o.metadata.name}`

/** The Kubernetes version helm's Makefile stamps into helm: its client-go's, major + 1. */
async function helmDefaultKubeVersion(): Promise<string> {
  const { stdout } = await run('go', ['mod', 'download', '-json', 'helm.sh/helm/v3@v3.22.0'], {
    env: { ...process.env, GOFLAGS: '-mod=mod', GOTOOLCHAIN: 'local' },
  })
  const goMod = fs.readFileSync((JSON.parse(stdout) as { GoMod: string }).GoMod, 'utf8')
  const [, major, minor] = /^\s*k8s\.io\/client-go v(\d+)\.(\d+)\./m.exec(goMod)!
  return `v${Number(major) + 1}.${minor}.0`
}

describe('a real-world chart: helm, vendoring and the renderer', () => {
  let helm: string
  let work: string
  let root: string
  let server: StaticServer | undefined
  const values = { replicas: 2, port: 7000, workers: { replicas: 3 } }

  /** `helm template` of the vendored chart, the way helmTemplate calls it. */
  async function helmTemplate(name: string, namespace: string, extra: string[] = []): Promise<TankaObject[]> {
    const valuesFile = path.join(work, `values-${name}.yaml`)
    fs.writeFileSync(valuesFile, stringify(values))
    const { stdout } = await run(
      helm,
      [
        'template',
        name,
        path.join(root, 'charts', 'queue'),
        '--values',
        valuesFile,
        '--namespace',
        namespace,
        '--include-crds',
        ...extra,
      ],
      { maxBuffer: 64 << 20 },
    )
    return parseAllDocuments(stdout)
      .map((d) => d.toJS() as TankaObject | null)
      .filter((o): o is TankaObject => !!o)
  }

  function environment(name: string, namespace: string, main: string): void {
    const dir = path.join(root, 'environments', name)
    fs.mkdirSync(dir, { recursive: true })
    fs.writeFileSync(
      path.join(dir, 'spec.json'),
      JSON.stringify({
        apiVersion: 'tanka.dev/v1alpha1',
        kind: 'Environment',
        metadata: { name: `environments/${name}` },
        spec: { apiServer: 'https://127.0.0.1:6443', namespace, injectLabels: false },
      }),
    )
    fs.writeFileSync(path.join(dir, 'main.jsonnet'), main)
  }

  const queueEnv = (conf: string) => `local helm = (import 'helm.libsonnet').new(std.thisFile);
{ queue: helm.template('shop', '../../charts/queue', { namespace: 'jobs', values: ${JSON.stringify(values)}${conf} }) }
`

  before(async () => {
    helm = await toolPath('helm')
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-helm-chart-'))
    // package it as a chart publisher does: the library dependency built into charts/, then helm package
    const src = path.join(work, 'src')
    fs.cpSync(fixtures, src, { recursive: true })
    await run(helm, ['dependency', 'build', path.join(src, 'queue')])
    const site = path.join(work, 'site', 'charts')
    fs.mkdirSync(site, { recursive: true })
    await run(helm, ['package', path.join(src, 'queue'), '--destination', site])
    await run(helm, ['repo', 'index', site])
    server = await serveDir(path.join(work, 'site'))

    // a copy of tanka/ (its lib and environments), vendoring this one chart under every
    // directory infra.libsonnet reads, plus its own
    root = path.join(work, 'tanka')
    fs.cpSync(path.join(repoRoot, 'tanka', 'lib'), path.join(root, 'lib'), { recursive: true })
    fs.cpSync(path.join(repoRoot, 'tanka', 'environments'), path.join(root, 'environments'), { recursive: true })
    fs.copyFileSync(path.join(repoRoot, 'tanka', 'jsonnetfile.json'), path.join(root, 'jsonnetfile.json'))
    fs.writeFileSync(
      path.join(root, 'chartfile.yaml'),
      stringify({
        version: 1,
        repositories: [{ name: 'local', url: `${server.url}/charts` }],
        requires: ['queue', 'redis', 'gitea', 'keda', 'flux2'].map((directory) => ({
          chart: 'local/queue',
          version: '0.4.0',
          directory,
        })),
      }),
    )
    await vendorCharts({ chartfile: path.join(root, 'chartfile.yaml') })
  })

  after(async () => {
    await server?.stop()
    if (work) fs.rmSync(work, { recursive: true, force: true })
  })

  it('the pinned helm reports its version and assumes the Kubernetes version its Makefile would stamp, so kubeVersion >=1.23 renders', async () => {
    const { stdout } = await run(helm, ['version', '--short'])
    assert.match(stdout, /^v3\.22\.0\b/)
    const objects = await helmTemplate('plain', 'jobs')
    const config = objects.find((o) => o.kind === 'ConfigMap') as TankaObject & { data: Record<string, string> }
    assert.equal(
      config.data.KUBE_VERSION,
      await helmDefaultKubeVersion(),
      'helm built without the version ldflags assumes v1.20.0',
    )
    assert.equal(config.data.PDB_API, 'policy/v1')
  })

  it('vendoring keeps the library subchart, the CRDs and the hooks of the package', () => {
    const chart = path.join(root, 'charts', 'queue')
    // helm package stores the built dependency unpacked, under charts/<name>/
    assert.ok(
      fs.existsSync(path.join(chart, 'charts', 'common', 'templates', '_helpers.tpl')),
      fs.readdirSync(chart).join(', '),
    )
    assert.ok(fs.existsSync(path.join(chart, 'crds', 'queues.yaml')))
    assert.ok(fs.existsSync(path.join(chart, 'templates', 'hooks.yaml')))
  })

  it("the renderer gives the objects helm template gives, one by one, with the chart's bare objects put in the release namespace", async () => {
    environment('queue', 'elsewhere', queueEnv(", apiVersions: ['monitoring.coreos.com/v1']"))
    const raw = await evaluateEnvironment(loadEnvironment('queue', root), { helm })
    const rendered = new Map([...extractObjects(raw).values()].map((o) => [key(o), o]))
    const expected = await helmTemplate('shop', 'jobs', ['--api-versions', 'monitoring.coreos.com/v1'])
    assert.deepEqual([...rendered.keys()].sort(), expected.map(key).sort())
    const clusterWide = new Set(['CustomResourceDefinition', 'ClusterRole', 'ClusterRoleBinding'])
    for (const o of expected) {
      const want =
        clusterWide.has(o.kind) || o.metadata.namespace ? o : { ...o, metadata: { ...o.metadata, namespace: 'jobs' } }
      assert.deepEqual(rendered.get(key(o)), want, key(o))
    }
    // what the chart's features produced
    for (const k of [
      'CustomResourceDefinition/queues.queue.example.com',
      'ServiceMonitor/shop-queue',
      'Job/shop-queue-migrate',
      'Pod/shop-queue-test',
      'PodDisruptionBudget/shop-queue',
      'Deployment/shop-queue-worker',
    ])
      assert.ok(rendered.has(k), k)
    assert.equal(
      rendered.get('Job/shop-queue-migrate')!.metadata.annotations?.['helm.sh/hook'],
      'post-install,post-upgrade',
    )
    assert.equal(
      rendered.get('Deployment/shop-queue')!.metadata.labels?.['helm.sh/chart'],
      'queue-0.4.0',
      'labelled by the library subchart',
    )
  })

  it("`just tk-show` takes the fields charts leave empty (annotations: with nothing under it) and renders lookup's fresh-install branch", async () => {
    // the default values leave the Secret's annotations empty; persistence adds a PVC whose annotations are empty too
    environment(
      'queue-empty-fields',
      'jobs',
      `local helm = (import 'helm.libsonnet').new(std.thisFile);
{ queue: helm.template('shop', '../../charts/queue', { values: { persistence: { enabled: true } } }) }
`,
    )
    const shown = await just(['tk-show', 'queue-empty-fields', '--json', '--engine', 'renderer', '--root', root])
    assert.equal(shown.code, 0, shown.stderr)
    const objects = new Map((JSON.parse(shown.stdout) as TankaObject[]).map((o) => [key(o), o]))
    const helmSaid = new Map(
      (await helmTemplate('shop', 'jobs', ['--set', 'persistence.enabled=true'])).map((o) => [key(o), o]),
    )
    for (const k of ['Secret/shop-queue-token', 'PersistentVolumeClaim/shop-queue-data']) {
      assert.ok(objects.has(k), k)
      assert.equal(helmSaid.get(k)!.metadata.annotations, null, `helm renders ${k}'s annotations as null`)
      // null is absent, as the API server reads it: nothing for a diff against the live object to trip on
      assert.ok(!('annotations' in objects.get(k)!.metadata), `${k}: ${JSON.stringify(objects.get(k)!.metadata)}`)
      assert.equal(objects.get(k)!.metadata.namespace, 'jobs', k)
    }
    // lookup finds nothing offline, so the chart's fresh-install branch renders, as helm template's does
    const token = (o: TankaObject | undefined) => (o as TankaObject & { data: { token: string } }).data.token
    assert.equal(token(objects.get('Secret/shop-queue-token')), token(helmSaid.get('Secret/shop-queue-token')))
  })

  it('without the API version in apiVersions the ServiceMonitor is left out, as helm template leaves it out', async () => {
    environment('queue-bare', 'jobs', queueEnv(''))
    const objects = (await renderEnvironment(loadEnvironment('queue-bare', root), { engine: 'renderer', helm })).objects
    assert.deepEqual(objects.map(key).sort(), (await helmTemplate('shop', 'jobs')).map(key).sort())
    assert.ok(!objects.some((o) => o.kind === 'ServiceMonitor'))
  })

  it("with a cluster known, charts render for its Kubernetes version; an explicit kubeVersion wins, and one below the chart's constraint is refused", async () => {
    const cluster = await testCluster()
    const clusterVersion = await ensureReachable(cluster.kube)
    environment('queue-bare', 'jobs', queueEnv(''))
    const env = loadEnvironment('queue-bare', root)
    const forCluster = (await renderEnvironment(env, { engine: 'renderer', helm, kube: cluster.kube })).objects
    const config = (objects: TankaObject[]) =>
      (objects.find((o) => o.kind === 'ConfigMap') as TankaObject & { data: Record<string, string> }).data
    assert.equal(config(forCluster).KUBE_VERSION, clusterVersion)

    environment('queue-pinned', 'jobs', queueEnv(", kubeVersion: '1.24.3'"))
    const pinned = (
      await renderEnvironment(loadEnvironment('queue-pinned', root), { engine: 'renderer', helm, kube: cluster.kube })
    ).objects
    assert.deepEqual(config(pinned), { ...config(forCluster), KUBE_VERSION: 'v1.24.3', PDB_API: 'policy/v1beta1' })

    await assert.rejects(
      renderEnvironment(env, { engine: 'renderer', helm, kubeVersion: 'v1.22.0' }),
      /chart requires kubeVersion: >=1\.23\.0-0 which is incompatible with Kubernetes v1\.22\.0/,
    )
  })

  it("tanka/'s local environment puts every Deployment in the namespace its chart is meant for: KEDA in keda, Flux in flux-system", async () => {
    const { objects } = await renderEnvironment(loadEnvironment('local', root), { engine: 'renderer', helm })
    const deployments = objects.filter((o) => o.kind === 'Deployment')
    const where = Object.fromEntries(deployments.map((o) => [o.metadata.name, o.metadata.namespace]))
    assert.deepEqual(where, {
      'redis-queue': 'platform',
      'redis-queue-worker': 'platform',
      'gitea-queue': 'platform',
      'gitea-queue-worker': 'platform',
      'keda-queue': 'keda',
      'keda-queue-worker': 'keda',
      'flux2-queue': 'flux-system',
      'flux2-queue-worker': 'flux-system',
    })
    // every namespaced object follows its Deployment: none is left to the environment's default by accident
    for (const o of objects.filter((x) => x.metadata.name.startsWith('keda-'))) {
      if (!['ClusterRole', 'ClusterRoleBinding'].includes(o.kind)) assert.equal(o.metadata.namespace, 'keda', key(o))
    }
  })
})
