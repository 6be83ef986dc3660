// Kubernetes OpenAPI v3 schemas → JSON Schema that ajv checks the way `kubectl
// --validate=strict` and `kubeconform -strict` do: an object schema that lists its properties
// is closed (an unknown field is an error) unless it says x-kubernetes-preserve-unknown-fields,
// int-or-string fields take either, and everything a validator does not need (descriptions,
// defaults, formats, list/patch hints, CEL rules) is dropped, which makes the cached documents
// several times smaller and quicker to compile. CRDs become documents of the same shape, so
// the cluster's served documents, the pinned offline set and CRDs in the build are one thing.
import { createHash } from 'node:crypto'

export type Schema = Record<string, unknown>

/** One group-version's schemas, converted. `kinds` maps each kind of this group-version to its definition. */
export interface SchemaDoc {
  /** ajv's id for the document: refs inside it are `#/components/schemas/NAME` */
  uri: string
  groupVersion: string
  kinds: Record<string, string>
  components: { schemas: Record<string, Schema> }
  /** content hash of the converted schemas: compiled validators are cached under it */
  hash: string
}

export function contentHash(schemas: Record<string, Schema>): string {
  return createHash('sha256').update(JSON.stringify(schemas)).digest('hex').slice(0, 20)
}

interface Gvk {
  group?: string
  version?: string
  kind?: string
}

/** `apps/v1` → group apps, version v1; `v1` → the core group. */
export function splitApiVersion(apiVersion: string): { group: string; version: string } {
  const i = apiVersion.indexOf('/')
  return i < 0
    ? { group: '', version: apiVersion }
    : { group: apiVersion.slice(0, i), version: apiVersion.slice(i + 1) }
}

export function docId(groupVersion: string): string {
  return `https://schemas.nsops.local/${groupVersion.includes('/') ? groupVersion : `core/${groupVersion}`}.json`
}

// Keys a validator never reads; dropping them keeps the cache small and compiling fast.
const DROP = new Set([
  'description',
  'default',
  'example',
  'externalDocs',
  'readOnly',
  'writeOnly',
  'deprecated',
  'format',
  'nullable',
  'title',
  'discriminator',
  'xml',
])

function validPattern(p: unknown): boolean {
  if (typeof p !== 'string') return false
  try {
    new RegExp(p, 'u')
    return true
  } catch {
    return false
  } // RE2-only syntax: the server checks it
}

/** One schema node, converted (recursively). */
export function convertSchema(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(convertSchema)
  if (typeof node !== 'object' || node === null) return node
  const src = node as Schema
  const out: Schema = {}
  for (const [k, v] of Object.entries(src)) {
    if (DROP.has(k) || k.startsWith('x-')) continue
    if (k === 'pattern' && !validPattern(v)) continue
    if (k === 'properties' || k === 'patternProperties' || k === 'definitions') {
      out[k] = Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([p, s]) => [p, convertSchema(s)]))
    } else if (k === 'enum' || k === 'required' || k === 'const' || k === 'type' || k === '$ref') {
      out[k] = v
    } else {
      out[k] = convertSchema(v)
    }
  }
  if (src['x-kubernetes-int-or-string'] === true) {
    delete out.type
    if (!out.anyOf && !out.oneOf) out.anyOf = [{ type: 'integer' }, { type: 'string' }]
  }
  const preserve = src['x-kubernetes-preserve-unknown-fields'] === true
  if (src['x-kubernetes-embedded-resource'] === true && out.properties && !preserve) {
    // an embedded object always may carry its own type meta
    const props = out.properties as Record<string, unknown>
    props.apiVersion ??= { type: 'string' }
    props.kind ??= { type: 'string' }
    props.metadata ??= { type: 'object' }
  }
  // strict: a schema that names its fields allows no others (what the API server's
  // fieldValidation=Strict reports as "unknown field")
  if (out.properties && out.additionalProperties === undefined && !preserve) out.additionalProperties = false
  return out
}

/** The kinds of `groupVersion` a components map defines (x-kubernetes-group-version-kind). */
export function kindsOf(schemas: Record<string, unknown>, groupVersion: string): Record<string, string> {
  const { group, version } = splitApiVersion(groupVersion)
  const kinds: Record<string, string> = {}
  for (const [name, s] of Object.entries(schemas)) {
    const gvks = (s as Schema)['x-kubernetes-group-version-kind'] as Gvk[] | undefined
    for (const g of gvks ?? []) {
      if ((g.group ?? '') === group && g.version === version && g.kind && !g.kind.endsWith('List'))
        kinds[g.kind] ??= name
    }
  }
  return kinds
}

/** An OpenAPI v3 document as the API server serves it (`/openapi/v3/apis/apps/v1`) or the Kubernetes repo ships it. */
export function convertOpenApiDoc(
  groupVersion: string,
  doc: { components?: { schemas?: Record<string, unknown> } },
): SchemaDoc {
  const raw = doc.components?.schemas ?? {}
  const kinds = kindsOf(raw, groupVersion)
  const schemas: Record<string, Schema> = {}
  for (const [name, s] of Object.entries(raw)) schemas[name] = convertSchema(s) as Schema
  return { uri: docId(groupVersion), groupVersion, kinds, components: { schemas }, hash: contentHash(schemas) }
}

const OBJECT_META = 'io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta'

/** The definitions `name` needs (itself and every $ref it reaches), from an already converted map. */
export function closure(schemas: Record<string, Schema>, name: string): Record<string, Schema> {
  const out: Record<string, Schema> = {}
  const visit = (n: string) => {
    if (out[n] || !schemas[n]) return
    out[n] = schemas[n]
    const refs = JSON.stringify(schemas[n]).matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)
    for (const m of refs) visit(m[1])
  }
  visit(name)
  return out
}

interface CrdVersion {
  name: string
  served?: boolean
  schema?: { openAPIV3Schema?: Schema }
}
export interface CrdLike {
  spec: { group: string; names: { kind: string }; versions?: CrdVersion[] }
}

/**
 * CRDs (from the pinned Flux set, or from the build itself) as schema documents, one per
 * group-version, with ObjectMeta from `meta` (the converted core documents), as the API
 * server does: a CRD's own schema says only `metadata: {type: object}`.
 */
export function crdDocs(crds: CrdLike[], meta: Record<string, Schema>): SchemaDoc[] {
  const docs = new Map<string, SchemaDoc>()
  const metaDefs = closure(meta, OBJECT_META)
  for (const crd of crds) {
    for (const v of crd.spec.versions ?? []) {
      const raw = v.schema?.openAPIV3Schema
      if (!raw || v.served === false) continue
      const gv = `${crd.spec.group}/${v.name}`
      let doc = docs.get(gv)
      if (!doc) {
        doc = { uri: docId(gv), groupVersion: gv, kinds: {}, components: { schemas: { ...metaDefs } }, hash: '' }
        docs.set(gv, doc)
      }
      const name = `${crd.spec.group.split('.').reverse().join('.')}.${v.name}.${crd.spec.names.kind}`
      const s = convertSchema(raw) as Schema
      const props = { ...(s.properties as Record<string, unknown> | undefined) }
      props.apiVersion = { type: 'string' }
      props.kind = { type: 'string' }
      props.metadata = metaDefs[OBJECT_META] ? { $ref: `#/components/schemas/${OBJECT_META}` } : { type: 'object' }
      doc.components.schemas[name] = {
        ...s,
        type: 'object',
        properties: props,
        additionalProperties: raw['x-kubernetes-preserve-unknown-fields'] === true ? true : false,
      }
      doc.kinds[crd.spec.names.kind] = name
    }
  }
  for (const d of docs.values()) d.hash = contentHash(d.components.schemas)
  return [...docs.values()]
}
