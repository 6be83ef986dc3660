// The namespaces this repo knows: every folder under namespaces/ with a namespace.ts.
// Names come from users (just deploy NAME), so they are checked before touching the disk.
import fs from 'node:fs'
import path from 'node:path'
import { NsopsError, errorMessage } from '../core/errors.ts'
import type { NamespaceConfig } from './namespace-config.ts'
import { repoRoot } from '../core/paths.ts'
import { importTs } from '../core/ts-import.ts'

export const namespacesDir = path.join(repoRoot, 'namespaces')

export function knownNamespaces(): string[] {
  if (!fs.existsSync(namespacesDir)) return [] // a Flux repository nsops was just added to: `just init` makes it
  return fs
    .readdirSync(namespacesDir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && fs.existsSync(path.join(namespacesDir, e.name, 'namespace.ts')))
    .map((e) => e.name)
    .sort()
}

/** Refuses names with path characters before anything else looks at them. */
export function checkNamespaceName(name: string): void {
  if (
    !name ||
    name.includes('/') ||
    name.includes('\\') ||
    name.includes('..') ||
    name.startsWith('.') ||
    !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(name)
  ) {
    throw new NsopsError(
      `"${name}" is not a namespace name: use lowercase letters, digits and '-' (no '/', '..' or spaces).`,
      {
        hint: `Known namespaces: ${knownNamespaces().join(', ')}.`,
      },
    )
  }
}

export async function loadNamespace(name: string): Promise<NamespaceConfig> {
  checkNamespaceName(name)
  const file = path.join(namespacesDir, name, 'namespace.ts')
  if (!fs.existsSync(file)) {
    throw new NsopsError(`unknown namespace "${name}".`, {
      hint: `Known namespaces: ${knownNamespaces().join(', ')}. Create one with \`just new-namespace ${name}\`.`,
    })
  }
  let mod: { default?: NamespaceConfig }
  try {
    mod = await importTs<{ default?: NamespaceConfig }>(file)
  } catch (err) {
    // defineNamespace's own findings are NsopsErrors already; a file that does not compile
    // or throws while it loads is the user's to fix, named with the place the compiler gives
    if (err instanceof NsopsError) throw err
    const msg = errorMessage(err)
    const where = /(\S*namespace\.ts:\d+:\d+): ERROR: ([^\n]+)/.exec(msg)
    const rel = path.relative(repoRoot, file)
    throw new NsopsError(
      where
        ? `${rel} does not compile: ${path.relative(repoRoot, where[1])}: ${where[2]}.`
        : `${rel} failed to load: ${msg.split('\n')[0]}`,
      {
        hint: `fix ${rel} (\`npx tsc --noEmit\` lists every error in it); it must \`export default defineNamespace({...})\`.`,
        cause: err,
      },
    )
  }
  if (!mod.default?.name) {
    throw new NsopsError(`${path.relative(process.cwd(), file)} does not \`export default defineNamespace({...})\`.`)
  }
  // the folder is what deploy commits and the dev loop watches; the name finds the folder
  // again (paths, sessions, Flux): two different names would act on two different folders
  if (mod.default.name !== name) {
    throw new NsopsError(
      `${path.relative(process.cwd(), file)} names its namespace "${mod.default.name}", but its folder is namespaces/${name}.`,
      {
        hint: `A namespace's name is its folder's name: set name: '${name}' in it, or rename the folder to namespaces/${mod.default.name}.`,
      },
    )
  }
  return mod.default
}

/**
 * A namespace's own script (./namespaces/<folder>/deploy.ts) imports ./namespace.ts directly:
 * its name must be that folder's, or deploy would commit, and the dev loop watch, another one.
 */
export function checkScriptFolder(ns: NamespaceConfig, script = process.argv[1]): void {
  if (!script) return
  const rel = path.relative(namespacesDir, path.resolve(script))
  const [folder, ...rest] = rel.split(path.sep)
  if (!folder || rel.startsWith('..') || path.isAbsolute(rel) || rest.length !== 1) return
  if (folder === ns.name) return
  throw new NsopsError(
    `namespaces/${folder}/namespace.ts names its namespace "${ns.name}", but its folder is namespaces/${folder}.`,
    {
      hint: `A namespace's name is its folder's name: set name: '${folder}' in it, or rename the folder to namespaces/${ns.name}.`,
    },
  )
}

export async function loadNamespaces(names?: string[]): Promise<NamespaceConfig[]> {
  return Promise.all((names?.length ? names : knownNamespaces()).map(loadNamespace))
}
