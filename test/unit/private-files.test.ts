// What nsops writes that may hold a Secret or a task's output is its owner's only, whatever
// the umask (022 here, as on most machines): the build caches (built manifests) and the task
// logs are 0600 in folders 0700, and a folder an older nsops made 0755 is tightened.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { KubeConfig } from '@kubernetes/client-node'
import { defineNamespace, namespacePaths } from '../../shared/config/namespace-config.ts'
import { cacheDir } from '../../shared/core/paths.ts'
import { clientsFor } from '../../shared/kube/client.ts'
import { buildCacheKey, storeBuild } from '../../shared/kustomize/build-cache.ts'
import { buildKustomization, stopKustomizeServer } from '../../shared/kustomize/build.ts'
import { runTask } from '../../shared/tasks/run.ts'
import { seedRepo } from '../git-fixture.ts'

const mode = (p: string) => (fs.statSync(p).mode & 0o777).toString(8)

describe('private files', () => {
  const saved = { umask: process.umask(), cache: process.env.XDG_CACHE_HOME, state: process.env.NSOPS_STATE_DIR }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-private-'))
  const realCache = cacheDir()

  before(() => {
    process.umask(0o022)
    // a cache of its own; the pinned tools are linked from the real one
    fs.mkdirSync(path.join(tmp, 'cache', 'nsops'), { recursive: true })
    fs.symlinkSync(path.join(realCache, 'tools'), path.join(tmp, 'cache', 'nsops', 'tools'))
    process.env.XDG_CACHE_HOME = path.join(tmp, 'cache')
    process.env.NSOPS_STATE_DIR = path.join(tmp, 'state')
  })
  after(async () => {
    process.umask(saved.umask)
    for (const [k, v] of [
      ['XDG_CACHE_HOME', saved.cache],
      ['NSOPS_STATE_DIR', saved.state],
    ] as const)
      if (v === undefined) delete process.env[k]
      else process.env[k] = v
    await stopKustomizeServer()
    fs.rmSync(tmp, { recursive: true, force: true })
  })

  it("the working tree's build cache: 0600 files in a 0700 folder", async () => {
    const repo = path.join(tmp, 'repo')
    fs.mkdirSync(repo)
    seedRepo(repo, {
      'ns/kustomization.yaml': 'resources: [secret.yaml]\n',
      'ns/secret.yaml': 'apiVersion: v1\nkind: Secret\nmetadata: { name: dev }\nstringData: { password: dev-only }\n',
    })
    // inputs older than the build, so it is kept
    const old = new Date(Date.now() - 10_000)
    for (const f of ['ns/kustomization.yaml', 'ns/secret.yaml', 'ns']) fs.utimesSync(path.join(repo, f), old, old)
    await buildKustomization(path.join(repo, 'ns'), { reuse: true })
    const dir = path.join(tmp, 'cache', 'nsops', 'builds')
    const files = fs.readdirSync(dir)
    assert.ok(files.length > 0, 'the build was cached')
    assert.equal(mode(dir), '700')
    for (const f of files) assert.equal(mode(path.join(dir, f)), '600', f)
  })

  it("drift's build cache: 0600, and a folder made 0755 before is tightened", async () => {
    const dir = path.join(tmp, 'cache', 'nsops', 'drift-builds')
    fs.mkdirSync(dir, { recursive: true, mode: 0o755 })
    fs.chmodSync(dir, 0o755)
    const repo = path.join(tmp, 'repo')
    const k = await buildCacheKey(repo, 'HEAD', ['ns'], { ksPath: 'ns', overlay: 'ns' })
    assert.ok(k)
    storeBuild(k.key, repo, ['ns'], { buildPath: 'ns', objects: [] } as never)
    assert.equal(mode(dir), '700')
    assert.equal(mode(path.join(dir, `${k.key}.json`)), '600')
  })

  it("a task's log: 0600 in a 0700 folder", async () => {
    const kc = new KubeConfig()
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: 'https://127.0.0.1:1' }],
      users: [{ name: 'u', token: 'x' }],
      contexts: [{ name: 'c', cluster: 'c', user: 'u' }],
      currentContext: 'c',
    })
    const defined = defineNamespace({
      name: 'private',
      description: 'file modes',
      namespaces: { dev: 'private-dev', prod: 'private' },
      tasks: { hello: { run: async ({ $ }) => $`echo task output` } },
    })
    // the task runs in the namespace's folder: one in the temp dir
    const ns = { ...defined, paths: namespacePaths(path.join(tmp, 'namespaces', 'private')) }
    fs.mkdirSync(ns.paths.root, { recursive: true })
    const [run] = await runTask('hello', { kube: clientsFor(kc), ns, env: 'dev' })
    assert.ok(run.ok, run.lines.join('\n'))
    const dir = path.join(tmp, 'state', 'tasks', 'private')
    assert.equal(mode(dir), '700')
    assert.equal(mode(path.join(dir, 'hello.log')), '600')
    assert.match(fs.readFileSync(path.join(dir, 'hello.log'), 'utf8'), /task output/)
  })
})
