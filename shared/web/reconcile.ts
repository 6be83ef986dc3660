// The "reconcile" action both pages offer: ask Flux to reconcile the Kustomization(s) that
// manage a namespace (the one finder says which), as `flux reconcile` does: flux/'s
// requestReconcile, and the controller picks it up. The page shows the result; it does not wait.
import type { Kube } from '../kube/client.ts'
import type { NamespaceConfig } from '../config/namespace-config.ts'
import { findManagers, requestReconcile } from '../flux/index.ts'

export async function reconcileNamespace(kube: Kube, ns: NamespaceConfig): Promise<string> {
  const m = await findManagers(kube, ns)
  if (m.state !== 'managed') return `${ns.name}: ${m.note}`
  await Promise.all(
    m.managers.map((x) =>
      requestReconcile(kube, {
        kind: 'Kustomization',
        namespace: x.kustomization.metadata.namespace,
        name: x.kustomization.metadata.name,
      }),
    ),
  )
  return `asked Flux to reconcile ${m.managers.map((x) => x.kustomization.metadata.name).join(', ')}`
}
