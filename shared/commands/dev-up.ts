// dev-up / dev-down / dev-status: the whole local environment in one command each.
import { parseCommand } from '../core/cli.ts'
import { errorMessage } from '../core/errors.ts'
import { c, log, spinner, table } from '../core/output.ts'
import { rememberTarget, resolveTarget } from '../kube/target.ts'

const upUsage = `
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
`

export async function devUp(argv: string[]): Promise<number> {
  const { positionals, values } = parseCommand(argv, {
    usage: upUsage,
    allowPositionals: true,
    options: {
      tanka: { type: 'string', multiple: true },
      ci: { type: 'boolean' },
      down: { type: 'boolean' },
      timeout: { type: 'string' },
      'output-snapshot': { type: 'string' },
      'hold-root': { type: 'boolean' },
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
      shutdown,
      ui: values['no-ui']
        ? false
        : (await import('./dev.ts')).webPage(
            values['ui-port'] !== undefined ? (await import('./dev.ts')).uiPort(values['ui-port']) : undefined,
          ),
    },
    envs.map((e) => new TankaLoop(kube, e, { watch: !values.ci })),
  )
}

const downUsage = `
Usage: just dev-down [--keep-cluster]

Stops running dev loops (each deletes its dev-only objects and resumes Flux), resumes any
Flux object whose nsops suspension outlived its session (a killed dev loop), and stops the
sim cluster (its state is kept for the next dev-up).
`

export async function devDown(argv: string[]): Promise<number> {
  const { values } = parseCommand(argv, { usage: downUsage, options: { 'keep-cluster': { type: 'boolean' } } })
  const { liveSessions } = await import('../dev/session.ts')
  const { pidAlive } = await import('../core/lock.ts')
  const sessions = liveSessions()
  for (const sess of sessions.filter((x) => !x.kept)) {
    const s = spinner(`stopping the dev loop of ${sess.namespace} (pid ${sess.pid})`)
    process.kill(sess.pid, 'SIGTERM')
    const until = Date.now() + 60_000
    while (pidAlive(sess.pid) && Date.now() < until) await new Promise((r) => setTimeout(r, 100))
    if (pidAlive(sess.pid)) s.warn(`dev loop of ${sess.namespace} (pid ${sess.pid}) did not stop within 60 s`)
    else s.succeed(`stopped the dev loop of ${sess.namespace}`)
  }
  const { connect } = await import('../kube/client.ts')
  const target = resolveTarget()
  const kept = sessions.filter((x) => x.kept)
  if (kept.length) {
    const { loadNamespace } = await import('../config/namespaces.ts')
    const { DevLoop } = await import('../dev/loop.ts')
    const kube = connect(target)
    for (const sess of kept) {
      const s = spinner(`ending the session dev --ci kept for ${sess.namespace}`)
      try {
        const notes = await new DevLoop(kube, await loadNamespace(sess.namespace)).endKept()
        s.succeed(`ended the kept session of ${sess.namespace}${notes.length ? `: ${notes.join('; ')}` : ''}`)
      } catch (err) {
        s.fail(`could not end the kept session of ${sess.namespace}: ${errorMessage(err)}`)
      }
    }
  }
  try {
    const kube = connect(target)
    // suspensions and per-object holds whose dev loop is gone
    const { releaseStaleHolds } = await import('../dev/flux-hold.ts')
    for (const note of await releaseStaleHolds(kube)) log.ok(note)
  } catch (err) {
    log.warn(`could not check for stale Flux suspensions: ${errorMessage(err)}`)
  }
  if (!values['keep-cluster']) {
    const { SimCluster } = await import('../cluster/sim/index.ts')
    const sim = new SimCluster()
    if ((await sim.describe()).length) {
      const s = spinner('stopping the sim cluster')
      await sim.stop()
      s.succeed('sim cluster stopped (state kept; `just cluster-down --purge` deletes it)')
    }
  }
  return 0
}

const devStatusUsage = `
Usage: just dev-status [--json | -o json]

The cluster, and one line per namespace: dev loop, health, Flux; then the Tanka environments.
--json prints the same as one JSON document (schema nsops.dev-status/v1) on stdout.
Exit codes: 0 · 1 the cluster does not answer.
`

interface DevStatusNamespace {
  name: string
  /** kept: `dev --ci` left its stack running (not stale; `just dev-down` ends it) */
  devLoop: { pid: number; kept: boolean } | null
  namespace: string
  deployed: boolean
  apps: { healthy: number; total: number }
  flux: { kind: string; namespace: string; name: string; ready: string; suspended: boolean; suspendedBy?: string }[]
  fluxNote?: string
  error?: string
}

export async function devStatus(argv: string[]): Promise<number> {
  const { values } = parseCommand(argv, { usage: devStatusUsage, options: { json: { type: 'boolean' } } })
  const json = !!values.json
  const { SimCluster } = await import('../cluster/sim/index.ts')
  const comps = await new SimCluster().describe()
  const target = resolveTarget()
  const doc: Record<string, unknown> = {
    schema: 'nsops.dev-status/v1',
    sim: comps.map((x) => ({ name: x.name, state: x.state })),
  }
  const print = (code: number) => {
    if (json) process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`)
    return code
  }
  if (!json) {
    log.info(c.bold('cluster'))
    if (comps.length)
      log.info(table(comps.map((x) => [x.name, x.state === 'running' ? c.green('● running') : c.red(`✖ ${x.state}`)])))
    else log.info(c.dim('  sim cluster not started'))
  }
  const { connect, ensureReachable } = await import('../kube/client.ts')
  let kube
  try {
    kube = connect(target)
    await ensureReachable(kube, 3000)
  } catch (err) {
    doc.cluster = { reachable: false, error: errorMessage(err) }
    if (!json) log.info(c.dim(`  ${errorMessage(err)}`))
    return print(1)
  }
  doc.cluster = { reachable: true, context: kube.context, server: kube.server }
  if (!json) log.info(c.dim(`  context ${kube.context} · ${kube.server}`))
  const { loadNamespaces } = await import('../config/namespaces.ts')
  const { collect } = await import('../dashboard/collect.ts')
  const { readSession } = await import('../dev/session.ts')
  const nsRows: DevStatusNamespace[] = await Promise.all(
    (await loadNamespaces()).map(async (ns) => {
      const sess = readSession(ns.name)
      const base = { name: ns.name, devLoop: sess ? { pid: sess.pid, kept: Boolean(sess.kept) } : null }
      try {
        const m = await collect(kube, ns, 'dev')
        const apps = m.groups.flatMap((g) => g.apps)
        return {
          ...base,
          namespace: m.namespace.name,
          deployed: m.namespace.exists,
          apps: { healthy: apps.filter((a) => a.status === 'Current').length, total: apps.length },
          flux: m.flux.objects.map((f) => ({
            kind: f.kind,
            namespace: f.namespace,
            name: f.name,
            ready: String(f.ready),
            suspended: !!f.suspended,
            ...(f.suspendedBy ? { suspendedBy: String(f.suspendedBy) } : {}),
          })),
          ...(m.flux.note ? { fluxNote: m.flux.note } : {}),
        }
      } catch (err) {
        return {
          ...base,
          namespace: ns.namespaces.dev,
          deployed: false,
          apps: { healthy: 0, total: 0 },
          flux: [],
          error: errorMessage(err),
        }
      }
    }),
  )
  doc.namespaces = nsRows
  const { loadEnvironments } = await import('../tanka/environments.ts')
  const { readInventory } = await import('../apply/inventory.ts')
  const { inventoryFor } = await import('../tanka/apply.ts')
  const envs = await Promise.all(
    loadEnvironments().map(async (e) => {
      const inv = await readInventory(kube, inventoryFor(e)).catch(() => new Map())
      return { name: e.name, namespace: e.spec.spec.namespace, applied: inv.size }
    }),
  )
  doc.tanka = envs
  if (json) return print(0)
  log.info(`\n${c.bold('namespaces')}`)
  log.info(
    table(
      nsRows.map((r) =>
        r.error
          ? [c.bold(r.name), '', c.red(r.error), '']
          : [
              c.bold(r.name),
              r.devLoop
                ? c.cyan(r.devLoop.kept ? 'kept by dev --ci (just dev-down ends it)' : `dev loop pid ${r.devLoop.pid}`)
                : c.dim('no dev loop'),
              r.deployed
                ? `${r.namespace}: ${r.apps.healthy}/${r.apps.total} apps healthy`
                : c.dim(`${r.namespace}: not deployed`),
              r.flux
                .map((f) =>
                  f.suspended
                    ? c.yellow(`flux suspended ${f.suspendedBy ?? ''}`)
                    : f.ready === 'True'
                      ? c.green('flux ready')
                      : c.red(`flux ${f.ready}`),
                )
                .join(' ') || c.dim(r.fluxNote ?? ''),
            ],
      ),
    ),
  )
  log.info(`\n${c.bold('tanka environments')}`)
  log.info(
    table(
      envs.map((e) => [
        c.bold(`tanka:${e.name}`),
        e.namespace,
        e.applied ? `${e.applied} objects applied` : c.dim('not applied (just tk-apply ' + e.name + ')'),
      ]),
    ),
  )
  return 0
}
