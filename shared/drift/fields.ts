// Objects as JSON trees compared leaf by leaf, addressed by JSON pointers (RFC 6901), the
// form Flux's `.spec.ignore` rules and `kubectl patch --type json` use: `/spec/replicas`,
// `/spec/template/spec/containers/0/image`, `/metadata/annotations/a~1b` for key `a/b`.
import { parsePointer } from '../core/json-pointer.ts'

export { parsePointer }

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json }

export interface FieldChange {
  /** JSON pointer of the field */
  path: string
  /** the value git (through Flux's apply) would set; absent: git does not set it */
  git?: Json
  /** the value live; absent: the field is not there live */
  live?: Json
}

const isObject = (v: unknown): v is Record<string, Json> => typeof v === 'object' && v !== null && !Array.isArray(v)

export function escapeToken(t: string): string {
  return t.replaceAll('~', '~0').replaceAll('/', '~1')
}

/**
 * Every leaf where `git` and `live` differ. Objects recurse by key, arrays by index (a list
 * that grew or shrank shows its extra items as added or removed). Scalars compare strictly,
 * except that the dry run already normalised both sides the way the server stores them.
 */
export function leafChanges(git: unknown, live: unknown, at = ''): FieldChange[] {
  // most objects are in sync: one walk that allocates nothing says so
  if (at === '' && sameJson(git, live)) return []
  if (isObject(git) && isObject(live)) {
    const keys = [...new Set([...Object.keys(git), ...Object.keys(live)])].sort()
    return keys.flatMap((k) => leafChanges(git[k], live[k], `${at}/${escapeToken(k)}`))
  }
  if (Array.isArray(git) && Array.isArray(live)) {
    const n = Math.max(git.length, live.length)
    const out: FieldChange[] = []
    for (let i = 0; i < n; i++) out.push(...leafChanges(git[i], live[i], `${at}/${i}`))
    return out
  }
  if (git === undefined && live === undefined) return []
  if (JSON.stringify(git) === JSON.stringify(live)) return []
  const change: FieldChange = { path: at || '/' }
  if (git !== undefined) change.git = git as Json
  if (live !== undefined) change.live = live as Json
  return [change]
}

/** True when no leaf differs (a key set to undefined counts as absent); false means: look leaf by leaf. */
function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => sameJson(x, b[i]))
  if (!isObject(a) || !isObject(b)) return false
  for (const k of Object.keys(a)) if (a[k] !== undefined && !sameJson(a[k], b[k])) return false
  for (const k of Object.keys(b)) if (b[k] !== undefined && a[k] === undefined) return false
  return true
}

/**
 * Only the leaves `git` sets: what a manifest asks for compared with the live object, used
 * when the server refused a dry run (an immutable field) and there is no server answer.
 */
export function wantedChanges(git: unknown, live: unknown, at = ''): FieldChange[] {
  if (isObject(git)) {
    return Object.keys(git)
      .sort()
      .flatMap((k) => wantedChanges(git[k], isObject(live) ? live[k] : undefined, `${at}/${escapeToken(k)}`))
  }
  if (Array.isArray(git) && Array.isArray(live) && git.length === live.length) {
    return git.flatMap((g, i) => wantedChanges(g, live[i], `${at}/${i}`))
  }
  if (git === null || git === undefined) return []
  // `80` and `"80"` (int-or-string), `1` and `"1"` (quantities) are one value to the server
  if (JSON.stringify(git) === JSON.stringify(live) || (typeof live !== 'object' && String(git) === String(live)))
    return []
  const change: FieldChange = { path: at || '/', git: git as Json }
  if (live !== undefined) change.live = live as Json
  return [change]
}

/** Removes the field at `pointer` (a missing path is fine: nothing to ignore there). */
export function removePath(obj: unknown, pointer: string): void {
  const tokens = parsePointer(pointer)
  if (tokens.length === 0) return
  let cur: unknown = obj
  for (const t of tokens.slice(0, -1)) {
    if (Array.isArray(cur)) cur = cur[Number(t)]
    else if (isObject(cur)) cur = cur[t]
    else return
  }
  const last = tokens[tokens.length - 1]
  if (Array.isArray(cur)) {
    const i = Number(last)
    if (Number.isInteger(i) && i < cur.length) cur.splice(i, 1)
  } else if (isObject(cur)) delete cur[last]
}

/** The value at `pointer`, or undefined. */
export function valueAt(obj: unknown, pointer: string): unknown {
  let cur: unknown = obj
  for (const t of parsePointer(pointer)) {
    if (Array.isArray(cur)) cur = cur[Number(t)]
    else if (isObject(cur)) cur = cur[t]
    else return undefined
  }
  return cur
}

/** Whether `path` is `prefix` or lies below it. */
export function under(path: string, prefix: string): boolean {
  return path === prefix || path.startsWith(`${prefix}/`)
}
