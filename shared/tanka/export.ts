// Rendered objects written out as tk does: `tk show` prints one YAML stream; `tk export`
// writes one file per object, named `<apiVersion>.<kind>-<name>.yaml` ('/' becomes '-'),
// plus manifest.json mapping each file to its environment's entrypoint.
import fs from 'node:fs/promises'
import path from 'node:path'
import { stringify } from 'yaml'
import { NsopsError } from '../core/errors.ts'
import { shown, type TankaEnvironment } from './environments.ts'
import type { TankaObject } from './process.ts'

export const EXPORT_MANIFEST = 'manifest.json'

/** One YAML document per object, keys sorted (as tk's YAML), separated by `---`. */
export function toYamlStream(objects: TankaObject[]): string {
  return objects.map((o) => stringify(o, { sortMapEntries: true, lineWidth: 0 })).join('---\n')
}

export function exportFileName(obj: TankaObject): string {
  return `${obj.apiVersion}.${obj.kind}-${obj.metadata.name}`.replaceAll('/', '-') + '.yaml'
}

export interface ExportResult {
  dir: string
  files: string[]
}

/**
 * Writes each object to <dir>/<file>.yaml and <dir>/manifest.json. Like tk, refuses a
 * directory that is not empty (unless `merge`) and never overwrites a file.
 */
export async function exportEnvironment(
  env: TankaEnvironment,
  objects: TankaObject[],
  dir: string,
  opts: { merge?: boolean } = {},
): Promise<ExportResult> {
  const entries = await fs.readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [] as string[]
    throw err
  })
  if (entries.length > 0 && !opts.merge) {
    throw new NsopsError(`the export directory ${shown(dir)} is not empty.`, {
      hint: 'Export into a new or empty directory, or pass --merge to add to it (existing files are never overwritten).',
    })
  }
  const names = objects.map(exportFileName)
  const clash = names.find((n, i) => names.indexOf(n) !== i) ?? names.find((n) => entries.includes(n))
  if (clash) {
    throw new NsopsError(
      `${shown(path.join(dir, clash))} would be written twice or already exists; nothing was exported.`,
      {
        hint: 'Two objects share apiVersion, kind and name (in different namespaces?), or the directory holds an earlier export: use an empty directory.',
      },
    )
  }
  await fs.mkdir(dir, { recursive: true })
  const entrypoint = path.relative(env.root, env.main).split(path.sep).join('/')
  const manifestFile = path.join(dir, EXPORT_MANIFEST)
  const manifest: Record<string, string> = JSON.parse(
    await fs.readFile(manifestFile, 'utf8').catch(() => '{}'),
  ) as Record<string, string>
  for (const [i, obj] of objects.entries()) {
    await fs.writeFile(path.join(dir, names[i]), stringify(obj, { sortMapEntries: true, lineWidth: 0 }), { flag: 'wx' })
    manifest[path.join(dir, names[i])] = entrypoint
  }
  if (objects.length > 0) await fs.writeFile(manifestFile, `${JSON.stringify(manifest, null, 4)}\n`)
  return { dir, files: names }
}
