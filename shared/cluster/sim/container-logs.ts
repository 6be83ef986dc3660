// The log files of simulated containers, laid out as a kubelet lays out /var/log/pods:
//   <root>/<namespace>_<pod>_<uid>/<container>/<restartCount>.log   (CRI format)
// plus `current.log` and `previous.log` symlinks, which are what kwok's `Logs` objects name:
// a restart writes a new file and re-points the links, so kwok (which resolves the link
// when a request starts) serves the new container to new requests and `--previous` the
// old one, and nothing about the pod has to be written to the API again.
import fs from 'node:fs'
import path from 'node:path'

export interface ContainerRef {
  namespace: string
  pod: string
  uid: string
  container: string
}

/** `<root>/<ns>_<pod>_<uid>/<container>`: one directory per container of a pod. */
export function containerLogDir(root: string, c: ContainerRef): string {
  return path.join(root, `${c.namespace}_${c.pod}_${c.uid}`, c.container)
}

export function containerLogFile(root: string, c: ContainerRef, restartCount: number): string {
  return path.join(containerLogDir(root, c), `${restartCount}.log`)
}

export const currentLink = (root: string, c: ContainerRef) => path.join(containerLogDir(root, c), 'current.log')

/**
 * A simulated container's file system: the folder `kubectl exec` into it runs in (a kwok
 * `Exec` per pod), exported to the command as NSOPS_CONTAINER_ROOT, so a path the container
 * would have (`/srv/static`) is `$NSOPS_CONTAINER_ROOT/srv/static` here (the dev loop's live
 * sync writes there, and a test reads it back).
 */
export const containerRoot = (root: string, c: ContainerRef) => path.join(containerLogDir(root, c), 'rootfs')
export const CONTAINER_ROOT_ENV = 'NSOPS_CONTAINER_ROOT'
export const previousLink = (root: string, c: ContainerRef) => path.join(containerLogDir(root, c), 'previous.log')

/** One CRI log line: `<RFC3339Nano> <stream> F <text>` (F = a full line, not a partial one). */
export function criLine(text: string, stream: 'stdout' | 'stderr' = 'stdout', at = new Date()): string {
  return `${rfc3339Nano(at)} ${stream} F ${text}\n`
}

// Date has milliseconds; a CRI timestamp carries nanoseconds. A counter in the sub-millisecond
// digits keeps lines written within one millisecond strictly ordered by their timestamps,
// which is what a follower resuming "after the last line's time" relies on.
let lastMs = 0
let sub = 0
function rfc3339Nano(at: Date): string {
  const ms = at.getTime()
  sub = ms === lastMs ? sub + 1 : 0
  lastMs = ms
  const iso = at.toISOString() // 2024-01-02T03:04:05.678Z
  return `${iso.slice(0, 23)}${String(Math.min(sub, 999_999)).padStart(6, '0')}Z`
}

/** Appends lines to the container's current log file (what the app "prints"). */
export function appendContainerLog(
  root: string,
  c: ContainerRef,
  lines: string[],
  stream: 'stdout' | 'stderr' = 'stdout',
): void {
  fs.appendFileSync(currentLink(root, c), lines.map((l) => criLine(l, stream)).join(''))
}

/**
 * Starts the log of container run `restartCount`: writes its first lines to a new file and
 * points `current.log` at it (and `previous.log` at the run before, when there was one).
 * Idempotent: a file that exists already is left as it is (the component restarted).
 */
export function startContainerLog(root: string, c: ContainerRef, restartCount: number, firstLines: string[]): string {
  const dir = containerLogDir(root, c)
  fs.mkdirSync(dir, { recursive: true })
  const file = containerLogFile(root, c, restartCount)
  if (!fs.existsSync(file)) fs.writeFileSync(file, firstLines.map((l) => criLine(l)).join(''))
  relink(currentLink(root, c), path.basename(file))
  if (restartCount > 0) relink(previousLink(root, c), `${restartCount - 1}.log`)
  return file
}

/** The run a container's `current.log` points at, or undefined when it has none yet. */
export function currentRun(root: string, c: ContainerRef): number | undefined {
  try {
    return Number(path.basename(fs.readlinkSync(currentLink(root, c)), '.log'))
  } catch {
    return undefined
  }
}

// a new link renamed over the old one: a reader never finds the link missing
function relink(link: string, target: string): void {
  const tmp = `${link}.${process.pid}.tmp`
  fs.rmSync(tmp, { force: true })
  fs.symlinkSync(target, tmp)
  fs.renameSync(tmp, link)
}

/** Removes the log directories of pods that no longer exist (by `<ns>_<pod>_<uid>`). */
export function removePodLogs(root: string, keep: Set<string>): void {
  let entries: string[]
  try {
    entries = fs.readdirSync(root)
  } catch {
    return
  }
  for (const e of entries) if (!keep.has(e)) fs.rmSync(path.join(root, e), { recursive: true, force: true })
}

export const podLogKey = (namespace: string, pod: string, uid: string) => `${namespace}_${pod}_${uid}`
