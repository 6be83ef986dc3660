// The dev loop's fast builds: kustomize-server (kustomize as a long-lived process) must give
// exactly what the kustomize CLI gives, the parse cache exactly what a fresh parse gives, and
// a partial build (only the subtree a save fed) exactly what a full `kustomize build` of the
// overlay gives — for saves into an app, its patch, its kustomization.yaml, the overlay, a
// component, a rename, a broken file — or fall back to the full build.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { refKey, refOf } from '../../shared/kube/refs.ts'
import { OverlayBuild } from '../../shared/dev/overlay-build.ts'
import { NsopsError } from '../../shared/core/errors.ts'
import {
  buildKustomization,
  buildKustomizationWarm,
  ManifestCache,
  parseManifests,
  type ManifestObject,
} from '../../shared/kustomize/build.ts'
import { repoRoot } from '../../shared/core/paths.ts'

const sorted = (objects: ManifestObject[]) =>
  JSON.stringify([...objects].sort((a, b) => refKey(refOf(a)).localeCompare(refKey(refOf(b)))))

async function message(p: Promise<unknown>): Promise<string> {
  try {
    await p
  } catch (err) {
    assert.ok(err instanceof NsopsError, `expected an NsopsError, got ${String(err)}`)
    return err.message
  }
  assert.fail('the build succeeded')
}

describe('kustomize-server', () => {
  const fixtures = path.join(repoRoot, 'test', 'fixtures', 'kustomize')
  const overlays = [
    path.join(fixtures, 'overlays', 'dev'),
    ...fs
      .readdirSync(path.join(repoRoot, 'namespaces'))
      .flatMap((ns) => ['dev', 'prod'].map((o) => path.join(repoRoot, 'namespaces', ns, 'overlays', o)))
      .filter((d) => fs.existsSync(path.join(d, 'kustomization.yaml'))),
  ]

  it('builds every shipped overlay exactly as the kustomize CLI does', async () => {
    assert.ok(overlays.length >= 5)
    for (const dir of overlays) {
      assert.equal(sorted(await buildKustomizationWarm(dir)), sorted(await buildKustomization(dir)), dir)
    }
  })

  it("reports a broken kustomization with the CLI's message", async () => {
    for (const name of fs.readdirSync(path.join(fixtures, 'broken'))) {
      const dir = path.join(fixtures, 'broken', name)
      assert.equal(await message(buildKustomizationWarm(dir)), await message(buildKustomization(dir)), name)
    }
  })

  it('answers builds that arrive together, each with its own result', async () => {
    const dirs = [...overlays, ...overlays]
    const results = await Promise.all(dirs.map((d) => buildKustomizationWarm(d)))
    for (const [i, dir] of dirs.entries()) assert.equal(sorted(results[i]), sorted(await buildKustomization(dir)), dir)
  })
})

describe('manifest parse cache', () => {
  const text =
    'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\ndata:\n  x: "1"\n'

  it('gives what a fresh parse gives, and copies a caller may change', () => {
    const cache = new ManifestCache()
    const first = cache.parse(text, 'src')
    assert.deepEqual(first, parseManifests(text, 'src'))
    first[1].data = { x: 'changed' }
    assert.deepEqual(cache.parse(text, 'src'), parseManifests(text, 'src'))
    const edited = text.replace('x: "1"', 'x: "2"')
    assert.deepEqual(cache.parse(edited, 'src'), parseManifests(edited, 'src'))
  })

  it('reports a malformed later document at its line in the whole text', () => {
    const cache = new ManifestCache()
    cache.parse(text, 'src')
    const broken = text.replace('  x: "1"', '  x: [1')
    assert.throws(
      () => cache.parse(broken, 'src'),
      (err: Error) => {
        assert.throws(() => parseManifests(broken, 'src'), { message: err.message })
        assert.match(err.message, /^malformed YAML: src:1[12]:/)
        return true
      },
    )
  })
})

const app = (name: string, extra = '') => ({
  [`base/${name}/kustomization.yaml`]: `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [deployment.yaml, service.yaml]\n${extra}`,
  [`base/${name}/deployment.yaml`]: `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${name}
spec:
  replicas: 1
  selector: { matchLabels: { app: ${name} } }
  template:
    metadata: { labels: { app: ${name} } }
    spec:
      containers:
        - name: ${name}
          image: nginx:1.27
          envFrom: [{ configMapRef: { name: shared-env } }]
`,
  [`base/${name}/service.yaml`]: `apiVersion: v1
kind: Service
metadata:
  name: ${name}
  labels: { app: ${name} }
spec:
  selector: { app: ${name} }
  ports: [{ port: 80 }]
`,
})

// a dev overlay like the shipped ones: namespace, a component, replica counts per app (which
// kustomize refuses for a name that matches nothing), a patch for every Deployment, a
// replacement from the overlay's own ConfigMap, and a generated ConfigMap in the base
// (hash-suffixed) that every app's Deployment refers to
const tree: Record<string, string> = {
  'base/kustomization.yaml': `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
labels:
  - pairs: { app.kubernetes.io/part-of: shop }
    includeTemplates: true
resources: [app0, app1, app2, app3]
configMapGenerator:
  - name: shared-env
    literals: [TZ=Etc/UTC]
`,
  ...app('app0'),
  ...app('app1'),
  ...app('app2', 'patches:\n  - path: patch.yaml\n'),
  'base/app2/patch.yaml': 'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app2\nspec:\n  replicas: 2\n',
  ...app('app3'),
  'components/extra/kustomization.yaml': `apiVersion: kustomize.config.k8s.io/v1alpha1
kind: Component
labels:
  - pairs: { extra: "yes" }
`,
  'overlays/dev/namespace.yaml': 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop-dev\n',
  'overlays/dev/domain.yaml':
    'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: domain\ndata:\n  domain: shop.localhost\n',
  'overlays/dev/kustomization.yaml': `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: shop-dev
resources: [namespace.yaml, domain.yaml, ../../base]
components: [../../components/extra]
replicas:
  - { name: app0, count: 2 }
  - { name: app1, count: 3 }
  - { name: app3, count: 1 }
patches:
  - target: { kind: Deployment }
    patch: |-
      - op: add
        path: /metadata/annotations
        value: { size: small }
replacements:
  - source: { kind: ConfigMap, name: domain, fieldPath: data.domain }
    targets:
      - select: { kind: Service }
        fieldPaths: [metadata.labels.domain]
        options: { create: true }
`,
}

describe('partial builds of the dev overlay', () => {
  let dir: string
  let overlay: string
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-overlay-build-'))
    for (const [rel, text] of Object.entries(tree)) {
      fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true })
      fs.writeFileSync(path.join(dir, rel), text)
    }
    overlay = path.join(dir, 'overlays', 'dev')
  })
  after(() => fs.rmSync(dir, { recursive: true, force: true }))

  const edit = (rel: string, from: string | RegExp, to: string) => {
    const file = path.join(dir, rel)
    const text = fs.readFileSync(file, 'utf8')
    const next = text.replace(from, to)
    assert.notEqual(next, text, `the edit of ${rel} changes it`)
    fs.writeFileSync(file, next)
  }

  /** Saves, builds the way the loop does, and checks the result against a full build. */
  async function save(b: OverlayBuild, files: string[]): Promise<string> {
    const r = await b.afterSave(dir, files)
    assert.equal(
      sorted(r.objects),
      sorted(await buildKustomization(overlay)),
      `after saving ${files.join(', ')} (${r.how})`,
    )
    await b.learnPending() // as the loop does once it applied
    return r.how
  }

  it('builds only the app a save fed, and the result equals a full build', async () => {
    const b = new OverlayBuild(overlay)
    await b.full()
    edit('base/app1/service.yaml', 'ports:', 'type: ClusterIP\n  ports:')
    assert.equal(
      await save(b, ['base/app1/service.yaml']),
      'full',
      'the first save into an app is built in full (then partially, to compare)',
    )
    edit('base/app1/service.yaml', 'port: 80', 'port: 81')
    assert.equal(await save(b, ['base/app1/service.yaml']), 'partial: base/app1')
    edit('base/app1/deployment.yaml', 'nginx:1.27', 'nginx:1.28')
    assert.equal(await save(b, ['base/app1/deployment.yaml']), 'partial: base/app1')
  })

  it("covers an app's patch and its kustomization.yaml", async () => {
    const b = new OverlayBuild(overlay)
    await b.full()
    edit('base/app2/patch.yaml', 'replicas: 2', 'replicas: 3')
    await save(b, ['base/app2/patch.yaml'])
    edit('base/app2/patch.yaml', 'replicas: 3', 'replicas: 4')
    assert.equal(await save(b, ['base/app2/patch.yaml']), 'partial: base/app2', b.lastReason)
    edit('base/app2/kustomization.yaml', 'patches:', 'commonAnnotations: { team: web }\npatches:')
    await save(b, ['base/app2/kustomization.yaml'])
    edit('base/app2/kustomization.yaml', 'team: web', 'team: shop')
    assert.equal(await save(b, ['base/app2/kustomization.yaml']), 'partial: base/app2')
  })

  it('builds in full when the save feeds the overlay, a component or more than one app', async () => {
    const b = new OverlayBuild(overlay)
    await b.full()
    edit('base/app0/service.yaml', 'port: 80', 'port: 82')
    await save(b, ['base/app0/service.yaml'])
    edit('overlays/dev/kustomization.yaml', 'size: small', 'size: tiny')
    assert.equal(await save(b, ['overlays/dev/kustomization.yaml']), 'full')
    assert.match(b.lastReason, /overlay itself/)
    edit('components/extra/kustomization.yaml', 'extra: "yes"', 'extra: "very"')
    assert.equal(await save(b, ['components/extra/kustomization.yaml']), 'full')
    assert.match(b.lastReason, /component/)
    edit('base/app0/service.yaml', 'port: 82', 'port: 83')
    edit('base/app3/service.yaml', 'port: 80', 'port: 84')
    assert.equal(await save(b, ['base/app0/service.yaml', 'base/app3/service.yaml']), 'full')
    assert.match(b.lastReason, /more than one/)
  })

  it('stays equal to a full build after a save into the base (a generated ConfigMap every app refers to)', async () => {
    const b = new OverlayBuild(overlay)
    await b.full()
    edit('base/app1/service.yaml', /port: \d+/, 'port: 60')
    await save(b, ['base/app1/service.yaml'])
    edit('base/kustomization.yaml', 'TZ=Etc/UTC', 'TZ=Europe/Berlin') // a new hash suffix for shared-env
    await save(b, ['base/kustomization.yaml'])
    for (const port of ['61', '62']) {
      edit('base/app1/service.yaml', /port: \d+/, `port: ${port}`)
      await save(b, ['base/app1/service.yaml'])
    }
    edit('base/app1/deployment.yaml', 'nginx:1.28', 'nginx:1.29')
    assert.equal(await save(b, ['base/app1/deployment.yaml']), 'partial: base/app1')
  })

  it('builds in full when an app gains, loses or renames an object', async () => {
    const b = new OverlayBuild(overlay)
    await b.full()
    edit('base/app3/deployment.yaml', 'image: nginx:1.27', 'image: nginx:1.26')
    await save(b, ['base/app3/deployment.yaml'])
    edit('base/app3/service.yaml', 'name: app3\n  labels', 'name: app3-web\n  labels')
    assert.equal(await save(b, ['base/app3/service.yaml']), 'full')
    assert.match(b.lastReason, /gained, lost or renamed/)
  })

  it('reports a broken file as the full build does', async () => {
    const b = new OverlayBuild(overlay)
    await b.full()
    edit('base/app1/service.yaml', 'ports:', 'ports: [x')
    await assert.rejects(
      b.afterSave(dir, ['base/app1/service.yaml']),
      (err: Error) => err instanceof NsopsError && /malformed YAML/.test(err.message),
    )
    edit('base/app1/service.yaml', 'ports: [x', 'ports:')
  })

  it('does not build partially when a left-out app renames its objects', async () => {
    edit('base/app0/kustomization.yaml', 'kind: Kustomization\n', 'kind: Kustomization\nnamePrefix: x-\n')
    try {
      const b = new OverlayBuild(overlay)
      await b.full()
      for (const port of ['90', '91']) {
        edit('base/app1/service.yaml', /port: \d+/, `port: ${port}`)
        assert.equal(await save(b, ['base/app1/service.yaml']), 'full')
        assert.match(b.lastReason, /namePrefix/)
      }
    } finally {
      edit('base/app0/kustomization.yaml', 'namePrefix: x-\n', '')
    }
  })

  it('the background full build catches what partial builds missed, and turns them off', async () => {
    const b = new OverlayBuild(overlay)
    await b.full()
    for (const port of ['70', '71']) {
      edit('base/app1/service.yaml', /port: \d+/, `port: ${port}`)
      await save(b, ['base/app1/service.yaml'])
    }
    assert.equal(await b.check(), undefined, 'nothing missed: the check agrees')
    // a change the watch never reported (e.g. written while it was deaf)
    edit('base/app3/service.yaml', /port: \d+/, 'port: 99')
    const full = await b.check()
    assert.ok(full, 'the check found the difference')
    assert.equal(sorted(full), sorted(await buildKustomization(overlay)))
    assert.ok(b.off)
    edit('base/app1/service.yaml', /port: \d+/, 'port: 72')
    assert.equal(await save(b, ['base/app1/service.yaml']), 'full', 'partial builds stay off')
  })
})
