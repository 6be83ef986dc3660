// `kustomize build` with the pinned binary, its output read as typed objects, and its errors
// turned into what a user can act on: the file and line of malformed YAML, the kustomization
// that names a missing resource, the patch whose target is not there.
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { LineCounter, parseAllDocuments, type YAMLError } from 'yaml'
import { readWorkBuild, storeWorkBuild, workBuildsEnabled } from './build-cache.ts'
import { KUSTOMIZATION_FILES } from './files.ts'
import { NsopsError } from '../core/errors.ts'
import { JsonLineChild, lazyChild } from '../core/json-line-child.ts'
import { toolPath } from '../tools/provision.ts'

const run = promisify(execFile)

import type { ManifestObject } from '../kube/refs.ts'

export type { ManifestObject }

export interface BuildOptions {
  /** kustomize's --load-restrictor: `rootOnly` (kustomize's default) or `none` to read files outside the root */
  loadRestrictor?: 'rootOnly' | 'none'
  /**
   * keep the build on disk and reuse it while every path it looked at is unchanged
   * (shared/kustomize/build-cache.ts): for working trees built again and again (validate, deploy)
   */
  reuse?: boolean
}

/** Paths as a user typed them: relative to the working directory when inside it. */
function shown(p: string): string {
  const rel = path.relative(process.cwd(), p)
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : p
}

function kustomizationFile(dir: string): string | undefined {
  return KUSTOMIZATION_FILES.map((f) => path.join(dir, f)).find((f) => fs.existsSync(f))
}

/** `file:line:col message` for the first YAML error, or undefined when the text parses. */
function firstYamlError(text: string, source: string): string | undefined {
  const docs = parseAllDocuments(text)
  const list = Array.isArray(docs) ? docs : []
  for (const doc of list) {
    const err = doc.errors[0]
    if (err) return yamlErrorLine(err, source)
  }
  return undefined
}

function yamlErrorLine(err: YAMLError, source: string): string {
  const pos = err.linePos?.[0]
  // yaml appends " at line L, column C:" and a caret excerpt; the position leads instead
  const message = err.message.replace(/ at line \d+, column \d+:[\s\S]*$/, '')
  return pos ? `${source}:${pos.line}:${pos.col} ${message}` : `${source}: ${message}`
}

const YAML_HINT =
  'Fix the YAML at that line (indentation and a missing space after ":" are the usual causes), then run again.'

/**
 * Multi-document YAML → manifests. `source` names the text in errors (a file path, or
 * "kustomize build DIR"); every error carries `source:line:col`.
 */
export function parseManifests(text: string, source: string): ManifestObject[] {
  const lines = new LineCounter()
  const docs = parseAllDocuments(text, { lineCounter: lines })
  if (!Array.isArray(docs)) return []
  const out: ManifestObject[] = []
  for (const doc of docs) {
    const err = doc.errors[0]
    if (err) throw new NsopsError(`malformed YAML: ${yamlErrorLine(err, source)}`, { hint: YAML_HINT })
    const value: unknown = doc.toJS()
    if (value === null || value === undefined) continue
    const at = lines.linePos(doc.contents?.range[0] ?? doc.range[0])
    const where = `${source}:${at.line}:${at.col}`
    for (const obj of listItems(value)) out.push(checkManifest(obj, where))
  }
  return out
}

/** A `kind: List` (what `kubectl get -o yaml` writes) stands for its items. */
function listItems(value: unknown): unknown[] {
  const v = value as { kind?: unknown; items?: unknown }
  if (
    typeof v === 'object' &&
    v !== null &&
    typeof v.kind === 'string' &&
    v.kind.endsWith('List') &&
    Array.isArray(v.items)
  )
    return v.items
  return [value]
}

function checkManifest(value: unknown, at: string | (() => string)): ManifestObject {
  const hint = 'Every document needs apiVersion, kind and metadata.name.'
  const where = () => (typeof at === 'string' ? at : at())
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new NsopsError(
      `${where()} is not a Kubernetes object (a YAML ${Array.isArray(value) ? 'list' : typeof value}).`,
      { hint },
    )
  }
  const obj = value as Record<string, unknown>
  const meta = obj.metadata as Record<string, unknown> | undefined
  const missing = [
    typeof obj.apiVersion === 'string' && obj.apiVersion ? '' : 'apiVersion',
    typeof obj.kind === 'string' && obj.kind ? '' : 'kind',
    typeof meta === 'object' && meta !== null && typeof meta.name === 'string' && meta.name ? '' : 'metadata.name',
  ].filter(Boolean)
  if (missing.length) throw new NsopsError(`${where()}: the object has no ${missing.join(', ')}.`, { hint })
  return obj as ManifestObject
}

/** The directory and restrictor of a build, checked the way a user gets told about them. */
function buildRoot(dir: string): string {
  const root = path.resolve(dir)
  if (!fs.existsSync(root) || !fs.statSync(root).isDirectory()) {
    throw new NsopsError(`${shown(root)} is not a directory.`, {
      hint: 'Pass the directory that holds kustomization.yaml (e.g. namespaces/<ns>/overlays/dev).',
    })
  }
  if (!kustomizationFile(root)) {
    throw new NsopsError(`${shown(root)} has no kustomization.yaml.`, {
      hint: 'Pass the directory that holds kustomization.yaml, or create one that lists the resources.',
    })
  }
  return root
}

/** `kustomize build` of a checked root with the pinned binary, one process per build. */
async function kustomizeText(root: string, opts: BuildOptions): Promise<string> {
  const kustomize = await toolPath('kustomize')
  const restrictor = opts.loadRestrictor === 'none' ? 'LoadRestrictionsNone' : 'LoadRestrictionsRootOnly'
  try {
    return (await run(kustomize, ['build', '--load-restrictor', restrictor, root], { maxBuffer: 256 * 1024 * 1024 }))
      .stdout
  } catch (err) {
    const stderr = String((err as { stderr?: unknown }).stderr ?? '')
    throw kustomizeError(root, stderr || String(err), err)
  }
}

/**
 * Objects of a JSON build answer → manifests. A JSON document has no line, so errors name
 * the build and the object by its place, kind and name.
 */
function manifestsOfJson(values: unknown[], source: string): ManifestObject[] {
  const out: ManifestObject[] = []
  for (const [i, value] of values.entries()) {
    if (value === null || value === undefined) continue
    for (const obj of listItems(value)) out.push(checkManifest(obj, () => `${source}, object ${i + 1}${describe(obj)}`))
  }
  return out
}

/** " (ConfigMap app)" as far as the object says. */
function describe(value: unknown): string {
  const v = (typeof value === 'object' && value !== null ? value : {}) as {
    kind?: unknown
    metadata?: { name?: unknown }
  }
  const words = [v.kind, v.metadata?.name].filter((w): w is string => typeof w === 'string' && w !== '')
  return words.length ? ` (${words.join(' ')})` : ''
}

/**
 * A build by this process's kustomize-server, answered as JSON (JSON.parse of the answer is
 * several times faster than reading the same objects from YAML); undefined when the server
 * cannot be had (no Go toolchain to build it), so the caller runs the CLI instead.
 * NSOPS_KUSTOMIZE_JSON=0 turns it off for builds without overrides (those need the server):
 * they run the CLI and parse its YAML as before, to compare (bench/validate, bench/drift).
 */
async function serverManifests(
  root: string,
  opts: WarmBuildOptions,
  source: string,
): Promise<ManifestObject[] | undefined> {
  if (process.env.NSOPS_KUSTOMIZE_JSON === '0' && !opts.overrides) return undefined
  let server: KustomizeServer
  try {
    server = await kustomizeServer()
  } catch (err) {
    if (opts.overrides) throw err
    return undefined
  }
  const dir = fs.realpathSync(root)
  const loadRestrictor = opts.loadRestrictor === 'none' ? 'none' : 'rootOnly'
  const reuse = opts.reuse === true && !opts.overrides && workBuildsEnabled()
  if (reuse) {
    const kept = readWorkBuild(dir, loadRestrictor, server.binary)
    if (kept) return manifestsOfJson(kept, source)
  }
  const startedAt = Date.now()
  const answer = await server.ask({
    dir,
    loadRestrictor,
    overrides: opts.overrides,
    output: 'json',
    ...(reuse ? { inputs: true } : {}),
  })
  if (answer.error !== undefined) throw kustomizeError(root, `Error: ${answer.error}`, new Error(answer.error))
  if (answer.objects) {
    const objects = manifestsOfJson(answer.objects, source)
    if (reuse && answer.inputs) storeWorkBuild(dir, loadRestrictor, server.binary, answer.inputs, objects, startedAt)
    return objects
  }
  // a server that predates JSON answers (it ignores the option): its YAML reads as the CLI's
  return opts.cache ? opts.cache.parse(answer.yaml ?? '', source) : parseManifests(answer.yaml ?? '', source)
}

/**
 * Builds a kustomization directory with the pinned kustomize and returns its objects: through
 * the kustomize-server as JSON when it can be had, else with the kustomize CLI.
 */
export async function buildKustomization(dir: string, opts: BuildOptions = {}): Promise<ManifestObject[]> {
  const root = buildRoot(dir)
  const source = `kustomize build ${shown(root)}`
  return (await serverManifests(root, opts, source)) ?? parseManifests(await kustomizeText(root, opts), source)
}

export interface WarmBuildOptions extends BuildOptions {
  /**
   * Files read from memory in place of their contents on disk (absolute paths, symlinks
   * resolved): a partial build gives an ancestor kustomization fewer resources.
   */
  overrides?: Record<string, string>
  /** parses only the documents that changed since earlier builds (see ManifestCache) */
  cache?: ManifestCache
  /** build with a kustomize CLI process of its own (beside the server, e.g. to check it) */
  cli?: boolean
}

/**
 * `kustomize build` through one long-lived kustomize-server per process (the same kustomize
 * api module as the pinned kustomize; its output is byte for byte the CLI's): a loop that
 * builds on every save pays kustomize's start-up once. Falls back to the CLI when the server
 * cannot be had (no Go toolchain to build it); overrides need the server.
 */
export async function buildKustomizationWarm(dir: string, opts: WarmBuildOptions = {}): Promise<ManifestObject[]> {
  const root = buildRoot(dir)
  const source = `kustomize build ${shown(root)}`
  // JSON from the server; the CLI (as YAML) when the server cannot be had or a CLI build is asked for
  const built = opts.cli ? undefined : await serverManifests(root, opts, source)
  if (built) return built
  const text = opts.cli ? await warmText(root, opts) : await kustomizeText(root, opts)
  return opts.cache ? opts.cache.parse(text, source) : parseManifests(text, source)
}

async function warmText(root: string, opts: WarmBuildOptions): Promise<string> {
  if (opts.cli && !opts.overrides) return kustomizeText(root, opts)
  let server: KustomizeServer | undefined
  try {
    server = await kustomizeServer()
  } catch (err) {
    if (opts.overrides) throw err
    return kustomizeText(root, opts)
  }
  const answer = await server.ask({
    dir: fs.realpathSync(root),
    loadRestrictor: opts.loadRestrictor === 'none' ? 'none' : 'rootOnly',
    overrides: opts.overrides,
  })
  if (answer.error !== undefined) throw kustomizeError(root, `Error: ${answer.error}`, new Error(answer.error))
  return answer.yaml ?? ''
}

interface ServerAnswer {
  id: number
  yaml?: string
  objects?: unknown[]
  inputs?: string[]
  error?: string
}

interface ServerRequest {
  dir: string
  loadRestrictor: string
  overrides?: Record<string, string>
  output?: 'json'
  inputs?: boolean
}

/** One kustomize-server child (core/json-line-child): requests go out one per line and are answered in order. */
type KustomizeServer = JsonLineChild<ServerRequest, ServerAnswer>

const child = lazyChild(
  async (): Promise<KustomizeServer> =>
    new JsonLineChild('kustomize-server', await toolPath('kustomize-server'), ['serve']),
)
const kustomizeServer = child.get

/**
 * Starts this process's kustomize-server now, for a caller that will build in a moment and
 * has cluster or git work to do first: the server's start-up overlaps that work.
 */
export function warmKustomizeServer(): void {
  if (process.env.NSOPS_KUSTOMIZE_JSON === '0') return
  child.warm()
}

/** Ends this process's kustomize-server, if one runs (it also ends by itself when we exit). */
export function stopKustomizeServer(): void {
  child.stop()
}

/**
 * Parsed documents of earlier builds, by their text: a build that differs from the last in a
 * few objects parses those few. Objects are handed out as copies, so a caller may change them.
 * Documents are found at kustomize's separator lines (`---` alone on a line: inside a block
 * scalar such a line would end the document, so it never occurs within one).
 */
export class ManifestCache {
  private docs = new Map<string, ManifestObject[]>()
  constructor(private readonly capacity = 20_000) {}

  parse(text: string, source: string): ManifestObject[] {
    const out: ManifestObject[] = []
    let start = 0
    let line = 0
    while (start < text.length) {
      const sep = text.indexOf('\n---\n', start - 1)
      const end = sep < 0 ? text.length : sep + 1
      const doc = text.slice(start, end)
      let objects = this.docs.get(doc)
      if (objects)
        this.docs.delete(doc) // re-inserted below: the most recently used stay
      else objects = parseManifests('\n'.repeat(line) + doc, source) // errors keep their line numbers
      this.docs.set(doc, objects)
      for (const o of objects) out.push(structuredClone(o))
      line += countLines(doc) + 1
      start = sep < 0 ? text.length : sep + 5
    }
    for (const k of this.docs.keys()) {
      if (this.docs.size <= this.capacity) break
      this.docs.delete(k)
    }
    return out
  }
}

function countLines(text: string): number {
  let n = 0
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) n++
  return n
}

/**
 * kustomize says where it was with "recursed accumulation of path '…'" for every base it
 * entered; the last one is the kustomization the error belongs to.
 */
function innermostDir(root: string, stderr: string): string {
  const entered = [...stderr.matchAll(/(?:recursed accumulation of path|couldn't make target for path) '([^']+)'/g)]
  return entered.length ? entered[entered.length - 1][1] : root
}

function kustomizeError(root: string, stderr: string, cause: unknown): NsopsError {
  const text = stderr.replace(/^Error: /m, '').trim()
  const dir = innermostDir(root, text)
  const kfile = shown(kustomizationFile(dir) ?? path.join(dir, 'kustomization.yaml'))

  const malformed = /MalformedYAMLError: (yaml: .*?) in File: (.+?)\s*$/m.exec(text)
  if (malformed) {
    const file = path.resolve(dir, malformed[2])
    const located = fs.existsSync(file) ? firstYamlError(fs.readFileSync(file, 'utf8'), shown(file)) : undefined
    return new NsopsError(`malformed YAML: ${located ?? `${shown(file)}: ${malformed[1]}`}`, { hint: YAML_HINT, cause })
  }

  const badKustomization = /invalid Kustomization: (.*)$/m.exec(text)
  if (badKustomization) {
    const file = kustomizationFile(dir)
    const located = file ? firstYamlError(fs.readFileSync(file, 'utf8'), shown(file)) : undefined
    return new NsopsError(`malformed kustomization: ${located ?? `${kfile}: ${badKustomization[1]}`}`, {
      hint: YAML_HINT,
      cause,
    })
  }

  const missingResource = [
    ...text.matchAll(
      /accumulating resources from '([^']+)': evalsymlink failure on '[^']*' : lstat [^:]*: no such file or directory/g,
    ),
  ].pop()
  if (missingResource) {
    return new NsopsError(`${kfile}: resource ${missingResource[1]} does not exist.`, {
      hint: "Fix the path under `resources:` (it is relative to the kustomization's directory), or create the file.",
      cause,
    })
  }

  const notAnObject = [...text.matchAll(/accumulating resources from '([^']+)': missing Resource metadata/g)].pop()
  if (notAnObject) {
    return new NsopsError(
      `${kfile}: resource ${notAnObject[1]} is not a Kubernetes object (it has no apiVersion, kind or metadata).`,
      {
        hint: 'List only manifests and kustomization directories under `resources:`; every document needs apiVersion, kind and metadata.name.',
        cause,
      },
    )
  }

  const missingPatch = /failed to get the patch file from path\(([^)]+)\): evalsymlink failure/.exec(text)
  if (missingPatch) {
    return new NsopsError(`${kfile}: patch ${missingPatch[1]} does not exist.`, {
      hint: "Fix the path under `patches:` (it is relative to the kustomization's directory), or create the file.",
      cause,
    })
  }

  const unparsablePatch = /unable to parse SM or JSON patch from \[path: "([^"]+)"\]/.exec(text)
  if (unparsablePatch) {
    const file = path.resolve(dir, unparsablePatch[1])
    const located = fs.existsSync(file) ? firstYamlError(fs.readFileSync(file, 'utf8'), shown(file)) : undefined
    return new NsopsError(
      `${kfile}: patch ${unparsablePatch[1]} is not a valid patch${located ? `: ${located}` : ' (neither a strategic merge patch nor a JSON 6902 patch).'}`,
      {
        hint: 'A patch is either a partial object (apiVersion, kind, metadata.name, then the fields to change) or a list of JSON 6902 operations.',
        cause,
      },
    )
  }

  const noTarget = /no resource matches strategic merge patch "([^"]+)"/.exec(text)
  if (noTarget) {
    const { kind, name } = parseResId(noTarget[1])
    const patch = findPatchFor(dir, kind, name)
    return new NsopsError(
      `${kfile}: ${patch ? `patch ${patch}` : 'a patch'} targets ${kind} ${name}, which is not among the kustomization's resources.`,
      {
        hint: `Check the patch's kind and metadata.name against the resources (\`kustomize build\` of the base lists them), or add the ${kind} to resources.`,
        cause,
      },
    )
  }

  const jsonPatch = /(\w+) operation does not apply: doc is missing path: (\S+?):/.exec(text)
  if (jsonPatch) {
    return new NsopsError(
      `${kfile}: a JSON 6902 patch cannot ${jsonPatch[1]} ${jsonPatch[2]}: the target has no such path.`,
      {
        hint: 'Use `add` for a path that does not exist yet, or fix the path (list items are addressed by index, e.g. /spec/template/spec/containers/0/image).',
        cause,
      },
    )
  }

  return new NsopsError(`kustomize build ${shown(root)} failed: ${text.split('\n')[0]}`, {
    hint: `Run \`kustomize build ${shown(root)}\` to see kustomize's full message.`,
    cause,
  })
}

/** `Deployment.v1.apps/web.[noNs]` or `Deployment.v1.apps/web.ns` → kind and name. */
function parseResId(id: string): { kind: string; name: string } {
  const [gvk, rest = ''] = id.split('/')
  const name = rest.replace(/\.(\[noNs\]|[a-z0-9-]+)$/, '')
  return { kind: gvk.split('.')[0], name }
}

/** The patch file (or "inline patch") in a kustomization whose object is kind/name. */
function findPatchFor(dir: string, kind: string, name: string): string | undefined {
  const file = kustomizationFile(dir)
  if (!file) return undefined
  try {
    const k = parseAllDocuments(fs.readFileSync(file, 'utf8'))
    const doc = (Array.isArray(k) ? k[0]?.toJS() : undefined) as
      { patches?: unknown[]; patchesStrategicMerge?: unknown[] } | undefined
    const entries = [...(doc?.patches ?? []), ...(doc?.patchesStrategicMerge ?? [])]
    for (const e of entries) {
      const entry =
        typeof e === 'string'
          ? e.includes('\n')
            ? { patch: e }
            : { path: e }
          : (e as { path?: string; patch?: string })
      const text = entry.path ? fs.readFileSync(path.resolve(dir, entry.path), 'utf8') : entry.patch
      if (!text) continue
      const docs = parseAllDocuments(text)
      const objs = (Array.isArray(docs) ? docs : []).map(
        (d) => d.toJS() as { kind?: string; metadata?: { name?: string } } | null,
      )
      if (objs.some((o) => o?.kind === kind && o.metadata?.name === name)) return entry.path ?? 'inline patch'
    }
  } catch {
    /* the kustomization itself is fine (kustomize read it); a patch we cannot read just goes unnamed */
  }
  return undefined
}
