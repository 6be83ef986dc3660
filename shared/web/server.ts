// The server behind nsops' web pages (the dev session's, `dashboard.ts --web`): serves the
// one page (shared/web/page.html), what it shows as JSON, and pushes changes to it as
// server-sent events — no polling. Each page's module says what its snapshot is, which
// events follow it, and which actions it takes; this module is the door.
//
// Security: bound to 127.0.0.1 only; a request whose Host is not this server's own address
// (127.0.0.1:PORT, localhost:PORT, [::1]:PORT) gets 421, so a site that rebinds its DNS name
// to 127.0.0.1 reads nothing; every /api/* and the event stream need the per-session token
// (the x-nsops-token header, or the SameSite=Strict cookie the page was served with: another
// site's request never carries it); every action needs the header itself; a request whose
// Origin is not this server is refused. The page runs under a Content-Security-Policy that
// allows only its own script and style (a per-response nonce) and requests to itself.
// SSE clients are capped, and one that stops reading is dropped before its buffer grows.
// Nothing on the page comes from a Secret (snapshots hold object names and health, never
// data; log lines are scrubbed).
import { randomBytes, timingSafeEqual } from 'node:crypto'
import fs from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { errorMessage, NsopsError } from '../core/errors.ts'
import { repoRoot } from '../core/paths.ts'

export const DEFAULT_UI_PORT = 10350
/** open event streams at most (pages, tabs); one more is answered 503 */
export const MAX_STREAM_CLIENTS = 16
/** bytes queued for one event stream before it is dropped as not reading */
export const MAX_STREAM_BUFFER = 4 * 1024 * 1024

/** The --ui-port flag: 0 asks for any free port. */
export function parseUiPort(text: string): number {
  const n = Number(text)
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new NsopsError(`--ui-port ${text} is not a port.`, {
      hint: 'Give a number from 1 to 65535, or 0 for any free port.',
    })
  return n
}

export interface ActionBody {
  action?: string
  namespace?: string
  app?: string
  task?: string
  /** a Flux object's action (HelmRelease suspend/resume/reconcile): its kind, namespace and name */
  kind?: string
  objectNamespace?: string
  name?: string
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
  /** the open event streams and the bytes queued for them (written, not yet taken by the socket) */
  streams(): { clients: number; buffered: number }
  close(): Promise<void>
}

function pageHtml(token: string, nonce: string): string {
  // read each time in dev (cheap), so an edit of the page shows on reload
  const file = path.join(repoRoot, 'shared', 'web', 'page.html')
  const fallback = path.join(path.dirname(fileURLToPath(import.meta.url)), 'page.html')
  const html = fs.readFileSync(fs.existsSync(file) ? file : fallback, 'utf8')
  return html.replace('__NSOPS_TOKEN__', token).replaceAll('__NSOPS_NONCE__', nonce)
}

/** The page may run its own script and style (by nonce) and talk to this server only. */
const csp = (nonce: string) =>
  [
    "default-src 'none'",
    `script-src 'nonce-${nonce}'`,
    `style-src 'nonce-${nonce}'`,
    "connect-src 'self'",
    "img-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ')

function sameSecret(a: string | undefined, b: string): boolean {
  if (a === undefined) return false
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

function cookie(req: http.IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=')
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim()
  }
  return undefined
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
  const own = () => [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`]
  const allowedHost = (host: string | undefined) => host !== undefined && own().includes(host.toLowerCase())
  const allowedOrigin = (origin: string | undefined) =>
    origin === undefined || own().some((h) => origin.toLowerCase() === `http://${h}`)
  // cookies are per host, not per port: each server's cookie is named after its port
  const cookieName = () => `nsops-token-${port}`
  const headerToken = (req: http.IncomingMessage) => {
    const h = req.headers['x-nsops-token']
    return typeof h === 'string' ? h : undefined
  }
  const authorized = (req: http.IncomingMessage) =>
    sameSecret(headerToken(req), token) || sameSecret(cookie(req, cookieName()), token)

  const send = (res: http.ServerResponse, code: number, body: unknown, type = 'application/json') => {
    res.writeHead(code, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' })
    res.end(type === 'application/json' ? JSON.stringify(body) : String(body))
  }
  // a page that stops reading (a paused tab, a stuck client) would have every event queued
  // for it in this process without end: past MAX_STREAM_BUFFER it is dropped (a page that
  // wakes up reconnects and gets a fresh snapshot)
  const write = (c: http.ServerResponse, data: string) => {
    c.write(data)
    if (c.writableLength > MAX_STREAM_BUFFER) {
      clients.delete(c)
      c.destroy()
    }
  }
  const broadcast = (e: PageEvent) => {
    if (clients.size === 0) return
    const data = sse(e)
    for (const c of clients) write(c, data)
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
    // DNS rebinding: another site's name pointed at 127.0.0.1 sends its own Host; it gets nothing
    if (!allowedHost(req.headers.host))
      return send(res, 421, { error: `this server answers only to 127.0.0.1:${port} and localhost:${port}` })
    // another site's page may send requests here; it gets nothing and changes nothing
    if (!allowedOrigin(req.headers.origin)) return send(res, 403, { error: 'cross-origin requests are refused' })
    if (req.method === 'GET' && url.pathname === '/') {
      const nonce = randomBytes(16).toString('base64')
      res.writeHead(200, {
        'content-type': 'text/html; charset=utf-8',
        'cache-control': 'no-store',
        'x-content-type-options': 'nosniff',
        'content-security-policy': csp(nonce),
        'x-frame-options': 'DENY',
        'referrer-policy': 'no-referrer',
        'set-cookie': `${cookieName()}=${token}; Path=/; HttpOnly; SameSite=Strict`,
      })
      res.end(pageHtml(token, nonce))
      return
    }
    if (url.pathname.startsWith('/api/') && !authorized(req))
      return send(res, 403, { error: 'this needs the session token the page was served with (open the page first)' })
    if (req.method === 'GET' && url.pathname === '/api/snapshot')
      return send(res, 200, (opts.exportSnapshot ?? opts.snapshot)())
    if (req.method === 'GET' && url.pathname === '/api/stream') {
      if (clients.size >= MAX_STREAM_CLIENTS)
        return send(res, 503, { error: `${MAX_STREAM_CLIENTS} pages are open on this session already; close one` })
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' })
      clients.add(res)
      req.on('close', () => clients.delete(res))
      // what a new page starts from (the snapshot, a log checkpoint) is bounded by itself
      res.write(sse({ event: 'snapshot', data: opts.snapshot() }))
      for (const e of opts.onConnect?.() ?? []) res.write(sse(e))
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
      // the cookie alone is not enough here: an action needs the token the page script holds
      if (!sameSecret(headerToken(req), token))
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
    streams: () => ({ clients: clients.size, buffered: [...clients].reduce((n, c) => n + c.writableLength, 0) }),
    async close() {
      for (const c of clients) c.end()
      clients.clear()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
