// Server-side apply of a set of objects under one field manager: in dependency order, an
// unchanged object costs a GET and no write, every rejection is reported per object, and a
// named inventory lets the next apply prune what left the set (only what we applied).
import { ApiException } from '@kubernetes/client-node'
import { NsopsError } from '../core/errors.ts'
import { apiMessage, type Kube } from '../kube/client.ts'
import type { ManifestObject } from '../kustomize/build.ts'
import { stripNoise } from './diff.ts'
import { readInventory, writeInventory, inventoryConfigMapName, type InventoryRef } from './inventory.ts'
import { isCrd, isFirstPhase, kindKey, kindsDefinedBy, mapLimit, waitForEstablished } from './order.ts'
import { pruneLeftovers } from './prune.ts'
import { appliedUnchanged, looseEqual } from './owned.ts'
import { groupOf, refKey, refOf, refString, type ObjectRef } from '../kube/refs.ts'
import {
  DEFAULT_FIELD_MANAGER,
  dryRunAgainstLive,
  getObject,
  placeObject,
  serverSideApply,
  UnknownKindError,
} from '../kube/rest.ts'

export { DEFAULT_FIELD_MANAGER }

export interface ApplyOptions {
  /** field manager for server-side apply; default `nsops` */
  fieldManager?: string
  /** server-side dry run (dryRun=All): everything is validated, nothing is persisted or pruned */
  dryRun?: boolean
  /** take over fields another manager owns (what a GitOps apply does); default true */
  force?: boolean
  /** namespace for namespaced objects that name none; default `default` */
  namespace?: string
  /** record what was applied here, and prune what the previous apply recorded and this one lacks */
  inventory?: InventoryRef
  /** prune objects that left the set (needs `inventory`); default true */
  prune?: boolean
  /** PersistentVolumeClaims are pruned only when this is true */
  prunePvcs?: boolean
  /** requests in flight at once; default 8 */
  concurrency?: number
  /** how long a CRD of the set may take to be Established; default 30 s */
  crdTimeoutMs?: number
  /**
   * The caller knows every object differs from what it last applied (the dev loop after a
   * save): apply without reading the live object first, and count each as configured.
   */
  knownChanged?: boolean
  /** prune: leave CRDs and cluster-scoped objects other managers share, and namespaced objects another tool owns too */
  keepShared?: boolean
  /** prune: never delete a CustomResourceDefinition */
  keepCrds?: boolean
  /** prune: a reason to leave this object in place (and in the inventory), if there is one */
  retain?: (ref: ObjectRef) => string | undefined
}

export interface ApplyFailure {
  ref: ObjectRef
  message: string
}
export interface SetAside {
  ref: ObjectRef
  reason: string
}

export interface ApplyResult {
  created: ObjectRef[]
  configured: ObjectRef[]
  unchanged: ObjectRef[]
  pruned: ObjectRef[]
  /** the API server (or the order of things) rejected these; the rest of the set went on */
  failed: ApplyFailure[]
  /** left the set but not pruned: Namespaces, PVCs without prunePvcs, objects no longer ours */
  retained: SetAside[]
  /** dry run only: objects whose CRD or Namespace the same set creates cannot be validated yet */
  skipped: SetAside[]
}

type Outcome = 'created' | 'configured' | 'unchanged'

export async function applyObjects(
  kube: Kube,
  objects: ManifestObject[],
  opts: ApplyOptions = {},
): Promise<ApplyResult> {
  const manager = opts.fieldManager ?? DEFAULT_FIELD_MANAGER
  const dryRun = opts.dryRun ?? false
  const limit = opts.concurrency ?? 8
  const result: ApplyResult = {
    created: [],
    configured: [],
    unchanged: [],
    pruned: [],
    failed: [],
    retained: [],
    skipped: [],
  }
  rejectDuplicates(objects)

  const previous = opts.inventory ? await readInventory(kube, opts.inventory) : new Map<string, ObjectRef>()
  /** refKey → ref of every object of the set as placed, whatever became of it */
  const placedRefs = new Map<string, ObjectRef>()
  const failedKeys = new Set<string>()
  /** dry run: Namespaces the set would create, whose objects the server cannot validate yet */
  const newNamespaces = new Set<string>()

  /** an object of the set that may not reach the API still belongs to it: never pruned */
  const guessRef = (obj: ManifestObject): ObjectRef => {
    const ref = refOf(obj)
    if (!ref.namespace && opts.namespace && !isFirstPhase(obj)) ref.namespace = opts.namespace
    return ref
  }
  /** group/kind of objects whose scope discovery could not tell: their identity is a guess */
  const unplacedKinds = new Set<string>()
  const fail = (ref: ObjectRef, message: string) => {
    result.failed.push({ ref, message })
    failedKeys.add(refKey(ref))
    placedRefs.set(refKey(ref), ref)
  }

  const applyOne = async (obj: ManifestObject): Promise<void> => {
    let ref = guessRef(obj)
    try {
      const placed = await placeObject(kube, obj, opts.namespace ?? 'default')
      if (!placed) {
        unplacedKinds.add(groupKind(ref))
        throw new UnknownKindError(obj.apiVersion, obj.kind)
      }
      ref = refOf(placed)
      placedRefs.set(refKey(ref), ref)
      const ns = placed.metadata.namespace
      if (ns && newNamespaces.has(ns)) {
        return void result.skipped.push({
          ref,
          reason: `its Namespace ${ns} is created by this set, so the dry run cannot validate it`,
        })
      }
      result[await applyPlaced(kube, placed, manager, opts.force ?? true, dryRun, opts.knownChanged ?? false)].push(ref)
    } catch (err) {
      if (!(err instanceof ApiException || err instanceof UnknownKindError)) throw err
      fail(ref, apiMessage(err))
    }
  }

  // Phase 1: Namespaces and CRDs.
  const first = objects.filter(isFirstPhase)
  await mapLimit(first, limit, applyOne)
  if (dryRun) for (const r of result.created) if (r.kind === 'Namespace') newNamespaces.add(r.name)

  // CRDs must serve their API before their custom resources can be applied.
  const crdProblem = new Map<string, { failed?: string; skipped?: string }>()
  await mapLimit(first.filter(isCrd), limit, async (crd) => {
    const name = crd.metadata.name
    const ref = refOf(crd)
    if (failedKeys.has(refKey(ref)))
      return void crdProblem.set(name, { failed: `its CustomResourceDefinition ${name} was not applied` })
    if (dryRun && result.created.some((r) => refKey(r) === refKey(ref))) {
      return void crdProblem.set(name, {
        skipped: `its CustomResourceDefinition ${name} is created by this set, so the dry run cannot validate it`,
      })
    }
    try {
      await waitForEstablished(kube, name, opts.crdTimeoutMs ?? 30_000)
    } catch (err) {
      crdProblem.set(name, { failed: err instanceof ApiException ? apiMessage(err) : (err as Error).message })
    }
  })

  // Phase 2: everything else, custom resources after their CRD.
  const definedBy = kindsDefinedBy(objects)
  await mapLimit(
    objects.filter((o) => !isFirstPhase(o)),
    limit,
    async (obj) => {
      const crd = definedBy.get(kindKey(obj))
      const problem = crd ? crdProblem.get(crd) : undefined
      if (problem) unplacedKinds.add(groupKind(refOf(obj)))
      if (problem?.skipped) {
        const ref = guessRef(obj)
        placedRefs.set(refKey(ref), ref)
        return void result.skipped.push({ ref, reason: problem.skipped })
      }
      if (problem?.failed)
        return fail(guessRef(obj), `${obj.kind} ${obj.metadata.name} was not applied: ${problem.failed}`)
      if (crd) await untilServed(kube, obj)
      await applyOne(obj)
    },
  )

  if (!opts.inventory) return sortResult(result)

  // Prune what the previous apply recorded and this set lacks.
  const keep = new Map<string, ObjectRef>()
  for (const [key, ref] of placedRefs) {
    if (!failedKeys.has(key) || previous.has(key)) keep.set(key, ref)
  }
  if (opts.prune !== false) {
    const gone = [...previous].filter(([key]) => !placedRefs.has(key))
    const pruning = await pruneLeftovers(
      kube,
      gone.map(([, ref]) => ref),
      {
        fieldManager: manager,
        dryRun,
        prunePvcs: opts.prunePvcs ?? false,
        concurrency: limit,
        keepShared: opts.keepShared,
        keepCrds: opts.keepCrds,
        // an object of the set whose identity is a guess may be one of these: keep them
        unsure: (ref) =>
          unplacedKinds.has(groupKind(ref))
            ? `the set's own ${ref.kind} objects could not be resolved in this run, so this one may still belong to it`
            : opts.retain?.(ref),
      },
    )
    result.pruned.push(...pruning.pruned)
    result.failed.push(...pruning.failed)
    result.retained.push(...pruning.retained)
    for (const ref of pruning.keep) keep.set(refKey(ref), ref)
  } else {
    for (const [key, ref] of previous) if (!keep.has(key)) keep.set(key, ref)
  }

  if (!dryRun && !sameEntries(previous, keep)) {
    try {
      await writeInventory(kube, opts.inventory, keep.values(), manager)
    } catch (err) {
      if (!(err instanceof ApiException)) throw err
      result.failed.push({
        ref: {
          apiVersion: 'v1',
          kind: 'ConfigMap',
          namespace: opts.inventory.namespace,
          name: inventoryConfigMapName(opts.inventory),
        },
        message: `the inventory was not recorded, so the next apply cannot prune what left this set: ${apiMessage(err)}`,
      })
    }
  }
  return sortResult(result)
}

async function applyPlaced(
  kube: Kube,
  obj: ManifestObject,
  manager: string,
  force: boolean,
  dryRun: boolean,
  knownChanged: boolean,
): Promise<Outcome> {
  const ref = refOf(obj)
  if (knownChanged && !dryRun) {
    await serverSideApply(kube, obj, ref, { fieldManager: manager, force, dryRun: false })
    return 'configured'
  }
  const live = await getObject(kube, ref)
  if (live && appliedUnchanged(obj, live, manager)) return 'unchanged'
  if (dryRun) {
    // a dry run never moves the resourceVersion, so there the content decides
    const answer = await dryRunAgainstLive(kube, obj, ref, { fieldManager: manager, force }, { live })
    if (!answer.live) return 'created'
    return looseEqual(stripNoise(answer.after), stripNoise(answer.live)) ? 'unchanged' : 'configured'
  }
  const applied = await serverSideApply(kube, obj, ref, { fieldManager: manager, force, dryRun: false })
  if (!live) return 'created'
  // A no-op apply (the server normalised a value we compared literally) persists nothing and
  // keeps the resourceVersion.
  return applied.metadata.resourceVersion === live.metadata.resourceVersion ? 'unchanged' : 'configured'
}

/**
 * Established means the API serves the kind, but discovery can trail it by a moment;
 * resourceFor asks again on a miss, so a few quick tries bridge the gap.
 */
async function untilServed(kube: Kube, obj: ManifestObject): Promise<void> {
  for (let i = 0; i < 40; i++) {
    if (await placeObject(kube, obj, 'default')) return
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** An unchanged inventory is not written again: an apply that changes nothing writes nothing. */
function sameEntries(a: Map<string, ObjectRef>, b: Map<string, ObjectRef>): boolean {
  return a.size === b.size && [...a].every(([key, ref]) => b.get(key)?.apiVersion === ref.apiVersion)
}

function groupKind(ref: ObjectRef): string {
  return `${groupOf(ref.apiVersion)}/${ref.kind}`
}

function rejectDuplicates(objects: ManifestObject[]): void {
  const seen = new Set<string>()
  for (const obj of objects) {
    const key = refKey(refOf(obj))
    if (seen.has(key)) {
      throw new NsopsError(`the set holds ${refString(refOf(obj))} twice.`, {
        hint: 'Each object may appear once; remove the duplicate (kustomize build rejects them too).',
      })
    }
    seen.add(key)
  }
}

function sortResult(r: ApplyResult): ApplyResult {
  const by = (a: ObjectRef, b: ObjectRef) => refString(a).localeCompare(refString(b))
  for (const list of [r.created, r.configured, r.unchanged, r.pruned]) list.sort(by)
  for (const list of [r.failed, r.retained, r.skipped]) list.sort((a, b) => by(a.ref, b.ref))
  return r
}
