// Dev loop: file saved → change visible through the API (a watch sees it), arr-stack, 20
// edits; and `dev-up` of all three namespaces from a running cluster to all healthy.
// Target p50 ≤ 120 ms (DESIGN.md). The edits go to a copy of the namespace folder, so a
// bench that is killed halfway leaves the repo as it was.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { DevLoop } from '../shared/dev/loop.ts'
import { runDevLoops } from '../shared/dev/run.ts'
import { namespacePaths } from '../shared/config/namespace-config.ts'
import { loadNamespace, loadNamespaces } from '../shared/config/namespaces.ts'
import { withBenchCluster } from './cluster.ts'
import { timeEdits } from './edits.ts'
import { report } from './stats.ts'

export default async function (): Promise<void> {
  await withBenchCluster(
    async (kube) => {
      const quiet = { ...console }
      const real = await loadNamespace('arr-stack')
      const copy = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-bench-arr-stack-'))
      fs.cpSync(real.paths.root, copy, { recursive: true })
      const ns = { ...real, paths: namespacePaths(copy) }
      const file = `${ns.paths.base}/sonarr/service.yaml`
      const original = fs.readFileSync(file, 'utf8')
      const loop = new DevLoop(kube, ns, { forwards: false })
      await loop.start()
      let latencies: number[] = []
      try {
        latencies = await timeEdits(kube, {
          n: 20,
          watch: {
            path: `/api/v1/namespaces/${ns.namespaces.dev}/services`,
            query: { fieldSelector: 'metadata.name=sonarr' },
          },
          markOf: (obj) =>
            (obj as { metadata?: { annotations?: Record<string, string> } }).metadata?.annotations?.['nsops.dev/bench'],
          save: (mark) =>
            fs.writeFileSync(
              file,
              original.replace('  labels:\n', `  annotations:\n    nsops.dev/bench: "${mark}"\n  labels:\n`),
            ),
        })
      } finally {
        await loop.stop()
        fs.rmSync(copy, { recursive: true, force: true })
      }
      report(
        'dev loop: file saved → change seen by a watch',
        latencies,
        'target p50 ≤ 120 ms (50 ms of it is the debounce)',
      )
      Object.assign(console, quiet)

      const t0 = performance.now()
      const code = await runDevLoops(kube, await loadNamespaces(), { ci: true, down: true, timeoutMs: 300_000 })
      report(`dev-up --ci, 3 namespaces → all healthy (exit ${code})`, [performance.now() - t0])
      // helm-controller (and source-controller) run: monitoring's grafana is a HelmRelease
    },
    { flux: true },
  )
}
