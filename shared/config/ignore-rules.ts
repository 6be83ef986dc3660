// What drift leaves out: the Kustomization's own `.spec.ignore` rules (kustomize-controller
// v1.9: JSON pointers, optionally for a target selector; Flux neither applies nor reports
// them) and the namespace's local list in namespace.ts (`drift.ignore`). Target fields are
// regular expressions matched against the whole value, as fluxcd/pkg/ssa's SelectorRegex does;
// label and annotation selectors take the equality forms (`a=b`, `a!=b`, `a`, `!a`).
import { groupOf, type ObjectRef } from '../kube/refs.ts'
import { NsopsError } from '../core/errors.ts'
import { parsePointer } from '../core/json-pointer.ts'

export interface IgnoreTarget {
  group?: string
  version?: string
  kind?: string
  name?: string
  namespace?: string
  labelSelector?: string
  annotationSelector?: string
}

export interface IgnoreRule {
  paths: string[]
  target?: IgnoreTarget
  /** where the rule comes from: `Kustomization/flux-system/demo .spec.ignore[0]` or `namespace.ts drift.ignore[1]` */
  from: string
}

interface Meta {
  labels?: Record<string, string>
  annotations?: Record<string, string>
}

function fullMatch(pattern: string | undefined, value: string): boolean {
  if (!pattern) return true
  try {
    return new RegExp(`^(?:${pattern})$`).test(value)
  } catch {
    return pattern === value
  }
}

/** An equality-based selector (`app=web,tier!=db,canary,!legacy`) against a map. */
export function selectorMatches(selector: string | undefined, map: Record<string, string> | undefined): boolean {
  if (!selector?.trim()) return true
  const m = map ?? {}
  return selector
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .every((term) => {
      const ne = /^([^!=]+)!=(.*)$/.exec(term)
      if (ne) return m[ne[1].trim()] !== ne[2].trim()
      const eq = /^([^!=]+)==?(.*)$/.exec(term)
      if (eq) return m[eq[1].trim()] === eq[2].trim()
      if (term.startsWith('!')) return !(term.slice(1).trim() in m)
      return term in m
    })
}

export function targetMatches(t: IgnoreTarget | undefined, ref: ObjectRef, meta: Meta): boolean {
  if (!t) return true
  const version = ref.apiVersion.includes('/') ? ref.apiVersion.split('/')[1] : ref.apiVersion
  return (
    fullMatch(t.group, groupOf(ref.apiVersion)) &&
    fullMatch(t.version, version) &&
    fullMatch(t.kind, ref.kind) &&
    fullMatch(t.name, ref.name) &&
    fullMatch(t.namespace, ref.namespace ?? '') &&
    selectorMatches(t.labelSelector, meta.labels) &&
    selectorMatches(t.annotationSelector, meta.annotations)
  )
}

/** The pointers to leave out of one object's comparison ('' or '/' means the whole object). */
export function ignoredPaths(rules: IgnoreRule[], ref: ObjectRef, meta: Meta): { path: string; from: string }[] {
  return rules
    .filter((r) => targetMatches(r.target, ref, meta))
    .flatMap((r) => r.paths.map((path) => ({ path, from: r.from })))
}

/** `.spec.ignore` of a Kustomization, as the controller reads it. */
export function kustomizationRules(spec: Record<string, unknown> | undefined, from: string): IgnoreRule[] {
  const raw = Array.isArray(spec?.ignore) ? (spec.ignore as { paths?: unknown; target?: IgnoreTarget }[]) : []
  return raw.map((r, i) => ({
    paths: Array.isArray(r.paths) ? r.paths.filter((p): p is string => typeof p === 'string') : [],
    ...(r.target ? { target: r.target } : {}),
    from: `${from} .spec.ignore[${i}]`,
  }))
}

/**
 * One entry of namespace.ts `drift.ignore`: a JSON pointer for every object (`/spec/replicas`),
 * or for one kind (`Deployment:/spec/replicas`) or one object (`Deployment/web:/spec/replicas`).
 * Returns why it is malformed, or the rule.
 */
export function parseLocalRule(entry: unknown, index: number): IgnoreRule | string {
  if (typeof entry !== 'string' || entry.trim() === '')
    return `must be a JSON pointer like "/spec/replicas" or "Deployment/web:/spec/replicas", got ${JSON.stringify(entry)}`
  const m = /^(?:([A-Za-z][A-Za-z0-9]*)(?:\/([a-z0-9]([-a-z0-9.]*[a-z0-9])?))?:)?(\/.*)$/.exec(entry.trim())
  if (!m)
    return `must be a JSON pointer (starting with "/"), optionally after "Kind:" or "Kind/name:", got ${JSON.stringify(entry)}`
  try {
    parsePointer(m[4])
  } catch (err) {
    return (err as Error).message
  }
  const target: IgnoreTarget = {}
  // literal names, not regular expressions: escape what a regexp would read
  if (m[1]) target.kind = m[1]
  if (m[2]) target.name = m[2].replaceAll('.', '\\.')
  return { paths: [m[4]], ...(m[1] ? { target } : {}), from: `namespace.ts drift.ignore[${index}]` }
}

export function localRules(entries: readonly string[] | undefined): IgnoreRule[] {
  return (entries ?? []).map((e, i) => {
    const r = parseLocalRule(e, i)
    if (typeof r === 'string') throw new NsopsError(`drift.ignore[${i}] ${r}.`, { hint: 'fix it in namespace.ts.' })
    return r
  })
}
