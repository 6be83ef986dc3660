// What a named apply put into the cluster, kept in a ConfigMap `nsops-inventory-<name>` so
// the next apply of the same name can prune exactly what left the set, and nothing else.
// ConfigMap data keys cannot hold `/`, so the entries live in one JSON document:
// { "<group>/<kind>/<namespace>/<name>": "<apiVersion>" } (the version says how to reach it).
import { ApiException } from '@kubernetes/client-node'
import { NsopsError } from '../core/errors.ts'
import type { Kube } from '../kube/client.ts'
import type { ManifestObject } from '../kustomize/build.ts'
import { refKey, type ObjectRef } from '../kube/refs.ts'
import { rest } from '../kube/rest.ts'

export interface InventoryRef {
  /** the set's name, e.g. the namespace being developed: stored as `nsops-inventory-<name>` */
  name: string
  /** where the ConfigMap lives */
  namespace: string
}

const DATA_KEY = 'objects.json'

export function inventoryConfigMapName(inv: InventoryRef): string {
  return `nsops-inventory-${inv.name}`
}

function checkName(inv: InventoryRef): void {
  if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(inv.name) || inventoryConfigMapName(inv).length > 253) {
    throw new NsopsError(`inventory name "${inv.name}" cannot name a ConfigMap.`, {
      hint: 'Use lower-case letters, digits and "-" (the namespace name is a good choice).',
    })
  }
}

function configMapPath(inv: InventoryRef): string {
  return `/api/v1/namespaces/${encodeURIComponent(inv.namespace)}/configmaps/${encodeURIComponent(inventoryConfigMapName(inv))}`
}

/** The refs recorded by the previous apply, keyed by refKey; empty when there was none. */
export async function readInventory(kube: Kube, inv: InventoryRef): Promise<Map<string, ObjectRef>> {
  checkName(inv)
  let cm: { data?: Record<string, string> }
  try {
    cm = await rest(kube, 'GET', configMapPath(inv))
  } catch (err) {
    if (err instanceof ApiException && err.code === 404) return new Map()
    throw err
  }
  const out = new Map<string, ObjectRef>()
  let entries: Record<string, string>
  try {
    entries = JSON.parse(cm.data?.[DATA_KEY] ?? '{}') as Record<string, string>
  } catch (err) {
    throw new NsopsError(
      `inventory ConfigMap ${inv.namespace}/${inventoryConfigMapName(inv)} is not readable (${DATA_KEY} is not JSON).`,
      {
        hint: 'Someone edited it by hand. Delete it to start a fresh inventory (the next apply will not prune anything it does not list).',
        cause: err,
      },
    )
  }
  for (const [key, apiVersion] of Object.entries(entries)) {
    const [, kind, namespace, ...name] = key.split('/')
    const ref: ObjectRef = { apiVersion, kind, name: name.join('/') }
    if (namespace) ref.namespace = namespace
    out.set(key, ref)
  }
  return out
}

export async function writeInventory(
  kube: Kube,
  inv: InventoryRef,
  refs: Iterable<ObjectRef>,
  fieldManager: string,
): Promise<void> {
  checkName(inv)
  const entries: Record<string, string> = {}
  for (const r of [...refs].sort((a, b) => refKey(a).localeCompare(refKey(b)))) entries[refKey(r)] = r.apiVersion
  const cm: ManifestObject = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: inventoryConfigMapName(inv),
      namespace: inv.namespace,
      labels: { 'app.kubernetes.io/managed-by': 'nsops', 'nsops.dev/inventory': inv.name },
    },
    data: { [DATA_KEY]: JSON.stringify(entries, null, 1) },
  }
  await rest(kube, 'PATCH', configMapPath(inv), {
    body: cm,
    contentType: 'application/apply-patch+yaml',
    query: { fieldManager, force: 'true' },
  })
}

export type PruneDecision =
  | { prune: true }
  /** not deleted; `keep` says whether it stays in the inventory for a later run */
  | { prune: false; keep: boolean; reason: string }

/** What happens to an object that left the set. Only objects from the inventory get here. */
export function pruneDecision(ref: ObjectRef, opts: { prunePvcs?: boolean }): PruneDecision {
  if (ref.kind === 'Namespace' && ref.apiVersion === 'v1') {
    return {
      prune: false,
      keep: false,
      reason: 'Namespaces are never pruned (everything in them would go); delete it yourself if you mean it',
    }
  }
  if (ref.kind === 'PersistentVolumeClaim' && ref.apiVersion === 'v1' && !opts.prunePvcs) {
    return {
      prune: false,
      keep: true,
      reason: "PersistentVolumeClaims are pruned only with prunePvcs (the volume's data may go with them)",
    }
  }
  return { prune: true }
}
