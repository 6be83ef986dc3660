// The Flux objects a deploy goes through: the Kustomization(s) that manage the namespace (one
// finder for dev, dashboard and deploy: shared/flux/managing.ts) and the GitRepository they
// read. Read before committing, so that what would make the push pointless — no Flux, nothing
// managing the namespace, a suspended Kustomization, a dependsOn that is not Ready, a source
// on another branch or another repository than the one we push to — stops the deploy early.
import {
  conditionOf,
  describeSuspension,
  findManagers,
  getFlux,
  inventoryRefs,
  isSuspended,
  fluxRefString,
  sourceOf,
  suspendedBy,
  type FluxObject,
  type FluxRef,
  type Manager,
} from '../flux/index.ts'
import { sameRepository, type Upstream } from '../git/repo.ts'
import type { Kube } from '../kube/client.ts'
import type { ManifestObject } from '../kustomize/build.ts'
import type { NamespaceConfig } from '../config/namespace-config.ts'

export type FluxLookup =
  | {
      found: true
      /** the Kustomization whose health a deploy waits for: the namespace's own (the root one only when nothing else manages it) */
      kustomization: FluxObject
      /** every managing Kustomization, the primary first; each is reconciled */
      managers: Manager[]
      source: FluxObject | null
      sourceRef?: FluxRef
    }
  | { found: false; state: 'no-flux' | 'unmanaged'; reason: string; hint: string }

export type FluxFound = Extract<FluxLookup, { found: true }>

export function kustomizationRef(ns: NamespaceConfig): FluxRef {
  return { kind: 'Kustomization', namespace: ns.flux.namespace, name: ns.flux.kustomization }
}

export async function lookupFlux(kube: Kube, ns: NamespaceConfig, root?: string): Promise<FluxLookup> {
  const m = await findManagers(kube, ns, root ? { root } : {})
  if (m.state === 'no-flux') {
    return {
      found: false,
      state: 'no-flux',
      reason: `Flux is not installed on the cluster (context ${kube.context} has no Kustomization CRD), so nothing would apply the push`,
      hint: 'install Flux (`flux install`, or `just dev-up` for the local sim cluster) and apply k8s/flux (`kubectl apply -k k8s/flux`); or pass --push-only to push without verifying.',
    }
  }
  if (m.state === 'unmanaged') {
    return {
      found: false,
      state: 'unmanaged',
      reason: `no Flux Kustomization on the cluster (context ${kube.context}) manages ${ns.name}: ${m.note}, so nothing would apply the push`,
      hint: `create its Kustomization from k8s/flux/${ns.name}.yaml (\`kubectl apply -k k8s/flux\`), or fix \`flux.kustomization\` in namespaces/${ns.name}/namespace.ts; or pass --push-only to push without verifying.`,
    }
  }
  const primary = m.managers.find((x) => !x.root) ?? m.managers[0]
  const managers = [primary, ...m.managers.filter((x) => x !== primary)]
  const ks = primary.kustomization
  const sourceRef = sourceOf(ks)
  const source = sourceRef ? await getFlux(kube, sourceRef) : null
  return { found: true, kustomization: ks, managers, source, ...(sourceRef ? { sourceRef } : {}) }
}

export interface Blocker {
  reason: string
  hint: string
}

function suspendedBlocker(ks: FluxObject): Blocker {
  const by = suspendedBy(ks) ?? 'by hand'
  return {
    reason: `${fluxRefString(ks)} is suspended (${describeSuspension(by)}), so Flux would not apply the push`,
    hint:
      by === 'by hand'
        ? `resume it (\`flux resume kustomization ${ks.metadata.name} -n ${ks.metadata.namespace}\`) and run again.`
        : 'a dev session holds it: stop that session (it resumes Flux on exit) or run `just dev-down`, then run again.',
  }
}

/** Where the push goes, for comparing with what the GitRepository reads. */
export interface PushTarget extends Upstream {
  /** the remote's push URL (`git remote get-url --push`) */
  url?: string
}

/**
 * Why pushing would not deploy anything, or undefined: a managing Kustomization is
 * suspended (Flux ignores it), its GitRepository follows another branch or reads another
 * repository than the one we push to. dependsOn is checked by dependencyBlocker (it reads the cluster).
 */
export function fluxBlocker(found: FluxFound, upstream?: PushTarget): Blocker | undefined {
  for (const m of found.managers ?? [{ kustomization: found.kustomization }]) {
    if (isSuspended(m.kustomization)) return suspendedBlocker(m.kustomization)
  }
  const src = found.source
  if (src?.kind === 'GitRepository' && upstream) {
    const branch = (src.spec?.ref as { branch?: string } | undefined)?.branch
    if (branch && branch !== upstream.remoteBranch) {
      return {
        reason: `${fluxRefString(src)} follows branch "${branch}", but this deploy pushes to ${upstream.remote}/${upstream.remoteBranch}, so Flux would never see it`,
        hint: `switch to the branch Flux follows (\`git switch ${branch}\`) and run again.`,
      }
    }
    const url = typeof src.spec?.url === 'string' ? src.spec.url : undefined
    if (url && upstream.url && !sameRepository(url, upstream.url)) {
      return {
        reason: `${fluxRefString(src)} reads ${url}, but this deploy pushes to ${upstream.remote} (${upstream.url}), so Flux would never see the push`,
        hint: `push to the remote Flux reads: \`git branch -u <remote>/${upstream.remoteBranch}\` for the remote whose URL is ${url} (\`git remote -v\` lists them; after \`just dev-up\` on sim it is nsops-local), or point the GitRepository at ${upstream.url}.`,
      }
    }
  }
  return undefined
}

/** A dependsOn (of any managing Kustomization, transitively) that is not Ready: Flux would hold the push back. */
export async function dependencyBlocker(kube: Kube, found: FluxFound): Promise<Blocker | undefined> {
  // a dependency that manages the namespace too is applied by this very push (in dependsOn order)
  const seen = new Set<string>(found.managers.map((m) => fluxRefString(m.kustomization)))
  const visit = async (ks: FluxObject, chain: string[]): Promise<Blocker | undefined> => {
    const deps = (ks.spec?.dependsOn as { name?: string; namespace?: string }[] | undefined) ?? []
    for (const d of deps) {
      if (!d.name) continue
      const ref: FluxRef = { kind: 'Kustomization', namespace: d.namespace ?? ks.metadata.namespace, name: d.name }
      const key = fluxRefString(ref)
      if (seen.has(key)) continue
      seen.add(key)
      const dep = await getFlux(kube, ref)
      const path = [...chain, key].join(' → ')
      if (!dep)
        return {
          reason: `${path}: ${key} does not exist, so Flux would not apply ${fluxRefString(found.kustomization)}`,
          hint: `create ${key} or remove it from dependsOn, then run again.`,
        }
      if (isSuspended(dep)) return { ...suspendedBlocker(dep), reason: `${path}: ${suspendedBlocker(dep).reason}` }
      const ready = conditionOf(dep, 'Ready')
      if (ready?.status !== 'True') {
        return {
          reason: `${path}: ${key} is not Ready (${ready ? `${ready.reason ?? ready.status}: ${ready.message ?? ''}` : 'no Ready condition'}), so Flux would hold back ${fluxRefString(ks)} and the push would not apply`,
          hint: `fix ${key} first (\`flux get kustomizations -A\`, \`just dashboard\`), then run again.`,
        }
      }
      const deeper = await visit(dep, [...chain, key])
      if (deeper) return deeper
    }
    return undefined
  }
  for (const m of found.managers) {
    const b = await visit(m.kustomization, [fluxRefString(m.kustomization)])
    if (b) return b
  }
  return undefined
}

/**
 * The objects as kustomize-controller sends them: with its ownership labels and the
 * Kustomization's spec.commonMetadata, so a diff does not show Flux's own labels as removed.
 */
export function asFluxApplies(objects: ManifestObject[], ks: FluxObject): ManifestObject[] {
  const common = (ks.spec?.commonMetadata ?? {}) as {
    labels?: Record<string, string>
    annotations?: Record<string, string>
  }
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
 * Each object as the Flux Kustomization that builds it applies it: a part of the prod build
 * that is one Kustomization's build (its commonMetadata already set by the build) gets that
 * Kustomization's ownership labels; a folder no Kustomization of the repository builds
 * (overlays/prod) gets the cluster's primary Kustomization's, with its commonMetadata.
 */
export function asFluxAppliesByPart(
  parts: { node?: { kustomization: { metadata: { name: string; namespace?: string } } }; objects: ManifestObject[] }[],
  primary: FluxObject,
): ManifestObject[] {
  return parts.flatMap((p) => {
    if (!p.node) return asFluxApplies(p.objects, primary)
    const { name, namespace = 'flux-system' } = p.node.kustomization.metadata
    return p.objects.map((o) => ({
      ...o,
      metadata: {
        ...o.metadata,
        labels: {
          ...o.metadata.labels,
          'kustomize.toolkit.fluxcd.io/name': name,
          'kustomize.toolkit.fluxcd.io/namespace': namespace,
        },
      },
    }))
  })
}

/** What the Kustomization applied (flux/managing.ts inventoryRefs), as waitFor takes them. */
export function waitTargets(
  ks: FluxObject,
): { apiVersion: string; kind: string; metadata: { name: string; namespace?: string } }[] {
  return inventoryRefs(ks).map((r) => ({
    apiVersion: r.apiVersion,
    kind: r.kind,
    metadata: { name: r.name, ...(r.namespace ? { namespace: r.namespace } : {}) },
  }))
}
