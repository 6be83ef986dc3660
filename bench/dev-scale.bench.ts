// The dev loop on a big namespace: a scaffolded namespace with 100 apps (Deployment,
// Service, Ingress, PVC each: 400 objects + the Namespace) — `dev --ci` start → healthy
// against the baseline `kustomize build | kubectl apply --server-side -f -` + `kubectl wait
// --for=condition=Available deploy --all`, each into a namespace of its own on one cluster;
// then save → change live on that namespace (10 edits); then 250 apps (1,000 objects).
// Everything is generated in a temp folder: the repo is never touched.
import { execFile, spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { scaffoldFiles } from '../shared/commands/new-namespace.ts'
import { DevLoop } from '../shared/dev/loop.ts'
import { runDevLoops } from '../shared/dev/run.ts'
import { defineNamespace, namespacePaths, type NamespaceConfig } from '../shared/config/namespace-config.ts'
import { toolPaths } from '../shared/tools/provision.ts'
import { withBenchCluster } from './cluster.ts'
import { timeEdits } from './edits.ts'
import { report } from './stats.ts'

const run = promisify(execFile)

/** namespaces/<name> with `apps` copies of the scaffold's app, in a temp folder. */
function bigNamespace(name: string, apps: number): { ns: NamespaceConfig; dir: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `nsops-bench-${name}-`))
  const files = scaffoldFiles(name)
  for (const [rel, text] of Object.entries(files)) {
    if (rel.endsWith('.ts')) continue
    if (rel.startsWith('base/web/')) {
      for (let i = 0; i < apps; i++) {
        const app = `app${i}`
        const out = path.join(dir, rel.replace('base/web/', `base/${app}/`))
        fs.mkdirSync(path.dirname(out), { recursive: true })
        fs.writeFileSync(out, text.replaceAll('web', app))
      }
      continue
    }
    const out = path.join(dir, rel)
    fs.mkdirSync(path.dirname(out), { recursive: true })
    fs.writeFileSync(
      out,
      rel === 'base/kustomization.yaml'
        ? text.replace('  - web\n', Array.from({ length: apps }, (_, i) => `  - app${i}\n`).join(''))
        : text,
    )
  }
  const ns = defineNamespace({
    name,
    description: 'bench',
    namespaces: { dev: `${name}-dev`, prod: name },
    groups: [{ title: 'Apps', apps: Array.from({ length: apps }, (_, i) => ({ name: `app${i}`, port: 80 })) }],
  })
  return { ns: { ...ns, paths: namespacePaths(dir) }, dir }
}

async function devCi(
  kube: Parameters<typeof runDevLoops>[0],
  ns: NamespaceConfig,
): Promise<{ ms: number; code: number }> {
  const t0 = performance.now()
  const code = await runDevLoops(kube, [ns], { ci: true, timeoutMs: 600_000 })
  return { ms: performance.now() - t0, code }
}

export default async function (): Promise<void> {
  await withBenchCluster(async (kube, kubeconfig) => {
    const { kubectl, kustomize } = await toolPaths(['kubectl', 'kustomize'])
    const big = bigNamespace('big', 100)
    const base = bigNamespace('bigbase', 100)
    try {
      // baseline: what a person types without nsops (its own namespace, same cluster)
      const t0 = performance.now()
      const built = await run(kustomize, ['build', base.ns.paths.overlays.dev], { maxBuffer: 64 << 20 })
      await new Promise<void>((resolve, reject) => {
        const p = spawn(kubectl, ['--kubeconfig', kubeconfig, 'apply', '--server-side', '-f', '-'], {
          stdio: ['pipe', 'ignore', 'inherit'],
        })
        p.on('exit', (c) => (c === 0 ? resolve() : reject(new Error(`kubectl apply exited ${c}`))))
        p.stdin.end(built.stdout)
      })
      await run(kubectl, [
        '--kubeconfig',
        kubeconfig,
        'wait',
        '--for=condition=Available',
        'deploy',
        '--all',
        '-n',
        'bigbase-dev',
        '--timeout=600s',
      ])
      const baseline = performance.now() - t0

      const ours = await devCi(kube, big.ns)
      report('400 objects: kustomize build | kubectl apply --server-side + kubectl wait', [baseline])
      report(
        `400 objects: dev --ci start → healthy (exit ${ours.code})`,
        [ours.ms],
        `${(baseline / ours.ms).toFixed(2)}× the baseline's speed (target ≥ 1×, aim 1.5×)`,
      )

      // save → live on the 400-object namespace (the --ci run above left the stack in place)
      const loop = new DevLoop(kube, big.ns, { forwards: false })
      await loop.start()
      const file = path.join(big.dir, 'base/app7/service.yaml')
      const original = fs.readFileSync(file, 'utf8')
      try {
        const latencies = await timeEdits(kube, {
          n: 10,
          watch: { path: '/api/v1/namespaces/big-dev/services', query: { fieldSelector: 'metadata.name=app7' } },
          markOf: (obj) =>
            (obj as { metadata?: { annotations?: Record<string, string> } }).metadata?.annotations?.['nsops.dev/bench'],
          save: (mark) =>
            fs.writeFileSync(
              file,
              original.replace('  labels:', `  annotations: { nsops.dev/bench: "${mark}" }\n  labels:`),
            ),
        })
        report('400 objects: file saved → change seen by a watch', latencies, 'target p50 ≤ 250 ms')
      } finally {
        await loop.stop()
      }

      const huge = bigNamespace('huge', 250)
      try {
        const r = await devCi(kube, huge.ns)
        report(`1,000 objects (250 apps): dev --ci start → healthy (exit ${r.code})`, [r.ms])
        await new DevLoop(kube, huge.ns).endKept().catch(() => [])
      } finally {
        fs.rmSync(huge.dir, { recursive: true, force: true })
      }
    } finally {
      fs.rmSync(big.dir, { recursive: true, force: true })
      fs.rmSync(base.dir, { recursive: true, force: true })
    }
  })
}
