// What an apply would do, object by object: the live object against the server's own answer
// to a dry-run apply (so defaults are filled in as the server would), without the noise a
// human does not care about, Secret values masked, as unified line diffs of the YAML; and
// what the inventory would prune. The same result prints for people and as `--json` data.
import { ApiException } from '@kubernetes/client-node'
import { stringify } from 'yaml'
import { apiMessage, type Kube } from '../kube/client.ts'
import type { ManifestObject } from '../kustomize/build.ts'
import { c } from '../core/output.ts'
import { pruneDecision, readInventory, type InventoryRef } from './inventory.ts'
import { diffLines, unifiedText } from './line-diff.ts'
import { kindKey, kindsDefinedBy, mapLimit } from './order.ts'
import { refKey, refOf, refString, type ObjectRef } from '../kube/refs.ts'
import { DEFAULT_FIELD_MANAGER, dryRunAgainstLive, getObject, placeObject, UnknownKindError } from '../kube/rest.ts'

export type DiffAction = 'create' | 'update' | 'delete' | 'unchanged'

export interface ObjectDiff {
  ref: ObjectRef
  action: DiffAction
  /** unified hunks of the YAML, without colour; absent when unchanged */
  diff?: string
  /** lines added and removed */
  added: number
  removed: number
  /** the API server rejected the dry run (its message); there is no diff then */
  error?: string
  /** why the diff shows the manifest rather than the server's answer */
  note?: string
}

export interface DiffResult {
  objects: ObjectDiff[]
}

export interface DiffOptions {
  /** the field manager the apply will use; default `nsops` */
  fieldManager?: string
  /** namespace for namespaced objects that name none; default `default` */
  namespace?: string
  /** show what applying with this inventory would prune */
  inventory?: InventoryRef
  prunePvcs?: boolean
  /** requests in flight at once; default 8 */
  concurrency?: number
}

const NOISE_METADATA = ['managedFields', 'resourceVersion', 'generation', 'uid', 'creationTimestamp', 'selfLink']
// a client-side `kubectl apply` copies the whole object here, Secret values included
const NOISE_ANNOTATIONS = ['kubectl.kubernetes.io/last-applied-configuration']

/** The object without what the server keeps for itself: managedFields, resourceVersion, status, … */
export function stripNoise(obj: object): Record<string, unknown> {
  // copied without the noise rather than copied whole and then cut: managedFields is often
  // most of an object, and drift strips both sides of every object it compares
  const copy: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(obj)) {
    if (k === 'status') continue
    copy[k] = k === 'metadata' && isPlain(v) ? strippedMetadata(v) : cloneJson(v)
  }
  return copy
}

function strippedMetadata(meta: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(meta)) if (!NOISE_METADATA.includes(k)) out[k] = cloneJson(v)
  const annotations = out.annotations as Record<string, string> | undefined
  if (isPlain(annotations)) {
    for (const k of NOISE_ANNOTATIONS) delete annotations[k]
    if (Object.keys(annotations).length === 0) delete out.annotations
  }
  return out
}

const isPlain = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' &&
  v !== null &&
  (Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null)

/**
 * A deep copy of JSON data (objects, arrays, scalars): several times quicker than
 * structuredClone, which serialises. Anything else (a Date, a Buffer) is kept as it is.
 */
export function cloneJson<T>(v: T): T {
  if (Array.isArray(v)) return v.map(cloneJson) as T
  if (!isPlain(v)) return v
  const out: Record<string, unknown> = {}
  for (const k of Object.keys(v)) out[k] = cloneJson(v[k])
  return out as T
}

type Values = Record<string, unknown>

/**
 * A Secret's values replaced on both sides: `*** (unchanged)` where they agree, `***` before
 * and `*** (changed)` after where they differ (so the line still shows in the diff), `***`
 * where a key exists on one side only. Other kinds pass through.
 */
export function maskSecrets(
  before: Values | undefined,
  after: Values | undefined,
): [Values | undefined, Values | undefined] {
  const isSecret = (o: Values | undefined) => o?.kind === 'Secret'
  if (!isSecret(before) && !isSecret(after)) return [before, after]
  const b = before && structuredClone(before)
  const a = after && structuredClone(after)
  for (const field of ['data', 'stringData']) {
    const bv = (b?.[field] ?? undefined) as Values | undefined
    const av = (a?.[field] ?? undefined) as Values | undefined
    for (const key of new Set([...Object.keys(bv ?? {}), ...Object.keys(av ?? {})])) {
      const inBefore = bv !== undefined && key in bv
      const inAfter = av !== undefined && key in av
      if (inBefore && inAfter) {
        const same = bv[key] === av[key]
        bv[key] = same ? '*** (unchanged)' : '***'
        av[key] = same ? '*** (unchanged)' : '*** (changed)'
      } else if (inBefore) bv[key] = '***'
      else if (av) av[key] = '***'
    }
  }
  return [b, a]
}

function yamlLines(obj: Values | undefined): string[] {
  if (!obj) return []
  return stringify(obj, { lineWidth: 0 }).trimEnd().split('\n')
}

/** One object's diff from what is live (`before`) to what the apply would leave (`after`). */
export function objectDiff(ref: ObjectRef, before: object | undefined, after: object | undefined): ObjectDiff {
  const [b, a] = maskSecrets(before && stripNoise(before), after && stripNoise(after))
  const lines = diffLines(yamlLines(b), yamlLines(a))
  const added = lines.filter((l) => l.op === '+').length
  const removed = lines.filter((l) => l.op === '-').length
  const action: DiffAction = !before ? 'create' : !after ? 'delete' : added + removed === 0 ? 'unchanged' : 'update'
  const out: ObjectDiff = { ref, action, added, removed }
  if (action !== 'unchanged') out.diff = unifiedText(lines)
  return out
}

/** What applying `objects` (and pruning with `inventory`) would change, without changing it. */
export async function diffObjects(kube: Kube, objects: ManifestObject[], opts: DiffOptions = {}): Promise<DiffResult> {
  const manager = opts.fieldManager ?? DEFAULT_FIELD_MANAGER
  const definedBy = kindsDefinedBy(objects)
  const inSet = new Set<string>()
  // the server cannot dry-run an object into a Namespace that does not exist yet
  const newNamespaces = new Set<string>()
  await mapLimit(
    objects.filter((o) => o.kind === 'Namespace' && o.apiVersion === 'v1'),
    opts.concurrency ?? 8,
    async (o) => {
      if (!(await getObject(kube, refOf(o)))) newNamespaces.add(o.metadata.name)
    },
  )

  const diffs = await mapLimit(objects, opts.concurrency ?? 8, async (obj): Promise<ObjectDiff> => {
    let ref = refOf(obj)
    if (!ref.namespace && opts.namespace) ref.namespace = opts.namespace
    try {
      const placed = await placeObject(kube, obj, opts.namespace ?? 'default')
      if (!placed) {
        inSet.add(refKey(ref))
        if (definedBy.has(kindKey(obj))) {
          // its CRD is new in this set: the server cannot answer for it yet
          return {
            ...objectDiff(ref, undefined, obj),
            note: `not validated: its CustomResourceDefinition ${definedBy.get(kindKey(obj))} is created by this set`,
          }
        }
        throw new UnknownKindError(obj.apiVersion, obj.kind)
      }
      ref = refOf(placed)
      inSet.add(refKey(ref))
      if (placed.metadata.namespace && newNamespaces.has(placed.metadata.namespace)) {
        return {
          ...objectDiff(ref, undefined, placed),
          note: `not validated: its Namespace ${placed.metadata.namespace} is created by this set`,
        }
      }
      try {
        const { live, after } = await dryRunAgainstLive(kube, placed, ref, { fieldManager: manager, force: true })
        return objectDiff(ref, live, after)
      } catch (err) {
        if (!(err instanceof ApiException)) throw err
        const live = await getObject(kube, ref)
        return { ref, action: live ? 'update' : 'create', added: 0, removed: 0, error: apiMessage(err) }
      }
    } catch (err) {
      if (!(err instanceof ApiException || err instanceof UnknownKindError)) throw err
      return { ref, action: 'create', added: 0, removed: 0, error: apiMessage(err) }
    }
  })

  if (opts.inventory) {
    const previous = await readInventory(kube, opts.inventory)
    const gone = [...previous].filter(([key, ref]) => !inSet.has(key) && pruneDecision(ref, opts).prune)
    const pruned = await mapLimit(gone, opts.concurrency ?? 8, async ([, ref]): Promise<ObjectDiff | undefined> => {
      try {
        const live = await getObject(kube, ref)
        // as the apply does: only what still carries our field manager is ours to delete
        if (!live || !(live.metadata.managedFields ?? []).some((e) => e.manager === manager)) return undefined
        return objectDiff(ref, live, undefined)
      } catch (err) {
        if (err instanceof UnknownKindError) return undefined
        throw err
      }
    })
    for (const d of pruned) if (d) diffs.push(d)
  }
  return { objects: diffs }
}

const MARK: Record<DiffAction, string> = { create: '+', update: '~', delete: '-', unchanged: '=' }

function paint(line: string): string {
  if (line.startsWith('@@')) return c.cyan(line)
  return line[0] === '+' ? c.green(line) : line[0] === '-' ? c.red(line) : c.dim(line)
}

/** The diff for people: one block per object that changes, then a summary line. Colour follows `c`. */
export function renderDiff(result: DiffResult): string {
  const out: string[] = []
  for (const d of result.objects) {
    if (d.action === 'unchanged') continue
    const name = refString(d.ref)
    if (d.error) {
      out.push(`${c.red('!')} ${c.bold(name)}: ${c.red(d.error)}`)
      continue
    }
    const counts = [d.added ? c.green(`+${d.added}`) : '', d.removed ? c.red(`-${d.removed}`) : '']
      .filter(Boolean)
      .join(' ')
    const label = d.action === 'create' ? 'new' : d.action === 'delete' ? 'pruned' : 'changed'
    const mark =
      d.action === 'create' ? c.green(MARK.create) : d.action === 'delete' ? c.red(MARK.delete) : c.yellow(MARK.update)
    out.push(`${mark} ${c.bold(name)} (${label}, ${counts})${d.note ? c.yellow(` ${d.note}`) : ''}`)
    for (const line of (d.diff ?? '').split('\n').filter(Boolean)) out.push(`    ${paint(line)}`)
  }
  out.push(summaryLine(result))
  return out.join('\n')
}

export function summaryLine(result: DiffResult): string {
  const count = (a: DiffAction) => result.objects.filter((d) => d.action === a && !d.error).length
  const errors = result.objects.filter((d) => d.error).length
  const parts = [
    `${count('create')} to create`,
    `${count('update')} to update`,
    `${count('delete')} to prune`,
    `${count('unchanged')} unchanged`,
  ]
  if (errors) parts.push(c.red(`${errors} rejected`))
  return parts.join(', ')
}
