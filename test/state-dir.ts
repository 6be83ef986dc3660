// A suite's own nsops state folder (sessions, holds' records): NSOPS_STATE_DIR points at it
// while the suite runs, and `leave` removes it and puts back what the process had before.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

export function privateStateDir(prefix: string): { dir: string; enter(): void; leave(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
  const saved = process.env.NSOPS_STATE_DIR
  return {
    dir,
    enter() {
      process.env.NSOPS_STATE_DIR = dir
    },
    leave() {
      fs.rmSync(dir, { recursive: true, force: true })
      if (saved === undefined) delete process.env.NSOPS_STATE_DIR
      else process.env.NSOPS_STATE_DIR = saved
    },
  }
}
