// Where a field of a built object is written: the file and line a schema error points at.
// kustomize records each object's source file when asked (`buildMetadata: [originAnnotations]`);
// the user's kustomization is not touched: a throwaway kustomization in a temp dir lists the
// overlay and asks for the annotations, and only when there are errors to place. The field is
// then looked up in that file's YAML; when the value there differs or the field is absent
// (a patch set it), the patches under the namespace's folder are searched for that value.
import fs from 'node:fs'
import fsp from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { isDeepStrictEqual } from 'node:util'
import { isMap, isPair, isScalar, isSeq, LineCounter, parseAllDocuments, type Document, type Node } from 'yaml'
import { buildKustomization, type ManifestObject } from '../kustomize/build.ts'
import { pointerSegments, type SchemaFinding } from './validate.ts'

const ORIGIN = 'config.kubernetes.io/origin'

function key(o: { kind: string; metadata: { name: string; namespace?: string } }): string {
  return `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`
}

/** Where a built object comes from: its file (absolute), or the kustomization whose generator made it. */
export interface Origin {
  file: string
  /** made by a generator (`SecretGenerator`, `ConfigMapGenerator`) configured in `file` */
  generator?: string
}

/** The key origin maps use for a built object: kind/namespace/name. */
export const originKey = key

/** Each built object's origin, from a second build with origin annotations. */
export async function originsOf(overlayDir: string): Promise<Map<string, Origin>> {
  const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'nsops-origin-'))
  try {
    // kustomize takes only relative resource paths
    const rel = path.relative(tmp, path.resolve(overlayDir)).split(path.sep).join('/')
    await fsp.writeFile(
      path.join(tmp, 'kustomization.yaml'),
      `resources:\n  - ${JSON.stringify(rel)}\nbuildMetadata: [originAnnotations]\n`,
    )
    const out = new Map<string, Origin>()
    // like every build: kustomize-server's JSON when it can be had, else the CLI
    for (const o of await buildKustomization(tmp)) {
      const text = o.metadata.annotations?.[ORIGIN]
      if (!text) continue
      const file = /^path: (.+)$/m.exec(text)?.[1]
      const configuredIn = /^configuredIn: (.+)$/m.exec(text)?.[1]
      const by = /^\s+kind: (.+)$/m.exec(text)?.[1]
      if (file) out.set(key(o), { file: path.resolve(tmp, file.trim()) })
      else if (configuredIn)
        out.set(key(o), { file: path.resolve(tmp, configuredIn.trim()), generator: by?.trim() ?? 'generator' })
    }
    return out
  } finally {
    await fsp.rm(tmp, { recursive: true, force: true })
  }
}

/** Each built object's source file (absolute): its origin, unless a generator made it. */
export async function originFiles(overlayDir: string): Promise<Map<string, string>> {
  const files = new Map<string, string>()
  for (const [k, o] of await originsOf(overlayDir)) if (!o.generator) files.set(k, o.file)
  return files
}

interface Located {
  line: number
  exact: boolean
}

/** The line of `segments` in one YAML document: exact when the value there equals `value`; else the deepest ancestor's. */
function lineIn(doc: Document, lines: LineCounter, segments: (string | number)[], value: unknown): Located | undefined {
  let node: unknown = doc.contents
  let line = node && (node as Node).range ? lines.linePos((node as Node).range![0]).line : undefined
  for (const seg of segments) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(seg))
      if (!pair) return line === undefined ? undefined : { line, exact: false }
      const k = pair.key as Node
      if (k.range) line = lines.linePos(k.range[0]).line
      node = pair.value
    } else if (isSeq(node) && typeof seg === 'number' && seg < node.items.length) {
      node = node.items[seg]
      const r = (node as Node | undefined)?.range
      if (r) line = lines.linePos(r[0]).line
    } else {
      return line === undefined ? undefined : { line, exact: false }
    }
  }
  if (line === undefined) return undefined
  const here = node && typeof (node as Node).toJSON === 'function' ? (node as Node).toJSON() : node
  return { line, exact: value === undefined || isDeepStrictEqual(here, value) }
}

interface Parsed {
  file: string
  docs: { doc: Document; kind?: string; name?: string }[]
  lines: LineCounter
}

function parseFile(file: string, cache: Map<string, Parsed | undefined>): Parsed | undefined {
  if (cache.has(file)) return cache.get(file)
  let parsed: Parsed | undefined
  try {
    const lines = new LineCounter()
    const docs = parseAllDocuments(fs.readFileSync(file, 'utf8'), { lineCounter: lines })
    if (Array.isArray(docs)) {
      parsed = {
        file,
        lines,
        docs: docs.map((doc) => {
          const js = doc.toJS() as { kind?: unknown; metadata?: { name?: unknown } } | null
          return {
            doc,
            kind: typeof js?.kind === 'string' ? js.kind : undefined,
            name: typeof js?.metadata?.name === 'string' ? js.metadata.name : undefined,
          }
        }),
      }
    }
  } catch {
    /* unreadable: not a candidate */
  }
  cache.set(file, parsed)
  return parsed
}

function yamlFiles(dir: string): string[] {
  const out: string[] = []
  const walk = (d: string) => {
    let entries: fs.Dirent[]
    try {
      entries = fs.readdirSync(d, { withFileTypes: true })
    } catch {
      return
    }
    for (const e of entries) {
      const p = path.join(d, e.name)
      if (e.isDirectory()) walk(p)
      else if (/\.ya?ml$/.test(e.name)) out.push(p)
    }
  }
  walk(dir)
  return out.sort()
}

function valueAt(obj: unknown, segments: (string | number)[]): unknown {
  let v = obj
  for (const s of segments)
    v = typeof v === 'object' && v !== null ? (v as Record<string | number, unknown>)[s] : undefined
  return v
}

/**
 * Fills in `file` and `line` of each finding: the object's origin file when the field is
 * written there with the value that was built, else a patch under `searchDir` that writes
 * that value, else the origin file at the nearest enclosing field.
 */
export async function locateFindings(findings: SchemaFinding[], overlayDir: string, searchDir: string): Promise<void> {
  if (findings.length === 0) return
  let origins = new Map<string, string>()
  try {
    origins = await originFiles(overlayDir)
  } catch {
    /* no origins: the search below still finds patches and bases */
  }
  const cache = new Map<string, Parsed | undefined>()
  const all = yamlFiles(searchDir)
  for (const f of findings) {
    const o: ManifestObject = f.object
    const segments = pointerSegments(f.path)
    const value = valueAt(o, segments)
    const origin = origins.get(key(o))
    const tryFile = (file: string, anyName: boolean): Located | undefined => {
      const p = parseFile(file, cache)
      if (!p) return undefined
      const docs = p.docs.filter(
        (d) =>
          d.kind === o.kind &&
          (anyName || d.name === o.metadata.name || (d.name !== undefined && o.metadata.name.includes(d.name))),
      )
      let best: Located | undefined
      for (const d of docs) {
        const l = lineIn(d.doc, p.lines, segments, value)
        if (l && (!best || (l.exact && !best.exact))) best = l
      }
      return best
    }
    const set = (file: string, l: Located) => {
      f.file = file
      f.line = l.line
    }
    const fromOrigin = origin ? tryFile(origin, true) : undefined
    if (fromOrigin?.exact) {
      set(origin!, fromOrigin)
      continue
    }
    const patch = all
      .filter((file) => file !== origin)
      .map((file) => [file, tryFile(file, false)] as const)
      .find(([, l]) => l?.exact)
    if (patch) {
      set(patch[0], patch[1]!)
      continue
    }
    if (origin && fromOrigin) set(origin, fromOrigin)
    else if (origin) f.file = origin
  }
}
