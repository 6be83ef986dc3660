// dev-up: the whole local environment in one command: a cluster, Flux, every dev loop.
import { parseCommand } from '../core/cli.ts'
import { errorMessage } from '../core/errors.ts'
import { c, log, spinner } from '../core/output.ts'
import { rememberTarget } from '../kube/target.ts'

const usage = `
Usage: just dev-up [NS...] [--tanka ENV]... [--ci [--timeout 5m] [--down] [--output-snapshot FILE]]

Ensures a cluster (an allowed current context, else kind/k3d when a Docker engine answers,
else the embedded sim cluster), installs the Flux CRDs, and runs the dev loops of the given
namespaces (default: all) in one process with one combined view. Ctrl-C stops every loop,
deletes dev-only objects and releases what the loops hold in Flux (a second Ctrl-C shows
what the cleanup is doing, a third within 3 s forces the exit).

  --tanka ENV   also render and apply the Tanka environment ENV (tanka/environments/ENV),
                re-rendering on every change under tanka/ (repeatable)
  --ci          like \`tilt ci\`: apply once, wait until everything is healthy (failing fast),
                print a verdict and leave the stack running for later CI steps; exit 0/1
  --down        with --ci: tear down after the verdict
  --timeout DUR how long --ci waits (default 5m)
  --output-snapshot FILE   with --ci: every resource's status, events, pods' last log lines
  --ui-port N   the web page's port (default 10350, Tilt's); --no-ui: none. The page and the
                terminal view (key l) show each app's logs too
  --hold-root   allow suspending the root flux-system Kustomization (see dev.ts --help)
  --prune-crds  let the loops delete a CustomResourceDefinition that left a dev overlay
                (never without it; see dev.ts --help)
`

export async function devUp(argv: string[]): Promise<number> {
  const { positionals, values } = parseCommand(argv, {
    usage,
    allowPositionals: true,
    options: {
      tanka: { type: 'string', multiple: true },
      ci: { type: 'boolean' },
      down: { type: 'boolean' },
      timeout: { type: 'string' },
      'output-snapshot': { type: 'string' },
      'hold-root': { type: 'boolean' },
      'prune-crds': { type: 'boolean' },
      'ui-port': { type: 'string' },
      'no-ui': { type: 'boolean' },
    },
  })
  const { parseDuration } = await import('../core/cli.ts')
  const timeoutMs = values.timeout !== undefined ? parseDuration(values.timeout) : 300_000
  // installed before the cluster starts: a Ctrl-C anywhere from here on ends in the cleanup
  const { Shutdown } = await import('../core/signals.ts')
  const shutdown = new Shutdown()
  const { loadNamespaces } = await import('../config/namespaces.ts')
  const configs = await loadNamespaces(positionals) // bad names fail here, before a cluster starts
  const { loadEnvironment } = await import('../tanka/environments.ts')
  const envs = (values.tanka ?? []).map((e) => loadEnvironment(e))
  const { chooseProvider } = await import('../cluster/select.ts')
  const s = spinner('choosing a cluster')
  const choice = await chooseProvider({ onProgress: (m) => s.text(`cluster: ${m}`) })
  const gitops = choice.provider.capabilities.localGitOps
  const info = await choice.provider.ensure({ flux: gitops, signal: shutdown.signal })
  rememberTarget({ kubeconfig: info.kubeconfig, context: info.context })
  s.succeed(`cluster ${info.context} (${choice.provider.name}: ${choice.why})`)
  const { connect, ensureReachable } = await import('../kube/client.ts')
  const kube = connect({ kubeconfig: info.kubeconfig, context: info.context })
  await ensureReachable(kube)
  const { guardContext } = await import('../kube/guard.ts')
  guardContext(kube.context, kube.server, 'bootstrap it for development')
  if (gitops) {
    const { bootstrapLocalGitOps } = await import('../cluster/sim/local-remote.ts')
    const g = spinner("pushing this repo to the cluster's git server and pointing Flux at it")
    try {
      const r = await bootstrapLocalGitOps(kube, info.kubeconfig)
      g.succeed(`Flux reads ${r.url} (branch ${r.branch}); ${r.upstreamNote}`)
      const { chartsLine } = await import('../images/charts.ts')
      if (r.charts.length) log.info(c.dim(`  ${chartsLine(r.charts)}`))
    } catch (err) {
      // a refused push still leaves Flux pointed at the live git server; the hint says so
      const hint = (err as { hint?: string }).hint
      g.warn(`GitOps bootstrap incomplete: ${errorMessage(err)}${hint ? ` (${hint})` : ''}`)
    }
  } else {
    const { installFluxCrds } = await import('../flux/index.ts')
    const crds = spinner('installing the Flux CRDs')
    try {
      await installFluxCrds(kube)
      crds.succeed('Flux CRDs installed')
    } catch (err) {
      crds.warn(`Flux CRDs not installed (${errorMessage(err)}); dev loops run without Flux`)
    }
  }
  const { runDevLoops } = await import('../dev/run.ts')
  const { TankaLoop } = await import('../dev/tanka-loop.ts')
  if (shutdown.stopping) return shutdown.exitCode
  return runDevLoops(
    kube,
    configs,
    {
      ci: values.ci,
      down: values.down,
      timeoutMs,
      outputSnapshot: values['output-snapshot'],
      hold: { holdRoot: values['hold-root'] },
      pruneCrds: values['prune-crds'],
      shutdown,
      ui: values['no-ui']
        ? false
        : (await import('../web/dev-ui.ts')).devWebPage(
            values['ui-port'] !== undefined
              ? (await import('../web/server.ts')).parseUiPort(values['ui-port'])
              : undefined,
          ),
    },
    envs.map((e) => new TankaLoop(kube, e, { watch: !values.ci })),
  )
}
