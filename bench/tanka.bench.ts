// Tanka figures: `tk-vendor` cold (nothing vendored) vs warm (everything matches the lock)
// against a local Helm repository, and the render time of environments/local with nsops'
// renderer. No chart repository can be reached here, so the repository serves stand-in
// charts under the pinned names and versions (redis 18.19.4, gitea 10.1.4, keda 2.14.0,
// flux2 2.12.4), each a Deployment, a Service and a ConfigMap; the environment's own Jsonnet
// (tanka/lib, tanka/environments) is the real one. With real charts in tanka/charts (after a
// `just tk-vendor` with network), the real render is measured too. Last, the dev loop: a
// one-line change in main.jsonnet → re-rendered, applied to a sim cluster, seen by a watch.
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { stringify } from 'yaml'
import { TankaLoop } from '../shared/dev/tanka-loop.ts'
import { vendorCharts } from '../shared/helm/vendor.ts'
import { repoRoot } from '../shared/core/paths.ts'
import { loadEnvironment } from '../shared/tanka/environments.ts'
import { renderEnvironment } from '../shared/tanka/render.ts'
import { rendererBinary } from '../shared/tanka/renderer.ts'
import { toolPath } from '../shared/tools/provision.ts'
import { withBenchCluster } from './cluster.ts'
import { timeEdits } from './edits.ts'
import { median, repeat, report } from './stats.ts'

const run = promisify(execFile)
const PINS: Record<string, string> = { redis: '18.19.4', gitea: '10.1.4', keda: '2.14.0', flux2: '2.12.4' }

function standIn(dir: string, name: string, version: string): void {
  fs.mkdirSync(path.join(dir, 'templates'), { recursive: true })
  fs.writeFileSync(
    path.join(dir, 'Chart.yaml'),
    stringify({ apiVersion: 'v2', name, version, description: `stand-in for ${name}` }),
  )
  fs.writeFileSync(path.join(dir, 'values.yaml'), 'replicaCount: 1\n')
  const meta = `metadata:\n  name: {{ .Release.Name }}-${name}\n  labels: {app: ${name}}\n`
  fs.writeFileSync(
    path.join(dir, 'templates', 'all.yaml'),
    [
      `apiVersion: v1\nkind: ConfigMap\n${meta}data:\n  values: {{ toJson .Values | quote }}\n`,
      `apiVersion: v1\nkind: Service\n${meta}spec:\n  selector: {app: ${name}}\n  ports: [{port: 80}]\n`,
      `apiVersion: apps/v1\nkind: Deployment\n${meta}spec:\n  replicas: 1\n  selector: {matchLabels: {app: ${name}}}\n  template:\n    metadata: {labels: {app: ${name}}}\n    spec: {containers: [{name: ${name}, image: "example/${name}:${version}"}]}\n`,
    ].join('---\n'),
  )
}

export default async function (): Promise<void> {
  const helm = await toolPath('helm')
  const renderer = await rendererBinary()
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-bench-tanka-'))
  const site = path.join(work, 'site')
  fs.mkdirSync(site)
  for (const [name, version] of Object.entries(PINS)) {
    standIn(path.join(work, 'src', name), name, version)
    await run(helm, ['package', path.join(work, 'src', name), '--destination', site])
  }
  await run(helm, ['repo', 'index', site])
  const server = http.createServer((req, res) => {
    const file = path.join(site, path.basename(new URL(req.url ?? '/', 'http://x').pathname))
    if (!fs.existsSync(file)) {
      res.writeHead(404).end()
      return
    }
    res.writeHead(200)
    fs.createReadStream(file).pipe(res)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  try {
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    // the real project, with a chartfile that points at the local repository
    const root = path.join(work, 'tanka')
    for (const part of ['lib', 'environments', 'jsonnetfile.json']) {
      fs.cpSync(path.join(repoRoot, 'tanka', part), path.join(root, part), { recursive: true })
    }
    const chartfile = path.join(root, 'chartfile.yaml')
    fs.writeFileSync(
      chartfile,
      stringify({
        version: 1,
        repositories: [{ name: 'local', url: base }],
        requires: Object.entries(PINS).map(([name, version]) => ({ chart: `local/${name}`, version })),
      }),
    )
    const charts = path.join(root, 'charts')

    const cold = await repeat(10, async () => {
      fs.rmSync(charts, { recursive: true, force: true })
      const t0 = performance.now()
      await vendorCharts({ chartfile })
      return performance.now() - t0
    })
    const warm = await repeat(20, async () => {
      const t0 = performance.now()
      const s = await vendorCharts({ chartfile })
      if (s.fetched.length) throw new Error('a warm vendor fetched something')
      return performance.now() - t0
    })
    report('tk-vendor cold (4 charts, local repository)', cold)
    report(
      'tk-vendor warm (lock matches, no request)',
      warm,
      `${(median(cold) / median(warm)).toFixed(0)}× faster than cold`,
    )

    const env = loadEnvironment('local', root)
    let objects = 0
    await renderEnvironment(env, { engine: 'renderer', renderer, helm }) // warm the page cache
    const render = await repeat(10, async () => {
      const r = await renderEnvironment(env, { engine: 'renderer', renderer, helm })
      objects = r.objects.length
      return r.elapsedMs
    })
    report('render environments/local (stand-in charts)', render, `${objects} objects, 4 helm template runs`)

    // the same environment with a chart of real-world shape under every pinned directory
    // (test/fixtures/charts/queue: kubeVersion, a library subchart, CRDs, hooks, ~12 objects)
    const realistic = path.join(work, 'tanka-realistic')
    fs.cpSync(root, realistic, { recursive: true, filter: (f) => !f.startsWith(charts) })
    const queue = path.join(work, 'fixture-charts')
    fs.cpSync(path.join(repoRoot, 'test', 'fixtures', 'charts'), queue, { recursive: true })
    await run(helm, ['dependency', 'build', path.join(queue, 'queue')])
    for (const name of Object.keys(PINS))
      fs.cpSync(path.join(queue, 'queue'), path.join(realistic, 'charts', name), { recursive: true })
    const realisticEnv = loadEnvironment('local', realistic)
    let realisticObjects = 0
    const realisticMs = await repeat(10, async () => {
      const r = await renderEnvironment(realisticEnv, { engine: 'renderer', renderer, helm })
      realisticObjects = r.objects.length
      return r.elapsedMs
    })
    report(
      'render environments/local (real-world-shaped charts)',
      realisticMs,
      `${realisticObjects} objects, 4 helm template runs`,
    )

    if (fs.existsSync(path.join(repoRoot, 'tanka', 'charts', 'redis'))) {
      const real = loadEnvironment('local')
      const ms = await repeat(
        5,
        async () => (await renderEnvironment(real, { engine: 'renderer', renderer, helm })).elapsedMs,
      )
      report('render environments/local (vendored charts)', ms)
    } else {
      console.log('(tanka/charts is not vendored here, so the render with the upstream charts is not measured)')
    }

    await withBenchCluster(async (kube) => {
      const loop = new TankaLoop(kube, env)
      const original = fs.readFileSync(env.main, 'utf8')
      if (!original.includes('keda+: { replicas: 1 }'))
        throw new Error(`${env.main} no longer sets keda's replicas: update this bench`)
      // keda's stand-in chart writes its values into a ConfigMap: the replica count shows
      // there, and edit i sets it to 2 + i
      let latencies: number[] = []
      try {
        await loop.start()
        latencies = await timeEdits(kube, {
          n: 10,
          watch: { path: '/api/v1/configmaps', query: { labelSelector: 'app=keda' } },
          markOf: (obj) => {
            const n = (
              JSON.parse((obj as { data?: Record<string, string> }).data?.values ?? '{}') as {
                operator?: { replicaCount?: number }
              }
            ).operator?.replicaCount
            return n === undefined ? undefined : `edit-${n - 2}`
          },
          save: (_mark, i) =>
            fs.writeFileSync(env.main, original.replace('keda+: { replicas: 1 }', `keda+: { replicas: ${2 + i} }`)),
        })
      } finally {
        fs.writeFileSync(env.main, original)
        await loop.stop()
      }
      report(
        'dev loop: main.jsonnet saved → re-rendered, applied, seen by a watch',
        latencies,
        `${objects} objects re-applied (unchanged ones cost no write)`,
      )
    })
  } finally {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
    fs.rmSync(work, { recursive: true, force: true })
  }
}
