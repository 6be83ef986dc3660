// A copy of this repository (test/ci-fixture.ts) as a person on a fresh machine has it, with a
// state folder of its own: `npx just dev-up` there starts a sim cluster of its own (with the
// real Flux controllers), and nothing of the machine's kubeconfig or nsops state is seen. For
// the end-to-end tests that go through the user's door (`npx just …`, a terminal in tmux).
// `close()` is the one cleanup: the stop command (dev-down), then SIGKILL to whatever the sim
// still records (a failed test can leave it running), then the temp dir — also, as a last
// resort, when the process exits without reaching it.
import fs from 'node:fs'
import path from 'node:path'
import { KubeConfig } from '@kubernetes/client-node'
import { pidAlive } from '../shared/core/lock.ts'
import { clientsFor, type Kube } from '../shared/kube/client.ts'
import { ciRepo, type CiRepo } from './ci-fixture.ts'
import { runJust, type Ran } from './just.ts'
import { until } from './until.ts'

export interface SimRepo extends CiRepo {
  /** NSOPS_STATE_DIR of the copy: dev sessions under dev/, the sim under sim/ */
  state: string
  /** the sim's kubeconfig (there once dev-up or cluster-up has started it) */
  kubeconfig: string
  /** a person's shell: PATH, HOME, a terminal type, the state folder, the sim provider, no kubeconfig of the machine's */
  env: Record<string, string>
  /** `npx just ARGS` in the copy, off a terminal (CI=1, NO_COLOR=1); never rejects (test/just.ts); `out` is stdout then stderr */
  just(args: string[], timeout?: number): Promise<Ran & { out: string }>
  /** clients for the sim's API server */
  kube(): Kube
  /** the pid the sim recorded for one of its components (kube-apiserver, kwok, …) */
  simPid(name: string): number
  /** `npx just STOP` (dev-down), the sim's recorded processes killed, the temp dir removed. */
  close(stop?: string[]): Promise<void>
}

interface SimState {
  components: { name: string; pid: number }[]
}

/** `repo`: the copy to work in (test/adopt-fixture.ts's adoptRepo for a repository nsops was added to). */
export function simRepo(repo: CiRepo = ciRepo()): SimRepo {
  const state = path.join(repo.root, 'state')
  const simDir = path.join(state, 'sim')
  const kubeconfig = path.join(simDir, 'kubeconfig')
  const env: Record<string, string> = {
    PATH: process.env.PATH!,
    HOME: process.env.HOME!,
    TERM: 'xterm-256color',
    NSOPS_STATE_DIR: state,
    NSOPS_PROVIDER: 'sim',
    // no kubeconfig of the machine's: the sim's own is the one in the state folder
    KUBECONFIG: path.join(repo.root, 'no-kubeconfig'),
    // nsops' tool cache, where the run has one of its own
    ...(process.env.XDG_CACHE_HOME ? { XDG_CACHE_HOME: process.env.XDG_CACHE_HOME } : {}),
  }
  const simState = () => JSON.parse(fs.readFileSync(path.join(simDir, 'state.json'), 'utf8')) as SimState
  const recordedPids = () => {
    try {
      return simState().components.map((c) => c.pid)
    } catch {
      return [] // no sim, or stopped (its state removed)
    }
  }
  const killRecorded = () => {
    const pids = recordedPids()
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {
        /* gone */
      }
    }
    return pids
  }
  // last resort if the run ends without reaching close() (synchronous: 'exit' waits for nothing)
  const onExit = () => {
    killRecorded()
    fs.rmSync(repo.root, { recursive: true, force: true })
  }
  process.once('exit', onExit)

  const just = (args: string[], timeout = 300_000): Promise<Ran & { out: string }> =>
    runJust(repo.work, args, { ...env, CI: '1', NO_COLOR: '1' }, { timeout }).then((r) => ({
      ...r,
      out: r.stdout + r.stderr,
    }))

  return {
    ...repo,
    state,
    kubeconfig,
    env,
    just,
    kube() {
      const kc = new KubeConfig()
      kc.loadFromFile(kubeconfig)
      return clientsFor(kc, kubeconfig)
    },
    simPid(name) {
      const c = simState().components.find((x) => x.name === name)
      if (!c) throw new Error(`the sim in ${simDir} records no ${name}`)
      return c.pid
    },
    async close(stop = ['dev-down']) {
      await just(stop)
      // whatever the stop command could not stop (a failed test): the sim's recorded pids,
      // gone before their folder is removed (they write into it until they die)
      const pids = killRecorded()
      await until('the sim’s killed processes to be gone', async () => !pids.some(pidAlive), 10_000).catch(() => {})
      fs.rmSync(repo.root, { recursive: true, force: true, maxRetries: 3 })
      process.off('exit', onExit)
    },
  }
}
