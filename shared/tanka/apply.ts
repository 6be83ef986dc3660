// An environment's rendered objects against a cluster, through the shared apply module:
// server-side diff, and an apply behind the context guard that waits for health. The field
// manager is tk's own (`tanka`), so objects applied by `tk apply --server-side` and by nsops
// have one owner; an inventory per environment lets a later apply prune what left it.
import { applyObjects, type ApplyResult } from '../apply/apply.ts'
import { diffObjects, type DiffResult } from '../apply/diff.ts'
import type { InventoryRef } from '../apply/inventory.ts'
import { guardContext } from '../kube/guard.ts'
import { waitFor, type ObjectHealth, type WaitResult } from '../health/wait.ts'
import type { Kube } from '../kube/client.ts'
import type { ManifestObject } from '../kustomize/build.ts'
import type { TankaEnvironment } from './environments.ts'
import type { TankaObject } from './process.ts'

export const TANKA_FIELD_MANAGER = 'tanka'

/** `nsops-inventory-tanka-<env>` in the environment's namespace. */
export function inventoryFor(env: TankaEnvironment): InventoryRef {
  return { name: `tanka-${env.name.replaceAll('/', '-')}`, namespace: env.spec.spec.namespace }
}

export async function diffEnvironment(
  kube: Kube,
  env: TankaEnvironment,
  objects: TankaObject[],
  opts: { withPrune?: boolean } = {},
): Promise<DiffResult> {
  return diffObjects(kube, objects as ManifestObject[], {
    fieldManager: TANKA_FIELD_MANAGER,
    namespace: env.spec.spec.namespace,
    inventory: opts.withPrune ? inventoryFor(env) : undefined,
  })
}

export interface ApplyEnvironmentOptions {
  /** server-side dry run: nothing is persisted (the guard does not apply then) */
  dryRun?: boolean
  /** delete what the previous apply of this environment recorded and this one lacks (`tk prune`) */
  prune?: boolean
  /** how long to wait for health; 0 skips the wait */
  timeoutMs: number
  onHealth?: (changed: ObjectHealth, all: readonly ObjectHealth[]) => void
}

export interface ApplyEnvironmentResult {
  applied: ApplyResult
  /** absent for a dry run, a zero timeout, or when nothing was applied */
  health?: WaitResult
}

export async function applyEnvironment(
  kube: Kube,
  env: TankaEnvironment,
  objects: TankaObject[],
  opts: ApplyEnvironmentOptions,
): Promise<ApplyEnvironmentResult> {
  if (!opts.dryRun) guardContext(kube.context, kube.server, `apply the Tanka environment ${env.name}`)
  const applied = await applyObjects(kube, objects as ManifestObject[], {
    fieldManager: TANKA_FIELD_MANAGER,
    namespace: env.spec.spec.namespace,
    dryRun: opts.dryRun,
    inventory: inventoryFor(env),
    prune: opts.prune ?? false,
  })
  if (opts.dryRun || opts.timeoutMs <= 0) return { applied }
  const refs = [...applied.created, ...applied.configured, ...applied.unchanged]
  if (refs.length === 0) return { applied }
  const health = await waitFor(
    kube,
    refs.map((r) => ({ apiVersion: r.apiVersion, kind: r.kind, metadata: { name: r.name, namespace: r.namespace } })),
    { timeoutMs: opts.timeoutMs, onProgress: opts.onHealth },
  )
  return { applied, health }
}
