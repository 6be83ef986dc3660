// The drift baseline from git: only the folders a build needs are unpacked (the namespace's
// folder, the Kustomization's path), the whole commit when one of them is not in it or when
// the build asks for more (`widen`), and nothing is left behind. The build itself is the real
// pinned kustomize: a base outside the namespace's folder fails on the partial tree and
// builds on the widened one, which is what computeDrift does.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { resolveBaseline } from '../../shared/drift/baseline.ts'
import { buildKustomization } from '../../shared/kustomize/build.ts'
import { seedRepo } from '../git-fixture.ts'

const cm = (name: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata: { name: ${name} }\ndata: { a: "1" }\n`

describe('drift baseline', () => {
  let repo = ''
  before(() => {
    repo = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-baseline-test-'))
    seedRepo(repo, {
      'namespaces/a/base/cm.yaml': cm('a'),
      'namespaces/a/base/kustomization.yaml': 'resources: [cm.yaml]\n',
      'namespaces/a/overlays/prod/kustomization.yaml': 'namespace: a\nresources: [../../base]\n',
      // a namespace whose overlay uses a base outside its own folder
      'shared-bases/common/cm.yaml': cm('common'),
      'shared-bases/common/kustomization.yaml': 'resources: [cm.yaml]\n',
      'namespaces/b/overlays/prod/kustomization.yaml': 'namespace: b\nresources: [../../../../shared-bases/common]\n',
      'docs/big.txt': 'x'.repeat(100_000),
    })
  })
  after(() => fs.rmSync(repo, { recursive: true, force: true }))

  it('unpacks only the folders named, and they build', async () => {
    const b = await resolveBaseline('HEAD', repo, undefined, ['namespaces/a'])
    try {
      assert.equal(b.partial, true)
      assert.ok(fs.existsSync(path.join(b.dir, 'namespaces/a/base/cm.yaml')))
      assert.ok(!fs.existsSync(path.join(b.dir, 'docs')), 'the rest of the commit is not unpacked')
      assert.ok(!fs.existsSync(path.join(b.dir, 'namespaces/b')))
      const objects = await buildKustomization(path.join(b.dir, 'namespaces/a/overlays/prod'))
      assert.deepEqual(
        objects.map((o) => `${o.metadata.namespace}/${o.metadata.name}`),
        ['a/a'],
      )
    } finally {
      b.dispose()
    }
    assert.ok(!fs.existsSync(b.dir), 'dispose removes the tree')
  })

  it('a base outside those folders fails the partial build; widen gives the whole commit and it builds', async () => {
    const b = await resolveBaseline('HEAD', repo, undefined, ['namespaces/b'])
    try {
      assert.equal(b.partial, true)
      await assert.rejects(buildKustomization(path.join(b.dir, 'namespaces/b/overlays/prod')))
      await b.widen()
      assert.ok(fs.existsSync(path.join(b.dir, 'docs/big.txt')))
      const objects = await buildKustomization(path.join(b.dir, 'namespaces/b/overlays/prod'))
      assert.deepEqual(
        objects.map((o) => `${o.metadata.namespace}/${o.metadata.name}`),
        ['b/common'],
      )
    } finally {
      b.dispose()
    }
  })

  it('a folder the commit does not have: the whole commit, not an error', async () => {
    const b = await resolveBaseline('HEAD', repo, undefined, ['namespaces/a', 'clusters/not-there'])
    try {
      assert.equal(b.partial, false)
      assert.ok(fs.existsSync(path.join(b.dir, 'docs/big.txt')))
    } finally {
      b.dispose()
    }
  })

  it('no folders named: the whole commit, as before', async () => {
    const b = await resolveBaseline('HEAD', repo)
    try {
      assert.equal(b.partial, false)
      assert.ok(fs.existsSync(path.join(b.dir, 'shared-bases/common/cm.yaml')))
    } finally {
      b.dispose()
    }
  })
})
