// Chart vendoring against a real Helm chart repository: chart directories packed as real
// .tgz archives (as `helm package` lays them out), an index.yaml with their sha256 digests,
// served over HTTP on 127.0.0.1. The server counts requests, so "fetched nothing" is measured.
import assert from 'node:assert/strict'
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { promisify } from 'node:util'
import * as tar from 'tar'
import { stringify } from 'yaml'
import { NsopsError } from '../../shared/core/errors.ts'
import { registryProcess, untilRegistryAnswers } from '../../shared/cluster/sim/registry.ts'
import { LOCK_FILE, vendorCharts, vendorSummaryLines } from '../../shared/helm/vendor.ts'
import { toolPath } from '../../shared/tools/provision.ts'
import { just } from '../just.ts'
import { serveDir, type StaticServer } from '../static-server.ts'

interface Packed {
  name: string
  version: string
  file: string
  digest: string
}

/** Writes a chart directory and packs it like `helm package`: gzip, files under `<name>/`. */
async function packChart(work: string, outDir: string, name: string, version: string): Promise<Packed> {
  const src = path.join(work, `src-${name}-${version}`)
  fs.mkdirSync(path.join(src, name, 'templates'), { recursive: true })
  fs.writeFileSync(
    path.join(src, name, 'Chart.yaml'),
    stringify({ apiVersion: 'v2', name, version, description: `${name} for tests`, type: 'application' }),
  )
  fs.writeFileSync(path.join(src, name, 'values.yaml'), `replicas: 1\nimage: ${name}:${version}\n`)
  fs.writeFileSync(
    path.join(src, name, 'templates', 'deployment.yaml'),
    'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\nspec:\n  replicas: {{ .Values.replicas }}\n',
  )
  fs.mkdirSync(outDir, { recursive: true })
  const file = path.join(outDir, `${name}-${version}.tgz`)
  await tar.c({ gzip: true, cwd: src, file, portable: true }, [name])
  const digest = createHash('sha256').update(fs.readFileSync(file)).digest('hex')
  return { name, version, file, digest }
}

function writeIndex(repoDir: string, charts: (Packed & { url: string })[]): void {
  const entries: Record<string, object[]> = {}
  for (const c of charts) {
    ;(entries[c.name] ??= []).push({
      apiVersion: 'v2',
      name: c.name,
      version: c.version,
      digest: c.digest,
      urls: [c.url],
      created: '2024-01-01T00:00:00Z',
    })
  }
  fs.writeFileSync(
    path.join(repoDir, 'index.yaml'),
    stringify({ apiVersion: 'v1', entries, generated: '2024-01-01T00:00:00Z' }),
  )
}

describe('helm chart vendoring', () => {
  let root: string
  let server: StaticServer | undefined
  let base: string
  let requests: string[] = []

  before(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-helm-vendor-'))
    const site = path.join(root, 'site')

    // "stable": relative URLs, one of them into a subdirectory, and two versions of redis.
    const stable = path.join(site, 'stable')
    const redis1 = await packChart(root, stable, 'redis', '18.19.4')
    const redis2 = await packChart(root, stable, 'redis', '18.20.0')
    const nginx = await packChart(root, path.join(stable, 'packages'), 'nginx', '1.2.3')
    const nginxOld = await packChart(root, path.join(stable, 'packages'), 'nginx', '1.1.0')
    writeIndex(stable, [
      { ...redis1, url: 'redis-18.19.4.tgz' },
      { ...redis2, url: 'redis-18.20.0.tgz' },
      { ...nginx, url: 'packages/nginx-1.2.3.tgz' },
      { ...nginxOld, url: 'packages/nginx-1.1.0.tgz' },
    ])

    // "tampered": 2.0.0's archive does not match the digest its index advertises.
    const tampered = path.join(site, 'tampered')
    const good = await packChart(root, tampered, 'app', '1.0.0')
    const bad = await packChart(root, tampered, 'app', '2.0.0')
    writeIndex(tampered, [
      { ...good, url: 'app-1.0.0.tgz' },
      { ...bad, digest: createHash('sha256').update('something else').digest('hex'), url: 'app-2.0.0.tgz' },
    ])

    server = await serveDir(site, (url) => requests.push(url))
    base = server.url
  })

  after(async () => {
    await server?.stop()
    if (root) fs.rmSync(root, { recursive: true, force: true })
  })

  /** A project dir with a chartfile; returns the chartfile path. */
  function project(chartfile: string): string {
    const dir = fs.mkdtempSync(path.join(root, 'project-'))
    const file = path.join(dir, 'chartfile.yaml')
    fs.writeFileSync(file, chartfile)
    return file
  }

  function chartfileFor(pins: Record<string, string>, repo = 'stable'): string {
    const requires = Object.entries(pins)
      .map(([chart, version]) => `  - chart: ${repo}/${chart}\n    version: "${version}"\n`)
      .join('')
    return `version: 1\nrepositories:\n  - name: ${repo}\n    url: ${base}/${repo}\nrequires:\n${requires}`
  }

  async function rejection(p: Promise<unknown>): Promise<NsopsError> {
    const err = await p.then(
      () => undefined,
      (e: unknown) => e,
    )
    assert.ok(err instanceof NsopsError, `expected an NsopsError, got ${String(err)}`)
    return err
  }

  function chartVersion(dir: string): string {
    return /^version: (.*)$/m.exec(fs.readFileSync(path.join(dir, 'Chart.yaml'), 'utf8'))?.[1] ?? ''
  }

  it('vendors two charts into <dest>/<name> and records them in the lock', async () => {
    const file = project(chartfileFor({ redis: '18.19.4', nginx: '1.2.3' }))
    requests = []
    const summary = await vendorCharts({ chartfile: file })
    const charts = path.join(path.dirname(file), 'charts')
    assert.equal(chartVersion(path.join(charts, 'redis')), '18.19.4')
    assert.equal(chartVersion(path.join(charts, 'nginx')), '1.2.3')
    assert.ok(fs.existsSync(path.join(charts, 'redis', 'values.yaml')))
    assert.ok(fs.existsSync(path.join(charts, 'nginx', 'templates', 'deployment.yaml')))
    assert.deepEqual(
      summary.fetched.map((c) => `${c.directory}@${c.version}`),
      ['redis@18.19.4', 'nginx@1.2.3'],
    )
    assert.deepEqual(vendorSummaryLines(summary), ['fetched redis 18.19.4', 'fetched nginx 1.2.3'])
    // one index for the repository, one archive per chart
    assert.deepEqual(requests.sort(), [
      '/stable/index.yaml',
      '/stable/packages/nginx-1.2.3.tgz',
      '/stable/redis-18.19.4.tgz',
    ])
    const lock = JSON.parse(fs.readFileSync(path.join(charts, LOCK_FILE), 'utf8'))
    assert.equal(lock.charts.redis.version, '18.19.4')
    assert.equal(lock.charts.redis.repository, `${base}/stable`)
    assert.match(lock.charts.redis.digest, /^[0-9a-f]{64}$/)
    assert.deepEqual(fs.readdirSync(charts).sort(), [LOCK_FILE, 'nginx', 'redis'])
  })

  it('fetches nothing, not even index.yaml, when the charts match the lock', async () => {
    const file = project(chartfileFor({ redis: '18.19.4', nginx: '1.2.3' }))
    await vendorCharts({ chartfile: file })
    requests = []
    const summary = await vendorCharts({ chartfile: file })
    assert.equal(requests.length, 0, `requests: ${requests.join(', ')}`)
    assert.deepEqual(summary.fetched, [])
    assert.deepEqual(vendorSummaryLines(summary), ['up to date: redis 18.19.4', 'up to date: nginx 1.2.3'])
  })

  it('re-vendors only the chart whose pinned version changed', async () => {
    const file = project(chartfileFor({ redis: '18.19.4', nginx: '1.2.3' }))
    await vendorCharts({ chartfile: file })
    fs.writeFileSync(file, chartfileFor({ redis: '18.20.0', nginx: '1.2.3' }))
    requests = []
    const summary = await vendorCharts({ chartfile: file })
    assert.deepEqual(requests.sort(), ['/stable/index.yaml', '/stable/redis-18.20.0.tgz'])
    assert.deepEqual(
      summary.fetched.map((c) => `${c.directory}@${c.version}`),
      ['redis@18.20.0'],
    )
    assert.deepEqual(
      summary.unchanged.map((c) => `${c.directory}@${c.version}`),
      ['nginx@1.2.3'],
    )
    assert.equal(chartVersion(path.join(path.dirname(file), 'charts', 'redis')), '18.20.0')
  })

  it('re-vendors a chart whose directory was deleted or changed by hand', async () => {
    const file = project(chartfileFor({ redis: '18.19.4' }))
    await vendorCharts({ chartfile: file })
    const redis = path.join(path.dirname(file), 'charts', 'redis')
    fs.rmSync(redis, { recursive: true })
    requests = []
    assert.deepEqual(
      (await vendorCharts({ chartfile: file })).fetched.map((c) => c.directory),
      ['redis'],
    )
    assert.equal(chartVersion(redis), '18.19.4')
    assert.equal(requests.length, 2)
  })

  it('removes a chart it vendored once the chartfile no longer requires it, and leaves other directories alone', async () => {
    const file = project(chartfileFor({ redis: '18.19.4', nginx: '1.2.3' }))
    const charts = path.join(path.dirname(file), 'charts')
    await vendorCharts({ chartfile: file })
    fs.mkdirSync(path.join(charts, 'handmade'))
    fs.writeFileSync(file, chartfileFor({ redis: '18.19.4' }))
    requests = []
    const summary = await vendorCharts({ chartfile: file })
    assert.deepEqual(summary.removed, ['nginx'])
    assert.equal(requests.length, 0)
    assert.deepEqual(fs.readdirSync(charts).sort(), [LOCK_FILE, 'handmade', 'redis'])
    assert.equal(JSON.parse(fs.readFileSync(path.join(charts, LOCK_FILE), 'utf8')).charts.nginx, undefined)
  })

  it('honours the chartfile directory, a per-chart directory and an explicit dest', async () => {
    const file = project(
      `version: 1\ndirectory: vendor/charts\nrepositories:\n  - name: stable\n    url: ${base}/stable/\nrequires:\n  - chart: stable/redis\n    version: 18.19.4\n  - chart: stable/redis\n    version: 18.20.0\n    directory: redis-next\n`,
    )
    await vendorCharts({ chartfile: file })
    assert.equal(chartVersion(path.join(path.dirname(file), 'vendor', 'charts', 'redis')), '18.19.4')
    assert.equal(chartVersion(path.join(path.dirname(file), 'vendor', 'charts', 'redis-next')), '18.20.0')
    const dest = path.join(root, `dest-${Date.now()}`)
    await vendorCharts({ chartfile: file, dest })
    assert.deepEqual(fs.readdirSync(dest).sort(), [LOCK_FILE, 'redis', 'redis-next'])
  })

  it('refuses an archive whose sha256 differs from the index digest and leaves no chart directory', async () => {
    const file = project(chartfileFor({ app: '2.0.0' }, 'tampered'))
    const err = await rejection(vendorCharts({ chartfile: file }))
    assert.match(err.message, /Refused tampered\/app 2\.0\.0/)
    assert.match(err.message, /sha256/)
    const charts = path.join(path.dirname(file), 'charts')
    // no chart directory, no partial download, no lock entry
    assert.deepEqual(fs.readdirSync(charts), [])
  })

  it('keeps the vendored version when the upgrade is refused for a wrong digest', async () => {
    const file = project(chartfileFor({ app: '1.0.0' }, 'tampered'))
    await vendorCharts({ chartfile: file })
    fs.writeFileSync(file, chartfileFor({ app: '2.0.0' }, 'tampered'))
    await rejection(vendorCharts({ chartfile: file }))
    const charts = path.join(path.dirname(file), 'charts')
    assert.equal(chartVersion(path.join(charts, 'app')), '1.0.0')
    assert.deepEqual(fs.readdirSync(charts).sort(), [LOCK_FILE, 'app'])
    assert.equal(JSON.parse(fs.readFileSync(path.join(charts, LOCK_FILE), 'utf8')).charts.app.version, '1.0.0')
  })

  it('names the chart, the version asked and the versions available when the pin does not exist, and unpacks nothing', async () => {
    const file = project(chartfileFor({ nginx: '1.2.3', redis: '9.9.9' }))
    requests = []
    const err = await rejection(vendorCharts({ chartfile: file }))
    assert.match(err.message, /stable\/redis has no version 9\.9\.9/)
    assert.match(err.message, /available: 18\.20\.0, 18\.19\.4/)
    assert.match(err.message, /chartfile\.yaml:8:/)
    // resolved before downloading: nginx was not fetched either
    assert.deepEqual(requests, ['/stable/index.yaml'])
    assert.equal(fs.existsSync(path.join(path.dirname(file), 'charts', 'nginx')), false)
  })

  it('names a chart the repository does not have', async () => {
    const err = await rejection(vendorCharts({ chartfile: project(chartfileFor({ postgres: '1.0.0' })) }))
    assert.match(err.message, /stable\/postgres is not in the repository/)
    assert.match(err.message, /nginx, redis/)
  })

  it('reports malformed YAML in the chartfile with file:line', async () => {
    const file = project(
      `version: 1\nrepositories:\n  - name: stable\n    url: ${base}/stable\nrequires:\n  - chart: stable/redis\n   version: 18.19.4\n`,
    )
    requests = []
    const err = await rejection(vendorCharts({ chartfile: file }))
    assert.match(err.message, new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:7:\\d+: malformed YAML`))
    assert.equal(requests.length, 0)
  })

  it('reports a bad entry with file:line and what is wrong', async () => {
    const cases: [string, RegExp][] = [
      [
        `repositories:\n  - name: stable\n    url: ${base}/stable\nrequires:\n  - chart: redis\n    version: 1.0.0\n`,
        /chartfile\.yaml:5: requires\[0\]: chart "redis" must be written repo\/name/,
      ],
      [
        `repositories:\n  - name: stable\n    url: ${base}/stable\nrequires:\n  - chart: other/redis\n    version: 1.0.0\n`,
        /chartfile\.yaml:5: .*repository "other", which is not under repositories \(known: stable\)/,
      ],
      [
        `repositories:\n  - name: stable\n    url: ${base}/stable\nrequires:\n  - chart: stable/redis\n`,
        /chartfile\.yaml:5: requires\[0\]: chart stable\/redis has no version/,
      ],
      [
        `repositories:\n  - name: stable\n    url: ${base}/stable\nrequires:\n  - chart: stable/redis\n    version: 1.10\n`,
        /chartfile\.yaml:6: .*quote it \("1\.10"\)/,
      ],
      [`repos:\n  - name: stable\n`, /chartfile\.yaml:1: the chartfile: unknown key "repos"/],
      [
        `repositories:\n  - name: stable\n    url: not a url\n`,
        /chartfile\.yaml:3: repositories\[0\]: "not a url" is not a URL/,
      ],
      [
        `repositories:\n  - name: stable\n    url: ${base}/stable\n    password: hunter2\n`,
        /chartfile\.yaml:4: repositories\[0\]: password is not supported yet/,
      ],
      [
        `repositories:\n  - name: stable\n    url: ${base}/stable\nrequires:\n  - chart: stable/redis\n    version: 1.0.0\n  - chart: stable/redis\n    version: 2.0.0\n`,
        /chartfile\.yaml:7: .*would be unpacked into redis\/, as stable\/redis 1\.0\.0 \(line 5\)/,
      ],
      [`version: 2\n`, /chartfile\.yaml:1: unsupported chartfile version 2/],
    ]
    for (const [text, want] of cases) {
      const err = await rejection(vendorCharts({ chartfile: project(text) }))
      assert.match(err.message, want)
      assert.ok(err.hint, `a hint for: ${err.message}`)
    }
  })

  it('gives a clear error naming the URL when the repository is unreachable', async () => {
    // A port that was just free: nothing listens there any more.
    const probe = http.createServer()
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
    const port = (probe.address() as AddressInfo).port
    await new Promise<void>((resolve) => probe.close(() => resolve()))
    const file = project(
      `version: 1\nrepositories:\n  - name: gone\n    url: http://127.0.0.1:${port}/charts\nrequires:\n  - chart: gone/redis\n    version: 1.0.0\n`,
    )
    const err = await rejection(vendorCharts({ chartfile: file }))
    assert.match(
      err.message,
      new RegExp(
        `Could not fetch http://127\\.0\\.0\\.1:${port}/charts/index\\.yaml for chart gone/redis: ECONNREFUSED`,
      ),
    )
    assert.match(err.hint ?? '', /offline/)
    assert.match(err.hint ?? '', /repository URL of "gone"/)
  })

  it('names the URL and the HTTP status when the repository answers with an error', async () => {
    const err = await rejection(vendorCharts({ chartfile: project(chartfileFor({ redis: '1.0.0' }, 'missing')) }))
    assert.match(err.message, new RegExp(`${base.replace(/\./g, '\\.')}/missing/index\\.yaml .*HTTP 404`))
  })
})

// oci:// charts through the pinned helm, from a real registry (CNCF distribution, the binary the
// sim runs) on 127.0.0.1 with its storage in a temp dir; its request log counts what was fetched.
describe('helm chart vendoring from an OCI registry', () => {
  const run = promisify(execFile)
  let work: string
  let registry: ChildProcess | undefined
  let host: string
  let storage: string
  let helm: string
  let log = ''
  /** helm push's manifest digest of each chart pushed, by name-version */
  const pushed = new Map<string, { manifest: string; archive: string }>()

  async function push(name: string, version: string, extra = ''): Promise<void> {
    const packed = await packChart(work, path.join(work, `pushed-${pushed.size}`), name, version)
    if (extra) {
      // another chart under the same version: a file more, packed again
      const src = path.join(work, `src-${name}-${version}`, name)
      fs.writeFileSync(path.join(src, 'templates', 'NOTES.txt'), extra)
      await tar.c({ gzip: true, cwd: path.dirname(src), file: packed.file, portable: true }, [name])
      packed.digest = createHash('sha256').update(fs.readFileSync(packed.file)).digest('hex')
    }
    const { stdout, stderr } = await run(helm, ['push', packed.file, `oci://${host}/charts`, '--plain-http'])
    const manifest = /Digest: (sha256:[0-9a-f]{64})/.exec(stdout + stderr)?.[1]
    assert.ok(manifest, stdout + stderr)
    pushed.set(`${name}-${version}`, { manifest, archive: packed.digest })
  }

  function project(requires: Record<string, string>, url = `oci://${host}/charts`): string {
    const dir = fs.mkdtempSync(path.join(work, 'project-'))
    const pins = Object.entries(requires)
      .map(([chart, version]) => `  - chart: reg/${chart}\n    version: "${version}"\n`)
      .join('')
    fs.writeFileSync(
      path.join(dir, 'chartfile.yaml'),
      `version: 1\nrepositories:\n  - name: reg\n    url: ${url}\nrequires:\n${pins}`,
    )
    return dir
  }

  const lockOf = (dir: string) =>
    (
      JSON.parse(fs.readFileSync(path.join(dir, 'charts', LOCK_FILE), 'utf8')) as {
        charts: Record<string, { digest: string; manifestDigest?: string; version: string }>
      }
    ).charts
  /** the registry's requests for chart content since `from` (its log, one line per response) */
  const fetchedSince = (from: number) =>
    log
      .slice(from)
      .split('\n')
      .filter((l) => /response completed/.test(l) && /http\.request\.uri="\/v2\/charts\//.test(l))

  before(async () => {
    helm = await toolPath('helm')
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-helm-oci-'))
    storage = path.join(work, 'registry')
    const proc = await registryProcess(await toolPath('registry'), storage)
    host = proc.host
    registry = spawn(proc.command, proc.args, {
      env: { ...process.env, ...proc.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    registry.stdout!.on('data', (d: Buffer) => (log += d.toString()))
    registry.stderr!.on('data', (d: Buffer) => (log += d.toString()))
    let exited: Error | undefined
    registry.on('exit', (code) => (exited = new Error(`the registry exited (${code}): ${log.slice(-2000)}`)))
    await untilRegistryAnswers(host, () => exited)
    await push('podinfo', '6.5.0')
    await push('podinfo', '6.5.1')
    await push('app', '1.0.0')
  })

  after(async () => {
    if (registry && registry.exitCode === null) {
      const exit = new Promise((r) => registry!.once('exit', r))
      registry.kill('SIGTERM')
      await exit
    }
    if (work) fs.rmSync(work, { recursive: true, force: true })
  })

  it('`just tk-vendor` pulls oci:// charts with the pinned helm, records the archive and manifest digests, and a second run fetches nothing', async () => {
    const dir = project({ podinfo: '6.5.0', app: '1.0.0' })
    const start = log.length
    const first = await just(['tk-vendor', '--root', dir])
    assert.equal(first.code, 0, first.stderr)
    assert.match(first.stderr, /fetched podinfo 6\.5\.0/)
    assert.match(first.stderr, /fetched app 1\.0\.0/)
    const charts = path.join(dir, 'charts')
    assert.match(fs.readFileSync(path.join(charts, 'podinfo', 'Chart.yaml'), 'utf8'), /^version: 6\.5\.0$/m)
    assert.ok(fs.existsSync(path.join(charts, 'podinfo', 'templates', 'deployment.yaml')))
    const lock = lockOf(dir)
    // the archive as pushed, byte for byte, and the manifest the tag named
    assert.equal(lock.podinfo.digest, pushed.get('podinfo-6.5.0')!.archive)
    assert.equal(lock.podinfo.manifestDigest, pushed.get('podinfo-6.5.0')!.manifest)
    assert.equal(lock.app.manifestDigest, pushed.get('app-1.0.0')!.manifest)
    // nothing of helm's pull is left behind
    assert.deepEqual(fs.readdirSync(charts).sort(), [LOCK_FILE, 'app', 'podinfo'])

    // the log does count pulls: the first run's are in it
    assert.ok(
      fetchedSince(start).some((l) => l.includes('/v2/charts/podinfo/blobs/sha256:')),
      log.slice(start, start + 3000),
    )
    const from = log.length
    const again = await just(['tk-vendor', '--root', dir])
    assert.equal(again.code, 0, again.stderr)
    assert.match(again.stderr, /up to date: podinfo 6\.5\.0/)
    assert.deepEqual(fetchedSince(from), [])
  })

  it('a version the registry has no tag for names the chartfile line, and nothing is unpacked', async () => {
    const dir = project({ app: '1.0.0', podinfo: '9.9.9' })
    const err = await vendorCharts({ chartfile: path.join(dir, 'chartfile.yaml') }).then(
      () => assert.fail('vendored a version that does not exist'),
      (e: unknown) => e as NsopsError,
    )
    assert.ok(err instanceof NsopsError, String(err))
    assert.match(
      err.message,
      /chartfile\.yaml:8: chart reg\/podinfo has no version 9\.9\.9 in oci:\/\/127\.0\.0\.1:\d+\/charts/,
    )
    // resolved before anything is unpacked: app is not there either
    assert.equal(fs.existsSync(path.join(dir, 'charts', 'app')), false)
  })

  it('refuses a chart archive the registry serves altered (not the digest its manifest names), and unpacks nothing', async () => {
    await push('altered', '1.0.0')
    const archive = pushed.get('altered-1.0.0')!.archive
    const blob = path.join(
      storage,
      'data',
      'docker',
      'registry',
      'v2',
      'blobs',
      'sha256',
      archive.slice(0, 2),
      archive,
      'data',
    )
    const bytes = fs.readFileSync(blob)
    bytes[bytes.length >> 1] ^= 0xff
    fs.writeFileSync(blob, bytes)
    const dir = project({ altered: '1.0.0' })
    const refused = await just(['tk-vendor', '--root', dir])
    assert.equal(refused.code, 1)
    assert.match(
      refused.stderr,
      /Refused reg\/altered 1\.0\.0: the chart archive oci:\/\/127\.0\.0\.1:\d+\/charts\/altered:1\.0\.0 does not match the digest its manifest names .*Nothing was unpacked\./,
    )
    assert.deepEqual(fs.existsSync(path.join(dir, 'charts')) ? fs.readdirSync(path.join(dir, 'charts')) : [], [])
  })

  it('refuses a tag that now names another chart than the one vendored, and keeps nothing of it', async () => {
    const dir = project({ podinfo: '6.5.1' })
    await vendorCharts({ chartfile: path.join(dir, 'chartfile.yaml') })
    const before = lockOf(dir).podinfo
    await push('podinfo', '6.5.1', 'pushed again under the same version\n')
    assert.notEqual(pushed.get('podinfo-6.5.1')!.manifest, before.manifestDigest)
    // the vendored copy is gone: vendoring pulls the tag again
    fs.rmSync(path.join(dir, 'charts', 'podinfo'), { recursive: true })
    const err = await vendorCharts({ chartfile: path.join(dir, 'chartfile.yaml') }).then(
      () => assert.fail('vendored a moved tag'),
      (e: unknown) => e as NsopsError,
    )
    assert.match(
      err.message,
      /Refused reg\/podinfo 6\.5\.1: the tag .*podinfo:6\.5\.1 now names the manifest sha256:[0-9a-f]{64}, but podinfo\/ was vendored from sha256:/,
    )
    assert.deepEqual(lockOf(dir).podinfo, before)
    assert.equal(fs.existsSync(path.join(dir, 'charts', 'podinfo')), false)
  })

  it('an unreachable registry is a clear error naming the reference', async () => {
    const probe = http.createServer()
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
    const port = (probe.address() as AddressInfo).port
    await new Promise<void>((resolve) => probe.close(() => resolve()))
    const dir = project({ podinfo: '6.5.0' }, `oci://127.0.0.1:${port}/charts`)
    const err = await vendorCharts({ chartfile: path.join(dir, 'chartfile.yaml') }).then(
      () => assert.fail('vendored from nowhere'),
      (e: unknown) => e as NsopsError,
    )
    assert.match(
      err.message,
      new RegExp(
        `Could not pull oci://127\\.0\\.0\\.1:${port}/charts/podinfo:6\\.5\\.0 for chart reg/podinfo: .*connection refused`,
      ),
    )
    assert.match(err.hint ?? '', /offline/)
  })
})
