// dev.ts for any namespace: the Tilt replacement (see shared/dev/).
import { parseCommand, parseDuration } from '../cli.ts'
import type { NamespaceConfig } from '../namespace-config.ts'
import { resolveTarget, targetOptions } from '../target.ts'

const usage = (ns: string) => `
Usage: ./namespaces/${ns}/dev.ts [--ci [--timeout 5m]] [--no-forwards] [--keep]
       just dev ${ns}

The ${ns} dev loop, like \`tilt up\`: checks the context is a local one (or allow-listed),
suspends ${ns}'s own Flux Kustomization while it runs (with an ownership marker), applies
overlays/dev with server-side apply, watches base/, overlays/dev/ and components/ and
re-applies what changed (pruning what left the overlay), runs the port-forwards from
namespace.ts and shows each resource's health. Ctrl-C stops forwards, deletes the objects
only the dev overlay has (PVCs and the namespace are kept) and resumes Flux.

  --ci             like \`tilt ci\`: apply once, wait until healthy, print a verdict,
                   clean up; exit 0 when healthy, 1 otherwise
  --timeout DUR    how long --ci waits (default 5m; Go durations: 90s, 1m30s, 10m)
  --no-forwards    skip the port-forwards
  --keep           on exit, leave what was applied in place
  --kubeconfig FILE  --context NAME   which cluster (default: the one \`just cluster-up\` chose)
`

export async function dev(ns: NamespaceConfig, argv: string[]): Promise<number> {
  const { values } = parseCommand(argv, {
    usage: usage(ns.name),
    options: { ci: { type: 'boolean' }, timeout: { type: 'string' }, 'no-forwards': { type: 'boolean' }, keep: { type: 'boolean' }, ...targetOptions },
  })
  const timeoutMs = values.timeout !== undefined ? parseDuration(values.timeout) : 300_000
  const { connect, ensureReachable } = await import('../kube.ts')
  const { runDevLoops } = await import('../dev/run.ts')
  const kube = connect(resolveTarget(values))
  await ensureReachable(kube)
  return runDevLoops(kube, [ns], { ci: values.ci, timeoutMs, forwards: !values['no-forwards'], keep: values.keep })
}
