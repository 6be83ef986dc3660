// A log line written by a simulated container → shown by `just logs` (the fixture
// namespace's logs.ts, the same command), against `kubectl logs -f` in the same run. Both
// follow the same container; each line is appended to its CRI log file and timed until the
// process prints it.
import { spawn } from 'node:child_process'
import path from 'node:path'
import { appendContainerLog } from '../shared/cluster/sim/container-logs.ts'
import { repoRoot } from '../shared/core/paths.ts'
import { toolPaths } from '../shared/tools/provision.ts'
import { withBenchCluster } from './cluster.ts'
import { median, report } from './stats.ts'

const N = 30

/** Starts a follower process; `shown(marker)` resolves when it has printed the marker. */
function follower(cmd: string, args: string[], env: NodeJS.ProcessEnv) {
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'ignore'] })
  let out = ''
  const waiting = new Map<string, () => void>()
  child.stdout.setEncoding('utf8')
  child.stdout.on('data', (d: string) => {
    out += d
    for (const [m, done] of waiting)
      if (out.includes(m)) {
        waiting.delete(m)
        done()
      }
  })
  return {
    shown: (marker: string) =>
      new Promise<void>((resolve) => {
        if (out.includes(marker)) resolve()
        else waiting.set(marker, resolve)
      }),
    stop: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve())
        child.kill('SIGINT')
      }),
  }
}

export default async function (): Promise<void> {
  await withBenchCluster(async (kube, kubeconfig, sim) => {
    const namespace = 'logs-bench'
    await kube.core.createNamespace({ body: { metadata: { name: namespace } } })
    const labels = { 'app.kubernetes.io/name': 'web' }
    await kube.apps.createNamespacedDeployment({
      namespace,
      body: {
        metadata: { name: 'web' },
        spec: {
          replicas: 1,
          selector: { matchLabels: labels },
          template: { metadata: { labels }, spec: { containers: [{ name: 'web', image: 'example/web:1' }] } },
        },
      },
    })
    let pod
    for (;;) {
      pod = (await kube.core.listNamespacedPod({ namespace })).items.find((p) => p.status?.podIP)
      if (pod) break
      await new Promise((r) => setTimeout(r, 50))
    }
    const ref = { namespace, pod: pod.metadata!.name!, uid: pod.metadata!.uid!, container: 'web' }
    const { kubectl } = await toolPaths(['kubectl'])
    const runs = {
      'just logs (logs.ts web)': () =>
        follower(path.join(repoRoot, 'test/fixtures/logs-ns/logs.ts'), ['web'], {
          NSOPS_KUBECONFIG: kubeconfig,
          NSOPS_TEST_LOGS_NS: namespace,
          NO_COLOR: '1',
        }),
      'kubectl logs -f (baseline)': () =>
        follower(kubectl, ['--kubeconfig', kubeconfig, '-n', namespace, 'logs', '-f', ref.pod], {}),
    }
    for (const [name, start] of Object.entries(runs)) {
      const f = start()
      await f.shown('ready') // attached: the start lines are out
      const lags: number[] = []
      for (let i = 0; i < N; i++) {
        const marker = `bench-${name.length}-${i}-${Date.now()}`
        const t0 = performance.now()
        appendContainerLog(sim.podLogRoot, ref, [marker])
        await f.shown(marker)
        lags.push(performance.now() - t0)
      }
      await f.stop()
      // the path is event-driven end to end (inotify in kwok, streamed proxies): sub-millisecond
      // figures, so the median is also given with two decimals
      report(`log line written → shown by ${name}`, lags, `(median ${median(lags).toFixed(2)} ms)`)
    }
  })
}
