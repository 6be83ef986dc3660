// The Flux tree of a repository in the home-ops shape (test/fixtures/home-ops): roots found
// without being told, children taken from the roots' builds (substituted and patched as the
// controller applies them), every app built with its components and postBuild, dependsOn order.
import assert from 'node:assert/strict'
import path from 'node:path'
import { after, describe, it } from 'node:test'
import { FluxTree, buildProd, stopFluxBuild } from '../../shared/flux/build/index.ts'
import { repoRoot } from '../../shared/core/paths.ts'

const fixture = path.join(repoRoot, 'test/fixtures/home-ops')

describe('the Flux tree of a home-ops shaped repository', () => {
  after(() => stopFluxBuild())

  it('finds the roots and every app Kustomization, each child as its parent applies it', async () => {
    const tree = await FluxTree.load(fixture)
    assert.deepEqual(tree.roots.map((n) => n.id).sort(), ['flux-system/cluster-apps', 'flux-system/cluster-vars'])
    const apps = tree.nodes.get('flux-system/cluster-apps')!
    assert.deepEqual(apps.children.map((n) => n.id).sort(), [
      'flux-system/grafana',
      'flux-system/jellyfin',
      'flux-system/node-exporter',
      'flux-system/prowlarr',
      'flux-system/radarr',
      'flux-system/sonarr',
    ])
    const sonarr = tree.nodes.get('flux-system/sonarr')!
    assert.equal(sonarr.file, 'kubernetes/apps/default/sonarr/ks.yaml')
    // the parent's substitution (cluster-settings, found in cluster-vars' build) and its patch
    assert.equal(sonarr.kustomization.spec.postBuild?.substitute?.APP_HOST, 'sonarr.home.example')
    assert.equal(sonarr.kustomization.spec.timeout, '5m')
    assert.deepEqual(sonarr.dependsOn, ['flux-system/prowlarr'])
  })

  it('builds an app as kustomize-controller would: its component, its own substitutes, defaults where it has none', async () => {
    const tree = await FluxTree.load(fixture)
    const { objects } = await tree.build(tree.nodes.get('flux-system/sonarr')!)
    const pvc = objects.find((o) => o.kind === 'PersistentVolumeClaim')!
    assert.equal(pvc.metadata.name, 'sonarr')
    assert.equal(pvc.metadata.namespace, 'default')
    assert.deepEqual((pvc.spec as { resources: unknown }).resources, { requests: { storage: '5Gi' } })
    const env = objects.find((o) => o.kind === 'ConfigMap')!
    assert.deepEqual(env.data, { HOST: 'sonarr.home.example', TZ: 'Etc/UTC' })
    const deploy = objects.find((o) => o.kind === 'Deployment')!
    assert.equal((deploy.spec as { replicas: unknown }).replicas, 1)
    assert.equal(deploy.metadata.labels?.['app.kubernetes.io/name'], 'sonarr', 'commonMetadata')
    assert.equal(deploy.metadata.labels?.['home.example/cluster'], 'main', "the root's patch into every child")
  })

  it('leaves a generator that opts out of substitution as written', async () => {
    const tree = await FluxTree.load(fixture)
    const { objects } = await tree.build(tree.nodes.get('flux-system/prowlarr')!)
    const scripts = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('prowlarr-scripts-'))!
    assert.equal((scripts.data as Record<string, string>)['start.sh'], 'exec prowlarr --data "${HOME:-/config}"')
  })

  it('orders by dependsOn and finds the Kustomizations of a namespace', async () => {
    const tree = await FluxTree.load(fixture)
    const order = tree.ordered().map((n) => n.kustomization.metadata.name)
    const before = (a: string, b: string) =>
      assert.ok(order.indexOf(a) < order.indexOf(b), `${a} before ${b}: ${order}`)
    before('cluster-vars', 'cluster-apps')
    before('prowlarr', 'sonarr')
    before('prowlarr', 'radarr')
    before('grafana', 'node-exporter')
    const scope = {
      name: 'observability',
      namespaces: { prod: 'observability' },
      paths: { root: path.join(fixture, 'namespaces/observability'), overlays: { prod: path.join(fixture, 'none') } },
    }
    const built = await buildProd(scope, fixture, { tree })
    assert.deepEqual(
      built.kustomizations.map((n) => n.kustomization.metadata.name),
      ['grafana', 'node-exporter'],
    )
    assert.deepEqual(built.objects.map((o) => `${o.kind}/${o.metadata.name.replace(/-env-\w+$/, '-env')}`).sort(), [
      'ConfigMap/grafana-env',
      'ConfigMap/node-exporter-env',
      'Deployment/grafana',
      'Deployment/node-exporter',
      'PersistentVolumeClaim/grafana',
      'PersistentVolumeClaim/node-exporter',
    ])
  })
})
