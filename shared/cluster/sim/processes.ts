// The sim cluster's components as detached local processes: started with their output in a
// log file, recognised again by pid + command line (pids get reused), stopped with SIGTERM
// and, after a grace period, SIGKILL.
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import { pidAlive } from '../../core/lock.ts'
import { NsopsError } from '../../core/errors.ts'
import { KubeConfig } from '@kubernetes/client-node'
import { clientsFor } from '../../kube/client.ts'
import { rest } from '../../kube/rest.ts'

export interface ComponentRecord {
  name: string
  pid: number
  command: string
  args: string[]
  logFile: string
  startedAt: string
}

export function startComponent(
  name: string,
  command: string,
  args: string[],
  logFile: string,
  env?: NodeJS.ProcessEnv,
): ComponentRecord {
  const fd = fs.openSync(logFile, 'a')
  fs.writeSync(fd, `\n--- ${new Date().toISOString()} starting ${command} ${args.join(' ')}\n`)
  // detached: the cluster outlives `just cluster-up`; its own process group, so Ctrl-C in
  // the terminal that started it does not take it down later.
  const child = spawn(command, args, { detached: true, stdio: ['ignore', fd, fd], env: { ...process.env, ...env } })
  fs.closeSync(fd)
  child.unref()
  if (!child.pid)
    throw new NsopsError(`could not start the sim's ${name} (${command}).`, {
      hint: 'its binary may be missing or not executable: `just setup` provisions every pinned tool again.',
    })
  return { name, pid: child.pid, command, args, logFile, startedAt: new Date().toISOString() }
}

/** True when the pid is alive and still runs the command we started (not a reused pid). */
export function isRunning(rec: ComponentRecord): boolean {
  if (!pidAlive(rec.pid)) return false
  try {
    const cmdline = fs.readFileSync(`/proc/${rec.pid}/cmdline`, 'utf8').split('\0')
    if (cmdline.length === 1 && cmdline[0] === '') return false // zombie
    return cmdline[0] === rec.command
  } catch {
    return pidAlive(rec.pid) // no /proc (macOS): trust the pid
  }
}

/** Gone, or exited and waiting to be reaped (a zombie holds no port and does no work). */
export function isZombieOrGone(pid: number): boolean {
  if (!pidAlive(pid)) return true
  try {
    return /\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return false
  }
}

async function waitGone(pid: number, ms: number): Promise<boolean> {
  const until = Date.now() + ms
  while (Date.now() < until) {
    if (isZombieOrGone(pid)) return true
    await new Promise((r) => setTimeout(r, 50))
  }
  return isZombieOrGone(pid)
}

/** SIGTERM, wait up to graceMs, then SIGKILL; resolves when every process is gone. */
export async function stopComponents(recs: ComponentRecord[], graceMs = 8000): Promise<void> {
  await Promise.all(
    recs.filter(isRunning).map(async (r) => {
      try {
        process.kill(r.pid, 'SIGTERM')
      } catch {
        return
      }
      if (await waitGone(r.pid, graceMs)) return
      try {
        process.kill(r.pid, 'SIGKILL')
      } catch {
        return
      }
      await waitGone(r.pid, 5000)
    }),
  )
}

export function logTail(file: string, lines = 15): string {
  try {
    const text = fs.readFileSync(file, 'utf8')
    return text.split('\n').filter(Boolean).slice(-lines).join('\n')
  } catch {
    return '(no log)'
  }
}

/**
 * For a component started beside the apiserver rather than after it (a node process takes
 * a second to load, which then overlaps the apiserver's own start): resolves once the
 * apiserver answers GET apiPath, e.g. once a CRD it watches is served.
 */
export async function untilServed(kubeconfig: string, apiPath: string, timeoutMs = 120_000): Promise<void> {
  const kc = new KubeConfig()
  kc.loadFromFile(kubeconfig)
  const kube = clientsFor(kc, kubeconfig)
  const until = Date.now() + timeoutMs
  for (;;) {
    try {
      await rest(kube, 'GET', apiPath, { query: { limit: '1' }, timeoutMs: 2000 })
      return
    } catch (err) {
      if (Date.now() > until) throw err
    }
    await new Promise((r) => setTimeout(r, 100))
  }
}
