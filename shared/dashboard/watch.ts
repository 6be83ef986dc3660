// The dashboard kept live from watch events on the namespace (debounced), not on a timer:
// `followDashboard` publishes a fresh model after every burst of changes; `--watch` redraws
// the terminal from it and `--web` pushes it to the page. A whole frame is written at once
// over the previous one in the alternate screen, so nothing flickers.
import { Watch } from '@kubernetes/client-node'
import type { Kube } from '../kube/client.ts'
import { fluxCollectionPath, type FluxKind } from '../flux/kinds.ts'
import type { Environment, NamespaceConfig } from '../config/namespace-config.ts'
import { collect, type DashboardModel } from './collect.ts'
import { renderDashboard } from './render.ts'
import { Shutdown } from '../core/signals.ts'

const paths = (ns: string) => [
  `/api/v1/namespaces/${ns}/pods`,
  `/apis/apps/v1/namespaces/${ns}/deployments`,
  `/apis/apps/v1/namespaces/${ns}/statefulsets`,
  `/apis/apps/v1/namespaces/${ns}/daemonsets`,
  `/api/v1/namespaces/${ns}/persistentvolumeclaims`,
  `/api/v1/namespaces/${ns}/events`,
]

export interface DashboardFeed {
  /** the latest model (undefined until the first collect has finished) */
  readonly model: DashboardModel | undefined
  stop(): void
}

/**
 * Collects the dashboard now and again after every burst of watch events (150 ms quiet), one
 * collect at a time; `onModel` gets each new model, `onError` a failed collect.
 */
export async function followDashboard(
  kube: Kube,
  ns: NamespaceConfig,
  env: Environment,
  onModel: (m: DashboardModel) => void,
  onError: (err: unknown) => void = () => {},
): Promise<DashboardFeed> {
  let model: DashboardModel | undefined
  let timer: NodeJS.Timeout | undefined
  let collecting = false
  let again = false
  let stopped = false
  const refresh = async () => {
    if (collecting) {
      again = true
      return
    }
    collecting = true
    try {
      const m = await collect(kube, ns, env)
      if (!stopped) {
        model = m
        onModel(m)
      }
    } catch (err) {
      if (!stopped) onError(err)
    } finally {
      collecting = false
      if (again && !stopped) {
        again = false
        schedule()
      }
    }
  }
  const schedule = () => {
    clearTimeout(timer)
    timer = setTimeout(() => void refresh(), 150)
  }

  const watch = new Watch(kube.kc)
  const controllers: AbortController[] = []
  const started = new Set<string>()
  const start = async (p: string) => {
    if (stopped) return
    started.add(p)
    // a dropped watch is started again after a second
    const ac = await watch.watch(
      p,
      {},
      () => schedule(),
      () => {
        if (!stopped) setTimeout(() => void start(p).catch(() => {}), 1000)
      },
    )
    controllers.push(ac)
  }
  // the Flux objects the model shows change too (a HelmRelease upgraded, suspended from the
  // page): watched in their namespaces once a model says which (none without Flux)
  const fluxPaths = (m: DashboardModel | undefined) => {
    const out = new Set<string>()
    for (const o of m?.flux.objects ?? [])
      if (o.kind === 'Kustomization' || o.kind === 'HelmRelease')
        out.add(fluxCollectionPath(o.kind as FluxKind, o.namespace))
    return [...out].filter((p) => !started.has(p))
  }
  const publish = onModel
  onModel = (m) => {
    publish(m)
    for (const p of fluxPaths(m)) void start(p).catch(() => {})
  }
  await refresh()
  await Promise.all([...paths(ns.namespaces[env]), ...fluxPaths(model)].map(start))
  return {
    get model() {
      return model
    },
    stop() {
      stopped = true
      clearTimeout(timer)
      for (const ac of controllers) ac.abort()
    },
  }
}

/** `--watch`: redraws until Ctrl-C, SIGTERM or the terminal closing (SIGHUP), then restores the terminal. */
export async function watchDashboard(kube: Kube, ns: NamespaceConfig, env: Environment): Promise<number> {
  // the same stop as the dev loop and --web: 130 on Ctrl-C, 143 on SIGTERM, 129 on SIGHUP
  const shutdown = new Shutdown()
  const out = process.stdout
  out.write('\x1b[?1049h\x1b[?25l') // alternate screen, hide cursor
  try {
    const feed = await followDashboard(
      kube,
      ns,
      env,
      (m) => {
        const frame = renderDashboard(m)
          .split('\n')
          .map((l) => `${l}\x1b[K`)
          .join('\n')
        out.write(`\x1b[H${frame}\n\x1b[2m(watching; Ctrl-C to quit)\x1b[0m\x1b[K\x1b[J`)
      },
      (err) => out.write(`\x1b[H\x1b[Jcould not refresh: ${(err as Error).message}\x1b[K`),
    )
    if (!shutdown.stopping)
      await new Promise<void>((resolve) => shutdown.signal.addEventListener('abort', () => resolve(), { once: true }))
    feed.stop()
    return shutdown.exitCode
  } finally {
    if (out.writable) out.write('\x1b[?25h\x1b[?1049l') // cursor and main screen back, also after an error
    shutdown.dispose()
  }
}
