// The dev loop as a person runs it: `npx just dev-up arr-stack` and ./namespaces/arr-stack/dev.ts
// in a real terminal (tmux), stopped by Ctrl-C, by closing the terminal (SIGHUP), during
// start-up, with a SIGTERM arriving during the cleanup, and with its output piped into
// `head -1`. After every one: Flux released, dev objects gone, no process left, terminal
// restored. The hold is real: a Kustomization whose inventory lists arr-stack's dev objects,
// so the loop must suspend it (flux.hold auto) and resume it however it is stopped.
import assert from 'node:assert/strict'
import { execFile, execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { after, before, describe, it } from 'node:test'
import { appendContainerLog } from '../../shared/cluster/sim/container-logs.ts'
import { installFluxCrds, SUSPENDED_BY } from '../../shared/flux/index.ts'
import { pidAlive } from '../../shared/core/lock.ts'
import { repoRoot } from '../../shared/core/paths.ts'
import { testCluster, type TestCluster } from '../harness.ts'
import { personEnv, Terminal, tmuxAvailable } from '../tty.ts'
import { until } from '../until.ts'
import { createIdleKustomization } from '../flux-fixture.ts'

const run = promisify(execFile)
const KS = {
  group: 'kustomize.toolkit.fluxcd.io',
  version: 'v1',
  namespace: 'flux-system',
  plural: 'kustomizations',
  name: 'arr-stack',
}

/** Every process below `pid` (the terminal's shell), the shell itself not included. */
function processTree(pid: number): number[] {
  const out = execFileSync('ps', ['-e', '-o', 'pid=,ppid='], { encoding: 'utf8' })
  const children = new Map<number, number[]>()
  for (const line of out.trim().split('\n')) {
    const [p, pp] = line.trim().split(/\s+/).map(Number)
    children.set(pp, [...(children.get(pp) ?? []), p])
  }
  const all: number[] = []
  const walk = (p: number) => {
    all.push(p)
    for (const c of children.get(p) ?? []) walk(c)
  }
  walk(pid)
  return all.slice(1)
}

describe(
  'the dev loop in a real terminal',
  { skip: !tmuxAvailable() && 'tmux is not installed (.ci/run installs it)' },
  () => {
    let cluster: TestCluster
    const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-tty-state-'))
    let env: Record<string, string>

    before(async () => {
      cluster = await testCluster()
      await installFluxCrds(cluster.kube)
      await cluster.kube.core.createNamespace({ body: { metadata: { name: 'flux-system' } } }).catch(() => {})
      // a Kustomization that has applied arr-stack's dev objects: the loop shares them with Flux
      await createIdleKustomization(
        cluster.kube,
        'arr-stack',
        { path: './namespaces/arr-stack/overlays/prod', source: 'tty-test-absent' },
        ['arr-stack-dev_sonarr_apps_Deployment', 'arr-stack-dev_sonarr__Service'],
      )
      // the terminal gets a person's environment: no CI, no test reporter options
      env = personEnv({ KUBECONFIG: cluster.kubeconfig, NSOPS_PROVIDER: 'existing', NSOPS_STATE_DIR: stateDir })
    })
    after(async () => {
      await cluster?.kube.custom.deleteNamespacedCustomObject(KS).catch(() => {})
      fs.rmSync(stateDir, { recursive: true, force: true })
    })

    const ks = async () =>
      (await cluster.kube.custom.getNamespacedCustomObject(KS)) as {
        spec: { suspend?: boolean }
        metadata: { annotations?: Record<string, string> }
      }
    const devDeployments = async () =>
      (await cluster.kube.apps.listNamespacedDeployment({ namespace: 'arr-stack-dev' })).items.length
    const sessionFile = path.join(stateDir, 'dev', 'arr-stack.json')

    /** What every way of stopping must leave: Flux resumed, no dev objects, no session, no process. */
    async function assertCleanedUp(pids: number[]): Promise<void> {
      await until('every process of the loop to end', async () => pids.every((p) => !pidAlive(p)), 60_000)
      const k = await ks()
      assert.notEqual(k.spec.suspend, true, 'Flux is resumed')
      assert.equal(k.metadata.annotations?.[SUSPENDED_BY], undefined, 'our marker is gone')
      assert.equal(await devDeployments(), 0, 'dev-only objects are deleted')
      assert.equal(fs.existsSync(sessionFile), false, 'the session is released')
      const lease = await cluster.kube.kc
        .makeApiClient((await import('@kubernetes/client-node')).CoordinationV1Api)
        .readNamespacedLease({ name: 'nsops-dev-arr-stack', namespace: 'default' })
        .then(
          () => true,
          () => false,
        )
      assert.equal(lease, false, 'the Lease is released')
    }

    async function upAndRunning(t: Terminal): Promise<number[]> {
      await t.waitFor(/sonarr\s+✓ Current/, 180_000)
      const k = await ks()
      assert.equal(k.spec.suspend, true, 'the shared Kustomization is held while the loop runs')
      assert.match(k.metadata.annotations?.[SUSPENDED_BY] ?? '', /"generation":\d+/)
      return processTree(await t.pid())
    }

    it('npx just dev-up arr-stack: one Ctrl-C exits 130 with everything cleaned up and the terminal restored', async () => {
      const t = await Terminal.open(['npx', 'just', 'dev-up', 'arr-stack'], { cwd: repoRoot, env })
      try {
        const pids = await upAndRunning(t)
        assert.ok(pids.length >= 4, `npx, the just launcher, just, node: ${pids.join(' ')}`)
        // keys: r re-applies, 2 runs the second task (arr-stack's restart-downloads)
        await t.press('r')
        await t.waitFor(/last apply \S+ \(key: re-apply;/, 60_000)
        await t.press('2')
        await t.waitFor(/\[2\] restart-downloads ✓/, 120_000)
        await t.press('C-c')
        assert.equal(await t.waitExit(), 130)
        await assertCleanedUp(pids)
        assert.equal(await t.restored(), true, 'main screen and cursor back')
        const screen = await t.screen()
        assert.match(screen, /resumed Flux Kustomization\/flux-system\/arr-stack/)
        assert.doesNotMatch(screen, /terminated .* by signal/, 'just saw a clean exit, not a kill')
        assert.doesNotMatch(screen, /error: recipe `dev-up` failed/, 'a Ctrl-C is not reported as a failure')
      } finally {
        await t.close()
      }
    })

    it('closing the terminal (SIGHUP) cleans up the same way', async () => {
      const t = await Terminal.open(['npx', 'just', 'dev-up', 'arr-stack'], { cwd: repoRoot, env })
      try {
        const pids = await upAndRunning(t)
        await t.hangUp()
        await assertCleanedUp(pids)
      } finally {
        await t.close()
      }
    })

    it(
      'the l key shows the logs: a line a simulated container writes shows live, then one app at a time; s goes back',
      { skip: process.env.NSOPS_TEST_CONTEXT ? "writes a simulated container's log: needs the sim cluster" : false },
      async () => {
        const t = await Terminal.open(
          [path.join(repoRoot, 'namespaces/arr-stack/dev.ts'), '--no-forwards', '--no-ui'],
          { cwd: os.tmpdir(), env },
        )
        try {
          const status = await t.waitFor(/sonarr\s+✓ Current/, 180_000)
          const pids = processTree(await t.pid())
          assert.match(status, /l logs/, 'the help line names the key')
          await t.press('l')
          await t.waitFor(/logs · all apps/, 10_000)
          const pods = await cluster.kube.core.listNamespacedPod({
            namespace: 'arr-stack-dev',
            labelSelector: 'app.kubernetes.io/name=sonarr',
          })
          const p = pods.items.find((x) => x.status?.podIP && !x.metadata?.deletionTimestamp)!
          const mark = `tty-${Date.now()}`
          appendContainerLog(
            cluster.sim!.podLogRoot,
            {
              namespace: 'arr-stack-dev',
              pod: p.metadata!.name!,
              uid: p.metadata!.uid!,
              container: p.spec!.containers[0].name,
            },
            [`WARN ${mark} written by the simulated sonarr`],
          )
          await t.waitFor(new RegExp(`sonarr\\s+│ WARN ${mark} written by the simulated sonarr`), 15_000)
          // l again: one app at a time, in namespace.ts order; the lines of that app only
          const apps = (await import('../../namespaces/arr-stack/namespace.ts')).default.apps.map((a) => a.name)
          for (const app of apps.slice(0, apps.indexOf('sonarr') + 1)) {
            await t.press('l')
            await t.waitFor(new RegExp(`logs · ${app}\\b`), 10_000)
          }
          const sonarr = await t.waitFor(new RegExp(`^WARN ${mark}`, 'm'), 10_000)
          assert.doesNotMatch(sonarr, /│/, 'one app: no app column')
          await t.press('s')
          await t.waitFor(/sonarr\s+✓ Current/, 10_000)
          await t.press('C-c')
          assert.equal(await t.waitExit(), 130)
          await assertCleanedUp(pids)
          assert.equal(await t.restored(), true, 'main screen and cursor back')
        } finally {
          await t.close()
        }
      },
    )

    it('./namespaces/arr-stack/dev.ts: a SIGTERM during the cleanup does not cut it short', async () => {
      const t = await Terminal.open([path.join(repoRoot, 'namespaces/arr-stack/dev.ts')], { cwd: os.tmpdir(), env })
      try {
        const pids = await upAndRunning(t)
        const node = JSON.parse(fs.readFileSync(sessionFile, 'utf8')).pid as number
        await t.press('C-c')
        // once the Ctrl-C has arrived (the view left the alternate screen: cleanup runs), a SIGTERM
        await until('the Ctrl-C to arrive', async () => !(await t.alternateScreen()), 30_000)
        try {
          process.kill(node, 'SIGTERM')
        } catch {
          /* cleanup already done: nothing left to cut short */
        }
        assert.equal(await t.waitExit(), 130)
        await assertCleanedUp(pids)
        assert.equal(await t.restored(), true)
      } finally {
        await t.close()
      }
    })

    it('Ctrl-C during start-up stops the start and cleans up what it began', async () => {
      const t = await Terminal.open([path.join(repoRoot, 'namespaces/arr-stack/dev.ts')], { cwd: os.tmpdir(), env })
      try {
        // the view is up before anything is applied: press as soon as it shows
        await t.waitFor(/arr-stack → arr-stack-dev/, 60_000)
        const pids = processTree(await t.pid())
        await t.press('C-c')
        assert.equal(await t.waitExit(), 130)
        await assertCleanedUp(pids)
        assert.equal(await t.restored(), true)
      } finally {
        await t.close()
      }
    })

    it('output piped into head -1 (no terminal): the closed pipe never skips the cleanup', async () => {
      const script = path.join(repoRoot, 'namespaces/arr-stack/dev.ts')
      const r = await run('sh', ['-c', `'${script}' --no-forwards 2>&1 | head -1`], {
        env: { ...env, CI: '1' },
        timeout: 180_000,
      })
      assert.equal(r.stdout.trim().split('\n').length, 1)
      // sh returns when both ends are done: the loop has exited by now
      await assertCleanedUp([])
    })
  },
)
