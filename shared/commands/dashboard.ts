// dashboard.ts for any namespace: one screen, --json for data, --watch for a live view,
// --check for scripts (exit 3 when anything is unhealthy).
import { parseCommand } from '../core/cli.ts'
import { ExitCode, NsopsError } from '../core/errors.ts'
import type { Environment, NamespaceConfig } from '../config/namespace-config.ts'
import type { Kube } from '../kube/client.ts'
import { c, log, setJsonMode } from '../core/output.ts'
import { resolveTarget, targetOptions } from '../kube/target.ts'
import { checkScriptFolder } from '../config/namespaces.ts'

const usage = (ns: string) => `
Usage: ./namespaces/${ns}/dashboard.ts [--env dev|prod] [--drift] [--json | --watch | --check | --web [--ui-port N]]
       just dashboard ${ns}

The ${ns} namespace at a glance: Flux state (Ready, suspended and by whom, applied revision vs
git HEAD), its HelmReleases (chart@version and source, revision, last action, history, values
in effect with Secrets masked), the Flux tree (source → Kustomization → HelmRelease →
workloads), apps by group with health (kstatus), ready replicas, restarts and URLs, pods with
their kubectl-style status, PVCs, recent Warning events and quick commands. Secret values are
never shown (a HelmRelease's values from a Secret are read and shown as ***).

  --env ENV          dev or prod namespace (default: dev while a dev loop of this namespace runs
                     here or was kept by dev --ci, else prod)
  --json             print the data (schema nsops.dashboard/v1, see docs/dashboard-json.md)
  --watch            live view, redrawn from watch events (Ctrl-C ends it: exit 130); keys act on
                     a HelmRelease: n selects the next (marked ▶), r reconciles, s suspends,
                     u resumes it (the marker \`just suspend\` writes: \`flux get hr\` agrees)
  --web              the same, live on a web page at http://127.0.0.1:10350 (its URL is
                     printed; Ctrl-C stops it). Read-only but Flux's actions: "reconcile" the
                     namespace, and reconcile, suspend or resume a HelmRelease (the marker
                     \`just suspend\` writes, so \`flux get hr\` agrees); they need the page's token
  --ui-port N        the page's port (default 10350; a free one when taken; 0 for any)
  --check            print problems only; exit 3 if anything is not healthy, 0 if all is
  --drift            add a drift summary of the prod namespace against git (slower: one dry run per object; \`just drift\` has the details)
  --kubeconfig FILE  --context NAME   which cluster (default: $KUBECONFIG, else the one \`just cluster-up\` chose)
`

export async function dashboard(ns: NamespaceConfig, argv: string[]): Promise<number> {
  checkScriptFolder(ns)
  const { values } = parseCommand(argv, {
    usage: usage(ns.name),
    options: {
      env: { type: 'string' },
      drift: { type: 'boolean' },
      json: { type: 'boolean' },
      watch: { type: 'boolean' },
      check: { type: 'boolean' },
      web: { type: 'boolean' },
      'ui-port': { type: 'string' },
      ...targetOptions,
    },
  })
  if (values.env && values.env !== 'dev' && values.env !== 'prod') {
    throw new NsopsError(`--env must be dev or prod, not "${values.env}".`)
  }
  if ([values.json, values.watch, values.check, values.web].filter(Boolean).length > 1) {
    throw new NsopsError('--json, --watch, --check and --web are alternatives; pick one.')
  }
  if (values.drift && (values.watch || values.web))
    throw new NsopsError(
      `--drift does not combine with --${values.web ? 'web' : 'watch'} (it dry-runs every object); run \`just drift\` beside it.`,
    )
  if (values['ui-port'] !== undefined && !values.web) throw new NsopsError('--ui-port is the port of --web; add --web.')
  const uiPort =
    values['ui-port'] !== undefined ? (await import('../web/server.ts')).parseUiPort(values['ui-port']) : undefined
  if (values.json) setJsonMode(true)
  const { connect, ensureReachable } = await import('../kube/client.ts')
  const { readSession } = await import('../dev/session.ts')
  const { collect } = await import('../dashboard/collect.ts')
  const { renderDashboard } = await import('../dashboard/render.ts')
  const kube = connect(resolveTarget(values))
  // the dev namespace only while a dev loop works on it: after `just dev-down` a person looks at prod
  // (the dev namespace is empty then, and every app would show as NotFound)
  const env: Environment = (values.env as Environment | undefined) ?? (readSession(ns.name) ? 'dev' : 'prod')
  const reachable = ensureReachable(kube) // in parallel with the reads; its error names context and server

  if (values.web) {
    await reachable
    return serveDashboardPage(kube, ns, env, uiPort)
  }
  if (values.watch) {
    await reachable
    const { watchDashboard } = await import('../dashboard/watch.ts')
    return watchDashboard(kube, ns, env)
  }
  const driftP = values.drift
    ? (async () => {
        const [{ computeDrift }, { summarizeDrift }] = await Promise.all([
          import('../drift/compute.ts'),
          import('../drift/types.ts'),
        ])
        return summarizeDrift(await computeDrift(kube, ns))
      })()
    : undefined
  const [model, drift] = await Promise.all([
    collect(kube, ns, env).catch(async (err) => {
      await reachable
      throw err
    }),
    driftP,
    reachable,
  ])
  if (drift) model.drift = drift
  if (values.json) {
    process.stdout.write(`${JSON.stringify(model, null, 2)}\n`)
    return ExitCode.ok
  }
  if (values.check) {
    if (model.healthy) {
      process.stdout.write(`${c.green('✓')} ${ns.name} (${model.namespace.name}) is healthy\n`)
      return ExitCode.ok
    }
    process.stdout.write(
      `${c.red('✗')} ${ns.name} (${model.namespace.name}) is not healthy:\n${model.problems.map((p) => `  - ${p}`).join('\n')}\n`,
    )
    return ExitCode.unhealthy
  }
  process.stdout.write(`${renderDashboard(model)}\n`)
  return ExitCode.ok
}

/** `--web`: the page until Ctrl-C (or SIGTERM, or the terminal closing), then a clean stop. */
async function serveDashboardPage(
  kube: Kube,
  ns: NamespaceConfig,
  env: Environment,
  port: number | undefined,
): Promise<number> {
  const { Shutdown } = await import('../core/signals.ts')
  const { startDashboardUi } = await import('../web/dashboard-ui.ts')
  const shutdown = new Shutdown()
  try {
    const ui = await startDashboardUi(kube, ns, env, { port, note: (line) => log.info(c.dim(line)) })
    log.info(`${ns.name} (${ns.namespaces[env]}) on ${kube.context}: ${ui.url}`)
    log.info(c.dim('read-only but "reconcile"; Ctrl-C stops it'))
    if (!shutdown.stopping)
      await new Promise<void>((resolve) => shutdown.signal.addEventListener('abort', () => resolve(), { once: true }))
    await ui.close()
    return shutdown.exitCode
  } finally {
    shutdown.dispose()
  }
}
