// Release downloads checked by sha256, against a real HTTP server on 127.0.0.1 serving real
// artifacts (a bare binary, a tar.gz with the binary in a folder, checksum files in both
// formats projects publish): the right sha256 installs, a wrong one installs nothing, and an
// artifact nobody vouches for is not downloaded. Plus the URLs for linux/darwin × amd64/arm64.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { execFile, execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import * as tar from 'tar'
import YAML from 'yaml'
import { repoRoot } from '../../shared/core/paths.ts'
import { NsopsError } from '../../shared/core/errors.ts'
import { PLATFORMS, currentPlatform, parseChecksums, releaseArtifacts } from '../../shared/tools/download.ts'
import { cachedBinaryPath, downloadRelease } from '../../shared/tools/provision.ts'
import { toolSpec, type ToolSpec } from '../../shared/tools/versions.ts'
import { serveDir, type StaticServer } from '../static-server.ts'

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex')

describe('release downloads are checked by sha256', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-download-'))
  const www = path.join(tmp, 'www')
  const saved = process.env.XDG_CACHE_HOME
  const p = currentPlatform()
  const plat = `${p.os}/${p.arch}`
  const script = '#!/bin/sh\necho demo v1.0.0\n'
  let server: StaticServer
  let archiveSha = ''
  let n = 0
  /** a tool of its own per test (its own cache folder) */
  const spec = (s: Partial<ToolSpec>): ToolSpec => ({
    name: `demo${++n}`,
    version: 'v1.0.0',
    binaries: ['demo'],
    module: 'example.com/demo',
    ...s,
  })
  const installed = (s: ToolSpec) => cachedBinaryPath(s, 'demo')

  before(async () => {
    process.env.XDG_CACHE_HOME = path.join(tmp, 'cache')
    fs.mkdirSync(path.join(www, 'v1.0.0', 'pkg', 'bin'), { recursive: true })
    fs.writeFileSync(path.join(www, 'v1.0.0', `demo-${p.os}-${p.arch}`), script)
    fs.writeFileSync(path.join(www, 'v1.0.0', 'pkg', 'bin', 'demo'), script, { mode: 0o755 })
    const archive = path.join(www, 'v1.0.0', `demo_1.0.0_${p.os}_${p.arch}.tar.gz`)
    await tar.c({ gzip: true, file: archive, cwd: path.join(www, 'v1.0.0') }, ['pkg'])
    archiveSha = sha(fs.readFileSync(archive))
    // goreleaser's checksums.txt: one `<sha256>  <file>` line per artifact
    fs.writeFileSync(
      path.join(www, 'v1.0.0', 'checksums.txt'),
      `${sha('other')}  demo_1.0.0_windows_amd64.zip\n${archiveSha}  demo_1.0.0_${p.os}_${p.arch}.tar.gz\n`,
    )
    // dl.k8s.io's <file>.sha256: the bare hash
    fs.writeFileSync(path.join(www, 'v1.0.0', `demo-${p.os}-${p.arch}.sha256`), `${sha(script)}\n`)
    server = await serveDir(www)
  })
  after(async () => {
    await server?.stop()
    if (saved === undefined) delete process.env.XDG_CACHE_HOME
    else process.env.XDG_CACHE_HOME = saved
    fs.rmSync(tmp, { recursive: true, force: true })
  })

  it('installs a binary whose pinned sha256 matches, and runs it', async () => {
    const s = spec({ release: `${server.url}/{version}/demo-{os}-{arch}`, sha256: { [plat]: sha(script) } })
    await downloadRelease(s)
    assert.equal(execFileSync(installed(s), { encoding: 'utf8' }), 'demo v1.0.0\n')
  })

  it('refuses one whose pinned sha256 differs, naming both and the pin; nothing is installed', async () => {
    const wrong = sha('not the artifact')
    const s = spec({ release: `${server.url}/{version}/demo-{os}-{arch}`, sha256: { [plat]: wrong } })
    await assert.rejects(downloadRelease(s), (err: unknown) => {
      assert.ok(err instanceof NsopsError)
      assert.match(err.message, new RegExp(`sha256 mismatch .*got ${sha(script)}, want ${wrong}`))
      assert.match(err.message, new RegExp(`k8s/versions.yaml \\(${s.name}\\.sha256\\.${plat}\\)`))
      return true
    })
    assert.ok(!fs.existsSync(installed(s)))
  })

  it("without a pin, checks against the project's checksum file (sha256sum lines; a bare hash) and unpacks an archive", async () => {
    const fromList = spec({
      release: `${server.url}/{version}/demo_{number}_{os}_{arch}.tar.gz`,
      checksums: `${server.url}/{version}/checksums.txt`,
    })
    await downloadRelease(fromList)
    assert.equal(execFileSync(installed(fromList), { encoding: 'utf8' }), 'demo v1.0.0\n')
    const fromHashFile = spec({
      release: `${server.url}/{version}/demo-{os}-{arch}`,
      checksums: `${server.url}/{version}/demo-{os}-{arch}.sha256`,
    })
    await downloadRelease(fromHashFile)
    assert.ok(fs.existsSync(installed(fromHashFile)))
  })

  it('refuses when the checksum file does not list the artifact, or disagrees with it', async () => {
    const notListed = spec({
      release: `${server.url}/{version}/demo-{os}-{arch}`,
      checksums: `${server.url}/{version}/checksums.txt`,
    })
    await assert.rejects(downloadRelease(notListed), /checksums\.txt lists no sha256 for demo-/)
    assert.ok(!fs.existsSync(installed(notListed)))
    fs.copyFileSync(path.join(www, 'v1.0.0', 'checksums.txt'), path.join(www, 'v1.0.0', 'other.txt'))
    fs.appendFileSync(path.join(www, 'v1.0.0', 'other.txt'), `${sha('x')}  demo-${p.os}-${p.arch}\n`)
    const disagrees = spec({
      release: `${server.url}/{version}/demo-{os}-{arch}`,
      checksums: `${server.url}/{version}/other.txt`,
    })
    await assert.rejects(downloadRelease(disagrees), /sha256 mismatch/)
    assert.ok(!fs.existsSync(installed(disagrees)))
  })

  it('does not download what nothing vouches for (no pin, no checksum file)', async () => {
    const s = spec({ release: `${server.url}/{version}/demo-{os}-{arch}`, sha256: { [plat]: null } })
    await assert.rejects(downloadRelease(s), /no sha256 for demo-.*pins none under demo\d+\.sha256\./)
    assert.ok(!fs.existsSync(installed(s)))
  })

  it('reads both checksum formats', () => {
    assert.equal(parseChecksums(`${'a'.repeat(64)}\n`, 'x'), 'a'.repeat(64))
    assert.equal(
      parseChecksums(`${'b'.repeat(64)} *./dist/x.tar.gz\n${'c'.repeat(64)}  y\n`, 'x.tar.gz'),
      'b'.repeat(64),
    )
    assert.equal(parseChecksums(`${'c'.repeat(64)}  y\n`, 'x'), undefined)
  })

  it('has a URL for linux/darwin × amd64/arm64 for every tool with a release, spelt as each project names it', () => {
    const urls = (tool: string) => PLATFORMS.map((pl) => releaseArtifacts(toolSpec(tool), pl)[0].url)
    for (const tool of ['kubernetes', 'etcd', 'kwok', 'kustomize', 'helm', 'jsonnet', 'flux', 'actionlint']) {
      const u = urls(tool)
      assert.equal(new Set(u).size, 4, `${tool}: four different URLs`)
      for (const url of u) assert.doesNotMatch(url, /\{/, `${tool}: every placeholder filled in ${url}`)
    }
    assert.deepEqual(
      urls('jsonnet').map((u) => path.basename(u)),
      [
        'go-jsonnet_Linux_x86_64.tar.gz',
        'go-jsonnet_Linux_arm64.tar.gz',
        'go-jsonnet_Darwin_x86_64.tar.gz',
        'go-jsonnet_Darwin_arm64.tar.gz',
      ],
    )
    assert.match(urls('etcd')[3], /etcd-v[\d.]+-darwin-arm64\.zip$/)
    assert.match(urls('kubernetes')[1], /\/bin\/linux\/arm64\/kube-apiserver$/)
  })

  it('just pin-checksums writes the pins for every platform (from the checksum file, else the download), keeping the comments', async () => {
    const file = path.join(tmp, 'versions.yaml')
    fs.writeFileSync(
      file,
      `# pinned tools
demo:
  # renovate: datasource=github-releases depName=example/demo
  version: v1.0.0
  binaries: [demo]
  release: ${server.url}/{version}/demo-{os}-{arch}
  checksums: ${server.url}/{version}/demo-{os}-{arch}.sha256
  sha256: { linux/amd64: , linux/arm64: , darwin/amd64: , darwin/arm64: }
  module: example.com/demo
archived:
  version: v1.0.0
  binaries: [demo]
  release: ${server.url}/{version}/demo_{number}_{os}_{arch}.tar.gz
  module: example.com/demo
`,
    )
    const r = await new Promise<{ code: number; stderr: string }>((resolve) =>
      execFile(
        path.join(repoRoot, 'shared/bin/nsops.ts'),
        ['pin-checksums', '--file', file],
        { env: { ...process.env, CI: '1', NO_COLOR: '1' } },
        (err, _out, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stderr }),
      ),
    )
    assert.equal(r.code, 0, r.stderr)
    const text = fs.readFileSync(file, 'utf8')
    assert.match(text, /^# pinned tools$/m)
    assert.match(text, /# renovate: datasource=github-releases depName=example\/demo/)
    const doc = YAML.parse(text) as Record<string, { sha256: Record<string, string | null> }>
    // this platform's artifacts are served; the others are not published here (404): left empty, named
    assert.equal(doc.demo.sha256[plat], sha(script), 'from the published .sha256 file')
    assert.equal(doc.archived.sha256[plat], archiveSha, 'no checksum file: the download hashed')
    const others = PLATFORMS.map((x) => `${x.os}/${x.arch}`).filter((k) => k !== plat)
    for (const k of others) assert.ok(!doc.demo.sha256[k], `${k} left empty`)
    assert.match(r.stderr, new RegExp(`demo ${others[0]}: left empty \\(.*HTTP 404\\)`))
    // and a download now goes by the pin
    const pinned = spec({
      release: `${server.url}/{version}/demo_{number}_{os}_{arch}.tar.gz`,
      sha256: doc.archived.sha256,
    })
    await downloadRelease(pinned)
    assert.ok(fs.existsSync(installed(pinned)))
  })
})

describe("renovate.json's managers find every pinned version", () => {
  const config = JSON.parse(fs.readFileSync(path.join(repoRoot, 'renovate.json'), 'utf8')) as {
    customManagers: { managerFilePatterns: string[]; matchStrings: string[] }[]
  }
  const depsIn = (rel: string) => {
    const m = config.customManagers.find((x) => x.managerFilePatterns.some((p) => new RegExp(p.slice(1, -1)).test(rel)))
    assert.ok(m, `a custom manager for ${rel}`)
    const text = fs.readFileSync(path.join(repoRoot, rel), 'utf8')
    return [...text.matchAll(new RegExp(m.matchStrings[0], 'g'))].map((x) => x.groups!)
  }

  it('k8s/versions.yaml: each tool built from an upstream module, with its version', () => {
    const deps = depsIn('k8s/versions.yaml')
    const specs = Object.values(
      YAML.parse(fs.readFileSync(path.join(repoRoot, 'k8s/versions.yaml'), 'utf8')) as Record<
        string,
        { version: string; module: string }
      >,
    )
    const upstream = specs.filter((s) => !s.module.startsWith('shared/') && !s.module.startsWith('tanka/'))
    assert.equal(deps.length, upstream.length)
    assert.deepEqual(deps.map((d) => d.currentValue).sort(), upstream.map((s) => s.version).sort())
    for (const d of deps) assert.match(d.datasource, /^(github-releases|go)$/)
    assert.ok(
      deps.some((d) => d.extractVersion === '^kustomize/(?<version>v.+)$'),
      "kustomize's tags are kustomize/vX",
    )
  })

  it('tanka/chartfile.yaml: each chart with its repository', () => {
    const deps = depsIn('tanka/chartfile.yaml')
    const chartfile = YAML.parse(fs.readFileSync(path.join(repoRoot, 'tanka/chartfile.yaml'), 'utf8')) as {
      repositories: { name: string; url: string }[]
      requires: { chart: string; version: string }[]
    }
    assert.equal(deps.length, chartfile.requires.length)
    for (const r of chartfile.requires) {
      const [repo, name] = r.chart.split('/')
      const d = deps.find((x) => x.depName === name)
      assert.ok(d, r.chart)
      assert.equal(d.currentValue, r.version)
      assert.equal(d.registryUrl, chartfile.repositories.find((x) => x.name === repo)!.url)
    }
  })
})
