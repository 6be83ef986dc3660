// How fast `waitFor` notices the last pod of a Deployment turning Ready: the moment an
// independent watch sees the Deployment's last replica ready, against the moment waitFor
// resolves. Target ≤ 100 ms (a 2 s poll would average 1 s).
import { Watch } from '@kubernetes/client-node'
import { waitFor } from '../shared/health/wait.ts'
import { withBenchCluster } from './cluster.ts'
import { report } from './stats.ts'

export default async function (): Promise<void> {
  await withBenchCluster(async (kube) => {
    const lags: number[] = []
    let missed = 0
    for (let i = 0; i < 7; i++) {
      const name = `wait-${i}`
      const labels = { app: name }
      let allReadyAt = 0
      const ac = await new Watch(kube.kc).watch(
        '/apis/apps/v1/namespaces/default/deployments',
        { fieldSelector: `metadata.name=${name}` },
        (_t, d: { status?: { readyReplicas?: number } }) => {
          if (!allReadyAt && d.status?.readyReplicas === 3) allReadyAt = performance.now()
        },
        () => {},
      )
      const waiting = waitFor(
        kube,
        [{ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name, namespace: 'default' } }],
        { timeoutMs: 60_000 },
      )
      await kube.apps.createNamespacedDeployment({
        namespace: 'default',
        body: {
          metadata: { name },
          spec: {
            replicas: 3,
            selector: { matchLabels: labels },
            template: { metadata: { labels }, spec: { containers: [{ name: 'c', image: 'nginx' }] } },
          },
        },
      })
      const r = await waiting
      const doneAt = performance.now()
      if (!r.ok) throw new Error(r.report)
      for (let t = 0; !allReadyAt && t < 20; t++) await new Promise((res) => setTimeout(res, 50)) // the reference watch may lag too
      ac.abort()
      if (allReadyAt) lags.push(Math.max(0, doneAt - allReadyAt))
      else missed++
    }
    report(
      'waitFor: last replica Ready → wait resolves',
      lags,
      `target ≤ 100 ms${missed ? `; ${missed} run(s) dropped: the reference watch saw no all-ready event` : ''}`,
    )
  })
}
