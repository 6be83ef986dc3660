// dev-down: stop the dev loops, release what they hold in Flux, stop the sim cluster.
import { parseCommand } from '../core/cli.ts'
import { errorMessage } from '../core/errors.ts'
import { log, spinner } from '../core/output.ts'
import { resolveTarget } from '../kube/target.ts'

const usage = `
Usage: just dev-down [--keep-cluster]

Stops running dev loops (each deletes its dev-only objects and resumes Flux), resumes any
Flux object whose nsops suspension outlived its session (a killed dev loop), and stops the
sim cluster (its state is kept for the next dev-up).
`

export async function devDown(argv: string[]): Promise<number> {
  const { values } = parseCommand(argv, { usage, options: { 'keep-cluster': { type: 'boolean' } } })
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
