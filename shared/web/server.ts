// The dev session's web page (Tilt's web UI, on Tilt's port 10350): one table per namespace,
// a row per app, each app's objects, pods and events, and actions. It renders the same
// status the terminal view renders (the loops publish it; this only forwards it), pushed to
// the page as server-sent events when it changes — no polling.
//
// Security, as Tilt does it: bound to 127.0.0.1 only; every action needs the per-session
// token the page is served with (a CSRF token: another site's page cannot read it), and a
// request whose Origin is not this server is refused. Nothing on the page comes from a
// Secret (the status holds object names and health, never data).
import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { DevLoop, Loop } from '../dev/loop.ts'
import { appRows } from '../dev/view.ts'
import { errorMessage } from '../errors.ts'
import type { Kube } from '../kube.ts'
import { repoRoot } from '../paths.ts'

export const DEFAULT_UI_PORT = 10350

export interface WebUi {
  url: string
  token: string
  close(): Promise<void>
}

export interface WebUiOptions {
  loops: Loop[]
  kube: Kube
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

function pageHtml(token: string): string {
  // read each time in dev (cheap), so an edit of the page shows on reload
  const file = path.join(repoRoot, 'shared', 'web', 'page.html')
  const fallback = path.join(path.dirname(fileURLToPath(import.meta.url)), 'page.html')
  const html = fs.readFileSync(fs.existsSync(file) ? file : fallback, 'utf8')
  return html.replace('__NSOPS_TOKEN__', token)
}

async function listen(server: http.Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => { server.off('listening', onListening); reject(err) }
    const onListening = () => { server.off('error', onError); resolve((server.address() as AddressInfo).port) }
    server.once('error', onError)
    server.once('listening', onListening)
    server.listen(port, '127.0.0.1')
  })
}

export async function startWebUi(opts: WebUiOptions): Promise<WebUi> {
  const token = randomBytes(24).toString('hex')
  const clients = new Set<http.ServerResponse>()
  let port = 0
  const allowedOrigin = (origin: string | undefined) =>
    origin === undefined || origin === `http://127.0.0.1:${port}` || origin === `http://localhost:${port}`

  const send = (res: http.ServerResponse, code: number, body: unknown, type = 'application/json') => {
    res.writeHead(code, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' })
    res.end(type === 'application/json' ? JSON.stringify(body) : String(body))
  }

  const push = () => {
    if (clients.size === 0) return
    const data = `event: snapshot\ndata: ${JSON.stringify(webSnapshot(opts.loops, opts.kube))}\n\n`
    for (const c of clients) c.write(data)
  }
  // coalesce a burst of status events into one push per tick (many objects change at once)
  let queued = false
  const schedule = () => { if (!queued) { queued = true; setImmediate(() => { queued = false; push() }) } }
  for (const l of opts.loops) l.on('status', schedule)

  const action = async (body: { action?: string; namespace?: string; app?: string; task?: string }): Promise<string> => {
    const loop = opts.loops.find((l) => l.name === body.namespace) as (Loop & Partial<Pick<DevLoop, 'apply' | 'runTask'>>) | undefined
    if (body.action === 'stop') { opts.stop(); return 'stopping the session (cleanup as on Ctrl-C)' }
    if (!loop) throw new Error(`no dev loop for ${body.namespace}`)
    switch (body.action) {
      case 'reapply':
        if (!loop.apply) throw new Error(`${loop.name} cannot re-apply`)
        void loop.apply('web: re-apply')
        return `re-applying ${loop.name}`
      case 'restart': {
        if (!body.app) throw new Error('name an app')
        const ns = loop.status.target
        await opts.kube.core.deleteCollectionNamespacedPod({ namespace: ns, labelSelector: `app.kubernetes.io/name=${body.app}` })
        return `deleted the pods of ${body.app} in ${ns}; their controller makes new ones`
      }
      case 'task':
        if (!loop.runTask || !body.task) throw new Error('name a task')
        void loop.runTask(body.task)
        return `running the task ${body.task} of ${loop.name}`
      case 'reconcile': {
        const { findManagers, REQUESTED_AT } = await import('../flux/index.ts')
        const { loadNamespace } = await import('../namespaces.ts')
        const m = await findManagers(opts.kube, await loadNamespace(loop.name))
        if (m.state !== 'managed') return `${loop.name}: ${m.note}`
        const at = new Date().toISOString()
        await Promise.all(m.managers.map((x) => opts.kube.custom.patchNamespacedCustomObject({
          group: 'kustomize.toolkit.fluxcd.io', version: 'v1', namespace: x.kustomization.metadata.namespace, plural: 'kustomizations', name: x.kustomization.metadata.name,
          body: { metadata: { annotations: { [REQUESTED_AT]: at } } },
        }, { headers: { 'content-type': 'application/merge-patch+json' } } as never)))
        return `asked Flux to reconcile ${m.managers.map((x) => x.kustomization.metadata.name).join(', ')}`
      }
      default:
        throw new Error(`unknown action ${body.action}`)
    }
  }

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1')
    // another site's page may send requests here; it gets nothing and changes nothing
    if (!allowedOrigin(req.headers.origin)) return send(res, 403, { error: 'cross-origin requests are refused' })
    if (req.method === 'GET' && url.pathname === '/') return send(res, 200, pageHtml(token), 'text/html; charset=utf-8')
    if (req.method === 'GET' && url.pathname === '/api/snapshot') return send(res, 200, webSnapshot(opts.loops, opts.kube))
    if (req.method === 'GET' && url.pathname === '/api/stream') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' })
      res.write(`event: snapshot\ndata: ${JSON.stringify(webSnapshot(opts.loops, opts.kube))}\n\n`)
      clients.add(res)
      req.on('close', () => clients.delete(res))
      return
    }
    if (req.method === 'GET' && url.pathname === '/api/events') {
      const ns = url.searchParams.get('namespace') ?? ''
      const app = url.searchParams.get('app') ?? ''
      if (!opts.loops.some((l) => l.status.target === ns)) return send(res, 404, { error: `no dev loop applies into ${ns}` })
      void opts.kube.core.listNamespacedEvent({ namespace: ns }).then((list) => send(res, 200, list.items
        .filter((e) => !app || e.involvedObject?.name === app || e.involvedObject?.name?.startsWith(`${app}-`))
        .map((e) => ({ type: e.type, reason: e.reason, object: `${e.involvedObject?.kind}/${e.involvedObject?.name}`, message: e.message, count: e.count, last: e.lastTimestamp ?? e.eventTime }))),
      (err) => send(res, 502, { error: errorMessage(err) }))
      return
    }
    if (req.method === 'POST' && url.pathname === '/api/action') {
      if (req.headers['x-nsops-token'] !== token) return send(res, 403, { error: 'this action needs the session token the page was served with' })
      let raw = ''
      req.on('data', (b) => { raw += b; if (raw.length > 64 * 1024) req.destroy() })
      req.on('end', () => {
        let body: Record<string, string>
        try { body = JSON.parse(raw || '{}') } catch { return send(res, 400, { error: 'the body must be JSON' }) }
        action(body).then((message) => { opts.note?.(`web: ${message}`); send(res, 200, { ok: true, message }) },
          (err) => send(res, 400, { ok: false, error: errorMessage(err) }))
      })
      return
    }
    send(res, 404, { error: 'not found' })
  })
  try {
    port = await listen(server, opts.port ?? DEFAULT_UI_PORT)
  } catch (err) {
    // Tilt's port is taken (another session, Tilt itself): any free port, said in the view
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || opts.port === 0) throw err
    port = await listen(server, 0)
  }
  return {
    url: `http://127.0.0.1:${port}/`,
    token,
    async close() {
      for (const l of opts.loops) l.off('status', schedule)
      for (const c of clients) c.end()
      clients.clear()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
