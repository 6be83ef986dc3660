// `just ci diff` changed-only on a home-ops repository: test/fixtures/home-ops grown to 60 apps
// in 6 namespaces (test/home-ops-grown.ts), nsops added and adopted with `just init`
// (namespace.ts layouts naming each app's ks.yaml), through the user's door (`npx just …`). A
// change to one app's files selects its namespace and renders only that app's Flux
// Kustomization (the roots aside, which give the tree); a change to one app's ks.yaml the same;
// a change to a component every app uses renders them all.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { adoptRepo, justIn, type AdoptRepo } from '../adopt-fixture.ts'
import { git } from '../git-fixture.ts'
import { growHomeOps, NAMESPACES, PER_NS } from '../home-ops-grown.ts'

interface DiffJson {
  namespaces: {
    name: string
    error?: string
    kustomizations?: string[]
    objects: { action: string; ref: { kind: string; name: string; namespace?: string }; diff?: string }[]
  }[]
  rendered: string[]
}

const ROOTS = ['flux-system/cluster-apps', 'flux-system/cluster-vars']

describe('just ci diff, changed-only, on a 60-app home-ops repository', () => {
  let r: AdoptRepo
  let grown = ''
  before(async () => {
    grown = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-home-ops-60-'))
    growHomeOps(grown)
    r = adoptRepo(grown)
    const init = await justIn(r.work, ['init'])
    assert.equal(init.code, 0, init.stderr)
    // the adopted repository, namespace.ts files and all, is the base
    git(r.work, 'add', '-A')
    git(r.work, 'commit', '-qm', 'nsops init')
    git(r.work, 'push', '-q', 'origin', 'HEAD:main')
    git(r.work, 'fetch', '-q', 'origin')
  })
  after(() => {
    fs.rmSync(r.root, { recursive: true, force: true })
    fs.rmSync(grown, { recursive: true, force: true })
  })

  const ciDiff = async (): Promise<{ json: DiffJson; stderr: string }> => {
    fs.rmSync(r.out, { recursive: true, force: true })
    const d = await justIn(r.work, ['ci', 'diff', '--out', r.out])
    assert.equal(d.code, 0, d.stderr)
    return { json: JSON.parse(fs.readFileSync(path.join(r.out, 'diff.json'), 'utf8')) as DiffJson, stderr: d.stderr }
  }
  const reset = () => {
    git(r.work, 'reset', '-q', '--hard', 'origin/main')
    git(r.work, 'clean', '-fdq', '-e', 'node_modules', '-e', '.nsops')
  }
  const edit = (rel: string, from: string | RegExp, to: string) => {
    const file = path.join(r.work, rel)
    const text = fs.readFileSync(file, 'utf8')
    const next = text.replace(from, to)
    assert.notEqual(next, text, `the edit of ${rel} changed nothing`)
    fs.writeFileSync(file, next)
  }

  it("one app's deployment changes: its namespace only, that app's Kustomization only, its change only", async () => {
    reset()
    edit('kubernetes/apps/media/media-app7/app/deployment.yaml', 'media-app7:1.0.0', 'media-app7:1.0.1')
    const { json, stderr } = await ciDiff()
    assert.deepEqual(
      json.namespaces.map((n) => n.name),
      ['media'],
    )
    const media = json.namespaces[0]
    assert.equal(media.error, undefined)
    assert.deepEqual(media.kustomizations, ['flux-system/media-app7'])
    assert.deepEqual(
      media.objects.map((o) => `${o.action} ${o.ref.kind}/${o.ref.namespace}/${o.ref.name}`),
      ['update Deployment/media/media-app7'],
    )
    assert.match(media.objects[0].diff ?? '', /\+\s+image: ghcr\.io\/home-operations\/media-app7:1\.0\.1/)
    // built from the working tree: the roots (they give the tree) and the one app
    assert.deepEqual(json.rendered, [...ROOTS, 'flux-system/media-app7'].sort())
    assert.match(stderr, /changed-only: rendered media \(flux-system\/media-app7\)/)
    const md = fs.readFileSync(path.join(r.out, 'diff.md'), 'utf8')
    assert.match(md, /Only the Flux Kustomization\(s\) this change touches were rendered: `flux-system\/media-app7`/)
  })

  it("one app's ks.yaml changes (a postBuild variable): that app only", async () => {
    reset()
    edit('kubernetes/apps/home/home-app2/ks.yaml', 'VOLSYNC_CAPACITY: 5Gi', 'VOLSYNC_CAPACITY: 8Gi')
    const { json } = await ciDiff()
    assert.deepEqual(
      json.namespaces.map((n) => [n.name, n.kustomizations]),
      [['home', ['flux-system/home-app2']]],
    )
    assert.deepEqual(
      json.namespaces[0].objects.map((o) => `${o.ref.kind}/${o.ref.name}`),
      ['PersistentVolumeClaim/home-app2'],
    )
    // cluster-apps builds the ks.yaml (the new definition comes from it): it is built, no other app
    assert.deepEqual(json.rendered, [...ROOTS, 'flux-system/home-app2'].sort())
  })

  it('a component every app uses changes: every app of every namespace is rendered', async () => {
    reset()
    edit('kubernetes/components/volsync/pvc.yaml', 'accessModes: [ReadWriteOnce]', 'accessModes: [ReadWriteOncePod]')
    const { json } = await ciDiff()
    assert.deepEqual(json.namespaces.map((n) => n.name).sort(), [...NAMESPACES].sort())
    for (const n of json.namespaces) {
      assert.equal(n.kustomizations?.length, PER_NS, n.name)
      assert.equal(n.objects.filter((o) => o.ref.kind === 'PersistentVolumeClaim').length, PER_NS, n.name)
    }
    assert.equal(json.rendered.length, ROOTS.length + NAMESPACES.length * PER_NS)
  })
})
