// The local source: a stand-in for Flux's source-controller, used where that controller
// cannot be installed. On this project's machines its Go module does not build (a
// dependency is missing from the module mirror, research/control-plane.md §1), so the sim
// cluster runs this instead. On a real cluster the real source-controller does this job and
// nothing else changes.
//
// It does for `source.toolkit.fluxcd.io/v1` GitRepository objects what kustomize-controller
// needs from source-controller (verified against the real kustomize-controller v1.9.5,
// research/control-plane.md §4): fetch the ref from `spec.url` over http(s), pack the tree
// at that commit as tar.gz, serve it on 127.0.0.1, and write `status.artifact` (url,
// revision `<branch>@sha1:<sha>`, digest `sha256:<hex>`) with Ready/ArtifactInStorage
// conditions through the status subresource. It honours `spec.interval`, `spec.suspend`
// and `reconcile.fluxcd.io/requestedAt`. Not covered: ssh URLs and credentials
// (`spec.secretRef`), `spec.ref.semver`, `spec.ignore`/.sourceignore, submodules,
// includes and verification; such objects report Ready=False or ignore the field.
//
// As a sim cluster component: node --import tsx local-source.ts KUBECONFIG DIR PORT
import { execFile, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import fsp from 'node:fs/promises'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import { pipeline } from 'node:stream/promises'
import { fileURLToPath } from 'node:url'
import { isDeepStrictEqual, promisify } from 'node:util'
import { makeInformer, PatchStrategy, setHeaderOptions, type Informer } from '@kubernetes/client-node'
import * as tar from 'tar'
import { errorMessage } from '../errors.ts'
import { fluxKinds, type Condition } from '../flux/kinds.ts'
import { connect, isApiError, type Kube } from '../kube.ts'

const run = promisify(execFile)
const gitRepositories = fluxKinds.GitRepository
export const REQUESTED_AT = 'reconcile.fluxcd.io/requestedAt'

export interface GitRepositoryRef {
  branch?: string
  tag?: string
  semver?: string
  name?: string
  commit?: string
}

export interface Artifact {
  path: string
  url: string
  revision: string
  digest: string
  lastUpdateTime: string
  size: number
}

export interface GitRepositoryStatus {
  observedGeneration?: number
  lastHandledReconcileAt?: string
  artifact?: Artifact
  conditions?: Condition[]
}

export interface GitRepository {
  apiVersion?: string
  kind?: string
  metadata: { name: string; namespace: string; generation?: number; resourceVersion?: string; annotations?: Record<string, string> }
  spec: { url: string; ref?: GitRepositoryRef; interval: string; timeout?: string; suspend?: boolean }
  status?: GitRepositoryStatus
}

export interface LocalSourceOptions {
  kube: Kube
  /** git mirrors and artifacts live here; keep it across restarts so artifacts survive */
  dir: string
  /** artifact server port; default 0 (any free port) */
  port?: number
  /** watch one namespace only; default every namespace */
  namespace?: string
  log?: (line: string) => void
}

export interface LocalSource {
  /** base URL of the artifact server */
  url: string
  port: number
  stop(): Promise<void>
}

/** Go duration (`10m`, `1m30s`, `500ms`) in milliseconds; undefined when unreadable. */
export function parseDuration(text: string | undefined): number | undefined {
  if (!text) return undefined
  const units: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 }
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy
  let total = 0
  let matched = 0
  for (let m = re.exec(text); m; m = re.exec(text)) {
    total += Number(m[1]) * units[m[2]]
    matched = re.lastIndex
  }
  return matched === text.length && matched > 0 ? total : undefined
}

/** What to fetch for a spec.ref, and the name part of the revision (`main` in main@sha1:…). */
function fetchTarget(ref: GitRepositoryRef | undefined): { refspec: string; label?: string; commit?: string; shallow: boolean } {
  if (ref?.semver) throw new SourceError('GitOperationFailed', 'spec.ref.semver is not supported by the local source; use a branch, tag or commit')
  if (ref?.commit) {
    // a commit is fetched with the branch it is on (or every branch), then looked up
    if (ref.branch) return { refspec: `refs/heads/${ref.branch}`, label: ref.branch, commit: ref.commit, shallow: false }
    return { refspec: '+refs/heads/*:refs/heads/*', commit: ref.commit, shallow: false }
  }
  if (ref?.name) return { refspec: ref.name, label: ref.name, shallow: true }
  if (ref?.tag) return { refspec: `refs/tags/${ref.tag}`, label: ref.tag, shallow: true }
  // source-controller's default when spec.ref is empty
  const branch = ref?.branch || 'master'
  return { refspec: `refs/heads/${branch}`, label: branch, shallow: true }
}

class SourceError extends Error {
  constructor(readonly reason: string, message: string) { super(message) }
}

function gitMessage(err: unknown): string {
  const stderr = (err as { stderr?: string }).stderr?.trim()
  if (stderr) return stderr.split('\n').filter((l) => !/^(hint|warning):/.test(l)).join('; ')
  if ((err as { killed?: boolean }).killed) return 'git timed out'
  return errorMessage(err)
}

function condition(type: string, status: Condition['status'], reason: string, message: string, generation: number | undefined, previous: Condition[] = []): Condition {
  const old = previous.find((c) => c.type === type)
  // like meta.SetStatusCondition: the transition time moves only when the status does
  const lastTransitionTime = old && old.status === status && old.lastTransitionTime ? old.lastTransitionTime : new Date().toISOString().replace(/\.\d+Z$/, 'Z')
  return { type, status, reason, message, lastTransitionTime, ...(generation !== undefined ? { observedGeneration: generation } : {}) }
}

interface Tracked {
  obj: GitRepository
  timer?: NodeJS.Timeout
  running?: Promise<void>
  again: boolean
  handledGeneration?: number
  handledRequest?: string
  failures: number
}

export async function startLocalSource(opts: LocalSourceOptions): Promise<LocalSource> {
  const log = opts.log ?? ((line: string) => console.log(line))
  const dir = path.resolve(opts.dir)
  const storage = path.join(dir, 'artifacts')
  await fsp.mkdir(storage, { recursive: true })
  let ready = false

  const server = http.createServer((req, res) => serveArtifact(storage, () => ready, req, res))
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port ?? 0, '127.0.0.1', () => { server.off('error', reject); resolve() })
  })
  const port = (server.address() as AddressInfo).port
  const baseUrl = `http://127.0.0.1:${port}`

  const tracked = new Map<string, Tracked>()
  let stopping = false
  const keyOf = (o: GitRepository) => `${o.metadata.namespace}/${o.metadata.name}`

  const schedule = (t: Tracked, ms: number) => {
    clearTimeout(t.timer)
    if (stopping) return
    t.timer = setTimeout(() => { t.timer = undefined; kick(t) }, ms)
  }

  const kick = (t: Tracked) => {
    clearTimeout(t.timer)
    t.timer = undefined
    if (t.running) { t.again = true; return }
    t.running = (async () => {
      let ok = true
      do {
        t.again = false
        const obj = t.obj
        if (obj.spec.suspend || stopping) return
        t.handledGeneration = obj.metadata.generation
        t.handledRequest = obj.metadata.annotations?.[REQUESTED_AT]
        ok = await reconcile(obj)
      } while (t.again && !stopping)
      t.failures = ok ? 0 : t.failures + 1
      const interval = parseDuration(t.obj.spec.interval) ?? 60_000
      // failures retry sooner, backing off up to the interval, as the Flux controllers do
      if (!t.obj.spec.suspend) schedule(t, ok ? interval : Math.min(interval, 1000 * 2 ** Math.min(t.failures, 8)))
    })().catch((err) => log(`${keyOf(t.obj)}: ${errorMessage(err)}`)).finally(() => { t.running = undefined })
  }

  const onChange = (obj: GitRepository) => {
    if (stopping) return
    const key = keyOf(obj)
    const known = tracked.get(key)
    const t = known ?? { obj, again: false, failures: 0 }
    t.obj = obj
    if (!known) tracked.set(key, t)
    if (obj.spec.suspend) {
      clearTimeout(t.timer)
      t.timer = undefined
      // resuming bumps the generation, which makes the next event due at once
      t.handledGeneration = obj.metadata.generation
      return
    }
    const requested = obj.metadata.annotations?.[REQUESTED_AT]
    const due = !known || t.handledGeneration !== obj.metadata.generation || (requested !== undefined && requested !== t.handledRequest)
    if (due) kick(t)
    else if (!t.timer && !t.running) schedule(t, parseDuration(obj.spec.interval) ?? 60_000)
  }

  const onDelete = (obj: GitRepository) => {
    const key = keyOf(obj)
    const t = tracked.get(key)
    if (t) clearTimeout(t.timer)
    tracked.delete(key)
    void fsp.rm(path.join(storage, 'gitrepository', obj.metadata.namespace, obj.metadata.name), { recursive: true, force: true })
    void fsp.rm(mirrorDir(obj), { recursive: true, force: true })
  }

  const mirrorDir = (o: GitRepository) => path.join(dir, 'git', o.metadata.namespace, `${o.metadata.name}.git`)

  /** One reconcile; true when the artifact is current. Writes status only when it changed. */
  const reconcile = async (obj: GitRepository): Promise<boolean> => {
    const generation = obj.metadata.generation
    const requested = obj.metadata.annotations?.[REQUESTED_AT]
    const previous = obj.status ?? {}
    const prevConditions = previous.conditions ?? []
    let next: GitRepositoryStatus
    let ok = true
    try {
      const artifact = await buildArtifact(obj)
      const unchanged = previous.artifact && previous.artifact.revision === artifact.revision && previous.artifact.digest === artifact.digest
      const stored: Artifact = { ...artifact, lastUpdateTime: unchanged ? previous.artifact!.lastUpdateTime : artifact.lastUpdateTime }
      const message = `stored artifact for revision '${stored.revision}'`
      next = {
        observedGeneration: generation,
        artifact: stored,
        conditions: [
          condition('Ready', 'True', 'Succeeded', message, generation, prevConditions),
          condition('ArtifactInStorage', 'True', 'Succeeded', message, generation, prevConditions),
        ],
      }
      if (!unchanged) log(`${keyOf(obj)}: ${message}`)
      await pruneArtifacts(obj, [stored.path, previous.artifact?.path])
    } catch (err) {
      ok = false
      const reason = err instanceof SourceError ? err.reason : 'GitOperationFailed'
      const message = err instanceof SourceError ? err.message : `failed to fetch: ${errorMessage(err)}`
      // like source-controller: the last good artifact stays served, the object says it is
      // retrying (kstatus InProgress, Flux CLI's fail-fast rule) and not Ready
      next = {
        ...(previous.observedGeneration !== undefined ? { observedGeneration: previous.observedGeneration } : {}),
        ...(previous.artifact ? { artifact: { ...previous.artifact, url: `${baseUrl}/${previous.artifact.path}` } } : {}),
        conditions: [
          condition('Reconciling', 'True', 'ProgressingWithRetry', `reconciliation failed, retrying: ${message}`, generation, prevConditions),
          condition('Ready', 'False', reason, message, generation, prevConditions),
          condition('FetchFailed', 'True', reason, message, generation, prevConditions),
          ...(previous.artifact ? [condition('ArtifactInStorage', 'True', 'Succeeded', `stored artifact for revision '${previous.artifact.revision}'`, generation, prevConditions)] : []),
        ],
      }
      const wasFailing = prevConditions.some((c) => c.type === 'Ready' && c.status === 'False' && c.message === message)
      if (!wasFailing) log(`${keyOf(obj)}: ${reason}: ${message}`)
    }
    const handled = requested ?? previous.lastHandledReconcileAt
    if (handled !== undefined) next.lastHandledReconcileAt = handled
    await writeStatus(obj, previous, next)
    return ok
  }

  const buildArtifact = async (obj: GitRepository): Promise<Artifact> => {
    const url = obj.spec.url ?? ''
    if (!/^https?:\/\//.test(url)) {
      throw new SourceError('URLInvalid', `the local source fetches over http(s) only; ${JSON.stringify(url)} is not an http(s) URL`)
    }
    const target = fetchTarget(obj.spec.ref)
    const timeout = parseDuration(obj.spec.timeout) ?? 60_000
    const mirror = mirrorDir(obj)
    const git = (args: string[]) => run('git', ['-C', mirror, ...args], {
      timeout, maxBuffer: 16 << 20, env: { ...process.env, GIT_TERMINAL_PROMPT: '0' },
    })
    if (!fs.existsSync(path.join(mirror, 'HEAD'))) {
      await fsp.mkdir(mirror, { recursive: true })
      await run('git', ['init', '--quiet', '--bare', mirror])
    }
    let sha: string
    try {
      await git(['fetch', '--quiet', '--no-tags', '--force', ...(target.shallow ? ['--depth=1'] : []), url, target.refspec])
      const rev = target.commit ?? 'FETCH_HEAD'
      sha = (await git(['rev-parse', '--verify', '--quiet', `${rev}^{commit}`]).catch(() => {
        throw new SourceError('GitOperationFailed', `commit ${target.commit} not found in ${url}`)
      })).stdout.trim()
    } catch (err) {
      if (err instanceof SourceError) throw err
      throw new SourceError('GitOperationFailed', `failed to checkout and determine revision: ${gitMessage(err)}`)
    }
    const revision = target.label ? `${target.label}@sha1:${sha}` : `sha1:${sha}`
    const rel = path.posix.join('gitrepository', obj.metadata.namespace, obj.metadata.name, `${sha}.tar.gz`)
    const file = path.join(storage, rel)
    if (!fs.existsSync(file)) await packTree(mirror, sha, file, timeout)
    const hash = createHash('sha256')
    await pipeline(fs.createReadStream(file), hash)
    const digest = hash.digest('hex')
    return {
      path: rel,
      url: `${baseUrl}/${rel}`,
      revision,
      digest: `sha256:${digest}`,
      lastUpdateTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      size: fs.statSync(file).size,
    }
  }

  /** Keeps the current and the previous artifact (a client may still be downloading it). */
  const pruneArtifacts = async (obj: GitRepository, keep: (string | undefined)[]) => {
    const folder = path.join(storage, 'gitrepository', obj.metadata.namespace, obj.metadata.name)
    const keepNames = new Set(keep.filter(Boolean).map((p) => path.posix.basename(p!)))
    for (const f of await fsp.readdir(folder).catch(() => [] as string[])) {
      if (!keepNames.has(f)) await fsp.rm(path.join(folder, f), { force: true })
    }
  }

  const writeStatus = async (obj: GitRepository, previous: GitRepositoryStatus, next: GitRepositoryStatus) => {
    if (isDeepStrictEqual(previous, next)) return
    // a merge patch only adds and replaces: fields that went away are sent as null
    const body: Record<string, unknown> = { ...next }
    for (const k of Object.keys(previous)) if (!(k in next)) body[k] = null
    try {
      await opts.kube.custom.patchNamespacedCustomObjectStatus(
        { ...gitRepositories, namespace: obj.metadata.namespace, name: obj.metadata.name, body: { status: body } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      )
    } catch (err) {
      if (!isApiError(err, 404)) throw err // deleted meanwhile
    }
  }

  const collection = opts.namespace
    ? `/apis/${gitRepositories.group}/${gitRepositories.version}/namespaces/${opts.namespace}/${gitRepositories.plural}`
    : `/apis/${gitRepositories.group}/${gitRepositories.version}/${gitRepositories.plural}`
  const list = () => (opts.namespace
    ? opts.kube.custom.listNamespacedCustomObject({ ...gitRepositories, namespace: opts.namespace })
    : opts.kube.custom.listClusterCustomObject(gitRepositories))
  const informer: Informer<GitRepository> = makeInformer<GitRepository>(opts.kube.kc, collection, list)
  informer.on('add', onChange)
  informer.on('update', onChange)
  informer.on('delete', onDelete)
  // client-node informers stop on errors (apiserver restart, expired watch); start again
  informer.on('error', () => { if (!stopping) setTimeout(() => { if (!stopping) void informer.start().catch(() => {}) }, 1000) })
  await informer.start()
  ready = true
  log(`local source serving artifacts on ${baseUrl}; watching GitRepositories in ${opts.namespace ?? 'all namespaces'}`)

  return {
    url: baseUrl,
    port,
    stop: async () => {
      stopping = true
      await informer.stop().catch(() => {})
      for (const t of tracked.values()) clearTimeout(t.timer)
      await Promise.all([...tracked.values()].map((t) => t.running))
      await new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections() })
    },
  }
}

/**
 * The tree at `sha` as tar.gz: regular files and directories only (kustomize-controller
 * skips symlinks), no git metadata, fixed owner and the commit's time, so the same commit
 * always packs to the same bytes.
 */
async function packTree(mirror: string, sha: string, file: string, timeout: number): Promise<void> {
  const work = await fsp.mkdtemp(path.join(path.dirname(mirror), '.pack-'))
  try {
    const tree = path.join(work, 'tree')
    await fsp.mkdir(tree)
    const archive = spawn('git', ['-C', mirror, 'archive', '--format=tar', sha], { stdio: ['ignore', 'pipe', 'pipe'], timeout })
    let stderr = ''
    archive.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    const exited = new Promise<void>((resolve, reject) => archive.on('close', (code) => code === 0 ? resolve() : reject(new Error(`git archive: ${stderr.trim() || `exit ${code}`}`))))
    await Promise.all([pipeline(archive.stdout, tar.x({ cwd: tree })), exited])
    const { stdout } = await run('git', ['-C', mirror, 'show', '-s', '--format=%ct', sha])
    const mtime = new Date(Number(stdout.trim()) * 1000)
    const entries = (await fsp.readdir(tree)).sort()
    await fsp.mkdir(path.dirname(file), { recursive: true })
    const tmp = `${file}.${process.pid}.tmp`
    if (entries.length === 0) {
      await tar.c({ gzip: true, file: tmp, cwd: tree, portable: true, mtime }, ['.'])
    } else {
      await tar.c({
        gzip: true, file: tmp, cwd: tree, portable: true, mtime,
        filter: (_p, st) => !('isSymbolicLink' in st) || st.isFile() || st.isDirectory(),
      }, entries)
    }
    await fsp.rename(tmp, file)
  } finally {
    await fsp.rm(work, { recursive: true, force: true })
  }
}

function serveArtifact(storage: string, ready: () => boolean, req: http.IncomingMessage, res: http.ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://127.0.0.1')
  if (url.pathname === '/healthz') {
    res.writeHead(ready() ? 200 : 503, { 'Content-Type': 'text/plain' })
    res.end(ready() ? 'ok\n' : 'starting\n')
    return
  }
  const notFound = () => { res.writeHead(404, { 'Content-Type': 'text/plain' }); res.end('not found\n') }
  if (req.method !== 'GET' && req.method !== 'HEAD') { res.writeHead(405); res.end(); return }
  let rel: string
  try { rel = decodeURIComponent(url.pathname) } catch { return notFound() }
  const file = path.resolve(storage, `.${rel}`)
  if (!file.startsWith(storage + path.sep)) return notFound()
  fs.stat(file, (err, st) => {
    if (err || !st.isFile()) return notFound()
    res.writeHead(200, { 'Content-Type': 'application/gzip', 'Content-Length': st.size })
    if (req.method === 'HEAD') { res.end(); return }
    fs.createReadStream(file).on('error', () => res.destroy()).pipe(res)
  })
}

async function main(kubeconfig: string, dir: string, port: number): Promise<void> {
  const source = await startLocalSource({ kube: connect({ kubeconfig }), dir, port })
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.once(sig, () => { void source.stop().finally(() => process.exit(0)) })
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const [kubeconfig, dir, port] = process.argv.slice(2)
  if (!kubeconfig || !dir) {
    console.error('usage: local-source.ts KUBECONFIG DIR [PORT]')
    process.exit(1)
  }
  main(kubeconfig, path.resolve(dir), Number(port ?? 0)).catch((err) => { console.error(err); process.exit(1) })
}
