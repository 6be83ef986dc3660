// HelmReleases rendered offline through the user's door (`npx just validate|render` in a clone
// of this repo): arr-stack's prod overlay gets HelmReleases of the test charts, read from the
// repository itself (a GitRepository chart path). Values that make the chart render an invalid
// Service fail validate, naming the HelmRelease's file and line, the values path and the
// template; values the chart's values.schema.json refuses fail before rendering, at their line;
// the app-template-shaped chart, whose schema $refs the internet, renders with no network and
// says which $ref it skipped; a chart neither cached nor reachable fails naming the chart;
// deploy's dry run warns for a HelmRelease helm-controller would not roll back after a failed
// upgrade.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { promisify } from 'node:util'
import { after, before, describe, it } from 'node:test'
import YAML from 'yaml'
import { ciRepo, type CiRepo } from '../ci-fixture.ts'
import { git } from '../git-fixture.ts'

const run = promisify(execFile)

const PROD = 'namespaces/arr-stack/overlays/prod'

describe('HelmReleases rendered offline: just validate and just render', () => {
  let r: CiRepo
  let charts: string

  async function just(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    const env: NodeJS.ProcessEnv = { ...process.env, CI: '1', NO_COLOR: '1' }
    for (const k of Object.keys(env)) if (k.startsWith('NSOPS_') || k.startsWith('GITHUB_')) delete env[k]
    delete env.NODE_OPTIONS
    env.NSOPS_CHARTS_CACHE = charts
    try {
      const { stdout, stderr } = await run('npx', ['just', ...args], {
        cwd: r.work,
        env,
        maxBuffer: 64 << 20,
        timeout: 300_000,
      })
      return { code: 0, stdout, stderr }
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string }
      return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }
    }
  }

  /** Adds a file to arr-stack's prod overlay and lists it in its resources. */
  function addToProd(file: string, text: string): void {
    fs.writeFileSync(path.join(r.work, PROD, file), text)
    const k = path.join(r.work, PROD, 'kustomization.yaml')
    const y = fs.readFileSync(k, 'utf8')
    if (!y.includes(`  - ${file}\n`))
      fs.writeFileSync(k, y.replace('  - ../../base\n', `  - ../../base\n  - ${file}\n`))
  }

  const queue = (port: string) => `apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: queue
spec:
  interval: 10m
  chart:
    spec:
      chart: ./test/fixtures/charts/queue
      sourceRef: { kind: GitRepository, name: nsops, namespace: flux-system }
  values:
    replicas: 2
    port: ${port}
`

  const readarr = (port: string) => `apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: readarr
spec:
  interval: 10m
  chart:
    spec:
      chart: ./test/fixtures/charts/app-template-like
      sourceRef: { kind: GitRepository, name: nsops, namespace: flux-system }
  values:
    controllers:
      main:
        containers:
          app:
            image: { repository: ghcr.io/home-operations/sonarr, tag: 4.0.15 }
            env: { TZ: Europe/Oslo }
    service:
      main:
        controller: main
        ports:
          http:
            port: ${port}
`

  before(() => {
    r = ciRepo()
    charts = path.join(r.root, 'charts-cache')
  })
  after(() => fs.rmSync(r.root, { recursive: true, force: true }))

  it('a values error that makes the chart render an invalid Service fails validate at the HelmRelease: file, line, values path, template', async () => {
    addToProd('queue.yaml', queue('eighty'))
    const v = await just(['validate', 'arr-stack', '--offline'])
    assert.equal(v.code, 1, v.stderr)
    assert.match(
      v.stderr,
      /namespaces\/arr-stack\/overlays\/prod\/queue\.yaml:13: Service arr-stack\/queue: spec\.ports\[0\]\.port: must be integer, not "eighty" \(rendered by HelmRelease arr-stack\/queue from chart queue@0\.4\.0, template queue\/templates\/service\.yaml, values path spec\.values\.port\)/,
    )
    assert.doesNotMatch(v.stderr, /at .*\.ts:\d+/, 'no stack without --debug')
  })

  it('values the chart schema refuses fail at their line; the remote $ref it does not ship is skipped and said, with no network', async () => {
    addToProd('queue.yaml', queue('6380'))
    addToProd('readarr.yaml', readarr('eighty'))
    const bad = await just(['validate', 'arr-stack', '--offline'])
    assert.equal(bad.code, 1, bad.stderr)
    assert.match(
      bad.stderr,
      /HelmRelease arr-stack\/readarr \(namespaces\/arr-stack\/overlays\/prod\/readarr\.yaml\): its values do not meet chart app-template-like@1\.2\.0's values\.schema\.json \(1 error\):\n\s+spec\.values\.service\.main\.ports\.http\.port \(namespaces\/arr-stack\/overlays\/prod\/readarr\.yaml:23\): must be integer, not "eighty"/,
    )

    addToProd('readarr.yaml', readarr('8989'))
    const good = await just(['validate', 'arr-stack', '--offline'])
    assert.equal(good.code, 0, good.stderr)
    assert.match(
      good.stderr,
      /⚠ HelmRelease arr-stack\/readarr \(namespaces\/arr-stack\/overlays\/prod\/readarr\.yaml\): chart app-template-like@1\.2\.0's values schema \$refs a schema it does not ship, not checked \(no network at render time\): https:\/\/raw\.githubusercontent\.com\/yannh\/kubernetes-json-schema\//,
    )
    // the library's schema is the one the chart ships: resolved, not skipped
    assert.doesNotMatch(good.stderr, /bjw-s-labs\/helm-charts/)
    assert.match(
      good.stderr,
      /builds \(\d+ objects, 2 HelmReleases rendered: \d+ objects\); all \d+ objects pass strict schema validation/,
    )

    const rendered = await just(['render', 'arr-stack'])
    assert.equal(rendered.code, 0, rendered.stderr)
    const objects = YAML.parseAllDocuments(rendered.stdout).map((d) => d.toJS()) as {
      kind: string
      metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: unknown }
    }[]
    const deployment = objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'readarr')
    assert.ok(deployment, 'the Deployment the chart renders')
    assert.equal(deployment.metadata.namespace, 'arr-stack')
    assert.equal(deployment.metadata.labels?.['helm.toolkit.fluxcd.io/name'], 'readarr')
    assert.equal(deployment.metadata.labels?.['helm.toolkit.fluxcd.io/namespace'], 'arr-stack')
    // the empty `annotations:` app-template renders is taken as it is
    assert.equal(deployment.metadata.annotations, null)
    assert.ok(
      objects.some((o) => o.kind === 'CustomResourceDefinition' && o.metadata.name === 'queues.queue.example.com'),
    )
  })

  it("just diff (deploy's dry run) warns once for each HelmRelease whose failed upgrade helm-controller would leave failed, naming it and its file", async () => {
    // readarr gets the remediation that rolls a failed upgrade back; queue has none
    addToProd(
      'readarr.yaml',
      readarr('8989').replace(
        '  interval: 10m\n',
        '  interval: 10m\n  upgrade:\n    remediation: { remediateLastFailure: true }\n',
      ),
    )
    const d = await just(['diff', 'arr-stack', '--kubeconfig', path.join(r.root, 'no-kubeconfig')])
    assert.equal(d.code, 0, d.stderr)
    const warned = d.stderr.split('\n').filter((l) => /does not roll back a failed upgrade/.test(l))
    assert.equal(warned.length, 1, d.stderr)
    assert.match(
      warned[0],
      /HelmRelease arr-stack\/queue \(namespaces\/arr-stack\/overlays\/prod\/queue\.yaml\): helm-controller does not roll back a failed upgrade of it \(no upgrade\.remediation\.remediateLastFailure: true\): the release stays failed, and the revert of a failed deploy waits out its 5m0s timeout; set upgrade\.remediation\.remediateLastFailure: true \(README, deploy\.ts step 6\)/,
    )
  })

  it('a chart neither cached nor reachable fails naming the HelmRelease, its file and the chart', async () => {
    git(r.work, 'checkout', '-q', '--', '.')
    git(r.work, 'clean', '-qfd', PROD)
    const port = await closedPort()
    addToProd(
      'radarr.yaml',
      `apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata:
  name: app-template
spec:
  interval: 15m
  url: oci://127.0.0.1:${port}/charts/app-template
  ref: { tag: 4.1.1 }
  insecure: true
  layerSelector:
    mediaType: application/vnd.cncf.helm.chart.content.v1.tar+gzip
    operation: copy
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: radarr
spec:
  interval: 1h
  chartRef: { kind: OCIRepository, name: app-template }
  values: {}
`,
    )
    const v = await just(['validate', 'arr-stack', '--offline'])
    assert.equal(v.code, 1, v.stderr)
    assert.match(
      v.stderr,
      new RegExp(
        `HelmRelease arr-stack/radarr \\(namespaces/arr-stack/overlays/prod/radarr\\.yaml\\): chart oci://127\\.0\\.0\\.1:${port}/charts/app-template:4\\.1\\.1 is not in the chart cache and could not be pulled`,
      ),
    )
    assert.match(v.stderr, /hint: Render once where the source answers/)
  })
})

/** A port nothing listens on (one just freed). */
async function closedPort(): Promise<number> {
  const s = net.createServer()
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))
  const port = (s.address() as net.AddressInfo).port
  await new Promise<void>((resolve) => s.close(() => resolve()))
  return port
}
