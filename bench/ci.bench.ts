// `just ci` as a pull request's CI runs it, with a warm tool cache (binaries built, schemas
// cached): a one-namespace change (observability), all four steps in one `just ci`, from
// nothing running — each run starts its own sim cluster with the real Flux controllers, as a
// fresh runner does — total and per step (from the run's .nsops/ci/ci.json). The seed's
// `tilt ci` job budgets 12 minutes with kind. Then `ci diff` alone with every namespace
// selected (a change in shared/), against its floor: the six `kustomize build`s it runs
// (three namespaces × merge base and HEAD) one after the other.
import { execFile, execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { toolPath } from '../shared/tools/provision.ts'
import { ciRepo } from '../test/ci-fixture.ts'
import { git } from '../test/git-fixture.ts'
import { median, report } from './stats.ts'

const run = promisify(execFile)

function env(): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env, CI: '1', NO_COLOR: '1', KUBECONFIG: '/nonexistent/kubeconfig' }
  for (const k of Object.keys(e)) if (k.startsWith('NSOPS_') || k.startsWith('GITHUB_')) delete e[k]
  delete e.NODE_OPTIONS
  return e
}

async function timed(work: string, args: string[]): Promise<number> {
  const t0 = performance.now()
  await run(path.join(work, 'shared/bin/nsops.ts'), args, { cwd: work, env: env(), maxBuffer: 64 << 20 })
  return performance.now() - t0
}

export default async function ciBench(): Promise<void> {
  const r = ciRepo()
  try {
    const loki = path.join(r.work, 'namespaces/observability/base/loki/deployment.yaml')
    fs.writeFileSync(loki, fs.readFileSync(loki, 'utf8').replace('  replicas: 1', '  replicas: 2'))
    git(r.work, 'commit', '-qam', 'observability: 2 loki replicas')
    const totals: number[] = []
    const steps: Record<string, number[]> = {}
    for (let i = 0; i < 3; i++) {
      try {
        totals.push(await timed(r.work, ['ci', '--out', r.out]))
        const doc = JSON.parse(fs.readFileSync(path.join(r.out, 'ci.json'), 'utf8')) as {
          steps: { step: string; ms: number }[]
        }
        for (const s of doc.steps) (steps[s.step] ??= []).push(s.ms)
      } finally {
        // like a fresh runner: nothing left running for the next run (dev-down also stops sim)
        await run(path.join(r.work, 'shared/bin/nsops.ts'), ['dev-down'], { cwd: r.work, env: env() }).catch(() => {})
      }
    }
    report('just ci, one namespace changed (sim + Flux start)', totals, '(tilt ci budget with kind: 12 min)')
    for (const [s, ms] of Object.entries(steps)) report(`  ci ${s}`, ms)

    // every namespace selected: a change in the library
    fs.appendFileSync(
      path.join(r.work, 'shared/core/output.ts'),
      '\n// bench: a library change selects every namespace\n',
    )
    const diffs: number[] = []
    for (let i = 0; i < 5; i++) diffs.push(await timed(r.work, ['ci', 'diff', '--out', r.out]))
    const kustomize = await toolPath('kustomize')
    const floor: number[] = []
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now()
      for (const ns of ['arr-stack', 'monitoring', 'observability']) {
        for (let tree = 0; tree < 2; tree++)
          execFileSync(kustomize, ['build', path.join(r.work, 'namespaces', ns, 'overlays/prod')], { stdio: 'ignore' })
      }
      floor.push(performance.now() - t0)
    }
    report(
      'ci diff, all three namespaces',
      diffs,
      `${(median(diffs) / median(floor)).toFixed(2)}× the six kustomize builds alone`,
    )
    report('  6× kustomize build (floor)', floor)
  } finally {
    await run(path.join(r.work, 'shared/bin/nsops.ts'), ['cluster-down', '--purge', '--yes'], {
      cwd: r.work,
      env: env(),
    }).catch(() => {})
    fs.rmSync(r.root, { recursive: true, force: true })
  }
}
