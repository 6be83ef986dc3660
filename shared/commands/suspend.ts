// `just suspend NS`: stop Flux applying a namespace until `just resume NS`, as `flux suspend
// ks` does, with nsops' marker (who, when, "with just suspend") so `flux get ks` shows it
// suspended and the dashboard, dev-up and dev-down know whose it is and leave it in place.
import { parseCommand } from '../core/cli.ts'
import type { NamespaceConfig } from '../config/namespace-config.ts'
import { NsopsError } from '../core/errors.ts'
import { c, log } from '../core/output.ts'
import { fluxRefString } from '../flux/kinds.ts'
import { namespaceKustomizations } from '../flux/managing.ts'
import { currentOwner, describeSuspension, suspendFor } from '../flux/suspend.ts'
import { connect, ensureReachable } from '../kube/client.ts'
import { guardContext } from '../kube/guard.ts'
import { resolveTarget, targetOptions } from '../kube/target.ts'

const usage = (ns: string) => `
Usage: just suspend ${ns} [--root]

Suspends the Flux Kustomization(s) that apply namespaces/${ns} (spec.suspend: true, as
\`flux suspend ks\`), marked as yours (nsops.dev/suspended-by: user, host, when, "just suspend").
It lasts until \`just resume ${ns}\`: dev loops, \`just dev-down\` and the dashboard see whose it
is and leave it. A Kustomization already suspended (by hand or by a dev loop) is left as it is.
Like every write it runs only against a local or allow-listed context.

  --root           also suspend the root flux-system when it applies ${ns} (stops Flux for every namespace)
  --kubeconfig FILE  --context NAME   which cluster (default: $KUBECONFIG, else the one \`just cluster-up\` chose)
`

export async function suspend(ns: NamespaceConfig, argv: string[]): Promise<number> {
  const { values } = parseCommand(argv, {
    usage: usage(ns.name),
    options: { root: { type: 'boolean' }, ...targetOptions },
  })
  const kube = connect(resolveTarget(values))
  guardContext(kube.context, kube.server, `suspend Flux for ${ns.name}`)
  await ensureReachable(kube)
  const found = await namespaceKustomizations(kube, ns, { root: values.root })
  if (found.kustomizations.length === 0) {
    throw new NsopsError(`nothing to suspend for ${ns.name}: ${found.note}.`, {
      hint: found.skippedRoot
        ? `only the root ${fluxRefString(found.skippedRoot)} applies it; --root suspends that (and so every namespace).`
        : '`flux get ks -A` lists the Kustomizations on the cluster.',
    })
  }
  const r = await suspendFor(kube, found.kustomizations, { ...currentOwner('just suspend'), command: 'suspend' })
  for (const x of r.suspended) log.ok(`suspended ${fluxRefString(x)}`)
  for (const x of r.suspendedByOthers)
    log.warn(`${fluxRefString(x.ref)} was already suspended ${describeSuspension(x.by)}: left as it is`)
  for (const x of r.missing) log.warn(`${fluxRefString(x)} is gone`)
  if (found.skippedRoot)
    log.info(c.dim(`the root ${fluxRefString(found.skippedRoot)} applies ${ns.name} too and keeps running (--root)`))
  if (r.suspended.length) log.info(c.dim(`Flux applies nothing of ${ns.name} until \`just resume ${ns.name}\`.`))
  return 0
}
