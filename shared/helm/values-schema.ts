// A chart's values.schema.json checked the way `helm template` checks it (the chart's, then each
// subchart's against its part of the values), without the network. helm v3.22 fetches every
// remote `$ref` at render time (bjw-s' app-template refs its library chart's schema on
// raw.githubusercontent.com): with no network it fails ("failing loading https://…"), and where
// packets are dropped rather than refused it waits on the connection. So charts are rendered
// with --skip-schema-validation and the schemas are checked here: a remote `$ref` is resolved
// from the files the chart ships when one matches the end of its URL (app-template's
// `…/charts/library/common/values.schema.json` is its `charts/common/values.schema.json`),
// otherwise left out and reported as skipped.
import fs from 'node:fs'
import path from 'node:path'
import { Ajv, type AnySchema, type ErrorObject, type ValidateFunction } from 'ajv'
import { Ajv2019 } from 'ajv/dist/2019.js'
import { Ajv2020 } from 'ajv/dist/2020.js'
import { parse as parseYamlSync } from 'yaml'

export interface ValuesProblem {
  /** the chart (or subchart path: `app/common`) whose schema said it */
  chart: string
  /** dotted path into the values: `service.main.ports.http.port` ('' for the whole) */
  path: string
  message: string
}

export interface ValuesSchemaResult {
  problems: ValuesProblem[]
  /** remote `$ref`s resolved from the chart's own files: url → file in the chart */
  resolved: { url: string; file: string }[]
  /** remote `$ref`s neither the chart ships nor could be checked: left out of the check */
  skipped: string[]
}

type Json = Record<string, unknown>

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v)

/** Helm's coalescing: `over` wins, maps merge, a null in `over` deletes the key. */
export function coalesce(base: unknown, over: unknown): unknown {
  if (!isObject(base) || !isObject(over)) return over === undefined ? base : over
  const out: Json = { ...base }
  for (const [k, v] of Object.entries(over)) {
    if (v === null) delete out[k]
    else out[k] = k in base ? coalesce(base[k], v) : v
  }
  return out
}

/** Every JSON file a chart ships, by its path inside the unpacked package (subcharts included). */
function chartFiles(root: string): string[] {
  const out: string[] = []
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const full = path.join(d, e.name)
      if (e.isDirectory()) walk(full)
      else if (e.name.endsWith('.json')) out.push(full)
    }
  }
  walk(root)
  return out
}

/** The chart file a remote URL names, when its last segments (at least two) are a file's path in the chart. */
function shippedFile(url: string, files: string[], root: string): string | undefined {
  const u = new URL(url)
  const segs = u.pathname.split('/').filter(Boolean)
  let best: { file: string; n: number } | undefined
  for (const f of files) {
    const rel = path.relative(root, f).split(path.sep)
    let n = 0
    while (n < rel.length && n < segs.length && rel[rel.length - 1 - n] === segs[segs.length - 1 - n]) n++
    // a chart folder is named for the chart, the URL often has its repository folder between
    if (n >= 2 && (!best || n > best.n)) best = { file: f, n }
  }
  return best?.file
}

/** Every remote `$ref` (http/https) in a schema, without its fragment. */
function remoteRefs(schema: unknown, out = new Set<string>()): Set<string> {
  if (Array.isArray(schema)) schema.forEach((s) => remoteRefs(s, out))
  else if (isObject(schema)) {
    for (const [k, v] of Object.entries(schema)) {
      if (k === '$ref' && typeof v === 'string' && /^https?:\/\//.test(v)) out.add(v.split('#')[0])
      else remoteRefs(v, out)
    }
  }
  return out
}

/** The schema with every `$ref` to `urls` removed (the node then allows anything). */
function withoutRefs(schema: unknown, urls: Set<string>): unknown {
  if (Array.isArray(schema)) return schema.map((s) => withoutRefs(s, urls))
  if (!isObject(schema)) return schema
  const out: Json = {}
  for (const [k, v] of Object.entries(schema)) {
    if (k === '$ref' && typeof v === 'string' && urls.has(v.split('#')[0])) continue
    out[k] = withoutRefs(v, urls)
  }
  return out
}

function ajvFor(schema: Json): Ajv | undefined {
  const dialect = typeof schema.$schema === 'string' ? schema.$schema : ''
  const opts = { strict: false, allErrors: true, validateFormats: false, verbose: true, logger: false as const }
  if (dialect.includes('2020-12')) return new Ajv2020(opts) as unknown as Ajv
  if (dialect.includes('2019-09')) return new Ajv2019(opts) as unknown as Ajv
  if (dialect.includes('draft-04') || dialect.includes('draft-03')) return undefined
  return new Ajv(opts)
}

function dotted(pointer: string): string {
  return pointer
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s, i) => (/^\d+$/.test(s) ? `[${s}]` : i ? `.${s}` : s))
    .join('')
}

function describe(e: ErrorObject): { path: string; message: string } {
  let p = dotted(e.instancePath)
  if (e.keyword === 'additionalProperties') {
    const extra = (e.params as { additionalProperty?: string }).additionalProperty
    p = p ? `${p}.${extra}` : String(extra)
    return { path: p, message: 'is not allowed here (additionalProperties: false)' }
  }
  if (e.keyword === 'required') {
    const missing = (e.params as { missingProperty?: string }).missingProperty
    return { path: p ? `${p}.${missing}` : String(missing), message: 'is required' }
  }
  const shown = e.data === null || ['string', 'number', 'boolean'].includes(typeof e.data)
  return { path: p, message: `${e.message ?? e.keyword}${shown ? `, not ${JSON.stringify(e.data)}` : ''}` }
}

/**
 * Checks `values` (the release's values, before the chart's defaults) against the schemas of
 * the chart unpacked at `root` and of its subcharts, as helm would, with remote `$ref`s
 * resolved from the chart's files or skipped.
 */
export function checkValuesSchema(root: string, values: Json): ValuesSchemaResult {
  const files = chartFiles(root)
  const result: ValuesSchemaResult = { problems: [], resolved: [], skipped: [] }
  const visit = (dir: string, vals: Json, label: string) => {
    const schemaFile = path.join(dir, 'values.schema.json')
    const defaults = readYaml(path.join(dir, 'values.yaml'))
    const merged = coalesce(defaults, vals) as Json
    if (fs.existsSync(schemaFile)) checkOne(schemaFile, merged, label, files, root, result)
    const charts = path.join(dir, 'charts')
    if (!fs.existsSync(charts)) return
    for (const e of fs.readdirSync(charts, { withFileTypes: true })) {
      if (!e.isDirectory()) continue
      const sub = path.join(charts, e.name)
      const subValues = isObject(merged[e.name]) ? (merged[e.name] as Json) : {}
      const global = isObject(merged.global) ? { global: merged.global } : {}
      visit(sub, { ...subValues, ...global }, `${label}/${e.name}`)
    }
  }
  visit(root, values, path.basename(root))
  result.skipped = [...new Set(result.skipped)]
  return result
}

function readYaml(file: string): Json {
  if (!fs.existsSync(file)) return {}
  // (a chart's values.yaml: YAML; parsed with the same library as everything else)
  const v = parseYamlSync(fs.readFileSync(file, 'utf8'))
  return isObject(v) ? v : {}
}

interface Compiled {
  /** undefined: nothing to run (a dialect not checked, a schema ajv refuses: said in `skipped`) */
  validate?: ValidateFunction
  /** a problem with the schema file itself */
  broken?: string
  resolved: { url: string; file: string }[]
  skipped: string[]
}

// compiled once per schema file per process: an unpacked chart (by digest) never changes
const compiled = new Map<string, Compiled>()

function checkOne(
  schemaFile: string,
  values: Json,
  label: string,
  files: string[],
  root: string,
  result: ValuesSchemaResult,
): void {
  let c = compiled.get(schemaFile)
  if (!c) {
    c = compile(schemaFile, label, files, root)
    compiled.set(schemaFile, c)
  }
  result.resolved.push(...c.resolved)
  result.skipped.push(...c.skipped)
  if (c.broken) result.problems.push({ chart: label, path: '', message: c.broken })
  if (!c.validate || c.validate(values)) return
  for (const e of c.validate.errors ?? []) result.problems.push({ chart: label, ...describe(e) })
}

function compile(schemaFile: string, label: string, files: string[], root: string): Compiled {
  const out: Compiled = { resolved: [], skipped: [] }
  let schema: Json
  try {
    schema = JSON.parse(fs.readFileSync(schemaFile, 'utf8')) as Json
  } catch (err) {
    out.broken = `values.schema.json does not parse: ${String(err)}`
    return out
  }
  const ajv = ajvFor(schema)
  if (!ajv) {
    out.skipped.push(`${label}'s values.schema.json (${String(schema.$schema)}: a JSON Schema dialect not checked)`)
    return out
  }
  // resolve remote refs transitively from the chart's files
  const unresolved = new Set<string>()
  const added = new Map<string, Json>()
  const queue = [...remoteRefs(schema)]
  while (queue.length) {
    const url = queue.shift()!
    if (added.has(url) || unresolved.has(url)) continue
    const file = shippedFile(url, files, root)
    let doc: Json | undefined
    if (file) {
      try {
        doc = JSON.parse(fs.readFileSync(file, 'utf8')) as Json
      } catch {
        doc = undefined
      }
    }
    if (!doc) {
      unresolved.add(url)
      continue
    }
    added.set(url, doc)
    out.resolved.push({ url, file: path.relative(path.dirname(root), file!) })
    for (const r of remoteRefs(doc)) queue.push(r)
  }
  for (const [url, doc] of added) {
    const { $id: _id, ...rest } = withoutRefs(doc, unresolved) as Json
    void _id
    ajv.addSchema(rest as AnySchema, url)
  }
  for (const u of unresolved) out.skipped.push(u)
  try {
    const { $id: _id, ...rest } = withoutRefs(schema, unresolved) as Json
    void _id
    out.validate = ajv.compile(rest)
  } catch (err) {
    out.skipped.push(`${label}'s values.schema.json (${String((err as Error).message).split('\n')[0]})`)
  }
  return out
}
