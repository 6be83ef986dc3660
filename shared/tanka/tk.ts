// Grafana Tanka's own `tk`, used whenever it can be had: on PATH, or in the tool cache
// (${XDG_CACHE_HOME:-~/.cache}/nsops/tools/tk/<version>/tk). It is not pinned or built
// by nsops (its module cannot be fetched here, research/control-plane.md §5).
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { parseAllDocuments } from 'yaml'
import { NsopsError } from '../core/errors.ts'
import { cacheDir } from '../core/paths.ts'
import type { TankaEnvironment } from './environments.ts'
import type { TankaObject } from './process.ts'
import { parseJsonnetText, renderFailure } from './render-error.ts'

const run = promisify(execFile)

function executable(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.X_OK)
    return fs.statSync(p).isFile()
  } catch {
    return false
  }
}

/** The `tk` binary to use, or undefined when there is none. */
export function findTk(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter).filter(Boolean)) {
    if (executable(path.join(dir, 'tk'))) return path.join(dir, 'tk')
  }
  const cached = path.join(cacheDir(), 'tools', 'tk')
  let versions: string[] = []
  try {
    versions = fs.readdirSync(cached).sort().reverse()
  } catch {
    /* no cache entry */
  }
  return versions.map((v) => path.join(cached, v, 'tk')).find(executable)
}

/** `tk show` of the environment: tk's own evaluation and processing, in tk's order. */
export async function showWithTk(env: TankaEnvironment, tk: string, helm: string): Promise<TankaObject[]> {
  let stdout: string
  try {
    ;({ stdout } = await run(tk, ['show', env.dir, '--dangerous-allow-redirect'], {
      cwd: env.root,
      maxBuffer: 512 * 1024 * 1024,
      env: { ...process.env, TANKA_HELM_PATH: helm, NO_COLOR: '1' },
    }))
  } catch (err) {
    const e = err as { stderr?: string; message: string }
    throw renderFailure(env, parseJsonnetText(e.stderr ?? e.message))
  }
  const objects: TankaObject[] = []
  for (const doc of parseAllDocuments(stdout)) {
    if (doc.errors.length)
      throw new NsopsError(`tk show printed YAML that does not parse for ${env.name}: ${doc.errors[0].message}`)
    const value = doc.toJS() as TankaObject | null
    if (value) objects.push(value)
  }
  return objects
}
