// The server behind nsops' web pages (the dev session's, `dashboard.ts --web`): serves the
// one page (shared/web/page.html), what it shows as JSON, and pushes changes to it as
// server-sent events — no polling. Each page's module says what its snapshot is, which
// events follow it, and which actions it takes; this module is the door.
//
// Security, as Tilt does it: bound to 127.0.0.1 only; every action needs the per-session
// token the page is served with (a CSRF token: another site's page cannot read it), and a
// request whose Origin is not this server is refused. Nothing on the page comes from a
// Secret (snapshots hold object names and health, never data; log lines are scrubbed).
import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { errorMessage } from '../core/errors.ts'
import { repoRoot } from '../core/paths.ts'

export const DEFAULT_UI_PORT = 10350

export interface ActionBody {
  action?: string
  namespace?: string
  app?: string
  task?: string
}

/** One server-sent event: its name and its JSON data. */
export interface PageEvent {
  event: string
  data: unknown
}

export interface PageServerOptions {
  /** 0 for any free port; default 10350 (falls back to a free port when taken) */
  port?: number
  /** what the page shows now: the first event of a stream and every push */
  snapshot: () => unknown
  /** the export (GET /api/snapshot), when it holds more than the pushed snapshot (logs) */
  exportSnapshot?: () => unknown
  /** events a new stream gets after the snapshot (a log checkpoint) */
  onConnect?: () => PageEvent[]
  /** GET routes of this page under /api/ (JSON); undefined: not one of them */
  get?: (url: URL) => Promise<{ status: number; body: unknown }> | undefined
  /** an action from the page (token and origin already checked); its message is shown there */
  action: (body: ActionBody) => Promise<string>
  /** a line in the command's log for each action taken from the page */
  note?: (line: string) => void
}

export interface PageServer {
  url: string
  token: string
  /** the snapshot changed: pushed once per tick, however many changes came in it */
  changed(): void
  /** an event to every open page */
  broadcast(e: PageEvent): void
  close(): Promise<void>
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
    const onError = (err: NodeJS.ErrnoException) => {
      server.off('listening', onListening)
      reject(err)
    }
    const onListening = () => {
      server.off('error', onError)
      resolve((server.address() as AddressInfo).port)
    }
    server.once('error', onError)
    server.once('listening', onListening)
    server.listen(port, '127.0.0.1')
  })
}

const sse = (e: PageEvent) => `event: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`

export async function startPageServer(opts: PageServerOptions): Promise<PageServer> {
  const token = randomBytes(24).toString('hex')
  const clients = new Set<http.ServerResponse>()
  let port = 0
  const allowedOrigin = (origin: string | undefined) =>
    origin === undefined || origin === `http://127.0.0.1:${port}` || origin === `http://localhost:${port}`

  const send = (res: http.ServerResponse, code: number, body: unknown, type = 'application/json') => {
    res.writeHead(code, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' })
    res.end(type === 'application/json' ? JSON.stringify(body) : String(body))
  }
  const broadcast = (e: PageEvent) => {
    if (clients.size === 0) return
    const data = sse(e)
    for (const c of clients) c.write(data)
  }
  // coalesce a burst of changes into one push per tick (many objects change at once)
  let queued = false
  const changed = () => {
    if (queued || clients.size === 0) return
    queued = true
    setImmediate(() => {
      queued = false
      broadcast({ event: 'snapshot', data: opts.snapshot() })
    })
  }

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1')
    // another site's page may send requests here; it gets nothing and changes nothing
    if (!allowedOrigin(req.headers.origin)) return send(res, 403, { error: 'cross-origin requests are refused' })
    if (req.method === 'GET' && url.pathname === '/') return send(res, 200, pageHtml(token), 'text/html; charset=utf-8')
    if (req.method === 'GET' && url.pathname === '/api/snapshot')
      return send(res, 200, (opts.exportSnapshot ?? opts.snapshot)())
    if (req.method === 'GET' && url.pathname === '/api/stream') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' })
      res.write(sse({ event: 'snapshot', data: opts.snapshot() }))
      for (const e of opts.onConnect?.() ?? []) res.write(sse(e))
      clients.add(res)
      req.on('close', () => clients.delete(res))
      return
    }
    if (req.method === 'GET' && url.pathname.startsWith('/api/')) {
      const answer = opts.get?.(url)
      if (answer) {
        void answer.then(
          (a) => send(res, a.status, a.body),
          (err) => send(res, 502, { error: errorMessage(err) }),
        )
        return
      }
    }
    if (req.method === 'POST' && url.pathname === '/api/action') {
      if (req.headers['x-nsops-token'] !== token)
        return send(res, 403, { error: 'this action needs the session token the page was served with' })
      let raw = ''
      req.on('data', (b) => {
        raw += b
        if (raw.length > 64 * 1024) req.destroy()
      })
      req.on('end', () => {
        let body: ActionBody
        try {
          body = JSON.parse(raw || '{}')
        } catch {
          return send(res, 400, { error: 'the body must be JSON' })
        }
        opts.action(body).then(
          (message) => {
            opts.note?.(`web: ${message}`)
            send(res, 200, { ok: true, message })
          },
          (err) => send(res, 400, { ok: false, error: errorMessage(err) }),
        )
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
    changed,
    broadcast,
    async close() {
      for (const c of clients) c.end()
      clients.clear()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
