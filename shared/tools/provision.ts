// Pinned binaries, found or made: a matching binary on PATH → the cache → the official
// release download → a build from the Go module → a clear error naming what to install.
// A warm run reads one small JSON memo and stats a few files.
import { spawn, execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import fsp from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'
import { NsopsError, errorMessage } from '../core/errors.ts'
import { duration, interactive, log, spinner } from '../core/output.ts'
import { cacheDir, repoRoot } from '../core/paths.ts'
import { withFileLock } from '../core/lock.ts'
import { currentPlatform, fetchVerified, installArtifact, releaseArtifacts } from './download.ts'
import { recipes, versionArgs, type GoRecipe, type ModuleFacts } from './recipes.ts'
import { toolForBinary, toolSpec, type ToolSpec } from './versions.ts'

const run = promisify(execFile)

export function toolsDir(): string {
  return path.join(cacheDir(), 'tools')
}

/** Where the cache keeps a tool's binaries: tools/<tool>/<version>/<binary>. */
export function cachedBinaryPath(spec: ToolSpec, binary: string): string {
  return path.join(toolsDir(), spec.name, spec.version, binary)
}

/**
 * What a cached build was made from: the pinned module and version and everything its recipe
 * says (go.mod, tidy arguments, packages, added files, ldflags). Recorded next to the binaries
 * (STAMP), so an edited recipe rebuilds instead of serving a binary built the old way.
 */
export function toolBuildKey(spec: ToolSpec): string {
  const r = recipes[spec.name]
  const facts: ModuleFacts = { require: (dep) => `{${dep} required by ${r?.goModule ?? spec.module}@${spec.version}}` }
  const inputs = {
    module: spec.module,
    version: spec.version,
    kind: r?.kind,
    goModule: r?.goModule,
    goMod: r?.goMod?.(spec),
    tidyArgs: r?.tidyArgs,
    packages: r?.packages,
    addFiles: r?.addFiles,
    ldflags: r?.ldflags?.(spec, facts) ?? '-s -w',
  }
  return createHash('sha256').update(JSON.stringify(inputs)).digest('hex').slice(0, 16)
}

/** The stamp file in tools/<tool>/<version>/: `build <toolBuildKey>` or `release <url>`. */
const STAMP = '.provenance'

function stampPath(spec: ToolSpec): string {
  return path.join(toolsDir(), spec.name, spec.version, STAMP)
}

/** Whether the cached binaries came from the official release or from the current recipe. */
function stampCurrent(spec: ToolSpec): boolean {
  let stamp: string
  try {
    stamp = fs.readFileSync(stampPath(spec), 'utf8').trim()
  } catch {
    return false
  }
  return stamp.startsWith('release ') || stamp === `build ${toolBuildKey(spec)}`
}

/** Records how the binaries in the cache were made (after they are all in place). */
export function writeStamp(spec: ToolSpec, how: { release: string } | 'build'): void {
  const text = how === 'build' ? `build ${toolBuildKey(spec)}` : `release ${how.release}`
  fs.mkdirSync(path.dirname(stampPath(spec)), { recursive: true })
  fs.writeFileSync(`${stampPath(spec)}.${process.pid}`, `${text}\n`)
  fs.renameSync(`${stampPath(spec)}.${process.pid}`, stampPath(spec))
}

interface MemoEntry {
  path: string
  mtimeMs: number
  size: number
}
type Memo = Record<string, MemoEntry>

const memoFile = () => path.join(toolsDir(), 'resolved.json')

function readMemo(): Memo {
  try {
    return JSON.parse(fs.readFileSync(memoFile(), 'utf8')) as Memo
  } catch {
    return {}
  }
}

function writeMemo(memo: Memo): void {
  fs.mkdirSync(toolsDir(), { recursive: true })
  const tmp = `${memoFile()}.${process.pid}`
  fs.writeFileSync(tmp, JSON.stringify(memo, null, 2))
  fs.renameSync(tmp, memoFile())
}

function statOf(p: string): { mtimeMs: number; size: number } | undefined {
  try {
    const st = fs.statSync(p)
    return st.isFile() ? { mtimeMs: st.mtimeMs, size: st.size } : undefined
  } catch {
    return undefined
  }
}

function isExecutable(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.X_OK)
    return fs.statSync(p).isFile()
  } catch {
    return false
  }
}

function onPath(binary: string): string[] {
  return (process.env.PATH ?? '')
    .split(path.delimiter)
    .filter(Boolean)
    .map((dir) => path.join(dir, binary))
    .filter(isExecutable)
}

async function pathBinaryMatches(candidate: string, binary: string, spec: ToolSpec): Promise<boolean> {
  const args = versionArgs[binary]
  if (!args) return false
  try {
    const { stdout, stderr } = await run(candidate, args, { timeout: 5000 })
    const bare = spec.version.replace(/^v/, '')
    return new RegExp(`(^|[^0-9.])v?${bare.replace(/\./g, '\\.')}([^0-9.]|$)`).test(stdout + stderr)
  } catch {
    return false
  }
}

export interface ProvisionOptions {
  /** skip the release download (tests, air-gapped machines); also NSOPS_NO_DOWNLOAD=1 */
  noDownload?: boolean
  /** skip PATH lookup; used by tests that must exercise the cache */
  ignorePath?: boolean
}

/**
 * A `local` recipe builds a package of this repo, so its cache key is a hash of the package's
 * sources (*.go, go.mod, go.sum) in place of the version: an edit means a rebuild.
 */
function keyedBySource(spec: ToolSpec): ToolSpec {
  const recipe = recipes[spec.name]
  if (recipe?.kind !== 'local') return spec
  const dir = path.join(repoRoot, recipe.dir!)
  const hash = createHash('sha256')
  for (const f of fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.go') || f === 'go.mod' || f === 'go.sum')
    .sort()) {
    hash
      .update(`${f}\0`)
      .update(fs.readFileSync(path.join(dir, f)))
      .update('\0')
  }
  return { ...spec, version: hash.digest('hex').slice(0, 16) }
}

/** Absolute path of a pinned executable, provisioning its tool when needed. */
export async function toolPath(binary: string, opts: ProvisionOptions = {}): Promise<string> {
  const spec = keyedBySource(toolForBinary(binary))
  const memo = readMemo()
  const key = `${binary}@${spec.version}#${toolBuildKey(spec)}`
  const hit = memo[key]
  if (hit && !opts.ignorePath) {
    const st = statOf(hit.path)
    if (st && st.mtimeMs === hit.mtimeMs && st.size === hit.size) return hit.path
  }
  const found = await provisionTool(spec, opts)
  const p = found[binary]
  const st = statOf(p)
  if (st && !opts.ignorePath) writeMemo({ ...readMemo(), [key]: { path: p, ...st } })
  return p
}

/**
 * Provision several executables, two tools at a time (a download or `go mod download` waits on
 * the network while the other compiles; more than two Go builds at once only share the same
 * cores and add to the memory peak). A wrapper build makes all its binaries together: the
 * binaries of one tool wait on its lock and then find the cache.
 */
export async function toolPaths(
  binaries: string[],
  opts: ProvisionOptions & { jobs?: number } = {},
): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  const queue = [...binaries]
  const worker = async () => {
    for (let b = queue.shift(); b !== undefined; b = queue.shift()) out[b] = await toolPath(b, opts)
  }
  await Promise.all(Array.from({ length: Math.max(1, opts.jobs ?? 2) }, worker))
  return Object.fromEntries(binaries.map((b) => [b, out[b]]))
}

async function provisionTool(spec: ToolSpec, opts: ProvisionOptions): Promise<Record<string, string>> {
  const tried: string[] = []
  const result: Record<string, string> = {}

  // 1. PATH
  if (!opts.ignorePath) {
    for (const b of spec.binaries) {
      for (const candidate of onPath(b)) {
        if (await pathBinaryMatches(candidate, b, spec)) {
          result[b] = candidate
          break
        }
      }
    }
    if (spec.binaries.every((b) => result[b])) return result
    tried.push(`no ${spec.binaries.join('/')} ${spec.version} on PATH`)
  }

  // 2. cache
  const cached = () => spec.binaries.every((b) => isExecutable(cachedBinaryPath(spec, b))) && stampCurrent(spec)
  const fromCache = () => Object.fromEntries(spec.binaries.map((b) => [b, cachedBinaryPath(spec, b)]))
  if (cached()) return fromCache()

  return withFileLock(path.join(toolsDir(), `.${spec.name}-${spec.version}.lock`), async () => {
    if (cached()) return fromCache() // another process made it while we waited
    tried.push(`not in ${path.join(toolsDir(), spec.name, spec.version)}`)

    // 3. official release
    const noDownload = opts.noDownload || process.env.NSOPS_NO_DOWNLOAD === '1'
    if (spec.release && !noDownload) {
      try {
        await downloadRelease(spec)
        if (cached()) return fromCache()
      } catch (err) {
        tried.push(`download failed (${errorMessage(err)})`)
      }
    }

    // 4. go build
    const recipe = recipes[spec.name]
    const go = onPath('go')[0]
    if (recipe && go) {
      await inBuildSlot(() => buildFromModule(spec, tried))
      if (cached()) return fromCache()
    }
    if (!go) tried.push('`go` is not installed, so it cannot be built from source')

    throw new NsopsError(`${spec.binaries.join(', ')} ${spec.version} is not available: ${tried.join('; ')}.`, {
      hint:
        `Install Go 1.26 or newer (https://go.dev/dl/) and run \`just setup\` again: nsops builds ${spec.name} ` +
        `from ${spec.module}@${spec.version} and caches it in ${toolsDir()}. Or put ${spec.binaries.join(', ')} ` +
        `${spec.version} on your PATH.`,
    })
  })
}

export async function downloadRelease(spec: ToolSpec): Promise<void> {
  const dest = path.join(toolsDir(), spec.name, spec.version)
  const platform = currentPlatform()
  const artifacts = releaseArtifacts(spec, platform)
  if (artifacts.length === 0) throw new Error(`no release for ${platform.os}`)
  const s = spinner(`downloading ${spec.name} ${spec.version}`)
  try {
    for (const a of artifacts) await installArtifact(spec, a, await fetchVerified(spec, platform, a), dest)
    writeStamp(spec, { release: artifacts[0].url })
    s.succeed(`downloaded ${spec.name} ${spec.version} (sha256 checked)`)
  } catch (err) {
    s.stop()
    throw err
  }
}

async function installFile(from: string, to: string): Promise<void> {
  const tmp = `${to}.${process.pid}`
  await fsp.copyFile(from, tmp)
  await fsp.chmod(tmp, 0o755)
  await fsp.rename(tmp, to)
}

/** The Go environment for builds: caches outside the work tree so rebuilds take seconds. */
function goEnv(): NodeJS.ProcessEnv {
  return { ...process.env, GOTOOLCHAIN: 'local', GOFLAGS: '-mod=mod', CGO_ENABLED: '0' }
}

// At most two Go builds at once in this process, whoever asks for them (toolPaths' queue, the
// sim starting its three Flux controllers together): a third only shares the same two cores
// and adds about a gigabyte to the memory peak.
const GO_BUILDS_AT_ONCE = 2
let goBuilds = 0
const waitingForBuild: (() => void)[] = []
async function inBuildSlot<T>(fn: () => Promise<T>): Promise<T> {
  while (goBuilds >= GO_BUILDS_AT_ONCE) await new Promise<void>((resolve) => waitingForBuild.push(resolve))
  goBuilds++
  try {
    return await fn()
  } finally {
    goBuilds--
    waitingForBuild.shift()?.()
  }
}

async function buildFromModule(spec: ToolSpec, tried: string[]): Promise<void> {
  const recipe = recipes[spec.name]
  const dest = path.join(toolsDir(), spec.name, spec.version)
  const work = path.join(cacheDir(), 'gobuild', `${spec.name}-${spec.version}`)
  await fsp.mkdir(dest, { recursive: true })
  await fsp.mkdir(work, { recursive: true })
  const why = tried.join('; ')
  // why and how long: on a terminal once, as a line of its own above the live row (which then
  // says what go is doing); elsewhere the start line says it
  const full = `building ${spec.name} ${spec.version} from ${spec.module} (${why}); ${recipe.expect}`
  if (interactive()) log.step(full)
  const s = spinner(interactive() ? `building ${spec.binaries.join(', ')} ${spec.version}` : full)
  const started = Date.now()
  const progress = (line: string) => s.detail?.(line)
  try {
    const ldflags = recipe.ldflags ? recipe.ldflags(spec, await moduleFacts(recipe, spec, work)) : '-s -w'
    if (recipe.kind === 'install') {
      await goRun(
        ['install', '-v', '-trimpath', '-ldflags', ldflags, `${spec.module}@${spec.version}`],
        work,
        { ...goEnv(), GOBIN: work },
        progress,
      )
      for (const b of spec.binaries) await installFile(path.join(work, b), path.join(dest, b))
    } else if (recipe.kind === 'local') {
      const out = path.join(work, spec.binaries[0])
      await goRun(
        ['build', '-v', '-trimpath', '-ldflags', ldflags, '-o', out, '.'],
        path.join(repoRoot, recipe.dir!),
        goEnv(),
        progress,
      )
      await installFile(out, path.join(dest, spec.binaries[0]))
    } else if (recipe.kind === 'copy') {
      const src = await copyModuleSource(recipe, spec, work)
      const out = path.join(work, 'bin', spec.binaries[0])
      await goRun(
        ['build', '-v', '-trimpath', '-ldflags', ldflags, '-o', out, ...recipe.packages!],
        src,
        goEnv(),
        progress,
      )
      await installFile(out, path.join(dest, spec.binaries[0]))
    } else {
      await fsp.writeFile(path.join(work, 'go.mod'), recipe.goMod!(spec))
      await goRun(['mod', 'tidy', ...(recipe.tidyArgs ?? [])], work, goEnv(), progress)
      const out = path.join(work, 'bin')
      await fsp.mkdir(out, { recursive: true })
      // one package: name the binary ourselves (go would call server/v3 "server")
      const target = recipe.packages!.length === 1 ? path.join(out, spec.binaries[0]) : `${out}/`
      await goRun(
        ['build', '-v', '-trimpath', '-ldflags', ldflags, '-o', target, ...recipe.packages!],
        work,
        goEnv(),
        progress,
      )
      for (const b of spec.binaries) await installFile(path.join(out, b), path.join(dest, b))
    }
    writeStamp(spec, 'build')
    s.succeed(`built ${spec.name} ${spec.version} in ${duration(Date.now() - started)} → ${dest}`)
  } catch (err) {
    s.fail(`building ${spec.name} ${spec.version} failed`)
    tried.push(`go build failed: ${errorMessage(err)}`)
  }
}

/** `go mod download -json MODULE@VERSION`: where the module's source and go.mod are. */
async function downloadModule(module: string, version: string, cwd: string): Promise<{ Dir: string; GoMod: string }> {
  const { stdout } = await run('go', ['mod', 'download', '-json', `${module}@${version}`], {
    cwd,
    env: goEnv(),
    maxBuffer: 1 << 20,
  })
  const info = JSON.parse(stdout) as { Dir?: string; GoMod?: string; Error?: string }
  if (info.Error || !info.Dir || !info.GoMod)
    throw new Error(`go mod download ${module}@${version}: ${info.Error ?? 'no module directory'}`)
  return { Dir: info.Dir, GoMod: info.GoMod }
}

async function moduleFacts(recipe: GoRecipe, spec: ToolSpec, cwd: string): Promise<ModuleFacts> {
  // only a recipe that names its module (goModule) reads facts from it; others skip the download
  const module = recipe.goModule
  const text = module ? await fsp.readFile((await downloadModule(module, spec.version, cwd)).GoMod, 'utf8') : ''
  return {
    require(dep) {
      const line = text
        .split('\n')
        .map((l) =>
          l
            .trim()
            .replace(/^require\s+/, '')
            .split(/\s+/),
        )
        .find((f) => f[0] === dep)
      if (!line?.[1]) throw new Error(`${module ?? spec.module}@${spec.version}'s go.mod requires no ${dep}`)
      return line[1]
    },
  }
}

/** `copy` builds: a writable copy of the module's source (the module cache is read-only), plus addFiles. */
async function copyModuleSource(recipe: GoRecipe, spec: ToolSpec, work: string): Promise<string> {
  const { Dir } = await downloadModule(recipe.goModule ?? spec.module, spec.version, work)
  const src = path.join(work, 'src')
  await fsp.rm(src, { recursive: true, force: true })
  await run('cp', ['-R', Dir, src])
  await run('chmod', ['-R', 'u+w', src])
  for (const [file, content] of Object.entries(recipe.addFiles ?? {})) {
    await fsp.mkdir(path.dirname(path.join(src, file)), { recursive: true })
    await fsp.writeFile(path.join(src, file), content)
  }
  return src
}

function goRun(args: string[], cwd: string, env: NodeJS.ProcessEnv, progress: (line: string) => void): Promise<void> {
  // -v: go names each package as it compiles it, which is what the live row shows
  progress(`go ${args[0]}`)
  return new Promise((resolve, reject) => {
    const child = spawn('go', args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
    const tail: string[] = []
    const onData = (buf: Buffer) => {
      for (const line of buf.toString().split('\n').filter(Boolean)) {
        tail.push(line)
        if (tail.length > 15) tail.shift()
        progress(line)
      }
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    child.on('error', reject)
    child.on('close', (code) => {
      if (code === 0) resolve()
      else reject(new Error(`go ${args[0]} exited ${code}:\n${tail.join('\n')}`))
    })
  })
}

export { toolSpec }
