// `just init` adopts an existing Flux repository as it is laid out, through the user's door
// (`npx just …` in a clone of each fixture with nsops added: test/adopt-fixture.ts): home-ops
// (kubernetes/apps/<ns>/<app>/ks.yaml), the seed homelab (one Kustomization per namespace over
// applications/<ns>/overlays/prod, a dev overlay beside it) and flux2's example (clusters/<name>/
// + apps/ + infrastructure/). Then `just validate` and `just render` work on what it wrote; what
// it cannot adopt it refuses naming why with a hint; it never overwrites a file. On the seed
// homelab, `just ci diff` and the dev loop work on the adopted layout too.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, describe, it } from 'node:test'
import YAML from 'yaml'
import { adoptRepo, justIn, type AdoptRepo } from '../adopt-fixture.ts'
import { git } from '../git-fixture.ts'
import { testCluster } from '../harness.ts'

const SCRIPTS = ['dashboard.ts', 'deploy.ts', 'dev.ts', 'drift.ts', 'namespace.ts']
const repos: AdoptRepo[] = []
after(() => {
  for (const r of repos) fs.rmSync(r.root, { recursive: true, force: true })
})

function adopt(fixture: string): AdoptRepo {
  const r = adoptRepo(fixture)
  repos.push(r)
  return r
}

const listed = (r: AdoptRepo) => fs.readdirSync(path.join(r.work, 'namespaces')).sort()
const files = (r: AdoptRepo, ns: string) => fs.readdirSync(path.join(r.work, 'namespaces', ns)).sort()
type Obj = { kind: string; metadata: { name: string; namespace?: string }; data?: Record<string, string> }
const parse = (yaml: string) => YAML.parseAllDocuments(yaml).map((d) => d.toJS() as Obj)

describe('just init adopts a Flux repository without moving its files', () => {
  it('home-ops: one namespace.ts per namespace naming its ks.yaml files (one pattern for a ks.yaml per app); validate and render build them', async () => {
    const r = adopt('home-ops')
    const i = await justIn(r.work, ['init'])
    assert.equal(i.code, 0, i.stderr)
    assert.deepEqual(listed(r), ['default', 'observability'])
    assert.deepEqual(files(r, 'default'), SCRIPTS)
    assert.ok(fs.statSync(path.join(r.work, 'namespaces/default/dev.ts')).mode & 0o100, 'scripts are executable')
    const ts = fs.readFileSync(path.join(r.work, 'namespaces/default/namespace.ts'), 'utf8')
    assert.match(ts, /kustomizations: \['kubernetes\/apps\/default\/\*\/ks\.yaml'\]/)
    assert.match(
      i.stderr,
      /wrote namespaces\/default\/: namespace\.ts, dev\.ts, dashboard\.ts, deploy\.ts, drift\.ts — 4 Flux Kustomizations/,
    )
    // nothing of theirs moved or changed
    assert.equal((await justIn(r.work, ['--version'])).code, 0)
    const v = await justIn(r.work, ['validate', '--offline'])
    assert.equal(v.code, 0, v.stderr)
    assert.match(v.stderr, /default: 4 Flux Kustomizations .* builds \(\d+ objects\); all \d+ objects pass/)
    assert.match(v.stderr, /observability: 2 Flux Kustomizations .* builds/)
    const out = await justIn(r.work, ['render', 'observability'])
    assert.equal(out.code, 0, out.stderr)
    const names = parse(out.stdout)
      .filter((o) => o.kind === 'Deployment')
      .map((o) => `${o.metadata.namespace}/${o.metadata.name}`)
    assert.deepEqual(names.sort(), ['observability/grafana', 'observability/node-exporter'])
    // an app added the home-ops way (its folder, and a line in the namespace's kustomization.yaml)
    // belongs to the namespace without an edit of namespace.ts
    const apps = path.join(r.work, 'kubernetes/apps/default')
    fs.cpSync(path.join(apps, 'prowlarr'), path.join(apps, 'lidarr'), { recursive: true })
    for (const f of ['ks.yaml', 'app/deployment.yaml', 'app/kustomization.yaml']) {
      const file = path.join(apps, 'lidarr', f)
      fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replaceAll('prowlarr', 'lidarr'))
    }
    fs.appendFileSync(path.join(apps, 'kustomization.yaml'), '  - lidarr/ks.yaml\n')
    const added = await justIn(r.work, ['validate', 'default', '--offline'])
    assert.equal(added.code, 0, added.stderr)
    assert.match(added.stderr, /default: 5 Flux Kustomizations .* builds/)
    const rendered = await justIn(r.work, ['render', 'default'])
    assert.ok(
      parse(rendered.stdout).some((o) => o.kind === 'Deployment' && o.metadata.name === 'lidarr'),
      'the new app is rendered',
    )
    // the scripts run: the namespace's own dashboard script answers --help
    assert.match(
      execFileSync(path.join(r.work, 'namespaces/default/dashboard.ts'), ['--help'], { encoding: 'utf8' }),
      /Usage/,
    )
  })

  it('runs again without overwriting: a namespace.ts edited by hand stays as it is', async () => {
    const r = adopt('home-ops')
    assert.equal((await justIn(r.work, ['init', 'default'])).code, 0)
    assert.deepEqual(listed(r), ['default'], 'init NS adopts only NS')
    const file = path.join(r.work, 'namespaces/default/namespace.ts')
    const edited = fs.readFileSync(file, 'utf8').replace('dev: { replicas: 1 }', 'dev: { replicas: 2 }')
    fs.writeFileSync(file, edited)
    fs.rmSync(path.join(r.work, 'namespaces/default/drift.ts'))
    const again = await justIn(r.work, ['init'])
    assert.equal(again.code, 0, again.stderr)
    assert.equal(fs.readFileSync(file, 'utf8'), edited)
    assert.match(
      again.stderr,
      /wrote namespaces\/default\/: drift\.ts — .*; kept namespace\.ts, dev\.ts, dashboard\.ts, deploy\.ts as they are/,
    )
    assert.match(again.stderr, /wrote namespaces\/observability\//)
    const third = await justIn(r.work, ['init'])
    assert.match(third.stderr, /namespaces\/default\/ is there already \(kept as it is\)/)
  })

  it('the seed homelab: one namespace per Kustomization, its folder as layout.root, its own dev overlay', async () => {
    const r = adopt('seed-homelab')
    const i = await justIn(r.work, ['init'])
    assert.equal(i.code, 0, i.stderr)
    assert.deepEqual(listed(r), ['home-automation', 'ingress', 'media'])
    const ts = fs.readFileSync(path.join(r.work, 'namespaces/media/namespace.ts'), 'utf8')
    assert.match(ts, /kustomizations: \['media'\]/)
    assert.match(ts, /root: 'applications\/media'/)
    assert.match(ts, /dev: \{ overlay: 'applications\/media\/overlays\/dev' \}/)
    const v = await justIn(r.work, ['validate', '--offline'])
    assert.equal(v.code, 0, v.stderr)
    const out = await justIn(r.work, ['render', 'media'])
    assert.equal(out.code, 0, out.stderr)
    const env = parse(out.stdout).find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('jellyfin-env-'))
    assert.equal(env?.data?.TZ, 'Europe/Berlin', "substituted from the Kustomization's postBuild")
  })

  it("flux2's example: podinfo adopted; a Kustomization over two namespaces refused, saying why and what to do", async () => {
    const r = adopt('flux2-example')
    const i = await justIn(r.work, ['init'])
    assert.equal(i.code, 0, i.stderr)
    assert.deepEqual(listed(r), ['podinfo'])
    assert.match(
      i.stderr,
      /cert-manager: not adopted: its objects come only from Flux Kustomization flux-system\/infra-controllers \(clusters\/production\/infrastructure\.yaml\), which also applies ingress-nginx/,
    )
    assert.match(i.stderr, /hint: give cert-manager a Flux Kustomization of its own/)
    const v = await justIn(r.work, ['validate', '--offline'])
    assert.equal(v.code, 0, v.stderr)
    const out = await justIn(r.work, ['render', 'podinfo'])
    const d = parse(out.stdout).find((o) => o.kind === 'Deployment') as Obj & { spec?: { replicas?: number } }
    assert.equal(d?.spec?.replicas, 2, 'apps/production patches apps/base')
    const only = await justIn(r.work, ['init', 'cert-manager'])
    assert.equal(only.code, 1)
    assert.match(only.stderr, /no namespace could be adopted \(cert-manager: see above\)/)
    const unknown = await justIn(r.work, ['init', 'nope'])
    assert.equal(unknown.code, 1)
    assert.match(unknown.stderr, /the Flux tree applies no namespace nope[\s\S]*hint: It applies: podinfo, /)
  })

  it('a repository with no Flux Kustomization: refused, nothing written', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-noflux-'))
    fs.writeFileSync(path.join(dir, 'README.md'), 'not a Flux repository\n')
    const r = adopt(dir)
    fs.rmSync(dir, { recursive: true })
    const i = await justIn(r.work, ['init'])
    assert.equal(i.code, 1)
    assert.match(
      i.stderr,
      /no Flux Kustomization in .*: nothing to adopt[\s\S]*hint: run `just init` at the root of a Flux repository/,
    )
    assert.ok(!fs.existsSync(path.join(r.work, 'namespaces')))
  })

  it('the seed homelab: `just ci diff` of a change to one application names that namespace and its change only', async () => {
    const r = adopt('seed-homelab')
    assert.equal((await justIn(r.work, ['init'])).code, 0)
    // the adopted repository, namespace.ts files and all, is the base
    git(r.work, 'add', '-A')
    git(r.work, 'commit', '-qm', 'nsops init')
    git(r.work, 'push', '-q', 'origin', 'HEAD:main')
    git(r.work, 'fetch', '-q', 'origin')
    const file = path.join(r.work, 'applications/media/base/deployment.yaml')
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('jellyfin:1.0.0', 'jellyfin:1.0.1'))
    const d = await justIn(r.work, ['ci', 'diff', '--out', r.out])
    assert.equal(d.code, 0, d.stderr)
    const json = JSON.parse(fs.readFileSync(path.join(r.out, 'diff.json'), 'utf8')) as {
      namespaces: {
        name: string
        objects: { action: string; ref: Obj['metadata'] & { kind: string }; diff?: string }[]
      }[]
    }
    assert.deepEqual(
      json.namespaces.map((n) => n.name),
      ['media'],
    )
    assert.deepEqual(
      json.namespaces[0].objects.map((o) => `${o.action} ${o.ref.kind}/${o.ref.namespace}/${o.ref.name}`),
      ['update Deployment/media/jellyfin'],
    )
    assert.match(
      json.namespaces[0].objects[0].diff ?? '',
      /^-\s+- image: ghcr\.io\/example\/jellyfin:1\.0\.0\n\+\s+- image: ghcr\.io\/example\/jellyfin:1\.0\.1$/m,
    )
  })

  it("the seed homelab's dev loop builds its own dev overlay into media-dev, substituted as prod is", async () => {
    const { kubeconfig, kube } = await testCluster()
    const r = adopt('seed-homelab')
    assert.equal((await justIn(r.work, ['init', 'media'])).code, 0)
    const env = { NSOPS_STATE_DIR: path.join(r.root, 'state') }
    try {
      const up = await justIn(r.work, ['dev', 'media', '--ci', '--timeout', '2m', '--kubeconfig', kubeconfig], env)
      assert.equal(up.code, 0, up.stderr)
      const cms = (await kube.core.listNamespacedConfigMap({ namespace: 'media-dev' })).items
      const devEnv = cms.find((c) => c.metadata?.name?.startsWith('jellyfin-env-'))?.data
      assert.equal(devEnv?.MODE, 'dev', 'built from applications/media/overlays/dev')
      assert.equal(devEnv?.TZ, 'Europe/Berlin', "substituted with the media Kustomization's postBuild")
      const deps = (await kube.apps.listNamespacedDeployment({ namespace: 'media-dev' })).items
      assert.deepEqual(
        deps.map((d) => d.metadata?.name),
        ['jellyfin'],
      )
    } finally {
      await justIn(r.work, ['dev-down', '--keep-cluster'], { ...env, NSOPS_KUBECONFIG: kubeconfig })
    }
  })
})
