// A dev loop whose cluster stops answering, then loses its terminal: `npx just dev-up
// monitoring` in a real terminal (tmux) on a sim cluster of its own, the API server made to stop
// answering underneath it (SIGSTOP: its port still takes connections, as in a network outage),
// then the terminal closed (SIGHUP) — nobody is left to press Ctrl-C. Before the fix such a
// process stayed alive, asleep, its cleanup's request waiting on the API server for good. Now it
// exits within a bound and leaves what it could not undo in its session, where `just dev-status`
// shows it and `just dev-down` finishes it once the server answers. Then the cluster stopped
// (`just cluster-down`) and a SIGTERM, the terminal still open: the screen says what was left
// and which command finishes it.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { pidAlive } from '../../shared/core/lock.ts'
import { simRepo, type SimRepo } from '../sim-repo-fixture.ts'
import { Terminal, tmuxAvailable } from '../tty.ts'
import { until } from '../until.ts'

/** How long the exit may take once the cluster is gone: a few bounded steps (the question whether it answers takes 10 s), with room for a loaded machine. */
const EXIT_BOUND_MS = 90_000

describe(
  'a dev loop whose cluster stopped answering exits when nobody is at its terminal',
  { skip: !tmuxAvailable() && 'tmux is not installed (.ci/run installs it)' },
  () => {
    let repo: SimRepo
    const sessionFile = () => path.join(repo.state, 'dev', 'monitoring.json')
    const session = () =>
      JSON.parse(fs.readFileSync(sessionFile(), 'utf8')) as { pid: number; kept?: boolean; unfinished?: string }

    before(() => {
      repo = simRepo()
    })

    after(async () => {
      // a loop a failed test left: its own pid, then cluster-down and the sim's recorded ones
      try {
        process.kill(session().pid, 'SIGKILL')
      } catch {
        /* gone */
      }
      await repo?.close(['cluster-down'])
    })

    /** dev-up in a terminal until grafana is up; returns the terminal and the loop's pid. */
    async function upAndRunning(): Promise<{ t: Terminal; pid: number }> {
      const t = await Terminal.open(['npx', 'just', 'dev-up', 'monitoring', '--no-ui'], {
        cwd: repo.work,
        env: repo.env,
      })
      // [^]: the row may wrap (a port-forward error when another run holds the port)
      await t.waitFor(/grafana\s+✓ Current[^]*?nsops-app@0\.1\.0 r\d+ (install|upgrade) succeeded/, 300_000)
      return { t, pid: session().pid }
    }

    it('the API server stops answering, then the terminal closes (SIGHUP): the process exits within a bound, its session says what was left, and `just dev-down` finishes it', async () => {
      const { t, pid } = await upAndRunning()
      // an outage as a network sees one: the API server's port still takes connections, nothing
      // answers (SIGSTOP, as e2e/gitops-deploy does). Before the fix the cleanup's request to
      // release the Lease waited on it for good, in a process no terminal could stop any more.
      const apiserver = repo.simPid('kube-apiserver')
      process.kill(apiserver, 'SIGSTOP')
      try {
        await t.hangUp()
        const t0 = Date.now()
        await until('the dev loop to exit', async () => !pidAlive(pid), EXIT_BOUND_MS).catch((err: Error) => {
          throw new Error(`${err.message}: pid ${pid} still runs ${Date.now() - t0} ms after SIGHUP`, { cause: err })
        })
        await t.close()
        // no terminal to print to: the session keeps what was left, for dev-status and dev-down
        const s = session()
        assert.equal(s.kept, true, JSON.stringify(s))
        assert.match(s.unfinished ?? '', /does not answer/)
        assert.match(s.unfinished ?? '', /left the dev-only objects in monitoring-dev/)
        const status = await repo.just(['dev-status'])
        assert.notEqual(status.code, 0, `dev-status exits 1 while the cluster does not answer:\n${status.out}`)
        assert.match(status.out, /monitoring: cleanup unfinished: .*does not answer.*\(just dev-down finishes it\)/s)
      } finally {
        process.kill(apiserver, 'SIGCONT')
        await t.close()
      }
      // the API server answers again: dev-down finishes what the exit left (and stops the sim)
      const kube = repo.kube()
      assert.ok((await kube.apps.listNamespacedDeployment({ namespace: 'monitoring-dev' })).items.length > 0)
      const down = await repo.just(['dev-down'])
      assert.equal(down.code, 0, down.out)
      assert.equal(fs.existsSync(sessionFile()), false, 'the session is finished')
      await until(
        'the sim cluster to be stopped by dev-down',
        async () => !fs.existsSync(path.join(repo.state, 'sim', 'state.json')),
        30_000,
      )
    })

    it('the cluster stopped, then SIGTERM: exits 143 within a bound, the screen says what was left and that `just dev-down` finishes it', async () => {
      // dev-up starts the sim again (its state kept) and takes the unfinished session over
      const { t, pid } = await upAndRunning()
      try {
        const down = await repo.just(['cluster-down'])
        assert.equal(down.code, 0, down.out)
        const t0 = Date.now()
        process.kill(pid, 'SIGTERM')
        const code = await t.waitExit(EXIT_BOUND_MS).catch(async (err: Error) => {
          throw new Error(`${err.message} (${Date.now() - t0} ms after SIGTERM); the screen:\n${await t.screen()}`, {
            cause: err,
          })
        })
        assert.equal(code, 143)
        const screen = (await t.screen()).replace(/\n/g, '')
        assert.match(screen, /does not answer/)
        assert.match(screen, /left the dev-only objects in monitoring-dev/)
        assert.match(screen, /`just dev-down` finishes the cleanup/)
      } finally {
        await t.close()
      }
    })
  },
)
