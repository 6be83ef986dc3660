// The Flux objects a deploy goes through: the namespace's own Kustomization (named in
// namespace.ts) and the GitRepository it reads. Read before committing, so that what would
// make the push pointless (suspended, a source on another branch) stops the deploy early.
import type { ObjectRef } from '../apply/refs.ts'
import { sourceOf } from '../flux/index.ts'
import { crdInstalled, getFlux, isSuspended, refString, type FluxObject, type FluxRef } from '../flux/kinds.ts'
import { describeSuspension, suspendedBy } from '../flux/suspend.ts'
import type { Upstream } from '../git.ts'
import type { Kube } from '../kube.ts'
import type { ManifestObject } from '../kustomize.ts'
import type { NamespaceConfig } from '../namespace-config.ts'

export type FluxLookup =
  | { found: true; kustomization: FluxObject; source: FluxObject | null; sourceRef?: FluxRef }
  | { found: false; ref: FluxRef; reason: string; hint: string }

export type FluxFound = Extract<FluxLookup, { found: true }>

export function kustomizationRef(ns: NamespaceConfig): FluxRef {
  return { kind: 'Kustomization', namespace: ns.flux.namespace, name: ns.flux.kustomization }
}

export async function lookupFlux(kube: Kube, ns: NamespaceConfig): Promise<FluxLookup> {
  const ref = kustomizationRef(ns)
  const ks = await getFlux(kube, ref)
  if (!ks) {
    const installed = await crdInstalled(kube, 'Kustomization')
    return {
      found: false,
      ref,
      reason: installed
        ? `the Flux Kustomization ${ref.namespace}/${ref.name} was not found on the cluster (context ${kube.context}), so nothing applies the push`
        : `Flux was not found on the cluster (context ${kube.context} has no Kustomization CRD), so nothing applies the push`,
      hint: installed
        ? `create it from k8s/flux/${ns.name}.yaml (\`kubectl apply -k k8s/flux\`), or fix \`flux.kustomization\` in namespaces/${ns.name}/namespace.ts.`
        : 'install Flux (`flux install`, or `just dev-up` for the local sim cluster) and apply k8s/flux (`kubectl apply -k k8s/flux`).',
    }
  }
  const sourceRef = sourceOf(ks)
  const source = sourceRef ? await getFlux(kube, sourceRef) : null
  return { found: true, kustomization: ks, source, ...(sourceRef ? { sourceRef } : {}) }
}

/**
 * Why pushing would not deploy anything, or undefined: the Kustomization is suspended (Flux
 * ignores it), or its GitRepository follows another branch than the one we push to.
 */
export function fluxBlocker(found: FluxFound, upstream?: Upstream): { reason: string; hint: string } | undefined {
  const ks = found.kustomization
  if (isSuspended(ks)) {
    const by = suspendedBy(ks) ?? 'by hand'
    return {
      reason: `${refString(ks)} is suspended (${describeSuspension(by)}), so Flux would not apply the push`,
      hint: by === 'by hand'
        ? `resume it (\`flux resume kustomization ${ks.metadata.name} -n ${ks.metadata.namespace}\`) and run again.`
        : 'a dev session holds it: stop that session (it resumes Flux on exit) or run `just dev-down`, then run again.',
    }
  }
  const src = found.source
  if (src?.kind === 'GitRepository') {
    const branch = (src.spec?.ref as { branch?: string } | undefined)?.branch
    if (branch && upstream && branch !== upstream.remoteBranch) {
      return {
        reason: `${refString(src)} follows branch "${branch}", but this deploy pushes to ${upstream.remote}/${upstream.remoteBranch}, so Flux would never see it`,
        hint: `switch to the branch Flux follows (\`git switch ${branch}\`) and run again.`,
      }
    }
  }
  return undefined
}

/**
 * The objects as kustomize-controller sends them: with its ownership labels and the
 * Kustomization's spec.commonMetadata, so a diff does not show Flux's own labels as removed.
 */
export function asFluxApplies(objects: ManifestObject[], ks: FluxObject): ManifestObject[] {
  const common = (ks.spec?.commonMetadata ?? {}) as { labels?: Record<string, string>; annotations?: Record<string, string> }
  const labels = {
    ...common.labels,
    'kustomize.toolkit.fluxcd.io/name': ks.metadata.name,
    'kustomize.toolkit.fluxcd.io/namespace': ks.metadata.namespace,
  }
  return objects.map((o) => ({
    ...o,
    metadata: {
      ...o.metadata,
      labels: { ...o.metadata.labels, ...labels },
      ...(common.annotations ? { annotations: { ...o.metadata.annotations, ...common.annotations } } : {}),
    },
  }))
}

/**
 * What the Kustomization applied, from status.inventory: entries are `{ id, v }` with id
 * `<namespace>_<name>_<group>_<Kind>` (namespace empty for cluster-scoped objects).
 */
export function inventoryRefs(ks: FluxObject): ObjectRef[] {
  const entries = (ks.status?.inventory as { entries?: { id?: string; v?: string }[] } | undefined)?.entries ?? []
  const refs: ObjectRef[] = []
  for (const e of entries) {
    const parts = e.id?.split('_') ?? []
    if (parts.length !== 4 || !parts[1] || !parts[3] || !e.v) continue
    const [namespace, name, group, kind] = parts
    const ref: ObjectRef = { apiVersion: group ? `${group}/${e.v}` : e.v, kind, name }
    if (namespace) ref.namespace = namespace
    refs.push(ref)
  }
  return refs
}

/** inventoryRefs as waitFor takes them. */
export function waitTargets(ks: FluxObject): { apiVersion: string; kind: string; metadata: { name: string; namespace?: string } }[] {
  return inventoryRefs(ks).map((r) => ({ apiVersion: r.apiVersion, kind: r.kind, metadata: { name: r.name, ...(r.namespace ? { namespace: r.namespace } : {}) } }))
}
