// Imports a TypeScript file chosen at run time (a namespace's namespace.ts, a test file).
// Under tsx this is a plain import; in a bundled script (shared/bin/run-bundled.mjs) tsx is
// registered first, on demand, so the fast start-up path pays for it only when needed.
import { pathToFileURL } from 'node:url'

let registered: Promise<void> | undefined

// A plain import(): in the CommonJS bundle too, whose vm.Script hands import() to node's own
// loader (run-bundled.mjs, importModuleDynamically).
const dynamicImport = (specifier: string): Promise<unknown> => import(specifier)

/** Started as `node --import tsx …` (shared/bin/nsops-node): TypeScript imports just work. */
const underTsx = process.execArgv.some((a) => a.includes('tsx'))

export async function importTs<T>(file: string): Promise<T> {
  if (!underTsx) {
    registered ??= (dynamicImport('tsx/esm/api') as Promise<typeof import('tsx/esm/api')>).then(({ register }) => {
      register()
    })
    await registered
  }
  return dynamicImport(pathToFileURL(file).href) as Promise<T>
}
