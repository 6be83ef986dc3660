// `just resume NS`: let Flux apply a namespace again, as `flux resume ks` does — but only a
// suspension that is nsops' to end: one `just suspend` made, or one a dev loop left when it
// died. A suspension made by hand (or touched by hand since) and one a running dev loop holds
// stay, and it says whose they are; --force resumes them too.
import { parseCommand } from '../core/cli.ts'
import type { NamespaceConfig } from '../config/namespace-config.ts'
import { NsopsError } from '../core/errors.ts'
import { c, log } from '../core/output.ts'
import { fluxRefString } from '../flux/kinds.ts'
import { namespaceKustomizations } from '../flux/managing.ts'
import { resumeNamespaceSuspension } from '../flux/suspend.ts'
import { connect, ensureReachable } from '../kube/client.ts'
import { guardContext } from '../kube/guard.ts'
import { resolveTarget, targetOptions } from '../kube/target.ts'

const usage = (ns: string) => `
Usage: just resume ${ns} [--force] [--root]

Resumes the Flux Kustomization(s) of namespaces/${ns} that \`just suspend ${ns}\` suspended (from
any machine), or that a dev loop left suspended when it died, and removes nsops' marker; Flux
applies the namespace at once (spec.suspend: false, as \`flux resume ks\`). A suspension made by
hand (\`flux suspend\`, kubectl) or held by a running dev loop is left, and named; exit 1 then.

  --force          resume those too (as \`flux resume ks\` would)
  --root           also resume the root flux-system when it applies ${ns}
  --kubeconfig FILE  --context NAME   which cluster (default: $KUBECONFIG, else the one \`just cluster-up\` chose)
`

export async function resume(ns: NamespaceConfig, argv: string[]): Promise<number> {
  const { values } = parseCommand(argv, {
    usage: usage(ns.name),
    options: { force: { type: 'boolean' }, root: { type: 'boolean' }, ...targetOptions },
  })
  const kube = connect(resolveTarget(values))
  guardContext(kube.context, kube.server, `resume Flux for ${ns.name}`)
  await ensureReachable(kube)
  const found = await namespaceKustomizations(kube, ns, { root: values.root })
  if (found.kustomizations.length === 0)
    throw new NsopsError(`nothing to resume for ${ns.name}: ${found.note}.`, {
      hint: '`flux get ks -A` lists the Kustomizations on the cluster.',
    })
  const results = await Promise.all(
    found.kustomizations.map((k) => resumeNamespaceSuspension(kube, k, { force: values.force })),
  )
  for (const r of results) {
    const name = fluxRefString(r.ref)
    if (r.outcome === 'resumed') log.ok(`resumed ${name} (suspended ${r.by})`)
    else if (r.outcome === 'not suspended') log.info(c.dim(`${name} is not suspended`))
    else if (r.outcome === 'missing') log.warn(`${name} is gone`)
    else log.warn(`${name} stays suspended: it was suspended ${r.by}, not by \`just suspend\``)
  }
  const kept = results.filter((r) => r.outcome === 'kept')
  if (kept.length)
    throw new NsopsError(`${kept.length} suspension${kept.length > 1 ? 's' : ''} of ${ns.name} left in place.`, {
      hint: `\`just resume ${ns.name} --force\` resumes ${kept.length > 1 ? 'them' : 'it'} anyway (as \`flux resume ks\` would); ask whoever suspended it first.`,
    })
  return 0
}
