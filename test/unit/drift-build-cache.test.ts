// The drift build cache: keyed by git's tree ids of the folders built (so any change to a file
// below them is a new key), kept only for builds that reference nothing remote, off with
// NSOPS_DRIFT_CACHE=0. The builds are the real pinned kustomize through kustomize-server.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, afterEach, before, describe, it } from 'node:test'
import { buildKey, readBuild, storeBuild } from '../../shared/drift/build-cache.ts'
import { buildKustomization } from '../../shared/kustomize.ts'
import { git, write } from '../git-fixture.ts'

const cm = (name: string, v = '1') => `apiVersion: v1\nkind: ConfigMap\nmetadata: { name: ${name} }\ndata: { a: "${v}" }\n`
const commit = (repo: string, msg: string) => {
  git(repo, 'add', '-A')
  git(repo, '-c', 'user.name=t', '-c', 'user.email=t@example.com', 'commit', '-qm', msg)
  return git(repo, 'rev-parse', 'HEAD').trim()
}

describe('drift build cache', () => {
  let repo = ''
  let cache = ''
  const saved = process.env.XDG_CACHE_HOME
  before(() => {
    repo = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-build-cache-test-'))
    git(repo, 'init', '-q')
    write(repo, 'namespaces/a/base/cm.yaml', cm('a'))
    write(repo, 'namespaces/a/base/kustomization.yaml', 'resources: [cm.yaml]\n')
    write(repo, 'namespaces/a/overlays/prod/kustomization.yaml', '# served at http://a.example\nnamespace: a\nresources: [../../base]\n')
    write(repo, 'other/x.yaml', cm('x'))
    commit(repo, 'seed')
  })
  afterEach(() => {
    // each test's cache in its own folder: the kustomize-server binary is still found in the
    // real tool cache, so only the drift-builds folder moves
    if (cache) fs.rmSync(cache, { recursive: true, force: true })
    cache = ''
    delete process.env.NSOPS_DRIFT_CACHE
  })
  after(() => fs.rmSync(repo, { recursive: true, force: true }))

  const folders = ['namespaces/a']
  const what = { ksPath: 'namespaces/a/overlays/prod', overlay: 'namespaces/a/overlays/prod' }
  const useCache = async <T>(fn: (dir: string) => Promise<T>): Promise<T> => {
    const real = (await import('../../shared/paths.ts')).cacheDir()
    cache = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-build-cache-dir-'))
    // drift-builds under a temp cache; tools/ linked to the real one
    fs.mkdirSync(path.join(cache, 'nsops'))
    fs.symlinkSync(path.join(real, 'tools'), path.join(cache, 'nsops', 'tools'))
    process.env.XDG_CACHE_HOME = cache
    try { return await fn(path.join(cache, 'nsops', 'drift-builds')) } finally {
      if (saved === undefined) delete process.env.XDG_CACHE_HOME
      else process.env.XDG_CACHE_HOME = saved
    }
  }

  it('a stored build is found again under the same tree, and a change below the folder is a new key', async () => {
    await useCache(async (dir) => {
      const k1 = await buildKey(repo, 'HEAD', folders, what)
      assert.ok(k1, 'a key for a commit that has the folder')
      assert.equal(k1.sha, git(repo, 'rev-parse', 'HEAD').trim())
      assert.equal(readBuild(k1.key), undefined, 'nothing stored yet')
      const objects = await buildKustomization(path.join(repo, 'namespaces/a/overlays/prod'))
      storeBuild(k1.key, repo, folders, { buildPath: 'namespaces/a/overlays/prod', objects })
      assert.equal(fs.readdirSync(dir).length, 1)
      assert.deepEqual(readBuild(k1.key), { buildPath: 'namespaces/a/overlays/prod', objects })

      // a commit outside the folder keeps the key; one below it changes it
      write(repo, 'other/x.yaml', cm('x', '2'))
      commit(repo, 'outside')
      assert.equal((await buildKey(repo, 'HEAD', folders, what))?.key, k1.key)
      write(repo, 'namespaces/a/base/cm.yaml', cm('a', '2'))
      const sha = commit(repo, 'inside')
      const k2 = await buildKey(repo, 'HEAD', folders, what)
      assert.ok(k2 && k2.key !== k1.key && k2.sha === sha)
      assert.equal(readBuild(k2.key), undefined)
      // the build path asked for is part of the key
      assert.notEqual((await buildKey(repo, 'HEAD', folders, { ...what, ksPath: 'elsewhere' }))?.key, k2.key)
    })
  })

  it('no key for a folder the commit lacks, a revision that is not one, or with NSOPS_DRIFT_CACHE=0', async () => {
    await useCache(async () => {
      assert.equal(await buildKey(repo, 'HEAD', ['namespaces/missing'], what), undefined)
      assert.equal(await buildKey(repo, 'no-such-branch', folders, what), undefined)
      assert.equal(await buildKey(repo, '--output=x', folders, what), undefined)
      process.env.NSOPS_DRIFT_CACHE = '0'
      assert.equal(await buildKey(repo, 'HEAD', folders, what), undefined)
    })
  })

  it('a build that references a remote base is not stored (it can change under the same tree)', async () => {
    await useCache(async (dir) => {
      write(repo, 'namespaces/a/overlays/prod/kustomization.yaml', 'namespace: a\nresources:\n  - ../../base\n  - https://github.com/example/repo//deploy?ref=v1\n')
      commit(repo, 'remote')
      const k = await buildKey(repo, 'HEAD', folders, what)
      assert.ok(k)
      storeBuild(k.key, repo, folders, { buildPath: 'namespaces/a/overlays/prod', objects: [] })
      assert.equal(fs.existsSync(dir) ? fs.readdirSync(dir).length : 0, 0)
      assert.equal(readBuild(k.key), undefined)
    })
  })
})
