// The "reconcile" action both pages offer: ask Flux to reconcile the Kustomization(s) that
// manage a namespace (the one finder says which), as `flux reconcile` does: set
// requestedAt and let the controller pick it up. The page shows the result; it does not wait.
import type { Kube } from '../kube/client.ts'
import type { NamespaceConfig } from '../config/namespace-config.ts'
import { findManagers, REQUESTED_AT } from '../flux/index.ts'

export async function requestReconcile(kube: Kube, ns: NamespaceConfig): Promise<string> {
  const m = await findManagers(kube, ns)
  if (m.state !== 'managed') return `${ns.name}: ${m.note}`
  const at = new Date().toISOString()
  await Promise.all(
    m.managers.map((x) =>
      kube.custom.patchNamespacedCustomObject(
        {
          group: 'kustomize.toolkit.fluxcd.io',
          version: 'v1',
          namespace: x.kustomization.metadata.namespace,
          plural: 'kustomizations',
          name: x.kustomization.metadata.name,
          body: { metadata: { annotations: { [REQUESTED_AT]: at } } },
        },
        { headers: { 'content-type': 'application/merge-patch+json' } } as never,
      ),
    ),
  )
  return `asked Flux to reconcile ${m.managers.map((x) => x.kustomization.metadata.name).join(', ')}`
}
