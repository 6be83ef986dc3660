// What the deploy will change in the cluster, like `flux diff kustomization`: each object of
// the prod overlay against the live one through a server-side dry run (as kustomize-controller
// would apply it), Secret values masked; plus what Flux would prune (objects in the
// Kustomization's inventory that left the overlay, when it prunes).
import { diffObjects, objectDiff, renderDiff, type DiffResult, type ObjectDiff } from '../apply/diff.ts'
import { refKey } from '../kube/refs.ts'
import { getObject, UnknownKindError } from '../kube/rest.ts'
import type { FluxObject } from '../flux/index.ts'
import type { Kube } from '../kube/client.ts'
import type { ManifestObject } from '../kustomize/build.ts'
import { c } from '../core/output.ts'
import { inventoryRefs } from '../flux/managing.ts'
import {
  encryptedNote,
  FLUX_APPLY_MANAGER,
  splitEncrypted,
  waitsForNewNamespace,
  type NotValidated,
} from './validate.ts'

export interface DeployDiff extends DiffResult {
  /** objects left out of the diff (SOPS-encrypted Secrets), and why */
  notDiffed: NotValidated[]
}

const PRUNE_DISABLED = 'kustomize.toolkit.fluxcd.io/prune'
/** The field manager helm-controller's objects carry. */
const HELM_APPLY_MANAGER = 'helm-controller'

export async function diffAgainstCluster(
  kube: Kube,
  objects: ManifestObject[],
  opts: {
    namespace: string
    /** the namespace's primary Kustomization (its inventory: what Flux prunes) */
    kustomization?: FluxObject
    /** every Kustomization that applies the namespace (a layout's, one per app): each one's inventory is pruned from */
    kustomizations?: FluxObject[]
    releases?: ManifestObject[]
  },
): Promise<DeployDiff> {
  const { plain, encrypted } = splitEncrypted(objects)
  const result = await diffObjects(kube, plain, { fieldManager: FLUX_APPLY_MANAGER, namespace: opts.namespace })
  // what the HelmReleases' charts render, as helm-controller would apply it (its own manager)
  if (opts.releases?.length) {
    const rendered = await diffObjects(kube, opts.releases, {
      fieldManager: HELM_APPLY_MANAGER,
      namespace: opts.namespace,
    })
    result.objects.push(...rendered.objects.map((d) => ({ ...d, note: d.note ?? 'rendered from its HelmRelease' })))
  }
  const fresh = new Set(
    result.objects
      .filter((d) => d.ref.kind === 'Namespace' && d.action === 'create' && !d.error)
      .map((d) => d.ref.name),
  )
  const diffs: ObjectDiff[] = result.objects.map((d) => {
    // a dry run cannot place objects into a Namespace the same deploy creates: show them as new
    if (d.error && waitsForNewNamespace(d.ref, d.error, fresh)) {
      const obj = plain.find((o) => o.kind === d.ref.kind && o.metadata.name === d.ref.name)
      if (obj)
        return {
          ...objectDiff(d.ref, undefined, { ...obj, metadata: { ...obj.metadata, namespace: d.ref.namespace } }),
          note: `not validated: its Namespace ${d.ref.namespace} is created by this deploy`,
        }
    }
    return d
  })

  const inSet = new Set(diffs.map((d) => refKey(d.ref)))
  for (const s of encrypted)
    inSet.add(
      refKey({
        apiVersion: s.apiVersion,
        kind: s.kind,
        name: s.metadata.name,
        namespace: s.metadata.namespace ?? opts.namespace,
      }),
    )
  const pruning = (
    opts.kustomizations?.length ? opts.kustomizations : opts.kustomization ? [opts.kustomization] : []
  ).filter((k) => k.spec?.prune === true)
  for (const ks of pruning) {
    for (const ref of inventoryRefs(ks)) {
      if (inSet.has(refKey(ref))) continue
      inSet.add(refKey(ref))
      try {
        const live = await getObject(kube, ref)
        if (!live || live.metadata.annotations?.[PRUNE_DISABLED] === 'disabled') continue
        diffs.push({ ...objectDiff(ref, live, undefined), note: 'Flux prunes it: it left the overlay' })
      } catch (err) {
        if (!(err instanceof UnknownKindError)) throw err
      }
    }
  }
  return { objects: diffs, notDiffed: encrypted.map((o) => encryptedNote(o, opts.namespace)) }
}

export function changeCount(d: DiffResult): number {
  return d.objects.filter((o) => o.action !== 'unchanged' || o.error).length
}

/** The diff for people: renderDiff's blocks and summary, then what was left out. */
export function renderDeployDiff(d: DeployDiff): string {
  const lines = [renderDiff(d)]
  for (const n of d.notDiffed) lines.push(c.dim(`  ${n.object}: not diffed (${n.reason})`))
  return lines.join('\n')
}
