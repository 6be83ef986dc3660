// The dev session's web page (Tilt's web UI, on Tilt's port 10350): one table per namespace,
// a row per app, each app's objects, pods, events and live log pane, and actions. It renders
// the status the loops publish and the lines the session's LogFeed publishes — this only
// forwards them: a snapshot event when a loop's status changes, and log lines as they come
// (a checkpoint of what is buffered when a page connects, then only the new lines).
import type { DevLoop, Loop } from '../dev/loop.ts'
import type { FeedLine, LogFeed } from '../dev/log-feed.ts'
import type { UiContext } from '../dev/run.ts'
import { appRows } from '../dev/app-rows.ts'
import type { Kube } from '../kube/client.ts'
import { reconcileNamespace } from './reconcile.ts'
import { startPageServer, type ActionBody } from './server.ts'
import { loadNamespace } from '../config/namespaces.ts'
import { eventRow } from '../kube/events.ts'

export { DEFAULT_UI_PORT } from './server.ts'

export interface WebUi {
  url: string
  token: string
  close(): Promise<void>
}

export interface WebUiOptions {
  loops: Loop[]
  kube: Kube
  /** the session's logs: the page's log panes */
  logs?: LogFeed
  /** 0 for any free port; default 10350 (falls back to a free port when taken) */
  port?: number
  /** ends the session as Ctrl-C does (the page's "stop" button) */
  stop: () => void
  /** a line in the session's log for each action taken from the page */
  note?: (line: string) => void
}

/** What the page shows: each loop's status plus its rows by app, computed once for every view. */
export function webSnapshot(loops: Loop[], kube: Kube) {
  return {
    schema: 'nsops.dev-web/v1',
    at: new Date().toISOString(),
    context: kube.context,
    server: kube.server,
    loops: loops.map((l) => ({ name: l.name, status: l.status, ...appRows(l.status) })),
  }
}

/** The dev session's web page on `port` (default 10350, a free one when taken), for runDevLoops. */
export function devWebPage(port: number | undefined): { start: (ctx: UiContext) => Promise<WebUi> } {
  return { start: (ctx) => startWebUi({ ...ctx, port }) }
}

export async function startWebUi(opts: WebUiOptions): Promise<WebUi> {
  const { loops, kube, logs } = opts
  const action = async (body: ActionBody): Promise<string> => {
    const loop = loops.find((l) => l.name === body.namespace) as
      (Loop & Partial<Pick<DevLoop, 'apply' | 'runTask' | 'ns'>>) | undefined
    if (body.action === 'stop') {
      opts.stop()
      return 'stopping the session (cleanup as on Ctrl-C)'
    }
    if (!loop) throw new Error(`no dev loop for ${body.namespace}`)
    switch (body.action) {
      case 'reapply':
        if (!loop.apply) throw new Error(`${loop.name} cannot re-apply`)
        void loop.apply('web: re-apply')
        return `re-applying ${loop.name}`
      case 'restart': {
        if (!body.app) throw new Error('name an app')
        const ns = loop.status.target
        await kube.core.deleteCollectionNamespacedPod({
          namespace: ns,
          labelSelector: `app.kubernetes.io/name=${body.app}`,
        })
        return `deleted the pods of ${body.app} in ${ns}; their controller makes new ones`
      }
      case 'task':
        if (!loop.runTask || !body.task) throw new Error('name a task')
        void loop.runTask(body.task)
        return `running the task ${body.task} of ${loop.name}`
      case 'reconcile': {
        return reconcileNamespace(kube, loop.ns ?? (await loadNamespace(loop.name)))
      }
      default:
        throw new Error(`unknown action ${body.action}`)
    }
  }

  const server = await startPageServer({
    port: opts.port,
    snapshot: () => webSnapshot(loops, kube),
    // the export holds what the page shows, its log panes included, so it opens offline
    exportSnapshot: () => ({ ...webSnapshot(loops, kube), logs: logs?.checkpoint().lines ?? [] }),
    onConnect: () => (logs ? [{ event: 'logs', data: logs.checkpoint() }] : []),
    get: (url) => {
      if (url.pathname !== '/api/events') return undefined
      return appEvents(kube, loops, url.searchParams.get('namespace') ?? '', url.searchParams.get('app') ?? '')
    },
    action,
    note: opts.note,
  })
  for (const l of loops) l.on('status', server.changed)
  // log lines go out in batches, one per tick: a burst of lines is one event
  let pending: FeedLine[] = []
  const onLine = (line: FeedLine) => {
    if (pending.push(line) === 1)
      setImmediate(() => {
        const lines = pending
        pending = []
        server.broadcast({ event: 'log', data: lines })
      })
  }
  logs?.on('line', onLine)
  // a log stream that cannot be read is said on the page too, not left as silence
  const onProblem = () => server.broadcast({ event: 'logproblem', data: logs?.currentProblem() ?? null })
  logs?.on('problem', onProblem)
  return {
    url: server.url,
    token: server.token,
    async close() {
      for (const l of loops) l.off('status', server.changed)
      logs?.off('line', onLine)
      logs?.off('problem', onProblem)
      await server.close()
    },
  }
}

/** The events of one app's objects (named `<app>` or `<app>-…`) in a namespace a loop applies into. */
async function appEvents(
  kube: Kube,
  loops: Loop[],
  ns: string,
  app: string,
): Promise<{ status: number; body: unknown }> {
  if (!loops.some((l) => l.status.target === ns))
    return { status: 404, body: { error: `no dev loop applies into ${ns}` } }
  const list = await kube.core.listNamespacedEvent({ namespace: ns })
  return {
    status: 200,
    body: list.items
      .filter((e) => !app || e.involvedObject?.name === app || e.involvedObject?.name?.startsWith(`${app}-`))
      .map(eventRow),
  }
}
