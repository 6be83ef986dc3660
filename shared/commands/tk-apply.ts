// tk-apply: an environment applied server-side, then waited on until healthy.
import { parseDuration } from '../core/cli.ts'
import { ExitCode } from '../core/errors.ts'
import { c, duration, log, spinner } from '../core/output.ts'
import type { ApplyResult } from '../apply/apply.ts'
import { targetOptions } from '../kube/target.ts'
import {
  clusterHelp,
  engineOf,
  parseEnvironmentCommand,
  reachableCluster,
  renderShown,
  rootAndEngineHelp,
} from '../tanka/command-line.ts'

const usage = `
Usage: just tk-apply ENV [--dry-run] [--prune] [--timeout 5m] [--root DIR] [--engine NAME]

Applies the environment with server-side apply (field manager \`tanka\`, as \`tk apply
--server-side\`), Namespaces and CRDs first, then waits until every object is healthy
(kstatus). Only local contexts (kind-*, k3d-*, nsops-sim, ...) and allow-listed ones are
changed. Exits 0 when healthy, 1 when an object is rejected (the rest is applied), 3 when
something is not healthy by the timeout.
  --dry-run          server-side dry run: validated, nothing persisted
  --prune            delete objects an earlier tk-apply of ENV created that it no longer renders
  --timeout DUR      how long to wait for health (default 5m; 0 skips the wait)${rootAndEngineHelp}${clusterHelp}
`

export async function tkApply(argv: string[]): Promise<number> {
  const { values, env } = parseEnvironmentCommand(argv, usage, {
    'dry-run': { type: 'boolean' },
    prune: { type: 'boolean' },
    timeout: { type: 'string' },
    ...targetOptions,
  })
  const timeoutMs =
    values.timeout !== undefined ? parseDuration(values.timeout, '--timeout', { allowZero: true }) : 300_000
  const kube = await reachableCluster(values)
  const { guardContext } = await import('../kube/guard.ts')
  // refuse before spending time on a render the guard would throw away
  if (!values['dry-run']) guardContext(kube.context, kube.server, `apply the Tanka environment ${env.name}`)
  const { objects } = await renderShown(env, engineOf(values.engine), kube)
  const { applyEnvironment } = await import('../tanka/apply.ts')
  const { refString } = await import('../kube/refs.ts')
  const dryRun = values['dry-run'] ?? false
  const appliedLine = (a: ApplyResult) =>
    `${dryRun ? 'dry run: ' : ''}${a.created.length} created, ${a.configured.length} configured, ${a.unchanged.length} unchanged` +
    `${a.pruned.length ? `, ${a.pruned.length} pruned` : ''}${a.failed.length ? `, ${a.failed.length} rejected` : ''}`
  const s = spinner(`${dryRun ? 'dry-running' : 'applying'} ${objects.length} objects to ${kube.context}`)
  let lastShown = ''
  const { applied, health } = await applyEnvironment(kube, env, objects, {
    dryRun,
    prune: values.prune,
    timeoutMs: dryRun ? 0 : timeoutMs,
    onHealth: (_changed, all) => {
      const line = `waiting for health: ${all.filter((h) => h.status === 'Current').length}/${all.length} current`
      if (line !== lastShown) s.text((lastShown = line))
    },
  }).catch((err: unknown) => {
    s.fail('apply failed')
    throw err
  })
  s.succeed(appliedLine(applied))
  for (const f of applied.failed) log.fail(`${refString(f.ref)}: ${f.message}`)
  for (const r of applied.retained) log.info(c.dim(`  kept ${refString(r.ref)}: ${r.reason}`))
  if (health) {
    if (health.ok) log.ok(`${env.name} is healthy (${duration(health.elapsedMs)})`)
    else
      log.fail(`${env.name} is not healthy (${health.outcome} after ${duration(health.elapsedMs)}):\n${health.report}`)
  }
  if (applied.failed.length) return ExitCode.usage
  return health && !health.ok ? ExitCode.unhealthy : ExitCode.ok
}
