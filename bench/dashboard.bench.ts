// `dashboard.ts --json` wall time against the brief's dashboard.sh approach (one kubectl
// call per section and service, bench/seed-dashboard.sh) on the same cluster, same run.
// Target: ≥ 8× faster (issue 23). Both run as fresh processes, as a user runs them, taking
// turns, so a machine whose load changes during the run weighs on both alike.
import { execFileSync } from 'node:child_process'
import path from 'node:path'
import { runDevLoops } from '../shared/dev/run.ts'
import { loadNamespace } from '../shared/config/namespaces.ts'
import { repoRoot } from '../shared/core/paths.ts'
import { toolPath } from '../shared/tools/provision.ts'
import { withBenchCluster } from './cluster.ts'
import { median, report } from './stats.ts'

export default async function (): Promise<void> {
  const kubectl = await toolPath('kubectl')
  await withBenchCluster(async (kube, kubeconfig) => {
    await runDevLoops(kube, [await loadNamespace('arr-stack')], { ci: true, keep: true })
    const env = {
      ...process.env,
      KUBECONFIG: kubeconfig,
      NAMESPACE: 'arr-stack-dev',
      CI: '1',
      PATH: `${path.dirname(kubectl)}:${process.env.PATH}`,
    }
    const time = (cmd: string, args: string[]) => {
      const t0 = performance.now()
      execFileSync(cmd, args, { env, stdio: 'ignore' })
      return performance.now() - t0
    }
    const n = 7
    const ours: number[] = []
    const seed: number[] = []
    for (let i = 0; i < n; i++) {
      ours.push(
        time(path.join(repoRoot, 'namespaces/arr-stack/dashboard.ts'), [
          '--json',
          '--env',
          'dev',
          '--kubeconfig',
          kubeconfig,
        ]),
      )
      seed.push(time(path.join(repoRoot, 'bench/seed-dashboard.sh'), []))
    }
    report('baseline: seed dashboard.sh (kubectl per section)', seed)
    report(
      'dashboard.ts --json (one process, parallel)',
      ours,
      `${(median(seed) / median(ours)).toFixed(1)}× faster; target ≥ 8×`,
    )
  })
}
