// nsops' own requests to the API server (shared/kube/rest.ts) go over one HTTP/2 connection,
// as kubectl's and Flux's do, and over HTTP/1.1 when the server does not offer h2. Against
// the real sim apiserver: dozens of concurrent requests share one session, errors keep their
// status and body, an idle session does not keep a script from exiting. Local servers stand in
// for what the shared sim cannot be made to do on demand: an HTTPS server that speaks only
// HTTP/1.1 (a proxy in front of a cluster), an HTTP/2 server that sends GOAWAY after each
// answer (an apiserver restarting, or one run with --goaway-chance), and one that takes
// connections and never answers (a stopped apiserver; e2e/gitops-deploy stops its own sim's).
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import http2 from 'node:http2'
import https from 'node:https'
import net, { type AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { after, before, describe, it } from 'node:test'
import { ApiException, KubeConfig } from '@kubernetes/client-node'
import { mapLimit } from '../../shared/apply/order.ts'
import { AFTER_DEADLINE_MS, NoAnswer, getObject, rest, transportOf } from '../../shared/kube/rest.ts'
import { ensurePki } from '../../shared/cluster/sim/pki.ts'
import { clientsFor, withDeadline, type Kube } from '../../shared/kube/client.ts'
import { repoRoot } from '../../shared/core/paths.ts'
import { testCluster, testNamespace } from '../harness.ts'

const run = promisify(execFile)

/** A Kube for a local server whose certificate the PKI's CA signed (for 127.0.0.1). */
function kubeFor(server: string, caFile: string): Kube {
  const kc = new KubeConfig()
  kc.loadFromOptions({
    clusters: [{ name: 'local', server, caFile }],
    users: [{ name: 'u', token: 'x' }],
    contexts: [{ name: 'local', cluster: 'local', user: 'u' }],
    currentContext: 'local',
  })
  return clientsFor(kc)
}

describe('API requests over HTTP/2', () => {
  let kube: Kube
  let kubeconfig = ''
  let ns = ''
  let cleanup: () => Promise<void> = async () => {}
  before(async () => {
    ;({ kube, kubeconfig } = await testCluster())
    const t = await testNamespace('rest-h2')
    ns = t.name
    cleanup = t.cleanup
  })
  after(() => cleanup())

  it('forty concurrent requests to the real apiserver share one HTTP/2 session; errors keep their status and body', async () => {
    const fresh = clientsFor(kube.kc) // a connection of its own, as a fresh process has
    const names = Array.from({ length: 40 }, (_, i) => `cm-${i}`)
    const answers = await mapLimit(names, 16, (name) =>
      rest<{ metadata: { name: string; resourceVersion?: string } }>(
        fresh,
        'PATCH',
        `/api/v1/namespaces/${ns}/configmaps/${name}`,
        {
          body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: ns }, data: { n: name } },
          contentType: 'application/apply-patch+yaml',
          query: { fieldManager: 'nsops-test', dryRun: 'All' },
        },
      ),
    )
    assert.deepEqual(
      answers.map((a) => a.metadata.name),
      names,
    )
    assert.deepEqual(transportOf(fresh), { protocol: 'h2', sessions: 1 })
    // a 404 is an ApiException with the server's Status body, as over HTTP/1.1
    assert.equal(
      await getObject(fresh, { apiVersion: 'v1', kind: 'ConfigMap', namespace: ns, name: 'not-there' }),
      undefined,
    )
    await assert.rejects(
      rest(fresh, 'GET', `/api/v1/namespaces/${ns}/configmaps/not-there`),
      (err: unknown) =>
        err instanceof ApiException && err.code === 404 && (err.body as { reason?: string }).reason === 'NotFound',
    )
    await assert.rejects(
      rest(fresh, 'POST', `/api/v1/namespaces/${ns}/configmaps`, {
        body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'Bad_Name' } },
        query: { dryRun: 'All' },
      }),
      (err: unknown) => err instanceof ApiException && err.code === 422,
    )
    assert.deepEqual(transportOf(fresh), { protocol: 'h2', sessions: 1 })
  })

  it('NSOPS_HTTP2=0 sends the same requests over HTTP/1.1', async () => {
    const fresh = clientsFor(kube.kc)
    process.env.NSOPS_HTTP2 = '0'
    try {
      const list = await rest<{ kind: string }>(fresh, 'GET', `/api/v1/namespaces/${ns}/configmaps`)
      assert.equal(list.kind, 'ConfigMapList')
      assert.deepEqual(transportOf(fresh), { protocol: 'http/1.1', sessions: 0 })
    } finally {
      delete process.env.NSOPS_HTTP2
    }
  })

  it('an idle session does not keep a script from exiting by itself', async () => {
    // no process.exit: node must end on its own once the answer is in
    const script = `import { connect } from ${JSON.stringify(path.join(repoRoot, 'shared/kube/client.ts'))}
import { rest, transportOf } from ${JSON.stringify(path.join(repoRoot, 'shared/kube/rest.ts'))}
const kube = connect({ kubeconfig: ${JSON.stringify(kubeconfig)} })
const r = await rest(kube, 'GET', '/api/v1/namespaces/${ns}')
console.log(r.metadata.name, transportOf(kube).protocol)
`
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-rest-test-'))
    try {
      fs.writeFileSync(path.join(dir, 'one.mts'), script)
      const { stdout } = await run(path.join(repoRoot, 'shared/bin/nsops-node'), [path.join(dir, 'one.mts')], {
        timeout: 30_000,
      })
      assert.equal(stdout.trim(), `${ns} h2`)
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })

  describe('local servers standing in for what the sim cannot be made to do', () => {
    let pki: Awaited<ReturnType<typeof ensurePki>>
    let dir = ''
    before(async () => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-rest-pki-'))
      pki = await ensurePki(dir)
    })
    after(() => fs.rmSync(dir, { recursive: true, force: true }))

    const listen = (server: https.Server | http2.Http2SecureServer) =>
      new Promise<string>((resolve) =>
        server.listen(0, '127.0.0.1', () => resolve(`https://127.0.0.1:${(server.address() as AddressInfo).port}`)),
      )

    /** A local HTTP/2 server that hands each stream to `onStream`. */
    const h2Server = async (
      onStream: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void,
    ): Promise<{ url: string; close: () => Promise<void> }> => {
      const server = http2.createSecureServer({
        cert: fs.readFileSync(pki.serverCert),
        key: fs.readFileSync(pki.serverKey),
      })
      const sessions = new Set<http2.ServerHttp2Session>()
      server.on('session', (s) => sessions.add(s))
      server.on('stream', onStream)
      const url = await listen(server)
      return {
        url,
        close: async () => {
          // our idle sessions hold nothing open (by design), so close() would wait on them with
          // an empty event loop: end them from this side
          for (const s of sessions) s.destroy()
          await new Promise((r) => server.close(r))
        },
      }
    }

    it('a server that offers only HTTP/1.1: the requests go over HTTP/1.1, and keep doing so', async () => {
      const seen: string[] = []
      const server = https.createServer(
        { cert: fs.readFileSync(pki.serverCert), key: fs.readFileSync(pki.serverKey) },
        (req, res) => {
          seen.push(`${req.method} ${req.url} HTTP/${req.httpVersion} ${req.headers.authorization}`)
          res.writeHead(200, { 'Content-Type': 'application/json' })
          res.end(JSON.stringify({ kind: 'Status', path: req.url }))
        },
      )
      const url = await listen(server)
      try {
        const k = kubeFor(url, pki.caCert)
        for (const p of ['/a', '/b']) assert.deepEqual(await rest(k, 'GET', p), { kind: 'Status', path: p })
        assert.deepEqual(seen, ['GET /a HTTP/1.1 Bearer x', 'GET /b HTTP/1.1 Bearer x'])
        assert.deepEqual(transportOf(k), { protocol: 'http/1.1', sessions: 1 }) // h2 asked for once, refused, not again
      } finally {
        server.closeAllConnections()
        await new Promise((r) => server.close(r))
      }
    })

    /** `request` ends as NoAnswer within `boundMs` (and a margin for a busy machine). */
    const ends = async (what: string, request: Promise<unknown>, boundMs: number) => {
      const t0 = Date.now()
      const err = await request.then(
        () => undefined,
        (e: unknown) => e,
      )
      const took = Date.now() - t0
      assert.ok(err instanceof NoAnswer, `${what}: ${String(err)}`)
      assert.ok(took < boundMs + 1_500, `${what} ended ${took} ms after it started (bound ${boundMs} ms)`)
      assert.match(
        err.message,
        /^GET \/api\/v1\/namespaces\/x: no answer from https:\/\/127\.0\.0\.1:\d+ within \d+ (ms|s)$/,
      )
      assert.match(err.hint ?? '', /API server stopped answering/)
    }

    it('a server that takes connections and never answers (a stopped apiserver: the kernel still accepts): every request ends within its bound, as NoAnswer', async () => {
      const sockets = new Set<net.Socket>()
      const server = net.createServer((s) => sockets.add(s))
      const port = await new Promise<number>((resolve) =>
        server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)),
      )
      try {
        const k = kubeFor(`https://127.0.0.1:${port}`, pki.caCert)
        // the TLS handshake never ends: the HTTP/2 session is given up with the request
        await ends('rest over HTTP/2', rest(k, 'GET', '/api/v1/namespaces/x', { timeoutMs: 500 }), 500)
        process.env.NSOPS_HTTP2 = '0'
        try {
          await ends('rest over HTTP/1.1', rest(k, 'GET', '/api/v1/namespaces/x', { timeoutMs: 500 }), 500)
        } finally {
          delete process.env.NSOPS_HTTP2
        }
        // client-node sets no timeout of its own; a client bounded by a deadline ends by it
        const deadline = withDeadline(k, Date.now() + AFTER_DEADLINE_MS + 1_000)
        await ends('client-node by a deadline', deadline.core.readNamespace({ name: 'x' }), AFTER_DEADLINE_MS + 1_000)
        // past the deadline, a request still gets AFTER_DEADLINE_MS, and no more
        await ends('client-node past the deadline', deadline.core.readNamespace({ name: 'x' }), AFTER_DEADLINE_MS)
      } finally {
        for (const s of sockets) s.destroy()
        await new Promise((r) => server.close(r))
      }
    })

    it('an HTTP/2 server that takes requests and never answers them (stopped after the session opened): NoAnswer by the idle bound or the deadline, not an "HTTP 0" answer', async () => {
      const { url, close } = await h2Server(() => {}) // taken, never answered
      try {
        const k = kubeFor(url, pki.caCert)
        await ends('silence on an open session', rest(k, 'GET', '/api/v1/namespaces/x', { timeoutMs: 500 }), 500)
        assert.equal(transportOf(k).protocol, undefined, 'no answer came over any protocol')
        // the default bound is 30 s of silence; a client's deadline ends the request sooner
        const soon = withDeadline(k, Date.now() + AFTER_DEADLINE_MS + 500)
        await ends('by the deadline', rest(soon, 'GET', '/api/v1/namespaces/x'), AFTER_DEADLINE_MS + 500)
        assert.equal(transportOf(k).sessions, 1, 'the deadline-bound client shares the connection')
      } finally {
        await close()
      }
    })

    it('429 with Retry-After (a CRD whose storage is still being made): sent again after the wait; without it, or after five tries, the 429 is the answer', async () => {
      // the sim gives this for a moment after a CRD is installed, too briefly to hit on purpose
      let turnedAway = 0
      const { url, close } = await h2Server((stream, headers) => {
        const p = String(headers[':path'])
        if ((p === '/busy-once' && turnedAway === 0) || p === '/always-busy' || p === '/no-retry-after') {
          turnedAway++
          stream.respond({
            ':status': 429,
            'content-type': 'application/json',
            ...(p === '/no-retry-after' ? {} : { 'retry-after': '0' }),
          })
          stream.end(JSON.stringify({ kind: 'Status', message: 'storage is (re)initializing', code: 429 }))
          return
        }
        stream.respond({ ':status': 200, 'content-type': 'application/json' })
        stream.end(JSON.stringify({ path: p }))
      })
      try {
        const k = kubeFor(url, pki.caCert)
        assert.deepEqual(await rest(k, 'GET', '/busy-once'), { path: '/busy-once' })
        assert.equal(turnedAway, 1)
        turnedAway = 0
        await assert.rejects(
          rest(k, 'GET', '/always-busy'),
          (e: unknown) => e instanceof ApiException && e.code === 429,
        )
        assert.equal(turnedAway, 5)
        turnedAway = 0
        await assert.rejects(
          rest(k, 'GET', '/no-retry-after'),
          (e: unknown) => e instanceof ApiException && e.code === 429,
        )
        assert.equal(turnedAway, 1)
      } finally {
        await close()
      }
    })

    it('a server that sends GOAWAY after each answer: every request still gets its answer, on a new session', async () => {
      let streams = 0
      const { url, close } = await h2Server((stream, headers) => {
        streams++
        stream.respond({ ':status': 200, 'content-type': 'application/json' })
        stream.end(JSON.stringify({ path: headers[':path'], auth: headers.authorization }))
        stream.session?.goaway()
      })
      try {
        const k = kubeFor(url, pki.caCert)
        const answers = []
        for (const p of ['/one', '/two', '/three']) answers.push(await rest(k, 'GET', p))
        assert.deepEqual(
          answers,
          ['/one', '/two', '/three'].map((p) => ({ path: p, auth: 'Bearer x' })),
        )
        assert.equal(streams, 3)
        assert.equal(transportOf(k).protocol, 'h2')
        assert.ok(transportOf(k).sessions >= 2, `a new session after GOAWAY (${transportOf(k).sessions})`)
      } finally {
        await close()
      }
    })
  })
})
