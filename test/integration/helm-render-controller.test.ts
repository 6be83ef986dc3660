// The offline render against the real thing: the same HelmRelease (the queue test chart from a
// chart repository, values, a valuesFrom targetPath whose value has commas, a targetNamespace, a
// post-renderer patch, commonMetadata) rendered by
// nsops with no cluster, and installed by the real helm-controller v1.4.0 on the sim. Every
// object helm-controller made is one nsops rendered (same kinds, names, namespaces), and every
// field nsops rendered is what the API server holds (the live objects add only defaults).
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { SimCluster } from '../../shared/cluster/sim/index.ts'
import { renderHelmRelease } from '../../shared/flux/build/helm-release.ts'
import { conditionOf, fluxKinds, type FluxObject } from '../../shared/flux/kinds.ts'
import type { Kube } from '../../shared/kube/client.ts'
import type { ManifestObject } from '../../shared/kube/refs.ts'
import { getObject } from '../../shared/kube/rest.ts'
import { renderTarget } from '../../shared/schema/index.ts'
import type { StaticServer } from '../static-server.ts'
import { applyFluxObject, serveTestCharts, startFluxSim } from '../flux-fixture.ts'
import { until } from '../until.ts'

/** Whether every field of `want` is in `got` with the same value (lists item by item). */
function subsetDiff(want: unknown, got: unknown, at = ''): string[] {
  if (want === null || want === undefined) return []
  if (Array.isArray(want)) {
    if (!Array.isArray(got)) return [`${at}: not a list live`]
    return want.flatMap((w, i) => subsetDiff(w, got[i], `${at}[${i}]`))
  }
  if (typeof want === 'object') {
    if (typeof got !== 'object' || got === null) return [`${at}: missing live`]
    return Object.entries(want).flatMap(([k, v]) => subsetDiff(v, (got as Record<string, unknown>)[k], `${at}.${k}`))
  }
  // the API server keeps a quantity or port as given; compare as text (1Gi vs "1Gi")
  return String(want) === String(got) ? [] : [`${at}: ${JSON.stringify(want)} rendered, ${JSON.stringify(got)} live`]
}

describe('the offline render equals what helm-controller installs', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-render-vs-controller-'))
  const sim = new SimCluster({ dir: path.join(tmp, 'sim') })
  const savedCache = process.env.NSOPS_CHARTS_CACHE
  let kube: Kube
  let charts: StaticServer
  const ns = 'media'
  const target = 'media-apps'

  before(async () => {
    process.env.NSOPS_CHARTS_CACHE = path.join(tmp, 'cache')
    ;({ kube } = await startFluxSim(sim))
    for (const name of [ns, target]) await kube.core.createNamespace({ body: { metadata: { name } } })
    charts = await serveTestCharts(tmp)
  })

  after(async () => {
    await charts?.stop()
    await sim.stop({ purge: true })
    if (savedCache === undefined) delete process.env.NSOPS_CHARTS_CACHE
    else process.env.NSOPS_CHARTS_CACHE = savedCache
    fs.rmSync(tmp, { recursive: true, force: true })
  })

  it('same objects, same fields: values, a targetPath with commas, targetNamespace, a post-renderer patch, commonMetadata, the helm-controller labels', async () => {
    const repository = {
      apiVersion: 'source.toolkit.fluxcd.io/v1',
      kind: 'HelmRepository',
      metadata: { name: 'local', namespace: ns },
      spec: { url: charts.url, interval: '10m' },
    }
    // a valuesFrom targetPath whose value has commas: helm-controller parses `path=value` as a
    // Helm --set line, so `\,` is a comma in the value and the bare comma starts another
    // key=value — set at the top of the values, into the map spec.values holds (so over its 3)
    const extra = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'queue-extra', namespace: ns },
      data: { note: 'backup\\, weekly,workers.replicas=4' },
    }
    const release = {
      apiVersion: 'helm.toolkit.fluxcd.io/v2',
      kind: 'HelmRelease',
      metadata: { name: 'queue', namespace: ns },
      spec: {
        interval: '10m',
        targetNamespace: target,
        chart: { spec: { chart: 'queue', version: '0.4.x', sourceRef: { kind: 'HelmRepository', name: 'local' } } },
        values: { replicas: 2, port: 7001, workers: { replicas: 3 }, persistence: { enabled: true, size: '2Gi' } },
        valuesFrom: [
          { kind: 'ConfigMap', name: 'queue-extra', valuesKey: 'note', targetPath: 'persistence.annotations.note' },
        ],
        commonMetadata: { labels: { team: 'media' } },
        postRenderers: [
          {
            kustomize: {
              patches: [
                {
                  target: { kind: 'Deployment', name: `${target}-queue` },
                  patch: '- op: add\n  path: /metadata/annotations\n  value: { patched-by: post-renderer }\n',
                },
              ],
            },
          },
        ],
      },
    }
    const rendered = await renderHelmRelease(
      release as unknown as ManifestObject,
      {
        kustomization: {
          apiVersion: 'kustomize.toolkit.fluxcd.io/v1',
          kind: 'Kustomization',
          metadata: { name: 'media', namespace: 'flux-system' },
          spec: { path: '.', sourceRef: { kind: 'GitRepository', name: 'flux-system' } },
        },
        sourceRoot: tmp,
        objects: [release, repository, extra] as unknown as ManifestObject[],
      },
      // the offline target validate uses: no cluster asked
      await renderTarget(),
    )
    assert.equal(rendered.releaseName, `${target}-queue`)

    await kube.core.createNamespacedConfigMap({ namespace: ns, body: extra })
    for (const o of [repository, release])
      await applyFluxObject(kube, o.kind as 'HelmRepository' | 'HelmRelease', ns, o.metadata.name, o.spec)
    let last: FluxObject | undefined
    await until(
      'HelmRelease queue installed',
      async () => {
        last = (await kube.custom.getNamespacedCustomObject({
          ...fluxKinds.HelmRelease,
          namespace: ns,
          name: 'queue',
        })) as FluxObject
        return conditionOf(last, 'Ready')?.status === 'True'
      },
      120_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; last status: ${JSON.stringify(last?.status)}`, { cause: err })
    })

    // what helm-controller made, by its labels (namespaced kinds the chart renders)
    const selector = `helm.toolkit.fluxcd.io/name=queue,helm.toolkit.fluxcd.io/namespace=${ns}`
    const made = [
      ...(await kube.apps.listNamespacedDeployment({ namespace: target, labelSelector: selector })).items.map(
        (o) => `Deployment/${o.metadata!.name}`,
      ),
      ...(await kube.core.listNamespacedService({ namespace: target, labelSelector: selector })).items.map(
        (o) => `Service/${o.metadata!.name}`,
      ),
      ...(await kube.core.listNamespacedConfigMap({ namespace: target, labelSelector: selector })).items.map(
        (o) => `ConfigMap/${o.metadata!.name}`,
      ),
      ...(
        await kube.core.listNamespacedPersistentVolumeClaim({ namespace: target, labelSelector: selector })
      ).items.map((o) => `PersistentVolumeClaim/${o.metadata!.name}`),
    ].sort()
    const kinds = new Set(['Deployment', 'Service', 'ConfigMap', 'PersistentVolumeClaim'])
    assert.deepEqual(
      rendered.objects
        .filter((o) => kinds.has(o.kind))
        .map((o) => `${o.kind}/${o.metadata.name}`)
        .sort(),
      made,
    )

    const problems: string[] = []
    for (const o of rendered.objects) {
      const live = await getObject(kube, {
        apiVersion: o.apiVersion,
        kind: o.kind,
        name: o.metadata.name,
        namespace: o.metadata.namespace,
      })
      if (!live) {
        problems.push(`${o.kind}/${o.metadata.name}: not on the cluster`)
        continue
      }
      const { metadata, ...rest } = o
      problems.push(
        ...subsetDiff({ metadata: { labels: metadata.labels, annotations: metadata.annotations }, ...rest }, live).map(
          (p) => `${o.kind}/${o.metadata.name}${p}`,
        ),
      )
    }
    assert.deepEqual(problems, [])
    const d = rendered.objects.find((o) => o.kind === 'Deployment' && o.metadata.name === `${target}-queue`)!
    assert.equal(d.metadata.annotations?.['patched-by'], 'post-renderer')
    assert.equal(d.metadata.labels?.team, 'media')
    // the targetPath with commas, as helm-controller set it (every rendered field is live, above)
    const pvc = rendered.objects.find((o) => o.kind === 'PersistentVolumeClaim')!
    assert.equal(pvc.metadata.annotations?.note, 'backup, weekly')
    const worker = rendered.objects.find((o) => o.metadata.name === `${target}-queue-worker`)!
    assert.equal((worker.spec as { replicas?: number }).replicas, 4)
  })
})
