// The web pages' server (shared/web/server.ts) over real HTTP on 127.0.0.1: it answers only
// to its own host names (DNS rebinding gets 421), every /api/* and the event stream need the
// session's token or its SameSite=Strict cookie, actions need the token itself, the page comes
// with a Content-Security-Policy and no inline handlers, and event streams are capped and a
// client that stops reading is dropped instead of growing the server's buffers.
import assert from 'node:assert/strict'
import http from 'node:http'
import net from 'node:net'
import { after, before, describe, it } from 'node:test'
import { MAX_STREAM_BUFFER, MAX_STREAM_CLIENTS, startPageServer, type PageServer } from '../../shared/web/server.ts'
import { until } from '../until.ts'

interface Answer {
  status: number
  headers: http.IncomingHttpHeaders
  body: string
}

/** One request with exactly these headers (fetch cannot set Host); a stream is cut after its headers. */
function request(
  port: number,
  path: string,
  headers: Record<string, string>,
  method = 'GET',
  body?: string,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, headers }, (res) => {
      let text = ''
      if (res.headers['content-type'] === 'text/event-stream') {
        res.destroy()
        return resolve({ status: res.statusCode!, headers: res.headers, body: '' })
      }
      res.setEncoding('utf8')
      res.on('data', (d) => (text += d))
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text }))
    })
    req.on('error', reject)
    req.end(body)
  })
}

describe('the web server', () => {
  let server: PageServer
  let port: number
  let host: string
  const actions: string[] = []

  before(async () => {
    server = await startPageServer({
      port: 0,
      snapshot: () => ({ schema: 'nsops.dev-web/v1', loops: [] }),
      get: (url) =>
        url.pathname === '/api/events' ? Promise.resolve({ status: 200, body: [{ reason: 'x' }] }) : undefined,
      action: async (b) => {
        actions.push(b.action ?? '')
        return `did ${b.action}`
      },
    })
    port = Number(new URL(server.url).port)
    host = `127.0.0.1:${port}`
  })
  after(async () => {
    await server.close()
  })

  it('answers 421 to a Host that is not its own (DNS rebinding), whatever else the request carries', async () => {
    for (const path of ['/', '/api/snapshot', '/api/stream', '/api/events'])
      for (const h of ['attacker.example', `attacker.example:${port}`, `127.0.0.1:${port + 1}`, '127.0.0.1']) {
        const r = await request(port, path, { host: h, 'x-nsops-token': server.token })
        assert.equal(r.status, 421, `${path} with Host ${h}`)
        assert.doesNotMatch(r.body, new RegExp(server.token), 'the token is not in the answer')
      }
    for (const h of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, `LOCALHOST:${port}`])
      assert.equal((await request(port, '/', { host: h })).status, 200, h)
  })

  it('serves the page under a Content-Security-Policy (own nonce, no inline handlers) and sets a SameSite=Strict cookie', async () => {
    const r = await request(port, '/', { host })
    const policy = String(r.headers['content-security-policy'])
    const nonce = /script-src 'nonce-([^']+)'/.exec(policy)?.[1]
    assert.ok(nonce, policy)
    assert.match(policy, /default-src 'none'/)
    assert.match(policy, /connect-src 'self'/)
    assert.doesNotMatch(policy, /unsafe-inline|unsafe-eval/)
    assert.match(r.body, new RegExp(`<script nonce="${nonce.replace(/[+/]/g, '\\$&')}">`))
    assert.doesNotMatch(r.body, /__NSOPS_NONCE__/)
    // no inline handler attribute (onclick=…) nor inline style attribute anywhere in the page
    assert.doesNotMatch(r.body, /<[^>]+\son[a-z]+\s*=/i)
    assert.doesNotMatch(r.body, /<[^>]+\sstyle\s*=/i)
    // a fresh nonce per response
    const again = await request(port, '/', { host })
    assert.notEqual(/script-src 'nonce-([^']+)'/.exec(String(again.headers['content-security-policy']))?.[1], nonce)
    const cookie = String(r.headers['set-cookie'])
    assert.match(cookie, new RegExp(`^nsops-token-${port}=${server.token};`))
    assert.match(cookie, /SameSite=Strict/)
    assert.match(cookie, /HttpOnly/)
  })

  it('needs the token or the cookie on every /api/* and the stream; an action needs the token itself', async () => {
    const cookie = `nsops-token-${port}=${server.token}`
    for (const path of ['/api/snapshot', '/api/stream', '/api/events?namespace=x']) {
      assert.equal((await request(port, path, { host })).status, 403, `${path} without anything`)
      assert.equal(
        (await request(port, path, { host, 'x-nsops-token': 'wrong' })).status,
        403,
        `${path} with a wrong token`,
      )
      assert.equal(
        (await request(port, path, { host, cookie: `nsops-token-${port + 1}=${server.token}` })).status,
        403,
        `${path} with another port's cookie name`,
      )
      assert.equal((await request(port, path, { host, 'x-nsops-token': server.token })).status, 200, `${path} token`)
      assert.equal((await request(port, path, { host, cookie: `a=b; ${cookie}` })).status, 200, `${path} cookie`)
    }
    const post = (headers: Record<string, string>) =>
      request(port, '/api/action', { host, 'content-type': 'application/json', ...headers }, 'POST', '{"action":"x"}')
    assert.equal((await post({ cookie })).status, 403, 'the cookie alone does not act')
    assert.equal(
      (await post({ 'x-nsops-token': server.token, origin: 'http://attacker.example' })).status,
      403,
      'another origin',
    )
    assert.deepEqual(actions, [])
    const ok = await post({ 'x-nsops-token': server.token, origin: `http://${host}` })
    assert.equal(ok.status, 200, ok.body)
    assert.deepEqual(actions, ['x'])
  })

  it(`caps event streams at ${MAX_STREAM_CLIENTS}`, async () => {
    const sockets: net.Socket[] = []
    try {
      for (let i = 0; i < MAX_STREAM_CLIENTS; i++) sockets.push(await openStream(port, server.token))
      const r = await request(port, '/api/stream', { host, 'x-nsops-token': server.token })
      assert.equal(r.status, 503)
      assert.match(r.body, /pages are open/)
    } finally {
      for (const s of sockets) s.destroy()
    }
    await until('the streams closed', async () => server.streams().clients === 0)
  })

  it('drops a stream that stops reading: what it holds for it stays bounded while a reading page gets every event', async () => {
    const paused = await openStream(port, server.token)
    paused.pause() // reads nothing more: the kernel's buffers fill, then the server's
    const reader = await openStream(port, server.token)
    let read = 0
    reader.on('data', (d: Buffer) => (read += d.length))

    const event = { event: 'log', data: 'x'.repeat(64 * 1024) }
    const size = `event: log\ndata: ${JSON.stringify(event.data)}\n\n`.length
    const count = 640 // 40 MB: far more than the kernel's socket buffers of both ends
    let most = 0
    for (let i = 0; i < count; i++) {
      server.broadcast(event)
      most = Math.max(most, server.streams().buffered)
      // a tick between events, as in a session: the sockets drain and the reading page reads
      await new Promise((r) => setImmediate(r))
    }
    await until('the reading page got every event', async () => read >= count * size, 30_000)

    // the paused client, once it reads again, finds its stream ended after far less than was sent
    let got = 0
    const ended = new Promise<void>((resolve) => paused.on('close', () => resolve()))
    paused.on('data', (d: Buffer) => (got += d.length))
    paused.resume()
    await Promise.race([
      ended,
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error(`the paused stream was never ended (it read ${got} bytes)`)), 15_000),
      ),
    ])
    assert.ok(got < (count * size) / 2, `the paused client got ${got} of ${count * size} bytes before it was dropped`)
    // and what the server queued for its streams never went past the bound (two streams)
    assert.ok(
      most <= 2 * (MAX_STREAM_BUFFER + size),
      `the server held at most ${most} bytes for its streams (bound ${MAX_STREAM_BUFFER} each)`,
    )
    assert.equal(server.streams().clients, 1, 'only the reading page is still streamed to')
    reader.destroy()
    paused.destroy()
  })
})

/** An event stream over a raw socket, so the test decides when it is read; resolves once the first snapshot came. */
function openStream(port: number, token: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => {
      s.write(`GET /api/stream HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nx-nsops-token: ${token}\r\n\r\n`)
    })
    let head = ''
    const onData = (d: Buffer) => {
      head += d.toString('latin1')
      if (!head.includes('\r\n\r\n')) return
      if (!head.startsWith('HTTP/1.1 200')) return reject(new Error(head.split('\r\n')[0]))
      if (!head.includes('event: snapshot')) return
      s.off('data', onData)
      resolve(s)
    }
    s.on('data', onData)
    s.on('error', reject)
  })
}
