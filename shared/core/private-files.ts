// Files only their owner may read: nsops' build caches (built manifests, which may hold a
// dev Secret), task logs (a task's output) and snapshots (log lines) are written 0600 in
// folders 0700, whatever the umask. A file or folder that existed with looser modes (written
// by an older nsops) is tightened when it is written again.
import fs from 'node:fs'
import path from 'node:path'

/** `dir` (and any parent it creates) 0700; an existing `dir` is tightened to 0700. */
export function mkdirPrivate(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
  if ((fs.statSync(dir).mode & 0o077) !== 0) fs.chmodSync(dir, 0o700)
}

/** Writes `text` to `file` with mode 0600, in a folder made 0700. */
export function writePrivateFile(file: string, text: string): void {
  mkdirPrivate(path.dirname(file))
  fs.writeFileSync(file, text, { mode: 0o600 })
  // the mode above applies only when the file is created
  fs.chmodSync(file, 0o600)
}
