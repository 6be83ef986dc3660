// dev-down: stop the dev loops, release what they hold in Flux, stop the sim cluster.
import { parseCommand } from '../core/cli.ts'
import { errorMessage } from '../core/errors.ts'
import { c, log, spinner } from '../core/output.ts'
import { resolveTarget, targetOptions } from '../kube/target.ts'

const usage = `
Usage: just dev-down [--keep-cluster] [--prod-broken] [--kubeconfig FILE] [--context NAME]

Stops running dev loops (each deletes its dev-only objects and resumes Flux), ends the
sessions \`dev --ci\` kept and finishes a cleanup an exit left (overlays/prod did not
build), resumes any Flux object whose nsops suspension outlived its session (a killed dev
loop), and stops the sim cluster (its state is kept for the next dev-up). It writes only to
a local or allow-listed context, like every dev command.

  --keep-cluster  leave the sim cluster running
  --prod-broken   finish a cleanup even though overlays/prod still does not build: delete
                  the dev loop's objects (objects Flux or another tool also manages, and
                  CustomResourceDefinitions, still stay)
  --kubeconfig FILE  --context NAME   which cluster (default: $KUBECONFIG, else the one \`just cluster-up\` chose)
`

export async function devDown(argv: string[]): Promise<number> {
  const { values } = parseCommand(argv, {
    usage,
    options: { 'keep-cluster': { type: 'boolean' }, 'prod-broken': { type: 'boolean' }, ...targetOptions },
  })
  const { liveSessions, sessionProcess } = await import('../dev/session.ts')
  const { pidAlive } = await import('../core/lock.ts')
  const sessions = liveSessions()
  let code = 0
  for (const sess of sessions.filter((x) => !x.kept)) {
    // a pid from a file: only signalled while it is still the loop that wrote it
    if (!sessionProcess(sess)) {
      log.warn(
        `pid ${sess.pid} in the session of ${sess.namespace} is a process that started after that session (${sess.startedAt}): its dev loop is gone, so it is not signalled`,
      )
      continue
    }
    const s = spinner(`stopping the dev loop of ${sess.namespace} (pid ${sess.pid})`)
    process.kill(sess.pid, 'SIGTERM')
    const until = Date.now() + 60_000
    while (pidAlive(sess.pid) && Date.now() < until) await new Promise((r) => setTimeout(r, 100))
    if (pidAlive(sess.pid)) s.warn(`dev loop of ${sess.namespace} (pid ${sess.pid}) did not stop within 60 s`)
    else s.succeed(`stopped the dev loop of ${sess.namespace}`)
  }
  const { connect } = await import('../kube/client.ts')
  const { guardContext } = await import('../kube/guard.ts')
  const target = resolveTarget({ kubeconfig: values.kubeconfig, context: values.context })
  let kube: ReturnType<typeof connect> | undefined
  try {
    kube = connect(target)
    // what follows writes to the cluster (deletes kept dev objects, resumes Flux): only a local
    // or allow-listed one, like every dev command
    guardContext(kube.context, kube.server, 'end kept dev sessions and resume Flux there')
  } catch (err) {
    log.fail(errorMessage(err))
    const hint = (err as { hint?: string }).hint
    if (hint) log.info(c.dim(`hint: ${hint}`))
    kube = undefined
    code = 1
  }
  const kept = sessions.filter((x) => x.kept)
  if (kube && kept.length) {
    const { loadNamespace } = await import('../config/namespaces.ts')
    const { DevLoop } = await import('../dev/loop.ts')
    for (const sess of kept) {
      if (sess.context !== kube.context) {
        log.warn(
          `the session of ${sess.namespace} was kept against context ${sess.context}, not ${kube.context}: left as it is (switch to that context and run \`just dev-down\` again)`,
        )
        code = 1
        continue
      }
      const what = sess.unfinished ? 'finishing the cleanup' : 'ending the session dev --ci kept'
      const s = spinner(`${what} for ${sess.namespace}`)
      try {
        const loop = new DevLoop(kube, await loadNamespace(sess.namespace))
        const notes = await loop.endKept({ prodBroken: values['prod-broken'] })
        const text = `${notes.length ? `: ${notes.join('; ')}` : ''}`
        if (notes.some((n) => /does not build|left HelmRelease/.test(n))) {
          s.warn(`${sess.namespace} is not finished${text}`)
          code = 1
        } else s.succeed(`ended the kept session of ${sess.namespace}${text}`)
      } catch (err) {
        s.fail(`could not end the kept session of ${sess.namespace}: ${errorMessage(err)}`)
        code = 1
      }
    }
  }
  if (kube) {
    try {
      // suspensions and per-object holds whose dev loop is gone
      const { releaseStaleHolds } = await import('../dev/flux-hold.ts')
      for (const note of await releaseStaleHolds(kube)) log.ok(note)
    } catch (err) {
      log.warn(`could not check for stale Flux suspensions: ${errorMessage(err)}`)
    }
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
  return code
}
