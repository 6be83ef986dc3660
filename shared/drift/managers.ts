// Who set a live field: the managedFields entry (FieldsV1) whose set holds the field's path.
// This is what lets the report say "/spec/replicas: 2 → 3, set by kubectl at 12:04", which
// neither `flux diff` nor Argo CD nor kapp tell. FieldsV1 keys: `f:<field>`, `k:<json of
// the item's merge keys>` for keyed lists (containers by name, ports by port+protocol),
// `v:<json value>` for sets, `i:<index>` for atomic positions; `.` marks the node itself.
import type { LiveObject, ManagedFieldsEntry } from '../kube/rest.ts'
import { parsePointer } from './fields.ts'

export interface FieldSetter {
  manager: string
  /** `Apply` (server-side apply) or `Update` (edit, patch, scale, a controller's write) */
  operation: string
  /** `scale` for `kubectl scale`, `status` for a status write */
  subresource?: string
  /** when that manager last changed a field it owns (ISO 8601), as the server recorded it */
  time?: string
}

type Fields = Record<string, unknown>
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

function matches(item: unknown, keys: Record<string, unknown>): boolean {
  return (
    isObject(item) &&
    Object.entries(keys).every(
      ([k, v]) => JSON.stringify(item[k]) === JSON.stringify(v) || String(item[k]) === String(v),
    )
  )
}

/** Whether `fields` holds the path (walking `value`, the live object, for list items). */
function holds(fields: Fields, value: unknown, tokens: string[], root = false): boolean {
  if (tokens.length === 0) return true
  // a leaf set (`f:data: {}`) owns everything below it: atomic maps and lists (not the root)
  if ((!root && Object.keys(fields).length === 0) || (Object.keys(fields).length === 1 && '.' in fields)) return true
  const [t, ...rest] = tokens
  if (Array.isArray(value)) {
    const index = Number(t)
    const item = value[index]
    for (const [key, sub] of Object.entries(fields)) {
      if (key.startsWith('k:')) {
        let keys: Record<string, unknown>
        try {
          keys = JSON.parse(key.slice(2))
        } catch {
          continue
        }
        if (matches(item, keys)) return holds(sub as Fields, item, rest)
      } else if (key.startsWith('v:')) {
        if (JSON.stringify(JSON.parse(key.slice(2))) === JSON.stringify(item)) return true
      } else if (key === `i:${index}`) {
        return holds(sub as Fields, item, rest)
      }
    }
    return false
  }
  const sub = fields[`f:${t}`]
  if (sub === undefined) return false
  return holds(sub as Fields, isObject(value) ? value[t] : undefined, rest)
}

/**
 * The managers whose field set holds `pointer` in the live object: usually one; several
 * when they share it (two appliers agreeing on a value). Sorted newest first.
 */
export function settersOf(live: LiveObject, pointer: string): FieldSetter[] {
  const tokens = parsePointer(pointer)
  const out: FieldSetter[] = []
  for (const e of (live.metadata.managedFields ?? []) as (ManagedFieldsEntry & { time?: string })[]) {
    if (!e.fieldsV1 || !e.manager) continue
    if (!holds(e.fieldsV1, live, tokens, true)) continue
    out.push({
      manager: e.manager,
      operation: e.operation ?? 'Update',
      ...(e.subresource ? { subresource: e.subresource } : {}),
      ...(e.time ? { time: e.time } : {}),
    })
  }
  return out.sort((a, b) => (b.time ?? '').localeCompare(a.time ?? ''))
}
