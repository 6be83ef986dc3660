// dev-status: the cluster, each namespace's dev loop, health and Flux, the Tanka environments.
import { parseCommand } from '../core/cli.ts'
import { errorMessage } from '../core/errors.ts'
import { c, log, table } from '../core/output.ts'
import { resolveTarget, targetOptions } from '../kube/target.ts'
import { developedInPlace, IN_PLACE } from '../config/namespace-config.ts'

const usage = `
Usage: just dev-status [--json | -o json] [--kubeconfig FILE] [--context NAME]

The cluster, and one line per namespace: dev loop, health, Flux; then the Tanka environments.
--json prints the same as one JSON document (schema nsops.dev-status/v1) on stdout.
  --kubeconfig FILE  --context NAME   which cluster (default: $KUBECONFIG, else the one \`just cluster-up\` chose)
Exit codes: 0 · 1 the cluster does not answer.
`

interface DevStatusNamespace {
  name: string
  /** kept: `dev --ci` left its stack running (not stale; `just dev-down` ends it) */
  devLoop: { pid: number; kept: boolean; unfinished?: string } | null
  /** namespace.ts layout.dev.inPlace: the dev loop works in prod's namespace, under the per-object hold */
  inPlace: boolean
  namespace: string
  deployed: boolean
  apps: { healthy: number; total: number }
  flux: { kind: string; namespace: string; name: string; ready: string; suspended: boolean; suspendedBy?: string }[]
  fluxNote?: string
  /** the dev loop's port-forwards: only `active` ones answer; the others say why not */
  forwards?: { app: string; url: string; status: string; error?: string }[]
  error?: string
}

export async function devStatus(argv: string[]): Promise<number> {
  const { values } = parseCommand(argv, { usage, options: { json: { type: 'boolean' }, ...targetOptions } })
  const json = !!values.json
  const { SimCluster } = await import('../cluster/sim/index.ts')
  const comps = await new SimCluster().describe()
  const target = resolveTarget({ kubeconfig: values.kubeconfig, context: values.context })
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
    // what this machine knows without the cluster: a cleanup an exit could not finish
    const { liveSessions } = await import('../dev/session.ts')
    const unfinished = liveSessions().filter((sess) => sess.unfinished)
    if (unfinished.length)
      doc.unfinished = unfinished.map((sess) => ({ namespace: sess.namespace, why: sess.unfinished }))
    if (!json)
      for (const sess of unfinished)
        log.info(c.yellow(`${sess.namespace}: cleanup unfinished: ${sess.unfinished} (just dev-down finishes it)`))
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
      const base = {
        name: ns.name,
        inPlace: developedInPlace(ns),
        devLoop: sess
          ? { pid: sess.pid, kept: Boolean(sess.kept), ...(sess.unfinished ? { unfinished: sess.unfinished } : {}) }
          : null,
        ...(sess?.forwards.length
          ? {
              forwards: sess.forwards.map((f) => ({
                app: f.app,
                url: f.url,
                status: f.status,
                ...(f.error && f.status !== 'active' ? { error: f.error } : {}),
              })),
            }
          : {}),
      }
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
                ? r.devLoop.unfinished
                  ? c.yellow(`cleanup unfinished: ${r.devLoop.unfinished} (just dev-down finishes it)`)
                  : c.cyan(
                      r.devLoop.kept ? 'kept by dev --ci (just dev-down ends it)' : `dev loop pid ${r.devLoop.pid}`,
                    )
                : c.dim('no dev loop'),
              (r.deployed
                ? `${r.namespace}: ${r.apps.healthy}/${r.apps.total} apps healthy`
                : c.dim(`${r.namespace}: not deployed`)) + (r.inPlace ? c.yellow(` (${IN_PLACE})`) : ''),
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
  const forwards = nsRows.flatMap((r) => (r.forwards ?? []).map((f) => ({ ns: r.name, ...f })))
  if (forwards.length) {
    log.info(`\n${c.bold('port-forwards')}`)
    log.info(
      table(
        forwards.map((f) => [
          c.bold(`${f.ns}/${f.app}`),
          f.status === 'active' ? c.cyan(f.url) : f.url,
          f.status === 'active'
            ? c.green('answers')
            : f.status === 'failing' || f.status === 'error'
              ? c.red(`✗ ${f.status}${f.error ? `: ${f.error}` : ''}`)
              : c.yellow(`${f.status}${f.error ? `: ${f.error}` : ''}`),
        ]),
      ),
    )
  }
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
