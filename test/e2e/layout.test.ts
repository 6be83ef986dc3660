// namespace.ts `layout`: a namespace whose Flux objects live where a home-ops repository keeps
// them (kubernetes/apps/<ns>/<app>/ks.yaml), not in overlays/prod. Through the user's door
// (`npx just …`) in a home-ops repository with nsops added (test/adopt-fixture.ts): validate
// and render build its Kustomizations as Flux does; a layout entry that names nothing fails
// naming namespace.ts and the entry; the dev loop (no overlays/dev) applies prod's build into
// <ns>-dev with the dev overrides, its Kustomizations in dependsOn order.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import YAML from 'yaml'
import { adoptRepo, justIn, type AdoptRepo } from '../adopt-fixture.ts'
import { testCluster } from '../harness.ts'

const APPS = ['jellyfin', 'prowlarr', 'radarr', 'sonarr']

export function layoutNamespace(entries: string[], extra = ''): string {
  return `import { defineNamespace } from '../../shared/config/namespace-config.ts'

export default defineNamespace({
  name: 'default',
  description: 'media apps',
  namespaces: { dev: 'default-dev', prod: 'default' },
  domains: { dev: 'default.localhost', prod: 'home.example' },
  layout: {
    kustomizations: ${JSON.stringify(entries)},
    dev: { replicas: 1, storageClass: 'local-path', resources: { requests: { cpu: '10m' } } },
  },${extra}
})
`
}

type Obj = {
  kind: string
  metadata: { name: string; namespace?: string; labels?: Record<string, string> }
  data?: Record<string, string>
  spec?: { replicas?: unknown; storageClassName?: string }
}

describe('namespace.ts layout: a home-ops namespace built from its ks.yaml files', () => {
  let r: AdoptRepo
  before(() => {
    r = adoptRepo('home-ops')
    fs.mkdirSync(path.join(r.work, 'namespaces', 'default'), { recursive: true })
    fs.writeFileSync(
      path.join(r.work, 'namespaces/default/namespace.ts'),
      layoutNamespace(APPS.map((a) => `kubernetes/apps/default/${a}/ks.yaml`)),
    )
  })
  after(() => fs.rmSync(r.root, { recursive: true, force: true }))

  it('just validate and just render build its four Kustomizations as Flux does, substituted', async () => {
    const v = await justIn(r.work, ['validate', 'default', '--offline'])
    assert.equal(v.code, 0, v.stderr)
    assert.match(
      v.stderr,
      /default: 4 Flux Kustomizations \(flux-system\/\w+, flux-system\/\w+, flux-system\/\w+, flux-system\/\w+\) builds \(\d+ objects\); all \d+ objects pass strict schema validation/,
    )
    const out = await justIn(r.work, ['render', 'default'])
    assert.equal(out.code, 0, out.stderr)
    const objects = YAML.parseAllDocuments(out.stdout).map((d) => d.toJS()) as Obj[]
    for (const app of APPS) {
      const d = objects.find((o) => o.kind === 'Deployment' && o.metadata.name === app)
      assert.ok(d, `${app}'s Deployment`)
      assert.equal(d.metadata.namespace, 'default', 'targetNamespace')
    }
    // postBuild from the ks.yaml (APP) and the root's substituteFrom (SECRET_DOMAIN)
    const env = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('sonarr-env-'))
    assert.match(env?.data?.HOST ?? '', /^sonarr\.\w/)
    assert.doesNotMatch(out.stdout, /\$\{APP\}/)
    // prowlarr before sonarr (sonarr dependsOn prowlarr)
    const order = objects.filter((o) => o.kind === 'Deployment').map((o) => o.metadata.name)
    assert.ok(order.indexOf('prowlarr') < order.indexOf('sonarr'), order.join(', '))
  })

  it('a layout entry that names no Kustomization fails naming namespace.ts, the entry and what is known', async () => {
    const file = path.join(r.work, 'namespaces/default/namespace.ts')
    const good = fs.readFileSync(file, 'utf8')
    try {
      fs.writeFileSync(file, layoutNamespace(['kubernetes/apps/default/sonar/ks.yaml']))
      const v = await justIn(r.work, ['validate', 'default', '--offline'])
      assert.equal(v.code, 1, v.stderr)
      assert.match(
        v.stderr,
        /namespaces\/default\/namespace\.ts: layout\.kustomizations\[0\] names kubernetes\/apps\/default\/sonar\/ks\.yaml, which does not exist/,
      )
      fs.writeFileSync(file, layoutNamespace(['sonar']))
      const byName = await justIn(r.work, ['validate', 'default', '--offline'])
      assert.equal(byName.code, 1, byName.stderr)
      assert.match(byName.stderr, /layout\.kustomizations\[0\] names the Flux Kustomization sonar, which is not in/)
      assert.match(byName.stderr, /hint: Known: .*flux-system\/sonarr \(kubernetes\/apps\/default\/sonarr\/ks\.yaml\)/)
    } finally {
      fs.writeFileSync(file, good)
    }
  })
})

describe('the dev loop of a layout namespace with no overlays/dev', () => {
  let r: AdoptRepo
  let kubeconfig = ''
  let stateDir = ''
  before(async () => {
    kubeconfig = (await testCluster()).kubeconfig
    r = adoptRepo('home-ops')
    stateDir = path.join(r.root, 'state')
    fs.mkdirSync(path.join(r.work, 'namespaces', 'default'), { recursive: true })
    fs.writeFileSync(
      path.join(r.work, 'namespaces/default/namespace.ts'),
      layoutNamespace(APPS.map((a) => `kubernetes/apps/default/${a}/ks.yaml`)),
    )
  })
  after(async () => {
    await justIn(r.work, ['dev-down', '--keep-cluster'], { NSOPS_KUBECONFIG: kubeconfig, NSOPS_STATE_DIR: stateDir })
    fs.rmSync(r.root, { recursive: true, force: true })
  })

  it('dev --ci applies prod’s build into default-dev with the dev overrides, dependencies first', async () => {
    const up = await justIn(r.work, ['dev', 'default', '--ci', '--timeout', '2m', '--kubeconfig', kubeconfig], {
      NSOPS_STATE_DIR: stateDir,
    })
    assert.equal(up.code, 0, up.stderr)
    assert.match(up.stderr, /SUCCESS\. All workloads are healthy \(default\)/)
    const { kube } = await testCluster()
    const deps = (await kube.apps.listNamespacedDeployment({ namespace: 'default-dev' })).items
    assert.deepEqual(deps.map((d) => d.metadata?.name).sort(), APPS)
    for (const d of deps) {
      assert.equal(d.spec?.replicas, 1, `${d.metadata?.name}: layout.dev.replicas`)
      assert.equal(d.spec?.template.spec?.containers[0].resources?.requests?.cpu, '10m', 'layout.dev.resources')
    }
    const pvcs = (await kube.core.listNamespacedPersistentVolumeClaim({ namespace: 'default-dev' })).items
    assert.ok(pvcs.length >= 4, `the volsync component's PVCs (${pvcs.length})`)
    for (const p of pvcs) assert.equal(p.spec?.storageClassName, 'local-path', 'layout.dev.storageClass')
    const env = (await kube.core.listNamespacedConfigMap({ namespace: 'default-dev' })).items.find((c) =>
      c.metadata?.name?.startsWith('sonarr-env-'),
    )
    assert.match(env?.data?.HOST ?? '', /^sonarr\./, 'substituted as prod is')
    // prowlarr (sonarr depends on it) was created before sonarr
    const created = (n: string) =>
      Date.parse(String(deps.find((d) => d.metadata?.name === n)?.metadata?.creationTimestamp))
    assert.ok(created('prowlarr') <= created('sonarr'))
    // nothing went to prod's namespace
    const prod = (await kube.apps.listNamespacedDeployment({ namespace: 'default' })).items
    assert.equal(prod.filter((d) => APPS.includes(d.metadata?.name ?? '')).length, 0)
  })

  it('a dependsOn chain whose first link fails: dev --ci names that link and applies nothing that depends on it', async () => {
    const down = await justIn(r.work, ['dev-down', '--keep-cluster'], {
      NSOPS_KUBECONFIG: kubeconfig,
      NSOPS_STATE_DIR: stateDir,
    })
    assert.equal(down.code, 0, down.stderr)
    // prowlarr can never become available (no node has the label; the Deployment gives up after 10 s)
    const file = path.join(r.work, 'kubernetes/apps/default/prowlarr/app/deployment.yaml')
    fs.writeFileSync(
      file,
      fs
        .readFileSync(file, 'utf8')
        .replace(/^spec:\n/m, 'spec:\n  progressDeadlineSeconds: 10\n')
        .replace(/^    spec:\n/m, '    spec:\n      nodeSelector: { disk: nvme-that-does-not-exist }\n'),
    )
    const t0 = Date.now()
    const up = await justIn(r.work, ['dev', 'default', '--ci', '--timeout', '2m', '--kubeconfig', kubeconfig], {
      NSOPS_STATE_DIR: stateDir,
    })
    assert.equal(up.code, 1, up.stderr)
    assert.ok(Date.now() - t0 < 110_000, 'failed fast, not after the timeout')
    assert.match(
      up.stderr,
      /dependsOn: flux-system\/prowlarr \(kubernetes\/apps\/default\/prowlarr\/ks\.yaml\) is not Ready \([^)]*prowlarr[\s\S]*\); flux-system\/radarr, flux-system\/sonarr not applied/,
    )
    const { kube } = await testCluster()
    const names = (await kube.apps.listNamespacedDeployment({ namespace: 'default-dev' })).items.map(
      (d) => d.metadata?.name,
    )
    assert.ok(names.includes('prowlarr'), 'the first link was applied')
    assert.ok(!names.includes('sonarr'), `sonarr depends on prowlarr: not applied (${names.join(', ')})`)
  })
})

describe('namespace.ts layout.paths: folders instead of ks.yaml files', () => {
  // sonarr's app folder is a Flux Kustomization's spec.path (built as Flux builds it, substituted);
  // extras/ is a plain kustomize folder no Kustomization builds
  let r: AdoptRepo
  let kubeconfig = ''
  let stateDir = ''
  const pathsNamespace = `import { defineNamespace } from '../../shared/config/namespace-config.ts'

export default defineNamespace({
  name: 'default',
  description: 'sonarr and its extras, by folder',
  namespaces: { dev: 'paths-dev', prod: 'default' },
  layout: {
    paths: ['kubernetes/apps/default/sonarr/app', 'kubernetes/apps/default/extras'],
    dev: { replicas: 1, storageClass: 'local-path' },
  },
})
`
  before(async () => {
    kubeconfig = (await testCluster()).kubeconfig
    r = adoptRepo('home-ops')
    stateDir = path.join(r.root, 'state')
    fs.mkdirSync(path.join(r.work, 'namespaces', 'default'), { recursive: true })
    fs.writeFileSync(path.join(r.work, 'namespaces/default/namespace.ts'), pathsNamespace)
    fs.mkdirSync(path.join(r.work, 'kubernetes/apps/default/extras'), { recursive: true })
    fs.writeFileSync(
      path.join(r.work, 'kubernetes/apps/default/extras/kustomization.yaml'),
      'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: default\nresources: [notes.yaml]\n',
    )
    fs.writeFileSync(
      path.join(r.work, 'kubernetes/apps/default/extras/notes.yaml'),
      'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: extras-notes }\ndata: { note: kept by hand }\n',
    )
  })
  after(async () => {
    await justIn(r.work, ['dev-down', '--keep-cluster'], { NSOPS_KUBECONFIG: kubeconfig, NSOPS_STATE_DIR: stateDir })
    fs.rmSync(r.root, { recursive: true, force: true })
  })

  it('just validate builds the Kustomization a path is the spec.path of (substituted) and the plain folder', async () => {
    const v = await justIn(r.work, ['validate', 'default', '--offline'])
    assert.equal(v.code, 0, v.stderr)
    assert.match(
      v.stderr,
      /default: Flux Kustomization flux-system\/sonarr \(kubernetes\/apps\/default\/sonarr\/ks\.yaml\) and kubernetes\/apps\/default\/extras builds \(\d+ objects\); all \d+ objects pass strict schema validation/,
    )
    const out = await justIn(r.work, ['render', 'default'])
    assert.equal(out.code, 0, out.stderr)
    const objects = YAML.parseAllDocuments(out.stdout).map((d) => d.toJS()) as Obj[]
    const env = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('sonarr-env-'))
    assert.equal(env?.data?.HOST, 'sonarr.home.example', "substituted by sonarr's Kustomization and its parent")
    assert.ok(
      objects.some((o) => o.kind === 'ConfigMap' && o.metadata.name === 'extras-notes'),
      'the plain folder',
    )
    assert.deepEqual(
      objects.filter((o) => o.kind === 'Deployment').map((o) => o.metadata.name),
      ['sonarr'],
      'only what the paths name',
    )
  })

  it('dev --ci applies both folders into the dev namespace, substituted as prod is', async () => {
    const up = await justIn(r.work, ['dev', 'default', '--ci', '--timeout', '2m', '--kubeconfig', kubeconfig], {
      NSOPS_STATE_DIR: stateDir,
    })
    assert.equal(up.code, 0, up.stderr)
    assert.match(up.stderr, /SUCCESS\. All workloads are healthy \(default\)/)
    const { kube } = await testCluster()
    const deps = (await kube.apps.listNamespacedDeployment({ namespace: 'paths-dev' })).items
    assert.deepEqual(
      deps.map((d) => d.metadata?.name),
      ['sonarr'],
    )
    assert.equal(deps[0].spec?.replicas, 1, 'layout.dev.replicas')
    assert.equal(deps[0].spec?.template.spec?.volumes?.[0]?.persistentVolumeClaim?.claimName, 'sonarr', '${APP}')
    const cms = (await kube.core.listNamespacedConfigMap({ namespace: 'paths-dev' })).items
    assert.ok(
      cms.some((c) => c.metadata?.name === 'extras-notes'),
      cms.map((c) => c.metadata?.name).join(', '),
    )
    const env = cms.find((c) => c.metadata?.name?.startsWith('sonarr-env-'))
    assert.equal(env?.data?.HOST, 'sonarr.home.example')
  })
})
