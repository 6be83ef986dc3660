// The build caches (shared/kustomize/build-cache.ts). Drift's: keyed by git's tree ids of the folders
// built (any change to a file below them is a new key), kept only for builds that reference
// nothing remote, off with NSOPS_DRIFT_CACHE=0. Working trees': reused while every path
// kustomize-server says the build looked at is unchanged. The builds are the real pinned
// kustomize through kustomize-server.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, afterEach, before, describe, it } from 'node:test'
import { buildCacheKey, readBuild, storeBuild } from '../../shared/kustomize/build-cache.ts'
import { stopKustomizeServer } from '../../shared/kustomize/build.ts'
import { buildKustomization } from '../../shared/kustomize/build.ts'
import { commitAll, git, seedRepo, write } from '../git-fixture.ts'

const cm = (name: string, v = '1') =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata: { name: ${name} }\ndata: { a: "${v}" }\n`
describe('drift build cache', () => {
  let repo = ''
  let cache = ''
  const saved = process.env.XDG_CACHE_HOME
  before(() => {
    repo = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-build-cache-test-'))
    seedRepo(repo, {
      'namespaces/a/base/cm.yaml': cm('a'),
      'namespaces/a/base/kustomization.yaml': 'resources: [cm.yaml]\n',
      'namespaces/a/overlays/prod/kustomization.yaml':
        '# served at http://a.example\nnamespace: a\nresources: [../../base]\n',
      'other/x.yaml': cm('x'),
    })
  })
  afterEach(() => {
    // each test's cache in its own folder: the kustomize-server binary is still found in the
    // real tool cache, so only the drift-builds folder moves
    if (cache) fs.rmSync(cache, { recursive: true, force: true })
    cache = ''
    delete process.env.NSOPS_DRIFT_CACHE
    delete process.env.NSOPS_BUILD_CACHE
  })
  after(() => stopKustomizeServer())
  after(() => fs.rmSync(repo, { recursive: true, force: true }))

  const folders = ['namespaces/a']
  const what = { ksPath: 'namespaces/a/overlays/prod', overlay: 'namespaces/a/overlays/prod' }
  const useCache = async <T>(fn: (dir: string) => Promise<T>): Promise<T> => {
    const real = (await import('../../shared/core/paths.ts')).cacheDir()
    cache = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-build-cache-dir-'))
    // drift-builds under a temp cache; tools/ linked to the real one
    fs.mkdirSync(path.join(cache, 'nsops'))
    fs.symlinkSync(path.join(real, 'tools'), path.join(cache, 'nsops', 'tools'))
    process.env.XDG_CACHE_HOME = cache
    try {
      return await fn(path.join(cache, 'nsops', 'drift-builds'))
    } finally {
      if (saved === undefined) delete process.env.XDG_CACHE_HOME
      else process.env.XDG_CACHE_HOME = saved
    }
  }

  it('a stored build is found again under the same tree, and a change below the folder is a new key', async () => {
    await useCache(async (dir) => {
      const k1 = await buildCacheKey(repo, 'HEAD', folders, what)
      assert.ok(k1, 'a key for a commit that has the folder')
      assert.equal(k1.sha, git(repo, 'rev-parse', 'HEAD').trim())
      assert.equal(readBuild(k1.key), undefined, 'nothing stored yet')
      const objects = await buildKustomization(path.join(repo, 'namespaces/a/overlays/prod'))
      storeBuild(k1.key, repo, folders, { buildPath: 'namespaces/a/overlays/prod', objects })
      assert.equal(fs.readdirSync(dir).length, 1)
      assert.deepEqual(readBuild(k1.key), { buildPath: 'namespaces/a/overlays/prod', objects })

      // a commit outside the folder keeps the key; one below it changes it
      write(repo, 'other/x.yaml', cm('x', '2'))
      commitAll(repo, 'outside')
      assert.equal((await buildCacheKey(repo, 'HEAD', folders, what))?.key, k1.key)
      write(repo, 'namespaces/a/base/cm.yaml', cm('a', '2'))
      const sha = commitAll(repo, 'inside')
      const k2 = await buildCacheKey(repo, 'HEAD', folders, what)
      assert.ok(k2 && k2.key !== k1.key && k2.sha === sha)
      assert.equal(readBuild(k2.key), undefined)
      // the build path asked for is part of the key
      assert.notEqual((await buildCacheKey(repo, 'HEAD', folders, { ...what, ksPath: 'elsewhere' }))?.key, k2.key)
    })
  })

  it("a commit id's trees are asked of git once (ids never change); a name such as HEAD every time", async () => {
    await useCache(async () => {
      const sha = git(repo, 'rev-parse', 'HEAD').trim()
      const k = await buildCacheKey(repo, sha, folders, what)
      assert.ok(k && k.sha === sha)
      const saved = process.env.PATH
      process.env.PATH = path.join(repo, 'no-such-dir') // git cannot be started now
      try {
        assert.deepEqual(await buildCacheKey(repo, sha, folders, what), k, 'answered without git')
        assert.equal(await buildCacheKey(repo, 'HEAD', folders, what), undefined, 'a name needs git')
        assert.equal(await buildCacheKey(repo, sha, ['other'], what), undefined, 'other folders need git')
      } finally {
        process.env.PATH = saved
      }
    })
  })

  it('no key for a folder the commit lacks, a revision that is not one, or with NSOPS_DRIFT_CACHE=0', async () => {
    await useCache(async () => {
      assert.equal(await buildCacheKey(repo, 'HEAD', ['namespaces/missing'], what), undefined)
      assert.equal(await buildCacheKey(repo, 'no-such-branch', folders, what), undefined)
      assert.equal(await buildCacheKey(repo, '--output=x', folders, what), undefined)
      process.env.NSOPS_DRIFT_CACHE = '0'
      assert.equal(await buildCacheKey(repo, 'HEAD', folders, what), undefined)
    })
  })

  it('a build that references a remote base is not stored (it can change under the same tree)', async () => {
    await useCache(async (dir) => {
      write(
        repo,
        'namespaces/a/overlays/prod/kustomization.yaml',
        'namespace: a\nresources:\n  - ../../base\n  - https://github.com/example/repo//deploy?ref=v1\n',
      )
      commitAll(repo, 'remote')
      const k = await buildCacheKey(repo, 'HEAD', folders, what)
      assert.ok(k)
      storeBuild(k.key, repo, folders, { buildPath: 'namespaces/a/overlays/prod', objects: [] })
      assert.equal(fs.existsSync(dir) ? fs.readdirSync(dir).length : 0, 0)
      assert.equal(readBuild(k.key), undefined)
    })
  })

  describe('working trees', () => {
    let tree = ''
    const overlay = () => path.join(tree, 'overlays/prod')
    const past = new Date(Date.now() - 60_000)
    // files written a minute ago: a build right after a write is not kept (it may have read
    // the bytes before the write), which the last test shows
    const settle = () => {
      for (const e of fs.readdirSync(tree, { recursive: true, withFileTypes: true }))
        fs.utimesSync(path.join(e.parentPath, e.name), past, past)
      fs.utimesSync(tree, past, past)
    }
    before(() => {
      tree = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-work-build-test-'))
      write(tree, 'base/cm.yaml', cm('a'))
      write(tree, 'base/kustomization.yaml', 'resources: [cm.yaml]\n')
      write(tree, 'overlays/prod/kustomization.yaml', 'namespace: w\nresources: [../../base]\n')
    })
    after(() => fs.rmSync(tree, { recursive: true, force: true }))
    const entries = (dir: string) => (fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.json')) : [])
    const value = async () => ((await buildKustomization(overlay(), { reuse: true }))[0].data as { a: string }).a

    it('is reused while nothing it read changed (a file with the same stamps is not read again), and built again after an edit', async () => {
      await useCache(async (dir) => {
        const builds = path.join(dir, '..', 'builds')
        settle()
        assert.equal(await value(), '1')
        assert.equal(entries(builds).length, 1, 'kept')
        // the bytes change but mtime, size and inode stay: the kept build answers, so no file was read
        const file = path.join(tree, 'base/cm.yaml')
        fs.writeFileSync(file, cm('a', '9'))
        fs.utimesSync(file, past, past)
        assert.equal(await value(), '1')
        // an edit as editors make it: a new mtime
        fs.writeFileSync(file, cm('a', '2'))
        const later = new Date(Date.now() - 30_000)
        fs.utimesSync(file, later, later)
        assert.equal(await value(), '2')
        // without reuse nothing is read from the cache
        assert.equal(((await buildKustomization(overlay()))[0].data as { a: string }).a, '2')
      })
    })

    it('a file the build looked for and did not find appears: built again', async () => {
      await useCache(async () => {
        settle()
        await value()
        // kustomize looks for kustomization.yml beside kustomization.yaml; with both it refuses
        write(tree, 'base/kustomization.yml', 'resources: [cm.yaml]\n')
        await assert.rejects(value(), /Found multiple kustomization files/)
        fs.rmSync(path.join(tree, 'base/kustomization.yml'))
      })
    })

    it('a build whose inputs changed a moment before is not kept; NSOPS_BUILD_CACHE=0 keeps nothing', async () => {
      await useCache(async (dir) => {
        const builds = path.join(dir, '..', 'builds')
        write(tree, 'base/cm.yaml', cm('a', '3'))
        assert.equal(await value(), '3')
        assert.equal(entries(builds).length, 0)
        settle()
        process.env.NSOPS_BUILD_CACHE = '0'
        assert.equal(await value(), '3')
        assert.equal(entries(builds).length, 0)
        delete process.env.NSOPS_BUILD_CACHE
        assert.equal(await value(), '3')
        assert.equal(entries(builds).length, 1)
      })
    })
  })
})
