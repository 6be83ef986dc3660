// The offline HelmRelease render against real sources: a CNCF distribution registry on
// 127.0.0.1 (the sim's registry component, started alone) holding the test charts as pushed by
// `just chart push`, and a chart repository (index.yaml) served over HTTP. Each of Flux's ways
// to name a chart (OCIRepository by tag, semver and digest; HelmRepository http and oci;
// chartRef to a HelmChart), values from valuesFrom (values.yaml, targetPath, optional),
// postRenderers, the CRD policy and helm-controller's release name rules; then the same
// renders with no source reachable (the cache by digest), an uncached chart named in the
// error, and the app-template-shaped chart whose schema $refs the internet.
import assert from 'node:assert/strict'
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { after, before, describe, it } from 'node:test'
import { registryProcess, untilRegistryAnswers } from '../../shared/cluster/sim/registry.ts'
import { repoRoot } from '../../shared/core/paths.ts'
import { isNsopsError } from '../../shared/core/errors.ts'
import { renderHelmRelease, shortenReleaseName, type HelmRenderOptions } from '../../shared/flux/build/helm-release.ts'
import type { FluxKustomization, LeafContext } from '../../shared/flux/build/kustomization.ts'
import { pushChart } from '../../shared/images/charts.ts'
import type { ManifestObject } from '../../shared/kube/refs.ts'
import { toolPath } from '../../shared/tools/provision.ts'
import { serveDir, type StaticServer } from '../static-server.ts'

const run = promisify(execFile)
const fixtures = path.join(repoRoot, 'test', 'fixtures', 'charts')
const NS = 'media'

const ks: FluxKustomization = {
  apiVersion: 'kustomize.toolkit.fluxcd.io/v1',
  kind: 'Kustomization',
  metadata: { name: 'media', namespace: 'flux-system' },
  spec: { path: '.', sourceRef: { kind: 'GitRepository', name: 'flux-system' } },
}

function obj(apiVersion: string, kind: string, name: string, rest: Record<string, unknown> = {}): ManifestObject {
  return { apiVersion, kind, metadata: { name, namespace: NS }, ...rest }
}
const hr = (name: string, spec: Record<string, unknown>) =>
  obj('helm.toolkit.fluxcd.io/v2', 'HelmRelease', name, { spec })
const oci = (name: string, url: string, ref: Record<string, string>) =>
  obj('source.toolkit.fluxcd.io/v1', 'OCIRepository', name, {
    spec: {
      url,
      ref,
      insecure: true,
      layerSelector: { mediaType: 'application/vnd.cncf.helm.chart.content.v1.tar+gzip', operation: 'copy' },
    },
  })

describe('HelmReleases rendered offline from real chart sources', () => {
  let work: string
  let registry: ChildProcess | undefined
  let host: string
  let charts: StaticServer | undefined
  let queueDigest: string
  const savedCache = process.env.NSOPS_CHARTS_CACHE

  async function render(release: ManifestObject, objects: ManifestObject[] = [], opts: HelmRenderOptions = {}) {
    const all = [release, ...objects]
    const ctx: LeafContext = { kustomization: ks, sourceRoot: work, objects: all }
    return renderHelmRelease(release, ctx, opts)
  }
  const byKey = (objects: ManifestObject[]) => new Map(objects.map((o) => [`${o.kind}/${o.metadata.name}`, o]))

  before(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-helm-render-'))
    process.env.NSOPS_CHARTS_CACHE = path.join(work, 'cache')
    const proc = await registryProcess(await toolPath('registry'), path.join(work, 'registry'))
    host = proc.host
    let log = ''
    registry = spawn(proc.command, proc.args, {
      env: { ...process.env, ...proc.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    registry.stdout!.on('data', (d: Buffer) => (log += d.toString()))
    registry.stderr!.on('data', (d: Buffer) => (log += d.toString()))
    let exited: Error | undefined
    registry.on('exit', (code) => (exited = new Error(`the registry exited (${code}): ${log.slice(-2000)}`)))
    await untilRegistryAnswers(host, () => exited)
    const choice = { host, pullHost: host, clusterHost: host, plainHttp: true, from: 'test' }
    // pushed from copies: packaging builds the dependencies into the chart folder (Chart.lock, charts/)
    const src = path.join(work, 'src')
    for (const c of ['queue', 'common', 'app-template-like'])
      fs.cpSync(path.join(fixtures, c), path.join(src, c), { recursive: true })
    const copy = path.join(src, 'queue')
    queueDigest = (await pushChart(copy, choice)).digest
    await pushChart(path.join(src, 'app-template-like'), choice)
    // a chart repository (index.yaml) of the same queue chart
    const repo = path.join(work, 'repo')
    const helm = await toolPath('helm')
    await run(helm, ['package', copy, '--destination', repo])
    charts = await serveDir(repo)
    await run(helm, ['repo', 'index', repo, '--url', charts.url])
  })

  after(async () => {
    // (a registry the offline test stopped has a signalCode, and no exit event to come)
    if (registry && registry.exitCode === null && registry.signalCode === null) {
      const exit = new Promise((r) => registry!.once('exit', r))
      registry.kill('SIGTERM')
      await exit
    }
    await charts?.stop()
    if (savedCache === undefined) delete process.env.NSOPS_CHARTS_CACHE
    else process.env.NSOPS_CHARTS_CACHE = savedCache
    fs.rmSync(work, { recursive: true, force: true })
  })

  it('an OCIRepository by tag, by semver and by digest: the same objects, labelled as helm-controller labels them', async () => {
    const url = `oci://${host}/charts/queue`
    const release = hr('queue', { chartRef: { kind: 'OCIRepository', name: 'queue' }, values: { replicas: 3 } })
    const byTag = await render(release, [oci('queue', url, { tag: '0.4.0' })])
    assert.equal(byTag.chart.name, 'queue')
    assert.equal(byTag.chart.version, '0.4.0')
    assert.equal(byTag.chart.digest, queueDigest, 'the manifest digest the registry has')
    const d = byKey(byTag.objects).get('Deployment/queue')!
    assert.equal((d.spec as { replicas: number }).replicas, 3)
    assert.equal(d.metadata.namespace, NS)
    assert.equal(d.metadata.labels?.['helm.toolkit.fluxcd.io/name'], 'queue')
    assert.equal(d.metadata.labels?.['helm.toolkit.fluxcd.io/namespace'], NS)
    // the post-install Job and the test Pod are hooks, not objects of the release
    assert.ok(byTag.hooks.some((h) => h.kind === 'Job'))
    assert.ok(!byTag.objects.some((o) => o.metadata.annotations?.['helm.sh/hook']))
    const bySemver = await render(release, [oci('queue', url, { semver: '>=0.1.0 <1.0.0' })])
    const byDigest = await render(release, [oci('queue', url, { digest: queueDigest })])
    assert.deepEqual(bySemver.objects, byTag.objects)
    assert.deepEqual(byDigest.objects, byTag.objects)
  })

  it('a HelmRepository over HTTP and one of type oci, and a chartRef to a HelmChart', async () => {
    const httpRepo = obj('source.toolkit.fluxcd.io/v1', 'HelmRepository', 'charts', { spec: { url: charts!.url } })
    const ociRepo = obj('source.toolkit.fluxcd.io/v1', 'HelmRepository', 'oci-charts', {
      spec: { type: 'oci', url: `oci://${host}/charts`, insecure: true },
    })
    const spec = (sourceRef: string, version: string) => ({
      chart: { spec: { chart: 'queue', version, sourceRef: { kind: 'HelmRepository', name: sourceRef } } },
      values: { port: 7000 },
    })
    const fromHttp = await render(hr('q', spec('charts', '0.4.x')), [httpRepo])
    const fromOci = await render(hr('q', spec('oci-charts', '0.4.0')), [ociRepo])
    const helmChart = obj('source.toolkit.fluxcd.io/v1', 'HelmChart', 'media-q', {
      spec: { chart: 'queue', version: '*', sourceRef: { kind: 'HelmRepository', name: 'charts' } },
    })
    const fromHelmChart = await render(
      hr('q', { chartRef: { kind: 'HelmChart', name: 'media-q' }, values: { port: 7000 } }),
      [httpRepo, helmChart],
    )
    for (const r of [fromHttp, fromOci, fromHelmChart]) {
      const svc = byKey(r.objects).get('Service/q-queue')!
      assert.equal((svc.spec as { ports: { port: number }[] }).ports[0].port, 7000, r.chart.source)
      assert.equal(r.chart.version, '0.4.0')
    }
    assert.deepEqual(fromHttp.objects, fromOci.objects)
  })

  it("values in helm-controller's order: valuesFrom (a values.yaml, a targetPath from a Secret, an optional one missing), then spec.values over them", async () => {
    const cm = obj('v1', 'ConfigMap', 'queue-values', {
      data: { 'values.yaml': 'replicas: 4\nport: 6000\nworkers: { replicas: 5 }\n' },
    })
    const secret = obj('v1', 'Secret', 'queue-image', {
      data: { image: Buffer.from('registry.example/queue:9.9.9').toString('base64') },
    })
    const release = hr('queue', {
      chartRef: { kind: 'OCIRepository', name: 'queue' },
      valuesFrom: [
        { kind: 'ConfigMap', name: 'queue-values' },
        { kind: 'Secret', name: 'queue-image', valuesKey: 'image', targetPath: 'image' },
        { kind: 'ConfigMap', name: 'not-there', optional: true },
        { kind: 'Secret', name: 'queue-image', valuesKey: 'no-such-key', optional: true },
      ],
      values: { port: 6500 },
    })
    const r = await render(release, [oci('queue', `oci://${host}/charts/queue`, { tag: '0.4.0' }), cm, secret])
    assert.deepEqual(
      { replicas: r.values.replicas, port: r.values.port, image: r.values.image, workers: r.values.workers },
      { replicas: 4, port: 6500, image: 'registry.example/queue:9.9.9', workers: { replicas: 5 } },
    )
    const d = byKey(r.objects).get('Deployment/queue')! as unknown as {
      spec: { template: { spec: { containers: { image: string }[] } } }
    }
    assert.equal(d.spec.template.spec.containers[0].image, 'registry.example/queue:9.9.9')
    // a required one missing is an error that names it
    await assert.rejects(
      render(
        hr('queue', {
          chartRef: { kind: 'OCIRepository', name: 'queue' },
          valuesFrom: [{ kind: 'ConfigMap', name: 'not-there' }],
        }),
        [oci('queue', `oci://${host}/charts/queue`, { tag: '0.4.0' })],
      ),
      (err: Error) =>
        isNsopsError(err) &&
        /spec\.valuesFrom\[0\] \(ConfigMap media\/not-there, key values\.yaml\) is not in/.test(err.message),
    )
  })

  it('postRenderers patch the rendered objects, the CRD policy decides crds/, and the release name follows helm-controller', async () => {
    const source = oci('queue', `oci://${host}/charts/queue`, { tag: '0.4.0' })
    const release = hr('queue', {
      chartRef: { kind: 'OCIRepository', name: 'queue' },
      postRenderers: [
        {
          kustomize: {
            patches: [
              {
                target: { kind: 'Deployment', name: 'queue' },
                patch: '- op: add\n  path: /metadata/annotations\n  value: { patched-by: post-renderer }\n',
              },
            ],
            images: [{ name: 'registry.example/queue', newTag: '3.0.0' }],
          },
        },
      ],
    })
    const r = await render(release, [source])
    const d = byKey(r.objects).get('Deployment/queue')! as ManifestObject & {
      spec: { template: { spec: { containers: { image: string }[] } } }
    }
    assert.equal(d.metadata.annotations?.['patched-by'], 'post-renderer')
    assert.equal(d.spec.template.spec.containers[0].image, 'registry.example/queue:3.0.0')
    const crd = r.objects.find((o) => o.kind === 'CustomResourceDefinition')
    assert.ok(crd, 'install.crds defaults to Create: crds/ is installed')
    assert.equal(crd.metadata.namespace, undefined)
    assert.equal(crd.metadata.labels?.['helm.toolkit.fluxcd.io/name'], 'queue')
    const skip = await render(
      hr('queue', { chartRef: { kind: 'OCIRepository', name: 'queue' }, install: { crds: 'Skip' } }),
      [source],
    )
    assert.ok(!skip.objects.some((o) => o.kind === 'CustomResourceDefinition'))

    const target = 'a-very-long-target-namespace-name-for-the-media-apps'
    const long = await render(
      hr('queue', {
        chartRef: { kind: 'OCIRepository', name: 'queue' },
        targetNamespace: target,
        storageNamespace: 'helm',
      }),
      [source],
    )
    const full = `${target}-queue`
    assert.ok(full.length > 53)
    const expected = `${full.slice(0, 40)}-${createHash('sha256').update(full).digest('hex').slice(0, 12)}`
    assert.equal(long.releaseName, expected)
    assert.equal(shortenReleaseName(full), expected)
    assert.equal(long.namespace, target)
    assert.equal(long.storageNamespace, 'helm')
    assert.ok(
      long.objects
        .filter(
          (o) => o.kind !== 'CustomResourceDefinition' && o.kind !== 'ClusterRole' && o.kind !== 'ClusterRoleBinding',
        )
        .every((o) => o.metadata.namespace === target),
    )
  })

  it("the app-template-shaped chart renders with no network: its library's schema resolved from the chart, the internet $ref skipped and said", async () => {
    const warnings: string[] = []
    const values = (port: unknown) => ({
      controllers: {
        main: { containers: { app: { image: { repository: 'ghcr.io/home-operations/sonarr', tag: '4.0.15' } } } },
      },
      service: { main: { controller: 'main', ports: { http: { port } } } },
    })
    const source = oci('app-template', `oci://${host}/charts/app-template-like`, { tag: '1.2.0' })
    const release = hr('sonarr', { chartRef: { kind: 'OCIRepository', name: 'app-template' }, values: values(8989) })
    const r = await render(release, [source], { warn: (m) => warnings.push(m) })
    assert.deepEqual(r.skipped, [
      'https://raw.githubusercontent.com/yannh/kubernetes-json-schema/master/v1.29.0-standalone-strict/_definitions.json',
    ])
    assert.equal(warnings.length, 1)
    assert.match(
      warnings[0],
      /HelmRelease media\/sonarr: chart app-template-like@1\.2\.0's values schema \$refs a schema it does not ship, not checked/,
    )
    const d = byKey(r.objects).get('Deployment/sonarr')!
    assert.equal(d.metadata.annotations, null, 'the empty annotations: as the chart renders it')
    // the library's schema (resolved from the chart's files) is checked: a port that is no integer
    await assert.rejects(
      render(hr('sonarr', { chartRef: { kind: 'OCIRepository', name: 'app-template' }, values: values('eighty') }), [
        source,
      ]),
      (err: Error) =>
        isNsopsError(err) &&
        /spec\.values\.service\.main\.ports\.http\.port: must be integer, not "eighty"/.test(err.message),
    )
  })

  it('offline, every chart rendered before comes from the cache by digest; one never pulled is an error naming the chart', async () => {
    const source = oci('queue', `oci://${host}/charts/queue`, { tag: '0.4.0' })
    const release = hr('queue', { chartRef: { kind: 'OCIRepository', name: 'queue' }, values: { replicas: 3 } })
    const online = await render(release, [source])
    // the registry gone: nothing answers on its port
    const exit = new Promise((r) => registry!.once('exit', r))
    registry!.kill('SIGTERM')
    await exit
    await charts!.stop()
    charts = undefined
    const offline = await render(release, [source])
    assert.deepEqual(offline.objects, online.objects)
    assert.equal(offline.cached, true)
    const strictlyOffline = await render(release, [source], { offline: true })
    assert.deepEqual(strictlyOffline.objects, online.objects)
    // the app-template-shaped chart too, schema check and all, with no source answering
    const warnings: string[] = []
    const sonarr = await render(
      hr('sonarr', {
        chartRef: { kind: 'OCIRepository', name: 'app-template' },
        values: {
          controllers: {
            main: { containers: { app: { image: { repository: 'ghcr.io/home-operations/sonarr', tag: '4.0.15' } } } },
          },
          service: { main: { controller: 'main', ports: { http: { port: 8989 } } } },
        },
      }),
      [oci('app-template', `oci://${host}/charts/app-template-like`, { tag: '1.2.0' })],
      { warn: (m) => warnings.push(m) },
    )
    assert.ok(byKey(sonarr.objects).has('Service/sonarr'))
    assert.equal(warnings.length, 1, 'the skipped $ref is said offline too')
    await assert.rejects(
      render(release, [oci('queue', `oci://${host}/charts/queue`, { tag: '0.5.0' })]),
      (err: Error) =>
        isNsopsError(err) &&
        err.message.includes(
          `HelmRelease media/queue: chart oci://${host}/charts/queue:0.5.0 is not in the chart cache and could not be pulled`,
        ) &&
        /Render once where the source answers/.test(err.hint ?? ''),
    )
  })
})
