// Tanka environments as tk finds them: every directory under <root>/environments holding a
// spec.json (apiVersion tanka.dev/v1alpha1, kind Environment) and a main.jsonnet. The root
// is the directory with jsonnetfile.json (or tkrc.yaml), lib/ and the chartfile.
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { NsopsError } from '../core/errors.ts'
import { repoRoot } from '../core/paths.ts'

export const defaultTankaRoot = path.join(repoRoot, 'tanka')
export const SPEC_FILE = 'spec.json'
export const MAIN_FILE = 'main.jsonnet'

/** spec.json, as tk reads it (unknown fields are ignored, as tk's JSON decoding does). */
export interface EnvironmentSpec {
  apiVersion: 'tanka.dev/v1alpha1'
  kind: 'Environment'
  metadata: { name?: string; labels?: Record<string, string> }
  spec: {
    apiServer?: string
    contextNames?: string[]
    /** default namespace of namespaced objects that set none; tk's default is `default` */
    namespace: string
    injectLabels?: boolean
    resourceDefaults?: { labels?: Record<string, string>; annotations?: Record<string, string> }
  }
}

export interface TankaEnvironment {
  /** short name: the path below <root>/environments, e.g. `local` */
  name: string
  /** tk's name for it: the path from the root, e.g. `environments/local` */
  tkName: string
  /** absolute directory of the environment */
  dir: string
  /** absolute path of the project root */
  root: string
  /** absolute path of main.jsonnet */
  main: string
  spec: EnvironmentSpec
}

function environmentsDir(root: string): string {
  return path.join(root, 'environments')
}

/** Short names of every environment under <root>/environments, sorted. */
export function knownEnvironments(root = defaultTankaRoot): string[] {
  const base = environmentsDir(root)
  const found: string[] = []
  const walk = (dir: string) => {
    let entries: fs.Dirent[]
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true })
    } catch {
      return
    }
    if (entries.some((e) => e.isFile() && e.name === SPEC_FILE))
      found.push(path.relative(base, dir).split(path.sep).join('/'))
    for (const e of entries)
      if (e.isDirectory() && !e.name.startsWith('.') && e.name !== 'vendor') walk(path.join(dir, e.name))
  }
  walk(base)
  return found.filter(Boolean).sort()
}

/**
 * Loads one environment by short name (`local`), by tk's name (`environments/local`) or by
 * its directory. An unknown name lists the known ones.
 */
export function loadEnvironment(name: string, root = defaultTankaRoot): TankaEnvironment {
  const known = knownEnvironments(root)
  const short = shortName(name, root)
  if (short === undefined || !known.includes(short)) {
    throw new NsopsError(`unknown Tanka environment "${name}".`, {
      hint: known.length
        ? `Known environments (under ${shown(environmentsDir(root))}): ${known.join(', ')}.`
        : `There are no environments under ${shown(environmentsDir(root))} (a directory with ${SPEC_FILE} and ${MAIN_FILE}).`,
    })
  }
  const dir = path.join(environmentsDir(root), short)
  const main = path.join(dir, MAIN_FILE)
  if (!fs.existsSync(main)) {
    throw new NsopsError(`the Tanka environment ${short} has a ${SPEC_FILE} but no ${MAIN_FILE} (${shown(dir)}).`, {
      hint: `Create ${shown(main)}: it evaluates to the environment's Kubernetes objects.`,
    })
  }
  return {
    name: short,
    tkName: path.relative(root, dir).split(path.sep).join('/'),
    dir,
    root,
    main,
    spec: readSpec(path.join(dir, SPEC_FILE)),
  }
}

export function loadEnvironments(root = defaultTankaRoot): TankaEnvironment[] {
  return knownEnvironments(root).map((n) => loadEnvironment(n, root))
}

function shortName(name: string, root: string): string | undefined {
  const base = environmentsDir(root)
  const abs = path.resolve(base, name.replace(/^environments\//, ''))
  const viaDir = path.isAbsolute(name) || name.startsWith('.') ? path.resolve(name) : abs
  const rel = path.relative(base, viaDir)
  if (!rel || rel.startsWith('..') || path.isAbsolute(rel)) return undefined
  return rel.split(path.sep).join('/')
}

function readSpec(file: string): EnvironmentSpec {
  let raw: unknown
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'))
  } catch (err) {
    throw new NsopsError(`${shown(file)}: not valid JSON (${(err as Error).message}).`, {
      hint: 'spec.json is JSON: {"apiVersion": "tanka.dev/v1alpha1", "kind": "Environment", "spec": {"namespace": ..., "apiServer": ...}}.',
    })
  }
  const doc = raw as Partial<EnvironmentSpec> | null
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw specError(file, 'it must be an object')
  if (doc.apiVersion !== 'tanka.dev/v1alpha1')
    throw specError(file, `apiVersion is ${JSON.stringify(doc.apiVersion)}, expected "tanka.dev/v1alpha1"`)
  if (doc.kind !== 'Environment') throw specError(file, `kind is ${JSON.stringify(doc.kind)}, expected "Environment"`)
  const spec = { ...(doc.spec ?? {}) } as EnvironmentSpec['spec']
  if (spec.namespace === undefined) spec.namespace = 'default'
  if (typeof spec.namespace !== 'string') throw specError(file, 'spec.namespace must be a string')
  // tk assumes https:// when the scheme is left out
  if (spec.apiServer && !/^.+:\/\//.test(spec.apiServer)) spec.apiServer = `https://${spec.apiServer}`
  return { apiVersion: doc.apiVersion, kind: doc.kind, metadata: doc.metadata ?? {}, spec }
}

function specError(file: string, what: string): NsopsError {
  return new NsopsError(`${shown(file)}: ${what}.`, {
    hint: 'spec.json is Tanka\'s environment file: {"apiVersion": "tanka.dev/v1alpha1", "kind": "Environment", "spec": {"namespace": ..., "apiServer": ...}}.',
  })
}

/**
 * The value of tk's `tanka.dev/environment` label: the first 48 hex digits of
 * sha256("<name>:<entrypoint>"), both relative to the root (Tanka's Metadata.NameLabel).
 */
export function environmentLabel(env: TankaEnvironment): string {
  const entrypoint = path.relative(env.root, env.main).split(path.sep).join('/')
  return createHash('sha256').update(`${env.tkName}:${entrypoint}`).digest('hex').slice(0, 48)
}

/** Paths as a user typed them: relative to the working directory when inside it. */
export function shown(p: string): string {
  const rel = path.relative(process.cwd(), p)
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : p
}
