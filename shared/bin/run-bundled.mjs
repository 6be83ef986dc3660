// The fast path for the namespace scripts and the nsops CLI: run the script as one JavaScript
// file built with esbuild (tsx ships it) and cached in node_modules/.nsops/run, with plain
// node and no loader. tsx's own start-up is ~170 ms and every TypeScript module through its
// hooks costs more; this is what keeps `--help` and `dashboard.ts --json` quick. The cache is
// rebuilt when any of the script's source files changes (mtime and size of each input).
// TypeScript loaded by a computed path (a namespace's namespace.ts) still goes through tsx,
// registered on demand (shared/core/ts-import.ts). NSOPS_NO_BUNDLE=1 runs everything through tsx.
//
// The bundle is CommonJS when it can be (no top-level await in it), so that it runs through a
// vm.Script with a V8 code cache kept beside it: compiling a 3-4 MB bundle (and the functions it calls, lazily) was ~60-100 ms of every start.
// The cache is written once, when the process ends, so it holds what that run compiled;
// V8 checks it against the source and its own flags and we rewrite it when V8 refuses it.
// A bundle that needs ESM (top-level await) runs as before, through import().
//
// Why not node's own compile cache (module.enableCompileCache, Node 22.1+)? Node writes its
// cache right after compiling a module, so it holds the top-level code only (0.57 MB for the
// dev.ts bundle); every function the run then compiles lazily is compiled again on the next
// start. Ours is written when the process ends and holds what the run compiled (2.7 MB).
// Measured on Node 24.22 (bench startup, CPU time of `--help`, one interleaved run): nsops
// 70 ms with ours, 80 ms node's cache over the CommonJS bundle, 120 ms over the ESM bundle,
// 190 ms with none; dev.ts 130 / 150 / 170 / 210 ms. NSOPS_CODE_CACHE selects the variant
// (v8: ours, the default; node-cjs; node: the ESM bundle; 0: no cache) so the bench can
// compare them again on a later Node.
//
// Why not Node 24's built-in type stripping (`node dev.ts`, no bundle, no tsx)? Each of the
// ~200 modules is then read, stripped and compiled on its own: the same bench run (loaded
// machine) gave dashboard.ts --help 342 ms against 119 ms here, dev.ts 445 against 207 ms,
// deploy.ts 584 against 237 ms. It wins only where nearly nothing loads (nsops --help: 34 ms
// against 92 ms, as its help needs no command module), which is not where the time goes.
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import Module, { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import vm from 'node:vm'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const entry = path.resolve(process.argv[2])
const dir = path.join(root, 'node_modules/.nsops/run')
// NSOPS_CODE_CACHE: v8 (default) the hand-made cache below; node: node's own compile cache
// (module.enableCompileCache) over the ESM bundle; node-cjs: the same over the CommonJS bundle;
// 0: the ESM bundle and no cache at all. bench/startup compares them in one run.
const cacheMode = process.env.NSOPS_CODE_CACHE ?? 'v8'
const esmOnly = cacheMode === '0' || cacheMode === 'node'
const key = createHash('sha256').update(entry).digest('hex').slice(0, 16) + (esmOnly ? '-esm' : '')
const esmOut = path.join(dir, `${key}.mjs`)
const cjsOut = path.join(dir, `${key}.cjs`)
const codeCache = path.join(dir, `${key}.cache`)
// where esbuild writes before the rename: a run that dies midway never leaves half a bundle
const cjsTmp = `${cjsOut}.${process.pid}.tmp`
const esmTmp = `${esmOut}.${process.pid}.tmp`
const metaFile = path.join(dir, `${key}.json`)
let format = 'cjs'
const lockFile = path.join(root, 'node_modules/.package-lock.json')
// this file decides how bundles are made (esbuild's options, the lazy packages): a change to it makes them again
const self = fileURLToPath(import.meta.url)

function stamp(file) {
  const st = fs.statSync(file, { throwIfNoEntry: false })
  return st ? `${st.mtimeMs}:${st.size}` : 'missing'
}

function fresh() {
  try {
    const meta = JSON.parse(fs.readFileSync(metaFile, 'utf8'))
    format = meta.format === 'esm' ? 'esm' : 'cjs'
    if (meta.lock !== stamp(lockFile) || meta.runner !== stamp(self)) return false
    if (!fs.existsSync(format === 'esm' ? esmOut : cjsOut)) return false
    return Object.entries(meta.inputs).every(([f, s]) => stamp(f) === s)
  } catch {
    return false
  }
}

// Packages the bundle carries but a run rarely uses, loaded on first use instead of at start:
// each is required where it is named, and evaluating it costs start-up time every command pays.
// @kubernetes/client-node's config.js loads the SOCKS proxy agent (with socks, ip-address and
// smart-buffer) for a `proxy-url: socks5://…` cluster only; node-fetch loads whatwg-url (with
// tr46's Unicode table) only as its fallback where node has no URL class, which Node 10+ has.
// Ours: simple-git (with debug) for the git work of deploy, ci and the sim's remote; tar and
// semver for pulling a chart or a tool; zx for a namespace's tasks, hooks and custom image
// builds (evaluating it, with node's undici that its reading of TextDecoder loads, was about a
// tenth of a dashboard's run with no hook to run). Each is replaced in the bundle by a module
// with the same named exports as getters that load the real package when read (esbuild
// bundles it as usual, only not run until then). The CommonJS build is the one loaded, so its
// export names are known by loading it here, at build time. Every import of the name in the
// bundle gets the copy the repository root resolves (each has one copy in node_modules; none
// is imported by a subpath).
const LAZY = ['socks-proxy-agent', 'whatwg-url', 'simple-git', 'tar', 'semver', 'zx']

function lazyAliases() {
  const req = createRequire(path.join(root, 'package.json'))
  const out = {}
  for (const pkg of LAZY) {
    let real
    let names
    try {
      real = req.resolve(pkg)
      names = Object.keys(req(real)) // its exports as this version has them (CommonJS: loading it tells)
    } catch {
      continue // not installed (a later client-node without it): nothing to defer
    }
    const shim = path.join(dir, 'lazy', `${pkg}.cjs`)
    const text = `let m\nconst load = () => (m ??= require(${JSON.stringify(real)}))\n${names
      .map(
        (n) =>
          `Object.defineProperty(exports, ${JSON.stringify(n)}, { enumerable: true, get: () => load()[${JSON.stringify(n)}] })`,
      )
      .join('\n')}\n`
    fs.mkdirSync(path.dirname(shim), { recursive: true })
    if (!fs.existsSync(shim) || fs.readFileSync(shim, 'utf8') !== text) {
      fs.writeFileSync(`${shim}.${process.pid}.tmp`, text) // renamed: a build beside this one never reads half of it
      fs.renameSync(`${shim}.${process.pid}.tmp`, shim)
    }
    out[pkg] = shim
  }
  return out
}

function build() {
  const esbuild = createRequire(path.join(root, 'node_modules/tsx/package.json'))('esbuild')
  fs.mkdirSync(dir, { recursive: true })
  const common = {
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    target: 'node24',
    metafile: true,
    logLevel: 'silent',
    minifyWhitespace: true,
    minifySyntax: true,
    keepNames: true,
    external: ['tsx', 'tsx/*', 'esbuild'],
    alias: lazyAliases(),
  }
  let result = esmOnly ? undefined : commonJs(esbuild, common)
  format = 'cjs'
  if (!result) {
    format = 'esm'
    result = esbuild.buildSync({
      ...common,
      format: 'esm',
      outfile: esmTmp,
      banner: {
        js: "import { createRequire as __nsopsRequire } from 'node:module'; const require = __nsopsRequire(import.meta.url);",
      },
    })
  }
  // our own sources only: packages change together with the lockfile
  const inputs = Object.fromEntries(
    Object.keys(result.metafile.inputs)
      .map((f) => path.resolve(f))
      .filter((f) => !f.includes(`${path.sep}node_modules${path.sep}`))
      .map((f) => [f, stamp(f)]),
  )
  if (format === 'cjs') asciiOnly(cjsTmp)
  fs.renameSync(format === 'esm' ? esmTmp : cjsTmp, format === 'esm' ? esmOut : cjsOut)
  fs.rmSync(codeCache, { force: true })
  fs.writeFileSync(metaFile, JSON.stringify({ entry, format, lock: stamp(lockFile), runner: stamp(self), inputs }))
  pruneGone()
}

/**
 * Removes the bundles of scripts that no longer exist (a namespace deleted or renamed, a
 * scratch script): each is some 10 MB with its code cache, and nothing else would ever remove
 * it. Done when a bundle is made, which is rare; another process's bundle is only removed when
 * its script is gone too.
 */
function pruneGone() {
  for (const name of fs.readdirSync(dir)) {
    if (!name.endsWith('.json')) continue
    const base = path.join(dir, name.slice(0, -'.json'.length))
    try {
      const gone = JSON.parse(fs.readFileSync(`${base}.json`, 'utf8')).entry
      if (typeof gone !== 'string' || fs.existsSync(gone)) continue
      for (const ext of ['.json', '.cjs', '.mjs', '.cache']) fs.rmSync(`${base}${ext}`, { force: true })
    } catch {
      /* being written by another process, or already removed */
    }
  }
}

/**
 * The CommonJS bundle as pure ASCII, so that it loads as a one-byte string (read as latin1, no
 * UTF-8 decoding): esbuild escapes what is not ASCII in strings, but not in regular expressions
 * (one `ſ` in a package made the whole 3-4 MB source a two-byte string, twice the memory, and
 * slower to read and to compile). Each such character becomes its \uXXXX escape, which means
 * the same character in a regular expression, a string, a template and an identifier alike.
 * The entry's shebang becomes a comment: only a file node itself loads may have one.
 */
function asciiOnly(file) {
  const text = fs.readFileSync(file, 'utf8')
  const ascii = text
    .replace(/^#!/, '//')
    // one UTF-16 unit at a time: a character beyond the BMP becomes its surrogate pair, \uD83D\uDE00
    .replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
  if (ascii !== text) fs.writeFileSync(file, ascii)
}

/**
 * The CommonJS bundle, or undefined when the script needs ESM: top-level await somewhere, or
 * an import() of a package left out of the bundle (kept on the ESM path, as before).
 */
function commonJs(esbuild, common) {
  let result
  try {
    // import.meta.url is the bundle's own URL in every module, as it is in the ESM bundle
    result = esbuild.buildSync({
      ...common,
      format: 'cjs',
      outfile: cjsTmp,
      define: { 'import.meta.url': '__nsopsImportMetaUrl' },
      banner: { js: "var __nsopsImportMetaUrl = require('node:url').pathToFileURL(__filename).href;" },
    })
  } catch (err) {
    if (String(err?.message).includes('Top-level await')) return undefined
    throw err
  }
  const imports = Object.values(result.metafile.outputs).flatMap((o) => o.imports)
  if (imports.some((i) => i.kind === 'dynamic-import' && i.external)) {
    fs.rmSync(cjsTmp, { force: true })
    return undefined
  }
  return result
}

// Node 24 calls USE_MAIN_CONTEXT_DEFAULT_LOADER experimental and says so on stderr the first
// time a bundle imports a namespace.ts; that line is for us, not for the user of a script.
const emitWarning = process.emitWarning
process.emitWarning = function (warning, ...rest) {
  const text = typeof warning === 'string' ? warning : warning?.message
  if (typeof text === 'string' && text.includes('USE_MAIN_CONTEXT_DEFAULT_LOADER')) return
  return emitWarning.call(process, warning, ...rest)
}

/** Runs the CommonJS bundle as node's loader would, compiled with (and then into) the code cache. */
function runCommonJs() {
  // ASCII by construction (asciiOnly): latin1 reads it as it is, without decoding
  const source = fs.readFileSync(cjsOut, 'latin1')
  let cachedData
  try {
    cachedData = fs.readFileSync(codeCache)
  } catch {
    /* first run of this bundle */
  }
  const script = new vm.Script(Module.wrap(source), {
    filename: cjsOut,
    cachedData,
    // import() in the bundle (shared/core/ts-import.ts: tsx, a namespace.ts) goes to node's own loader
    importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  })
  if (!cachedData || script.cachedDataRejected) {
    process.once('exit', () => {
      try {
        const tmp = `${codeCache}.${process.pid}.tmp`
        fs.writeFileSync(tmp, script.createCachedData())
        fs.renameSync(tmp, codeCache)
      } catch {
        /* a read-only checkout: the next run compiles again */
      }
    })
  }
  const mod = new Module(cjsOut, undefined)
  mod.filename = cjsOut
  mod.paths = Module._nodeModulePaths(dir)
  const require = createRequire(cjsOut)
  script.runInThisContext()(mod.exports, require, mod, cjsOut, dir)
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
  if (bundled && (cacheMode === 'node' || cacheMode === 'node-cjs')) {
    Module.enableCompileCache(path.join(dir, 'compile-cache'))
  }
  if (bundled && format === 'cjs' && cacheMode === 'node-cjs') createRequire(import.meta.url)(cjsOut)
  else if (bundled && format === 'cjs') runCommonJs()
  else if (bundled) await import(pathToFileURL(esmOut).href)
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
