// dev.ts for any namespace: the Tilt replacement (see shared/dev/).
import { parseCommand, parseDuration } from '../core/cli.ts'
import type { NamespaceConfig } from '../config/namespace-config.ts'
import { resolveTarget, targetOptions } from '../kube/target.ts'
import { parseUiPort } from '../web/server.ts'
import { checkScriptFolder } from '../config/namespaces.ts'

const usage = (ns: string) => `
Usage: ./namespaces/${ns}/dev.ts [--ci [--timeout 5m] [--down] [--output-snapshot FILE]] [--no-forwards] [--keep] [--hold-root] [--prune-crds]
       just dev ${ns}

The ${ns} dev loop, like \`tilt up\`: checks the context is a local one (or allow-listed),
applies overlays/dev with server-side apply, watches base/, overlays/dev/ and components/
and re-applies what changed (pruning what left the overlay), runs the port-forwards from
namespace.ts and shows each app's health. Keys on a terminal: l shows the apps' logs (again:
one app at a time), s the status, r re-applies, 1–9 run a task. Off a terminal every event
and every log line (prefixed [app]) is printed. The web page (http://127.0.0.1:10350) shows
the same, with a live log pane per app filtered by text, level and pod/container.

Flux: it holds only what Flux and the loop share (namespace.ts \`flux.hold\`, default auto).
When the dev overlay's objects overlap nothing a Flux Kustomization manages (the usual
case: dev applies into ${ns}-dev), nothing is held. When they overlap, exactly those live
objects are marked kustomize.toolkit.fluxcd.io/reconcile: disabled (Flux keeps applying the
rest) and released on exit; flux.hold: kustomization suspends the namespace's own
Kustomization instead, the root flux-system only with --hold-root. A hold made by hand is
never released. Developed in place (namespace.ts layout.dev.inPlace), the working tree's
build goes into the prod namespace itself: every object Flux also applies there is held so
(a HelmRelease too: helm-controller upgrades the release to the working tree's values), and
on exit Flux puts prod's spec back.

Ctrl-C (or SIGTERM, or closing the terminal) stops forwards, deletes the objects only the
dev overlay has (PVCs and the namespace are kept) and releases the hold. A second Ctrl-C
shows what the cleanup is doing; a third within 3 s forces the exit.

  --ci             like \`tilt ci\`: apply once, wait until healthy (failing fast on a
                   Failed workload), print a verdict and leave the stack running; exit 0
                   when healthy, 1 otherwise. \`just dev-down\` ends it.
  --down           with --ci: tear down after the verdict instead of keeping the stack
  --output-snapshot FILE  with --ci: write every resource's status, the events and pods'
                   last log lines as JSON
  --timeout DUR    how long --ci waits (default 5m; Go durations: 90s, 1m30s, 10m)
  --no-forwards    skip the port-forwards
  --keep           on exit, leave what was applied in place (the Flux hold is released)
  --prune-crds     let the loop delete a CustomResourceDefinition that left the dev overlay
                   (without it a CRD is never deleted: every resource of its kind would go,
                   in every namespace; one another tool also manages stays even so)
  --ui-port N      the web page's port (default 10350, Tilt's; a free one when taken)
  --no-ui          no web page
  --hold-root      allow suspending the root flux-system Kustomization when it manages
                   what the dev overlay writes (stops Flux for every namespace meanwhile)
  --kubeconfig FILE  --context NAME   which cluster (default: $KUBECONFIG, else the one \`just cluster-up\` chose)
`

export async function dev(ns: NamespaceConfig, argv: string[]): Promise<number> {
  checkScriptFolder(ns)
  const { values } = parseCommand(argv, {
    usage: usage(ns.name),
    options: {
      ci: { type: 'boolean' },
      down: { type: 'boolean' },
      'output-snapshot': { type: 'string' },
      timeout: { type: 'string' },
      'no-forwards': { type: 'boolean' },
      keep: { type: 'boolean' },
      'prune-crds': { type: 'boolean' },
      'hold-root': { type: 'boolean' },
      'ui-port': { type: 'string' },
      'no-ui': { type: 'boolean' },
      ...targetOptions,
    },
  })
  const timeoutMs = values.timeout !== undefined ? parseDuration(values.timeout) : 300_000
  // signals are ours from here on: a Ctrl-C while connecting must not skip the cleanup
  const { Shutdown } = await import('../core/signals.ts')
  const shutdown = new Shutdown()
  const { connect, ensureReachable } = await import('../kube/client.ts')
  const { runDevLoops } = await import('../dev/run.ts')
  const kube = connect(resolveTarget(values))
  await ensureReachable(kube)
  return runDevLoops(kube, [ns], {
    ci: values.ci,
    down: values.down,
    outputSnapshot: values['output-snapshot'],
    timeoutMs,
    forwards: !values['no-forwards'],
    keep: values.keep,
    pruneCrds: values['prune-crds'],
    hold: { holdRoot: values['hold-root'] },
    shutdown,
    ui: values['no-ui']
      ? false
      : (await import('../web/dev-ui.ts')).devWebPage(
          values['ui-port'] !== undefined ? parseUiPort(values['ui-port']) : undefined,
        ),
  })
}
