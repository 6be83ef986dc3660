// Cross-process locks as lock directories holding the owner's pid. A lock whose owner is
// gone (killed run) is taken over instead of waited on forever.
import fs from 'node:fs'
import path from 'node:path'
import { NsopsError } from './errors.ts'

export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function tryAcquire(dir: string): boolean {
  try {
    fs.mkdirSync(path.dirname(dir), { recursive: true })
    fs.mkdirSync(dir)
    fs.writeFileSync(path.join(dir, 'pid'), String(process.pid))
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    const owner = Number(readOwner(dir))
    // an owner that has made the directory but not yet written its pid is young, not dead
    const young = owner === 0 && Date.now() - (fs.statSync(dir, { throwIfNoEntry: false })?.mtimeMs ?? 0) < 5000
    if (!young && !pidAlive(owner) && owner !== process.pid) {
      fs.rmSync(dir, { recursive: true, force: true })
      return tryAcquire(dir)
    }
    return false
  }
}

function readOwner(dir: string): string {
  try {
    return fs.readFileSync(path.join(dir, 'pid'), 'utf8')
  } catch {
    return '0'
  }
}

/**
 * The same lock for a few synchronous file operations (claiming a dev session): waits up to
 * `waitMs` for a live holder, then fails naming the lock rather than taking it from a process
 * that still runs.
 */
export function withFileLockSync<T>(dir: string, fn: () => T, waitMs = 10_000): T {
  const until = Date.now() + waitMs
  while (!tryAcquire(dir)) {
    if (Date.now() > until)
      throw new NsopsError(`${dir} is held by pid ${readOwner(dir)}, a process that is still running.`, {
        hint: `If no nsops command is running, remove it (rm -r ${dir}) and try again.`,
      })
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10)
  }
  try {
    return fn()
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

/** Runs fn while holding the lock; waits (polling) while another live process holds it. */
export async function withFileLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  while (!tryAcquire(dir)) await new Promise((r) => setTimeout(r, 250))
  try {
    return await fn()
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}
