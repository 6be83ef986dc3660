// Strict schema validation of built manifests with ajv, against one SchemaSource (the
// cluster's OpenAPI or the pinned offline set) plus the CRDs the build itself defines. Each
// group-version document is added to ajv once and each kind's validator compiled once (ajv
// compiles shared definitions such as PodSpec once for all kinds that use them), so 400
// objects of a dozen kinds cost a dozen compilations. Compiling a Deployment's schema takes
// ~0.5 s, more than validating 400 objects, so each compiled validator is also kept on disk as
// ajv's standalone code (keyed by the document's content hash): later runs load it in ~10 ms.
import fs from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv'
import standalone from 'ajv/dist/standalone/index.js'
import { cacheDir } from '../core/paths.ts'
import type { ManifestObject } from '../kustomize/build.ts'
import { isCrd } from '../apply/order.ts'
import { crdDocs, docId, type CrdLike, type SchemaDoc } from './convert.ts'
import type { SchemaSource } from './sources.ts'

export interface SchemaFinding {
  object: ManifestObject
  /** `Deployment arr-stack/sonarr` */
  ref: string
  /** JSON pointer into the object, e.g. /spec/replicas (the field the message is about) */
  path: string
  message: string
  /** where the field is written, once located (origin.ts) */
  file?: string
  line?: number
  /** where a rendered object came from (HelmRelease, template, values path) */
  note?: string
}

export interface UnknownKind {
  apiVersion: string
  kind: string
  objects: string[]
}

export interface SchemaCheck {
  /** objects checked against a schema */
  checked: number
  findings: SchemaFinding[]
  /** kinds no schema knows: neither the source nor a CRD in the build defines them */
  unknownKinds: UnknownKind[]
  /** SOPS-encrypted Secrets are checked without their `sops` block (Flux removes it when decrypting) */
  source: string
}

export function objectRef(o: ManifestObject): string {
  return `${o.kind} ${o.metadata.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata.name}`
}

/** The object as the API server decodes it: a YAML null means "not set". */
function withoutNulls(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withoutNulls)
  if (typeof v !== 'object' || v === null) return v
  const out: Record<string, unknown> = {}
  for (const [k, x] of Object.entries(v)) if (x !== null) out[k] = withoutNulls(x)
  return out
}

function prepare(o: ManifestObject): unknown {
  const clean = withoutNulls(o) as Record<string, unknown>
  if (o.kind === 'Secret' && o.apiVersion === 'v1' && 'sops' in clean) delete clean.sops
  return clean
}

export class SchemaValidator {
  private readonly ajv = new Ajv({
    strict: false,
    allErrors: true,
    validateFormats: false,
    validateSchema: false,
    addUsedSchema: false,
    code: { source: true },
  })
  private readonly added = new Set<string>()
  private readonly compiled = new Map<string, ValidateFunction | undefined>()

  constructor(readonly source: SchemaSource) {}

  private add(doc: SchemaDoc): void {
    if (this.added.has(doc.uri)) return
    this.ajv.addSchema(doc as unknown as Record<string, unknown>, doc.uri)
    this.added.add(doc.uri)
  }

  private validatorFor(doc: SchemaDoc, kind: string): ValidateFunction | undefined {
    const key = `${doc.uri}#${kind}`
    if (!this.compiled.has(key)) {
      const name = doc.kinds[kind]
      this.compiled.set(key, name ? this.load(doc, name) : undefined)
    }
    return this.compiled.get(key)
  }

  private load(doc: SchemaDoc, name: string): ValidateFunction | undefined {
    const file = path.join(compiledDir(), `${doc.hash}-${name.replace(/[^\w.-]/g, '_')}.cjs`)
    if (doc.hash && fs.existsSync(file)) {
      try {
        return requireHere(file) as ValidateFunction
      } catch {
        /* a damaged cache entry: compile again */
      }
    }
    this.add(doc)
    const fn = this.ajv.getSchema(`${doc.uri}#/components/schemas/${encodeURIComponent(name)}`)
    if (fn && doc.hash) saveCompiled(file, standalone.default(this.ajv, fn)) // CJS: the function is also its own .default
    return fn
  }

  /** CRDs in the build define kinds too (a CRD and its first object in one deploy). */
  private async buildDocs(objects: ManifestObject[]): Promise<Map<string, SchemaDoc>> {
    const crds = objects.filter(isCrd) as unknown as CrdLike[]
    if (crds.length === 0) return new Map()
    const core = await this.source.load('v1')
    const docs = crdDocs(crds, core?.components.schemas ?? {})
    // their own ids: the cluster may serve an older version of the same CRD
    return new Map(docs.map((d) => [d.groupVersion, { ...d, uri: docId(`build/${d.groupVersion}`) }]))
  }

  async check(objects: ManifestObject[]): Promise<SchemaCheck> {
    const fromBuild = await this.buildDocs(objects)
    const gvs = [...new Set(objects.map((o) => o.apiVersion))]
    const docs = new Map(await Promise.all(gvs.map(async (gv) => [gv, await this.source.load(gv)] as const)))
    const findings: SchemaFinding[] = []
    const unknown = new Map<string, UnknownKind>()
    let checked = 0
    for (const o of objects) {
      const local = fromBuild.get(o.apiVersion)
      const doc = local?.kinds[o.kind] ? local : docs.get(o.apiVersion)
      const validate = doc ? this.validatorFor(doc, o.kind) : undefined
      if (!validate) {
        const key = `${o.apiVersion} ${o.kind}`
        const u = unknown.get(key) ?? { apiVersion: o.apiVersion, kind: o.kind, objects: [] }
        u.objects.push(objectRef(o))
        unknown.set(key, u)
        continue
      }
      checked++
      if (validate(prepare(o))) continue
      for (const f of describeErrors(validate.errors ?? [], o)) findings.push({ object: o, ref: objectRef(o), ...f })
    }
    return { checked, findings, unknownKinds: [...unknown.values()], source: this.source.description }
  }
}

const requireHere = createRequire(import.meta.url)
// ajv version and options are part of what the code means
const CODE_VERSION = 'ajv-8.20.0-strict-allerrors-1'

function compiledDir(): string {
  return path.join(cacheDir(), 'schemas', 'compiled', CODE_VERSION)
}

/** The standalone module, its runtime helpers required by absolute path (the cache is outside node_modules). */
function saveCompiled(file: string, code: string): void {
  try {
    const linked = code.replace(
      /require\("(ajv\/dist\/runtime\/[^"]+)"\)/g,
      (_m, mod: string) => `require(${JSON.stringify(requireHere.resolve(mod))})`,
    )
    fs.mkdirSync(path.dirname(file), { recursive: true })
    const tmp = `${file}.${process.pid}.tmp`
    fs.writeFileSync(tmp, linked)
    fs.renameSync(tmp, file)
  } catch {
    /* a read-only cache only costs speed */
  }
}

function valueAt(obj: unknown, pointer: string): unknown {
  let v: unknown = obj
  for (const seg of pointerSegments(pointer)) {
    if (typeof v !== 'object' || v === null) return undefined
    v = (v as Record<string | number, unknown>)[seg]
  }
  return v
}

export function pointerSegments(pointer: string): (string | number)[] {
  if (!pointer) return []
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s))
}

function shown(v: unknown): string {
  const s = JSON.stringify(v)
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}…` : s
}

/**
 * ajv's errors as one message per field: an unknown field by its own path, a type mismatch
 * with the value found, and the alternatives of an anyOf (int-or-string) as one "must be
 * integer or string" instead of three lines.
 */
export function describeErrors(errors: ErrorObject[], obj: unknown): { path: string; message: string }[] {
  const byPath = new Map<string, ErrorObject[]>()
  for (const e of errors) {
    const p =
      e.keyword === 'additionalProperties'
        ? `${e.instancePath}/${String((e.params as { additionalProperty: string }).additionalProperty)
            .replace(/~/g, '~0')
            .replace(/\//g, '~1')}`
        : e.instancePath
    const list = byPath.get(p) ?? []
    list.push(e)
    byPath.set(p, list)
  }
  const out: { path: string; message: string }[] = []
  for (const [p, list] of byPath) {
    const value = valueAt(obj, p)
    const alternatives = list.some((e) => e.keyword === 'anyOf' || e.keyword === 'oneOf')
    const types = [
      ...new Set(list.filter((e) => e.keyword === 'type').map((e) => String((e.params as { type: string }).type))),
    ]
    const messages = new Set<string>()
    if (alternatives && types.length) messages.add(`must be ${types.join(' or ')}, not ${shown(value)}`)
    for (const e of list) {
      if (alternatives && (e.keyword === 'type' || e.keyword === 'anyOf' || e.keyword === 'oneOf') && types.length)
        continue
      switch (e.keyword) {
        case 'additionalProperties':
          messages.add('unknown field')
          break
        case 'type':
          messages.add(`must be ${String((e.params as { type: string }).type)}, not ${shown(value)}`)
          break
        case 'required':
          messages.add(`missing required field "${String((e.params as { missingProperty: string }).missingProperty)}"`)
          break
        case 'enum':
          messages.add(
            `must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map(shown).join(', ')}, not ${shown(value)}`,
          )
          break
        default:
          messages.add(
            `${e.message ?? e.keyword}${value !== undefined && typeof value !== 'object' ? `, not ${shown(value)}` : ''}`,
          )
      }
    }
    for (const m of messages) out.push({ path: p, message: m })
  }
  return out
}

/** `/spec/template/spec/containers/0/image` → `spec.template.spec.containers[0].image` (kubectl's way of naming a field). */
export function fieldPath(pointer: string): string {
  return (
    pointerSegments(pointer)
      .map((s, i) => (typeof s === 'number' ? `[${s}]` : `${i ? '.' : ''}${s}`))
      .join('') || '(the object)'
  )
}
