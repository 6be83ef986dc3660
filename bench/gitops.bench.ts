// The GitOps loop on sim with Flux's own source-controller and kustomize-controller: a
// one-line deploy, push → healthy, median over 5 with its split (commit+push, reconcile =
// source fetch + apply + Flux's own health check, our health wait); a rollback (failure
// detected → previous revision healthy); how fast a `requestedAt` is picked up compared with
// waiting for the interval; and what starting the Flux components adds to a sim start.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Writable } from 'node:stream'
import { SimCluster } from '../shared/cluster/sim/index.ts'
import { runDeploy } from '../shared/deploy/run.ts'
import { reconcileSource } from '../shared/flux/index.ts'
import { DEMO, gitOpsWorld, settings } from '../test/e2e/gitops-fixture.ts'
import { median, report } from './stats.ts'

const sink = () =>
  new Writable({
    write(_c, _e, cb) {
      cb()
    },
  })
const quiet = { info() {}, step() {}, ok() {}, warn() {}, fail() {} }

/** What `cluster-up --flux` adds to a running sim: CRDs, git server, source- and kustomize-controller up. */
async function fluxStartup(): Promise<number[]> {
  const times: number[] = []
  for (let i = 0; i < 3; i++) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-bench-flux-'))
    const sim = new SimCluster({ dir })
    try {
      await sim.ensure()
      const t0 = performance.now()
      await sim.ensure({ flux: true })
      times.push(performance.now() - t0)
    } finally {
      await sim.stop({ purge: true })
    }
  }
  return times
}

export default async function (): Promise<void> {
  report('cluster-up --flux on a running sim: Flux CRDs + git server + both controllers ready', await fluxStartup())
  const w = await gitOpsWorld()
  try {
    await w.waitApplied(await w.git$('rev-parse', 'HEAD'))
    const deploy = () =>
      runDeploy({
        ns: w.ns,
        repoDir: w.work,
        yes: true,
        target: { kubeconfig: w.kubeconfig },
        timeoutMs: 120_000,
        log: quiet,
        out: sink(),
        prompt: sink(),
      })
    const total: number[] = []
    const split: Record<string, number[]> = {}
    for (let i = 0; i < 5; i++) {
      w.write(`namespaces/${DEMO}/base/settings.yaml`, settings(`bench-${i}`))
      const r = await deploy()
      if (r.exitCode !== 0) throw new Error(r.summary)
      const push = r.steps.filter((s) => ['commit', 'push'].includes(s.name)).reduce((n, s) => n + s.elapsedMs, 0)
      const reconcile = r.steps.filter((s) => s.name === 'reconcile').reduce((n, s) => n + s.elapsedMs, 0)
      total.push(push + reconcile)
      for (const [k, v] of Object.entries({ 'commit + push': push, 'reconcile → healthy': reconcile }))
        (split[k] ??= []).push(v)
    }
    report('deploy one-line change: commit → healthy', total)
    for (const [k, v] of Object.entries(split)) report(`  of which ${k}`, v)

    // rollback: a Deployment that gives up after 10 s
    const webFile = path.join(w.work, `namespaces/${DEMO}/base/web.yaml`)
    const good = fs.readFileSync(webFile, 'utf8')
    fs.writeFileSync(
      webFile,
      good
        .replace('  replicas: 2\n', '  replicas: 2\n  progressDeadlineSeconds: 10\n')
        .replace('    spec:\n      containers:', '    spec:\n      nodeSelector: { disk: none }\n      containers:'),
    )
    const r = await deploy()
    if (r.exitCode !== 2) throw new Error(`expected a rollback, got ${r.outcome}: ${r.summary}`)
    const failAt = r.steps.find((s) => s.name === 'reconcile')
    const back = r.steps
      .filter((s) => ['revert', 'push-revert', 'reconcile-revert'].includes(s.name))
      .reduce((n, s) => n + s.elapsedMs, 0)
    report('rollback: deploy → failure detected (incl. 10 s progress deadline)', [failAt?.elapsedMs ?? 0])
    report('rollback: failure detected → previous revision healthy', [back])

    // requestedAt vs interval (the GitRepository's interval is 10m in the fixture)
    const picks: number[] = []
    for (let i = 0; i < 5; i++) {
      w.write(`namespaces/${DEMO}/pick-${i}.txt`, `${i}\n`)
      await w.git$('add', '-A')
      await w.git$('commit', '-qm', `pick ${i}`)
      await w.git$('push', '-q', 'origin', 'main')
      const sha = await w.git$('rev-parse', 'HEAD')
      const t0 = performance.now()
      const res = await reconcileSource(
        w.kube,
        { namespace: 'flux-system', name: 'demo-src' },
        { revision: sha, timeoutMs: 60_000 },
      )
      if (!res.ok) throw new Error(res.message)
      picks.push(performance.now() - t0)
    }
    report(
      'requestedAt → source at the new revision',
      picks,
      `vs spec.interval 10m: ${(600_000 / median(picks)).toFixed(0)}× sooner`,
    )
  } finally {
    await w.stop()
  }
}
