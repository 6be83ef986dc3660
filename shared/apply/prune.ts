// Deleting what left the set, and only what is ours: the object must be in the previous
// inventory (the caller's part) and still carry our field manager; Namespaces never go, PVCs
// only with consent. Custom resources and the rest go before CRDs, since deleting a CRD takes
// every resource of its kind along.
import { ApiException } from '@kubernetes/client-node'
import { apiMessage, type Kube } from '../kube/client.ts'
import { pruneDecision } from './inventory.ts'
import { isCrd, mapLimit } from './order.ts'
import type { ObjectRef } from '../kube/refs.ts'
import { deleteObject, getObject, UnknownKindError } from '../kube/rest.ts'

export interface PruneOptions {
  fieldManager: string
  dryRun: boolean
  prunePvcs: boolean
  concurrency: number
  /** a reason not to touch this object in this run, if there is one */
  unsure?: (ref: ObjectRef) => string | undefined
  /**
   * leave CRDs and cluster-scoped objects alone when another field manager also manages
   * them (a CRD another namespace or a Helm release installs too: deleting it would take
   * every resource of its kind along)
   */
  keepShared?: boolean
  /**
   * never delete a CustomResourceDefinition (the dev loop, unless --prune-crds): deleting
   * one takes every resource of its kind along, in every namespace
   */
  keepCrds?: boolean
}

/**
 * Managers that write into objects they did not make: the control plane's controllers
 * (the deployment controller sets the revision annotation on every Deployment), nsops itself and kubectl
 * (a person's `kubectl edit`/`scale`, which kustomize-controller folds into its own). Any
 * other manager (kustomize-controller, helm, another apply) means the object is someone
 * else's too.
 */
const BYSTANDERS = new Set([
  'kube-controller-manager',
  'kube-scheduler',
  'kube-apiserver',
  'kubelet',
  // @kubernetes/client-node's name for a write that names no manager: nsops' own touches on
  // what the loop applied (a Flux hold's marks, the keep-the-PVCs patch on a HelmRelease)
  'node-fetch',
])

/** A controller's finalizer on what it reconciles (helm-controller on a HelmRelease) is not ownership. */
function onlyFinalizers(fields: unknown): boolean {
  const keys = (o: unknown) => Object.keys((o ?? {}) as object).filter((k) => k !== '.')
  const meta = (fields as Record<string, unknown> | undefined)?.['f:metadata']
  return keys(fields).every((k) => k === 'f:metadata') && keys(meta).every((k) => k === 'f:finalizers')
}

/** The managers other than `ours` that own fields of the object itself (not its status, scale or finalizers). */
export function otherOwners(
  managers: { manager?: string; subresource?: string; fieldsV1?: object }[],
  ours: string,
): string[] {
  return [
    ...new Set(
      managers
        .filter((e) => e.manager && e.manager !== ours && !e.subresource && !onlyFinalizers(e.fieldsV1))
        .map((e) => e.manager!)
        .filter((m) => !BYSTANDERS.has(m) && !m.startsWith('kubectl')),
    ),
  ]
}

export interface PruneReport {
  pruned: ObjectRef[]
  failed: { ref: ObjectRef; message: string }[]
  retained: { ref: ObjectRef; reason: string }[]
  /** still ours and still there: the inventory keeps listing these */
  keep: ObjectRef[]
}

type Outcome = 'pruned' | 'gone' | { reason: string; keep: boolean } | { failed: string; keep: true }

export async function pruneLeftovers(kube: Kube, gone: ObjectRef[], opts: PruneOptions): Promise<PruneReport> {
  const report: PruneReport = { pruned: [], failed: [], retained: [], keep: [] }
  for (const batch of [gone.filter((r) => !isCrd(r)), gone.filter((r) => isCrd(r))]) {
    await mapLimit(batch, opts.concurrency, async (ref) => {
      const unsure = opts.unsure?.(ref)
      const outcome: Outcome = unsure ? { reason: unsure, keep: true } : await pruneOne(kube, ref, opts)
      if (outcome === 'pruned') report.pruned.push(ref)
      else if (outcome !== 'gone') {
        if ('failed' in outcome) report.failed.push({ ref, message: outcome.failed })
        else report.retained.push({ ref, reason: outcome.reason })
        if (outcome.keep) report.keep.push(ref)
      }
    })
  }
  return report
}

async function pruneOne(kube: Kube, ref: ObjectRef, opts: PruneOptions): Promise<Outcome> {
  const decision = pruneDecision(ref, opts)
  if (!decision.prune) return { reason: decision.reason, keep: decision.keep }
  if (opts.keepCrds && isCrd(ref))
    return {
      reason:
        'a dev loop never deletes a CustomResourceDefinition (every resource of its kind would go, in every namespace); delete it yourself, or pass --prune-crds',
      keep: true,
    }
  try {
    const live = await getObject(kube, ref)
    if (!live) return 'gone'
    // The inventory says we applied it; the object must still say so too (someone may have
    // deleted and recreated it, or taken it over) before we delete anything.
    const managers = live.metadata.managedFields ?? []
    if (!managers.some((e) => e.manager === opts.fieldManager)) {
      return {
        reason: `no field of it is managed by ${opts.fieldManager} any more, so it is not ours to delete`,
        keep: false,
      }
    }
    if (opts.keepShared) {
      // CRDs and cluster-scoped objects are shared with any other manager at all; an object
      // in a namespace with another owner (Flux, Helm, another tool's apply)
      const others =
        isCrd(ref) || !ref.namespace
          ? [
              ...new Set(
                managers
                  .filter((e) => e.manager !== opts.fieldManager && e.subresource !== 'status')
                  .map((e) => e.manager),
              ),
            ]
          : otherOwners(managers, opts.fieldManager)
      if (others.length)
        return { reason: `also managed by ${others.join(', ')}, so it is shared and left in place`, keep: false }
    }
    return (await deleteObject(kube, ref, { dryRun: opts.dryRun, uid: live.metadata.uid })) ? 'pruned' : 'gone'
  } catch (err) {
    if (err instanceof UnknownKindError) return 'gone' // its CRD went, and the object with it
    if (!(err instanceof ApiException)) throw err
    return { failed: `prune failed: ${apiMessage(err)}`, keep: true }
  }
}
