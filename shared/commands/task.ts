// `just task NS [NAME]`: run one of a namespace's typed zx tasks (namespace.ts `tasks`), with
// the dev session's forward URLs when a dev loop runs, under the same context guard.
import { parseCommand } from '../core/cli.ts'
import type { Environment, NamespaceConfig } from '../config/namespace-config.ts'
import { c, duration, log } from '../core/output.ts'
import { resolveTarget, targetOptions } from '../kube/target.ts'
import { checkScriptFolder } from '../config/namespaces.ts'

const usage = (ns: string) => `
Usage: just task ${ns} [NAME] [--env dev|prod]

Runs the task NAME from namespaces/${ns}/namespace.ts (after the tasks it names in \`after\`),
prints its commands and output, and exits 0 when it succeeded, 1 when it failed. Without
NAME it lists the tasks. A task gets zx's \`$\` in the namespace folder with KUBECONFIG pinned
to the session's context, the namespace config, typed kube clients, and the running dev
loop's port-forward URLs (\`forwards.<app>\`). Like the dev loop it runs only against a local
or allow-listed context.

  --env ENV        the environment the task works on (default dev)
  --kubeconfig FILE  --context NAME   which cluster (default: $KUBECONFIG, else the one \`just cluster-up\` chose)
`

export async function task(ns: NamespaceConfig, argv: string[]): Promise<number> {
  checkScriptFolder(ns)
  const { values, positionals } = parseCommand(argv, {
    usage: usage(ns.name),
    allowPositionals: true,
    options: { env: { type: 'string' }, ...targetOptions },
  })
  const [name] = positionals
  if (!name) {
    const entries = Object.entries(ns.tasks)
    if (!entries.length)
      log.info(c.dim(`${ns.name} has no tasks (add them under \`tasks\` in namespaces/${ns.name}/namespace.ts)`))
    for (const [n, t] of entries)
      log.info(
        `${c.bold(n)}  ${c.dim(`on ${t.on ?? 'manual'}${t.after?.length ? `, after ${t.after.join(', ')}` : ''}`)}  ${t.description ?? ''}`,
      )
    return 0
  }
  const env = (values.env ?? 'dev') as Environment
  const { connect, ensureReachable } = await import('../kube/client.ts')
  const kube = connect(resolveTarget(values))
  const { guardContext } = await import('../kube/guard.ts')
  guardContext(kube.context, kube.server, `run the task ${name}`)
  await ensureReachable(kube)
  const { readSession } = await import('../dev/session.ts')
  const forwards = Object.fromEntries(
    (readSession(ns.name)?.forwards ?? []).filter((f) => f.status === 'active').map((f) => [f.app, f.url]),
  )
  const { runTask } = await import('../tasks/run.ts')
  const ac = new AbortController()
  process.once('SIGINT', () => ac.abort())
  const runs = await runTask(name, {
    kube,
    ns,
    env,
    forwards,
    signal: ac.signal,
    onLine: (t, l) => log.info(`${c.dim(`[${t}]`)} ${l}`),
  })
  for (const r of runs) {
    if (r.ok) log.ok(`task ${r.name} succeeded in ${duration(r.ms)}`)
    else
      log.fail(`task ${r.name} failed after ${duration(r.ms)}: ${r.error} (log: .nsops/tasks/${ns.name}/${r.name}.log)`)
  }
  return runs.every((r) => r.ok) ? 0 : 1
}
