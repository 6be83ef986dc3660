// `just reconcile NS [--with-source]`: what `flux reconcile ks NAME [--with-source]` does, for
// every Kustomization that applies the namespace, through nsops' own reconcile (shared/flux/
// reconcile.ts): request, then wait for the run to finish, failing fast on a failed run.
import { parseCommand, parseDuration } from '../core/cli.ts'
import type { NamespaceConfig } from '../config/namespace-config.ts'
import { NsopsError } from '../core/errors.ts'
import { c, spinner } from '../core/output.ts'
import { fluxRefString, type FluxKind } from '../flux/kinds.ts'
import { namespaceKustomizations } from '../flux/managing.ts'
import { reconcileAndWait, reconcileSource } from '../flux/reconcile.ts'
import { connect, ensureReachable } from '../kube/client.ts'
import { resolveTarget, targetOptions } from '../kube/target.ts'

const usage = (ns: string) => `
Usage: just reconcile ${ns} [--with-source] [--timeout 5m] [--root]

Asks Flux to apply namespaces/${ns} now (the Kustomizations that apply it, as \`flux reconcile
ks\`) and waits until each run has finished: exit 0 when each is Ready, 1 with the controller's
reason when one fails. --with-source first has the source fetch the newest commit (as
\`flux reconcile ks --with-source\`). Like Flux's own interval it changes nothing that git does
not say, so it runs against any context.

  --with-source    fetch the Kustomization's source (GitRepository, OCIRepository…) first
  --timeout D      how long to wait for each run (default 5m)
  --root           also reconcile the root flux-system when it applies ${ns}
  --kubeconfig FILE  --context NAME   which cluster (default: $KUBECONFIG, else the one \`just cluster-up\` chose)
`

export async function reconcile(ns: NamespaceConfig, argv: string[]): Promise<number> {
  const { values } = parseCommand(argv, {
    usage: usage(ns.name),
    options: {
      'with-source': { type: 'boolean' },
      timeout: { type: 'string' },
      root: { type: 'boolean' },
      ...targetOptions,
    },
  })
  const timeoutMs = values.timeout ? parseDuration(values.timeout) : 5 * 60_000
  const kube = connect(resolveTarget(values))
  await ensureReachable(kube)
  const found = await namespaceKustomizations(kube, ns, { root: values.root })
  if (found.kustomizations.length === 0)
    throw new NsopsError(`nothing to reconcile for ${ns.name}: ${found.note}.`, {
      hint: found.skippedRoot
        ? `only the root ${fluxRefString(found.skippedRoot)} applies it; --root reconciles that.`
        : '`flux get ks -A` lists the Kustomizations on the cluster.',
    })
  const failed: string[] = []
  for (const ks of found.kustomizations) {
    if (values['with-source']) {
      const src = ks.spec?.sourceRef as { kind?: FluxKind; name: string; namespace?: string } | undefined
      if (src) {
        const ref = {
          kind: src.kind ?? 'GitRepository',
          name: src.name,
          namespace: src.namespace ?? ks.metadata.namespace,
        }
        const s = spinner(`fetching ${fluxRefString(ref)}`)
        const r = await reconcileSource(kube, ref, { timeoutMs, onProgress: (m) => s.detail?.(m) })
        if (r.ok) s.succeed(`fetched ${fluxRefString(ref)} ${c.dim(r.revision ?? '')}`)
        else {
          s.fail(r.message)
          failed.push(fluxRefString(ref))
          continue
        }
      }
    }
    const s = spinner(`reconciling ${fluxRefString(ks)}`)
    const r = await reconcileAndWait(kube, ks, { timeoutMs, onProgress: (m) => s.detail?.(m) })
    if (r.ok) s.succeed(`applied ${fluxRefString(ks)} ${c.dim(r.revision ?? '')}`)
    else {
      s.fail(r.message)
      failed.push(fluxRefString(ks))
    }
  }
  if (failed.length)
    throw new NsopsError(`${failed.join(', ')} did not reconcile.`, {
      hint: `\`just dashboard ${ns.name}\` shows Flux's state; \`flux events --for Kustomization/<name>\` the controller's events.`,
    })
  return 0
}
