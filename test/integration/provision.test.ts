// Tool provisioning against a cache of its own (XDG_CACHE_HOME in a temp dir): PATH first,
// then the cache, then a Go build, else one clear error.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { execFileSync } from 'node:child_process'
import { NsopsError } from '../../shared/core/errors.ts'
import { toolBuildKey, cachedBinaryPath, toolPath, writeStamp } from '../../shared/tools/provision.ts'
import { recipes } from '../../shared/tools/recipes.ts'
import { toolSpec } from '../../shared/tools/versions.ts'

describe('tool provisioning', () => {
  const saved = {
    XDG_CACHE_HOME: process.env.XDG_CACHE_HOME,
    PATH: process.env.PATH,
    NSOPS_NO_DOWNLOAD: process.env.NSOPS_NO_DOWNLOAD,
  }
  let realKustomize = ''
  let tmp = ''

  before(async () => {
    realKustomize = await toolPath('kustomize') // from the real cache, before we redirect it
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-prov-'))
    process.env.XDG_CACHE_HOME = path.join(tmp, 'cache')
    process.env.NSOPS_NO_DOWNLOAD = '1' // this machine is offline; the download step is skipped, not faked
  })
  after(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k]
      else process.env[k] = v
    }
    fs.rmSync(tmp, { recursive: true, force: true })
  })

  it('uses a cached binary and then answers from its memo in well under a second', async () => {
    const spec = toolSpec('kustomize')
    const dest = cachedBinaryPath(spec, 'kustomize')
    fs.mkdirSync(path.dirname(dest), { recursive: true })
    fs.copyFileSync(realKustomize, dest)
    fs.chmodSync(dest, 0o755)
    writeStamp(spec, 'build')
    assert.equal(await toolPath('kustomize', { ignorePath: true }), dest)
    process.env.PATH = '/usr/bin:/bin'
    const t0 = performance.now()
    assert.equal(await toolPath('kustomize'), dest)
    assert.ok(performance.now() - t0 < 500)
    process.env.PATH = saved.PATH
  })

  it('prefers a matching binary on PATH and skips one with another version', async () => {
    const bin = path.join(tmp, 'pathbin')
    fs.mkdirSync(bin)
    // A wrong-version kustomize cannot be had offline, so this one is a stand-in script.
    fs.writeFileSync(path.join(bin, 'kustomize'), '#!/bin/sh\necho v4.0.0\n', { mode: 0o755 })
    process.env.PATH = `${bin}:/usr/bin:/bin`
    fs.rmSync(path.join(process.env.XDG_CACHE_HOME!, 'nsops/tools/resolved.json'), { force: true })
    assert.equal(await toolPath('kustomize'), cachedBinaryPath(toolSpec('kustomize'), 'kustomize'))
    fs.rmSync(path.join(bin, 'kustomize'))
    fs.copyFileSync(realKustomize, path.join(bin, 'kustomize'))
    fs.chmodSync(path.join(bin, 'kustomize'), 0o755)
    fs.rmSync(path.join(process.env.XDG_CACHE_HOME!, 'nsops/tools/resolved.json'), { force: true })
    assert.equal(await toolPath('kustomize'), path.join(bin, 'kustomize'))
    process.env.PATH = saved.PATH
  })

  it('builds a tool from its Go module when nothing else has it, version stamped', async () => {
    const p = await toolPath('jsonnet', { ignorePath: true })
    assert.equal(p, cachedBinaryPath(toolSpec('jsonnet'), 'jsonnet'))
    assert.match(execFileSync(p, ['--version']).toString(), /v0\.22\.0/)
  })

  it('three tools asked for at once (as the sim asks for its Flux controllers) build two at a time', async () => {
    // nsops' cache is the empty temp one; Go's build cache is the machine's, so each build
    // takes seconds (Go would otherwise put its cache under the temp XDG_CACHE_HOME too)
    const machine = { ...process.env, XDG_CACHE_HOME: saved.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache') }
    const goCache = process.env.GOCACHE
    process.env.GOCACHE = execFileSync('go', ['env', 'GOCACHE'], { env: machine, encoding: 'utf8' }).trim()
    const goBuilds = () =>
      execFileSync('ps', ['-o', 'args=', '--ppid', String(process.pid)], { encoding: 'utf8' })
        .split('\n')
        .filter((l) => /^\S*go build /.test(l)).length
    try {
      const tools = ['kustomize-server', 'tanka-renderer', 'flux-build']
      let done = false
      let most = 0
      const all = Promise.all(tools.map((t) => toolPath(t, { ignorePath: true }))).finally(() => (done = true))
      while (!done) {
        most = Math.max(most, goBuilds())
        await new Promise((r) => setTimeout(r, 20)) // sampling the process table, not waiting for a condition
      }
      const paths = await all
      for (const [i, t] of tools.entries()) {
        assert.ok(paths[i].startsWith(path.join(tmp, 'cache', 'nsops', 'tools', t)), `${t} built into the empty cache`)
        assert.ok(fs.statSync(paths[i]).mode & 0o100, `${t} is executable`)
      }
      assert.ok(most >= 1, 'the builds were seen running')
      assert.ok(most <= 2, `at most two go builds at once (saw ${most})`)
    } finally {
      if (goCache === undefined) delete process.env.GOCACHE
      else process.env.GOCACHE = goCache
    }
  })

  it('a cached binary built from another recipe is not used: changing a recipe (its ldflags) means a rebuild', async () => {
    const spec = toolSpec('kustomize')
    const dest = cachedBinaryPath(spec, 'kustomize')
    const key = toolBuildKey(spec)
    const original = recipes.kustomize.ldflags
    recipes.kustomize.ldflags = () => '-s -w -X main.edited=yes'
    try {
      assert.notEqual(toolBuildKey(spec), key, 'the ldflags are part of the cache key')
      process.env.PATH = '/nonexistent' // no go: the stale entry cannot be rebuilt, so it must be refused
      await assert.rejects(toolPath('kustomize', { ignorePath: true }), /kustomize v5\.8\.2 is not available/)
    } finally {
      recipes.kustomize.ldflags = original
      process.env.PATH = saved.PATH
    }
    assert.equal(toolBuildKey(spec), key)
    assert.equal(await toolPath('kustomize', { ignorePath: true }), dest, 'the entry matches its recipe again')
  })

  it('helm is stamped with the Kubernetes version its Makefile derives from client-go, for both packages that read it', () => {
    const flags = recipes.helm.ldflags!(toolSpec('helm'), {
      require: (dep) => (dep === 'k8s.io/client-go' ? 'v0.37.0' : 'v0.0.0'),
    })
    for (const pkg of ['chartutil', 'lint/rules']) {
      assert.match(
        flags,
        new RegExp(
          `-X helm\\.sh/helm/v3/pkg/${pkg}\\.k8sVersionMajor=1 -X helm\\.sh/helm/v3/pkg/${pkg}\\.k8sVersionMinor=37\\b`,
        ),
      )
    }
  })

  it('without go, a cache or a download, says what to install', async () => {
    process.env.PATH = '/nonexistent'
    try {
      await assert.rejects(toolPath('helm', { ignorePath: true }), (err: unknown) => {
        assert.ok(err instanceof NsopsError)
        assert.match(err.message, /helm v3\.22\.0 is not available/)
        assert.match(err.message, /`go` is not installed/)
        assert.match(err.hint ?? '', /Install Go/)
        return true
      })
    } finally {
      process.env.PATH = saved.PATH
    }
  })
})
