// The fast path for the namespace scripts and the nsops CLI: run the script as one JavaScript
// file built with esbuild (tsx ships it) and cached in node_modules/.nsops/run, with plain
// node and no loader. tsx's own start-up is ~170 ms and every TypeScript module through its
// hooks costs more; this is what keeps `--help` and `dashboard.ts --json` quick. The cache is
// rebuilt when any of the script's source files changes (mtime and size of each input).
// TypeScript loaded by a computed path (a namespace's namespace.ts) still goes through tsx,
// registered on demand (shared/ts-import.ts). NSOPS_NO_BUNDLE=1 runs everything through tsx.
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const entry = path.resolve(process.argv[2])
const dir = path.join(root, 'node_modules/.nsops/run')
const key = createHash('sha256').update(entry).digest('hex').slice(0, 16)
const out = path.join(dir, `${key}.mjs`)
const metaFile = path.join(dir, `${key}.json`)
const lockFile = path.join(root, 'node_modules/.package-lock.json')

function stamp(file) {
  const st = fs.statSync(file, { throwIfNoEntry: false })
  return st ? `${st.mtimeMs}:${st.size}` : 'missing'
}

function fresh() {
  try {
    const meta = JSON.parse(fs.readFileSync(metaFile, 'utf8'))
    if (meta.lock !== stamp(lockFile) || !fs.existsSync(out)) return false
    return Object.entries(meta.inputs).every(([f, s]) => stamp(f) === s)
  } catch { return false }
}

function build() {
  const esbuild = createRequire(path.join(root, 'node_modules/tsx/package.json'))('esbuild')
  fs.mkdirSync(dir, { recursive: true })
  const tmp = `${out}.${process.pid}.tmp`
  const result = esbuild.buildSync({
    entryPoints: [entry], bundle: true, platform: 'node', format: 'esm', target: 'node20', outfile: tmp,
    metafile: true, logLevel: 'silent', minifyWhitespace: true, minifySyntax: true, keepNames: true,
    external: ['tsx', 'tsx/*', 'esbuild'],
    banner: { js: "import { createRequire as __nsopsRequire } from 'node:module'; const require = __nsopsRequire(import.meta.url);" },
  })
  // our own sources only: packages change together with the lockfile
  const inputs = Object.fromEntries(Object.keys(result.metafile.inputs)
    .map((f) => path.resolve(f)).filter((f) => !f.includes(`${path.sep}node_modules${path.sep}`)).map((f) => [f, stamp(f)]))
  fs.renameSync(tmp, out)
  fs.writeFileSync(metaFile, JSON.stringify({ entry, lock: stamp(lockFile), inputs }))
}

process.env.NSOPS_REPO_ROOT = root
process.argv.splice(1, 1) // the script sees itself as argv[1], its arguments from argv[2]
let bundled = false
try {
  if (!fresh()) build()
  bundled = true
} catch {
  // esbuild missing or the build failed: run through tsx instead (slower, same result)
}
// An error while the script's modules load (a namespace.ts that fails its checks is the
// usual one) happens before the script's own error handling runs: report it the same way,
// `error:` and `hint:`, the stack only with --debug.
try {
  if (bundled) await import(pathToFileURL(out).href)
  else {
    const { register } = await import(pathToFileURL(path.join(root, 'node_modules/tsx/dist/esm/api/index.mjs')).href)
    register()
    await import('./fast-deps.mjs')
    await import(pathToFileURL(entry).href)
  }
} catch (err) {
  const debug = process.argv.includes('--debug')
  const known = err instanceof Error && err.name === 'NsopsError'
  const lines = [`error: ${err instanceof Error ? err.message : String(err)}`]
  if (known && err.hint) lines.push(`hint: ${err.hint}`)
  else if (!known) lines.push('hint: run again with --debug for the full trace, and report it if it looks like a bug.')
  if (debug && err instanceof Error && err.stack) lines.push(err.stack)
  process.stderr.write(`${lines.join('\n')}\n`)
  process.exit(known && typeof err.exitCode === 'number' ? err.exitCode : 1)
}
