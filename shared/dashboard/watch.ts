// The dashboard kept live from watch events on the namespace (debounced), not on a timer:
// `followDashboard` publishes a fresh model after every burst of changes; `--watch` redraws
// the terminal from it and `--web` pushes it to the page. A whole frame is written at once
// over the previous one in the alternate screen, so nothing flickers. In --watch, keys act on
// a HelmRelease the model shows: n selects the next, r reconciles, s suspends, u resumes it
// (flux/actions.ts: the marker `just suspend` writes, so `flux get hr` agrees).
import { Watch } from '@kubernetes/client-node'
import type { Kube } from '../kube/client.ts'
import { fluxCollectionPath, type FluxKind } from '../flux/kinds.ts'
import type { Environment, NamespaceConfig } from '../config/namespace-config.ts'
import { collect, type DashboardModel } from './collect.ts'
import { renderDashboard } from './render.ts'
import { Shutdown } from '../core/signals.ts'
import { readKeys } from '../core/raw-keys.ts'
import { errorMessage } from '../core/errors.ts'
import { fluxObjectAction, type FluxObjectAction } from '../flux/actions.ts'

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
  /** the message of the last collect that failed, until a collect succeeds again */
  readonly error: string | undefined
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
  let error: string | undefined
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
        error = undefined
        onModel(m)
      }
    } catch (err) {
      if (!stopped) {
        error = (err as Error).message
        onError(err)
      }
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
    get error() {
      return error
    },
    stop() {
      stopped = true
      clearTimeout(timer)
      for (const ac of controllers) ac.abort()
    },
  }
}

/** A line cut to the terminal's width (colour codes take no room), so none wraps and pushes the top away. */
export function fitWidth(line: string, columns: number): string {
  let visible = 0
  let i = 0
  while (i < line.length) {
    const esc = /^\x1b\[[0-9;?]*[A-Za-z]/.exec(line.slice(i, i + 16))
    if (esc) {
      i += esc[0].length
      continue
    }
    if (visible === columns - 1 && i < line.length) {
      const rest = line.slice(i).replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')
      if (rest.length > 1) return `${line.slice(0, i)}…\x1b[0m`
    }
    visible++
    i += line.codePointAt(i)! > 0xffff ? 2 : 1
  }
  return line
}

/** `--watch`: redraws until Ctrl-C, SIGTERM or the terminal closing (SIGHUP), then restores the terminal. */
export async function watchDashboard(kube: Kube, ns: NamespaceConfig, env: Environment): Promise<number> {
  // the same stop as the dev loop and --web: 130 on Ctrl-C, 143 on SIGTERM, 129 on SIGHUP
  const shutdown = new Shutdown()
  const out = process.stdout
  let latest: DashboardModel | undefined
  let selected: string | undefined // `namespace/name` of the HelmRelease the keys act on
  let said = ''
  const releases = () => latest?.flux.releases ?? []
  const current = () => releases().find((r) => `${r.namespace}/${r.name}` === selected) ?? releases()[0]
  const draw = () => {
    if (!latest) return
    const sel = current()
    // the frame is cut to the terminal's height: its top (state, Flux, releases) stays in view
    // instead of scrolling away under the pods and events
    const rows = Math.max(5, (out.rows || 50) - (said ? 2 : 1))
    const cols = out.columns || 160
    const all = renderDashboard(latest, {
      selectedRelease: sel ? `${sel.namespace}/${sel.name}` : undefined,
      valuesLines: 0,
    }).split('\n')
    const frame = (
      all.length > rows ? [...all.slice(0, rows - 1), `\x1b[2m… ${all.length - rows + 1} more lines\x1b[0m`] : all
    )
      .map((l) => `${fitWidth(l, cols)}\x1b[K`)
      .join('\n')
    const help = sel
      ? `n next HelmRelease · r reconcile · s suspend · u resume ${sel.namespace}/${sel.name} · Ctrl-C to quit`
      : 'Ctrl-C to quit'
    out.write(`\x1b[H${frame}\n${said ? `${said}\x1b[K\n` : ''}\x1b[2m(watching; ${help})\x1b[0m\x1b[K\x1b[J`)
  }
  const act = (action: FluxObjectAction) => {
    const r = current()
    if (!r) return
    said = `${action}…`
    draw()
    fluxObjectAction(kube, { kind: 'HelmRelease', namespace: r.namespace, name: r.name }, action, 'dashboard --watch')
      .then(
        (message) => (said = `✔ ${message}`),
        (err) => (said = `✖ ${errorMessage(err)}`),
      )
      .finally(draw)
  }
  // keys, read raw (Ctrl-C is sent on to the process group as the terminal would)
  const keys = readKeys((ch) => {
    if (ch === 'n' && releases().length) {
      const list = releases()
      const i = list.indexOf(current()!)
      const next = list[(i + 1) % list.length]
      selected = `${next.namespace}/${next.name}`
      said = ''
      draw()
    } else if (ch === 'r') act('reconcile')
    else if (ch === 's') act('suspend')
    else if (ch === 'u') act('resume')
  })
  out.write('\x1b[?1049h\x1b[?25l') // alternate screen, hide cursor
  try {
    const feed = await followDashboard(
      kube,
      ns,
      env,
      (m) => {
        latest = m
        draw()
      },
      (err) => out.write(`\x1b[H\x1b[Jcould not refresh: ${(err as Error).message}\x1b[K`),
    )
    if (!shutdown.stopping)
      await new Promise<void>((resolve) => shutdown.signal.addEventListener('abort', () => resolve(), { once: true }))
    feed.stop()
    return shutdown.exitCode
  } finally {
    keys.stop()
    if (out.writable) out.write('\x1b[?25h\x1b[?1049l') // cursor and main screen back, also after an error
    shutdown.dispose()
  }
}
