// tk-export: one file per object of an environment, as `tk export`.
import path from 'node:path'
import { ExitCode, NsopsError } from '../core/errors.ts'
import { log } from '../core/output.ts'
import { shown } from '../tanka/environments.ts'
import { exportEnvironment } from '../tanka/export.ts'
import { engineOf, parseEnvironmentCommand, renderShown, rootAndEngineHelp } from '../tanka/command-line.ts'

const usage = `
Usage: just tk-export ENV DIR [--merge] [--root DIR] [--engine NAME]

Writes each object of the environment to DIR/<apiVersion>.<kind>-<name>.yaml and a
manifest.json that maps the files to the environment, as \`tk export\`. DIR must be empty
or new (--merge adds to it; no file is ever overwritten).${rootAndEngineHelp}
`

export async function tkExport(argv: string[]): Promise<number> {
  const { values, positionals, env } = parseEnvironmentCommand(argv, usage, { merge: { type: 'boolean' } })
  const dir = positionals[1]
  if (!dir) throw new NsopsError('name the directory to export into.', { hint: `Usage:\n${usage.trim()}` })
  const { objects } = await renderShown(env, engineOf(values.engine))
  const result = await exportEnvironment(env, objects, dir, { merge: values.merge })
  log.ok(`exported ${result.files.length} objects of ${env.name} to ${shown(path.resolve(dir))}`)
  return ExitCode.ok
}
