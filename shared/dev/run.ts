// Runs dev loops until Ctrl-C / SIGTERM / an error, and always cleans up: every exit path
// stops forwards, deletes dev-only objects and resumes Flux (research: forgotten suspends).
import { ExitCode, errorMessage } from '../errors.ts'
import { guardContext } from '../guard.ts'
import type { Kube } from '../kube.ts'
import type { NamespaceConfig } from '../namespace-config.ts'
import { c, duration, log } from '../output.ts'
import { DevLoop, type DevLoopOptions, type Loop } from './loop.ts'
import { attachView } from './view.ts'

export interface RunOptions extends DevLoopOptions {
  /** like `tilt ci`: apply once, wait for health, verdict, clean up */
  ci?: boolean
  timeoutMs?: number
}

export async function runDevLoops(kube: Kube, configs: NamespaceConfig[], opts: RunOptions, extra: Loop[] = []): Promise<number> {
  guardContext(kube.context, kube.server, 'apply dev overlays')
  const loops: Loop[] = [...configs.map((ns) => new DevLoop(kube, ns, { ...opts, watch: !opts.ci, forwards: opts.ci ? false : opts.forwards })), ...extra]
  let stopping: Promise<void> | undefined
  const started: Loop[] = []
  const cleanup = async () => {
    stopping ??= (async () => {
      const notes = await Promise.all(started.map((l) => l.stop().catch((err) => [`${l.name}: cleanup failed: ${errorMessage(err)}`])))
      for (const n of notes.flat()) log.info(c.dim(n))
    })()
    return stopping
  }
  let interrupted: ((code: number) => void) | undefined
  const interruptedP = new Promise<number>((resolve) => { interrupted = resolve })
  const onSignal = (sig: NodeJS.Signals) => { interrupted?.(sig === 'SIGINT' ? ExitCode.interrupted : 143) }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  const onCrash = (err: unknown) => { log.fail(`dev loop crashed: ${errorMessage(err)}`); interrupted?.(1) }
  process.on('uncaughtException', onCrash)
  process.on('unhandledRejection', onCrash)
  let view: { stop(): void } | undefined
  try {
    const t0 = performance.now()
    for (const l of loops) { started.push(l); await l.start() }
    if (opts.ci) {
      const results = await Promise.race([
        Promise.all(loops.map((l) => l.waitHealthy(opts.timeoutMs ?? 300_000))),
        interruptedP.then((code) => code),
      ])
      if (typeof results === 'number') return results
      const failedApply = loops.filter((l) => l.status.lastApply?.failed.length || l.status.phase === 'error')
      const bad = results.filter((r) => !r.ok)
      if (bad.length === 0 && failedApply.length === 0) {
        log.ok(`SUCCESS. All workloads are healthy (${loops.map((l) => l.name).join(', ')}) in ${duration(performance.now() - t0)}.`)
        return ExitCode.ok
      }
      for (const l of failedApply) log.fail(`${l.name}: ${l.status.error ?? ''} ${(l.status.lastApply?.failed ?? []).join('; ')}`)
      for (const r of bad) log.fail(r.report)
      return 1
    }
    view = attachView(loops, `nsops dev · context ${kube.context} · ${kube.server}`)
    return await interruptedP
  } catch (err) {
    view?.stop()
    view = undefined
    throw err
  } finally {
    view?.stop()
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    process.off('uncaughtException', onCrash)
    process.off('unhandledRejection', onCrash)
    await cleanup()
  }
}
