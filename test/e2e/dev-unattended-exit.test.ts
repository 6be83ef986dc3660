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
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { after, before, describe, it } from 'node:test'
import { KubeConfig } from '@kubernetes/client-node'
import { pidAlive } from '../../shared/core/lock.ts'
import { clientsFor } from '../../shared/kube/client.ts'
import { ciRepo, type CiRepo } from '../ci-fixture.ts'
import { Terminal, tmuxAvailable } from '../tty.ts'
import { until } from '../until.ts'

const run = promisify(execFile)
/** How long the exit may take once the cluster is gone: a few bounded steps (the question whether it answers takes 10 s), with room for a loaded machine. */
const EXIT_BOUND_MS = 90_000

describe(
  'a dev loop whose cluster stopped answering exits when nobody is at its terminal',
  { skip: !tmuxAvailable() && 'tmux is not installed (.ci/run installs it)' },
  () => {
    let repo: CiRepo
    let env: Record<string, string>
    const state = () => path.join(repo.root, 'state')
    const sessionFile = () => path.join(state(), 'dev', 'monitoring.json')
    const session = () =>
      JSON.parse(fs.readFileSync(sessionFile(), 'utf8')) as { pid: number; kept?: boolean; unfinished?: string }
    const just = (...args: string[]) =>
      run('npx', ['just', ...args], { cwd: repo.work, env: { ...env, CI: '1' }, timeout: 300_000 })

    before(() => {
      repo = ciRepo()
      env = {
        PATH: process.env.PATH!,
        HOME: process.env.HOME!,
        TERM: 'xterm-256color',
        NSOPS_STATE_DIR: state(),
        NSOPS_PROVIDER: 'sim',
        // no kubeconfig of the machine's: the sim's own is the one in the state folder
        KUBECONFIG: path.join(repo.root, 'no-kubeconfig'),
        ...(process.env.XDG_CACHE_HOME ? { XDG_CACHE_HOME: process.env.XDG_CACHE_HOME } : {}),
      }
    })

    after(async () => {
      // a loop a failed test left: its own pid, then the sim's recorded ones
      try {
        process.kill(session().pid, 'SIGKILL')
      } catch {
        /* gone */
      }
      await just('cluster-down').catch(() => {})
      try {
        const s = JSON.parse(fs.readFileSync(path.join(state(), 'sim', 'state.json'), 'utf8')) as {
          components: { pid: number }[]
        }
        for (const c of s.components) {
          try {
            process.kill(c.pid, 'SIGKILL')
          } catch {
            /* gone */
          }
        }
      } catch {
        /* stopped */
      }
      fs.rmSync(repo.root, { recursive: true, force: true })
    })

    const simPid = (name: string) =>
      (
        JSON.parse(fs.readFileSync(path.join(state(), 'sim', 'state.json'), 'utf8')) as {
          components: { name: string; pid: number }[]
        }
      ).components.find((c) => c.name === name)!.pid
    const simKube = () => {
      const kc = new KubeConfig()
      kc.loadFromFile(path.join(state(), 'sim', 'kubeconfig'))
      return clientsFor(kc, path.join(state(), 'sim', 'kubeconfig'))
    }

    /** dev-up in a terminal until grafana is up; returns the terminal and the loop's pid. */
    async function upAndRunning(): Promise<{ t: Terminal; pid: number }> {
      const t = await Terminal.open(['npx', 'just', 'dev-up', 'monitoring', '--no-ui'], { cwd: repo.work, env })
      // [^]: the row may wrap (a port-forward error when another run holds the port)
      await t.waitFor(/grafana\s+✓ Current[^]*?nsops-app@0\.1\.0 r\d+ (install|upgrade) succeeded/, 300_000)
      return { t, pid: session().pid }
    }

    it('the API server stops answering, then the terminal closes (SIGHUP): the process exits within a bound, its session says what was left, and `just dev-down` finishes it', async () => {
      const { t, pid } = await upAndRunning()
      // an outage as a network sees one: the API server's port still takes connections, nothing
      // answers (SIGSTOP, as e2e/gitops-deploy does). Before the fix the cleanup's request to
      // release the Lease waited on it for good, in a process no terminal could stop any more.
      const apiserver = simPid('kube-apiserver')
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
        const status = await just('dev-status').then(
          () => assert.fail('dev-status exits 1 while the cluster does not answer'),
          (err: { stdout?: string; stderr?: string }) => `${err.stdout}${err.stderr}`,
        )
        assert.match(status, /monitoring: cleanup unfinished: .*does not answer.*\(just dev-down finishes it\)/s)
      } finally {
        process.kill(apiserver, 'SIGCONT')
        await t.close()
      }
      // the API server answers again: dev-down finishes what the exit left (and stops the sim)
      const kube = simKube()
      assert.ok((await kube.apps.listNamespacedDeployment({ namespace: 'monitoring-dev' })).items.length > 0)
      await just('dev-down')
      assert.equal(fs.existsSync(sessionFile()), false, 'the session is finished')
      await until(
        'the sim cluster to be stopped by dev-down',
        async () => !fs.existsSync(path.join(state(), 'sim', 'state.json')),
        30_000,
      )
    })

    it('the cluster stopped, then SIGTERM: exits 143 within a bound, the screen says what was left and that `just dev-down` finishes it', async () => {
      // dev-up starts the sim again (its state kept) and takes the unfinished session over
      const { t, pid } = await upAndRunning()
      try {
        await just('cluster-down')
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
