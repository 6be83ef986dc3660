// Start-up speed: @kubernetes/client-node is ~2,600 ES modules, and loading them one by one
// (through tsx's hooks) costs about a second per script start. This registers a resolve hook
// that serves one pre-bundled file instead (made once with esbuild, which tsx already ships,
// and kept in node_modules/.nsops so `npm ci` refreshes it). Types still come from the real
// package; only the runtime file differs. NSOPS_NO_BUNDLE=1 turns it off.
import fs from 'node:fs'
import { createRequire, register } from 'node:module'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const pkgDir = path.join(root, 'node_modules/@kubernetes/client-node')

function bundlePath() {
  const { version } = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'))
  return path.join(root, 'node_modules/.nsops', `client-node-${version}.mjs`)
}

function ensureBundle(out) {
  if (fs.existsSync(out)) return true
  try {
    const esbuild = createRequire(path.join(root, 'node_modules/tsx/package.json'))('esbuild')
    fs.mkdirSync(path.dirname(out), { recursive: true })
    const tmp = `${out}.${process.pid}.tmp`
    esbuild.buildSync({
      entryPoints: [path.join(pkgDir, 'dist/index.js')],
      bundle: true,
      minify: true,
      keepNames: true,
      platform: 'node',
      format: 'esm',
      target: 'node24',
      outfile: tmp,
      logLevel: 'silent',
      // bundled CommonJS dependencies still call require()
      banner: {
        js: "import { createRequire as __nsopsRequire } from 'node:module'; const require = __nsopsRequire(import.meta.url);",
      },
    })
    fs.renameSync(tmp, out)
    return true
  } catch {
    return false // no esbuild or no space: the package loads the slow way
  }
}

if (process.env.NSOPS_NO_BUNDLE !== '1' && fs.existsSync(pkgDir)) {
  const out = bundlePath()
  if (ensureBundle(out)) register('./fast-deps-hooks.mjs', import.meta.url, { data: { url: pathToFileURL(out).href } })
}
