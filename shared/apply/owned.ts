// "Would this apply change anything?" answered from one GET, so an unchanged object costs no
// write. We compare the desired object with the live object restricted to the fields our
// field manager owns (its managedFields entry), the way client-go's ExtractInto does.
//
// Why not a hash annotation of what we applied (plus generation): it is blind to drift.
// When someone edits a field we own (`kubectl edit`, `kubectl scale`), ownership of that
// field moves to them and the hash still matches, so the dev loop would never put the
// manifest back; ConfigMaps, Secrets and Services have no generation to notice it by either.
// Reading our own managedFields sees exactly that: the field is no longer ours, or its value
// differs, so we apply. Why not a server-side dry run per object: it costs the API server as
// much as the write itself (admission, validation, defaulting) on every save.
//
// The comparison errs towards applying: a value the server rewrites (a quantity `0.5` stored
// as `500m`) looks changed, so we apply, and that apply is a no-op the caller still reports
// as unchanged (the resourceVersion does not move). The one leniency: a number and its string
// spelling (`80`, `"80"`) count as equal, as int-or-string fields and YAML's `cpu: 1` need.
import type { ManifestObject } from '../kustomize/build.ts'
import type { LiveObject, ManagedFieldsEntry } from '../kube/rest.ts'

type Fields = Record<string, unknown>

/** Our Apply entry in managedFields for this apiVersion, if we applied the object before. */
export function ownedFields(live: LiveObject, fieldManager: string, apiVersion: string): Fields | undefined {
  const entry = (live.metadata.managedFields ?? []).find(
    (e: ManagedFieldsEntry) =>
      e.manager === fieldManager && e.operation === 'Apply' && !e.subresource && e.apiVersion === apiVersion,
  )
  return entry?.fieldsV1
}

/** A value no live object holds: marks a field we own that the live object lacks. */
const ABSENT = Symbol('absent')

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** The part of `value` that the field set covers (FieldsV1: `f:`, `k:`, `v:`, `i:`, `.`). */
export function extractOwned(value: unknown, fields: Fields): unknown {
  const keys = Object.keys(fields).filter((k) => k !== '.')
  if (keys.length === 0) return structuredClone(value)
  if (Array.isArray(value)) {
    const picked: { index: number; value: unknown }[] = []
    for (const key of keys) {
      const sub = fields[key] as Fields
      const body = key.slice(2)
      if (key.startsWith('k:')) {
        const match = JSON.parse(body) as Record<string, unknown>
        const index = value.findIndex(
          (item) => isPlainObject(item) && Object.entries(match).every(([k, v]) => looseEqual(item[k], v)),
        )
        picked.push(index < 0 ? { index: Infinity, value: ABSENT } : { index, value: extractOwned(value[index], sub) })
      } else if (key.startsWith('v:')) {
        const wanted: unknown = JSON.parse(body)
        const index = value.findIndex((item) => looseEqual(item, wanted))
        picked.push(index < 0 ? { index: Infinity, value: ABSENT } : { index, value: structuredClone(value[index]) })
      } else if (key.startsWith('i:')) {
        const index = Number(body)
        picked.push(
          index < value.length ? { index, value: extractOwned(value[index], sub) } : { index: Infinity, value: ABSENT },
        )
      }
    }
    return picked.sort((a, b) => a.index - b.index).map((p) => p.value)
  }
  if (isPlainObject(value)) {
    const out: Record<string, unknown> = {}
    for (const key of keys) {
      if (!key.startsWith('f:')) continue
      const name = key.slice(2)
      out[name] = name in value ? extractOwned(value[name], fields[key] as Fields) : ABSENT
    }
    return out
  }
  return value
}

/**
 * The desired object as the field set would see it: without the identity fields (not in
 * managedFields), without `status` (the status subresource ignores it) and without nulls
 * (null in an apply means "not mine").
 */
export function comparableDesired(obj: ManifestObject): Record<string, unknown> {
  const copy = dropNulls(structuredClone(obj)) as Record<string, unknown>
  delete copy.apiVersion
  delete copy.kind
  delete copy.status
  const meta = copy.metadata as Record<string, unknown>
  delete meta.name
  delete meta.namespace
  if (Object.keys(meta).length === 0) delete copy.metadata
  return copy
}

/**
 * A Secret applied with stringData keeps `f:stringData.f:<key>` in our field set, but the
 * server stores only base64 `data`: give the live object the stringData view to compare.
 */
function withStringData(live: LiveObject): LiveObject {
  if (live.kind !== 'Secret' || !isPlainObject(live.data)) return live
  const stringData: Record<string, string> = {}
  for (const [k, v] of Object.entries(live.data)) stringData[k] = Buffer.from(String(v), 'base64').toString('utf8')
  return { ...live, stringData }
}

function dropNulls(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(dropNulls)
  if (isPlainObject(v)) {
    for (const [k, x] of Object.entries(v)) {
      if (x === null || x === undefined) delete v[k]
      else v[k] = dropNulls(x)
    }
  }
  return v
}

/** Deep equality where `80` and `"80"` are the same (int-or-string fields, numeric quantities). */
export function looseEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if ((typeof a === 'number' && typeof b === 'string') || (typeof a === 'string' && typeof b === 'number'))
    return String(a) === String(b)
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => looseEqual(x, b[i]))
  }
  if (isPlainObject(a) && isPlainObject(b)) {
    const ka = Object.keys(a)
    return ka.length === Object.keys(b).length && ka.every((k) => k in b && looseEqual(a[k], b[k]))
  }
  return false
}

/** True when applying `desired` with this field manager would change nothing in `live`. */
export function appliedUnchanged(desired: ManifestObject, live: LiveObject, fieldManager: string): boolean {
  const fields = ownedFields(live, fieldManager, desired.apiVersion)
  // The server keeps no entry for an apply that owns nothing (a Namespace that is only a
  // name): then there is nothing to apply either.
  if (!fields) return Object.keys(comparableDesired(desired)).length === 0
  // at the root an empty set owns nothing; deeper down `f:x: {}` owns x whole
  const owned = Object.keys(fields).length === 0 ? {} : extractOwned(withStringData(live), fields)
  return looseEqual(comparableDesired(desired), owned)
}
