// A local smart-HTTP git server: node's http server in front of `git http-backend` run as
// CGI, as a real git host would be. Flux sources and `git clone/push` talk to it the way
// they talk to GitHub or Gitea, so the GitOps loop needs no remote and no credentials.
import { execFile, spawn } from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import zlib from 'node:zlib'

const run = promisify(execFile)

export interface GitServerOptions {
  /** directory holding the bare repositories; `<root>/x.git` is served at `<url>/x.git` */
  root: string
  /** default 0: any free port */
  port?: number
}

export interface GitServer {
  /** http://127.0.0.1:PORT, without a trailing slash */
  url: string
  port: number
  root: string
  /** the clone URL of a repository under root, e.g. urlFor('app.git') */
  urlFor(repo: string): string
  stop(): Promise<void>
}

/**
 * Creates a bare repository under root whose HEAD is `branch`, with push over HTTP allowed
 * (git only enables receive-pack for authenticated users unless http.receivepack is set).
 */
export async function createBareRepo(root: string, name: string, branch = 'main'): Promise<string> {
  const dir = path.join(root, name.endsWith('.git') ? name : `${name}.git`)
  fs.mkdirSync(dir, { recursive: true })
  await run('git', ['init', '--quiet', '--bare', `--initial-branch=${branch}`, dir])
  await run('git', ['-C', dir, 'config', 'http.receivepack', 'true'])
  return dir
}

export async function startGitServer(opts: GitServerOptions): Promise<GitServer> {
  const root = path.resolve(opts.root)
  if (!fs.statSync(root, { throwIfNoEntry: false })?.isDirectory()) {
    throw new Error(`git server root ${root} is not a directory`)
  }
  const { stdout } = await run('git', ['--exec-path'])
  const backend = path.join(stdout.trim(), 'git-http-backend')

  const server = http.createServer((req, res) => serveCgi(backend, root, req, res))
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject)
      resolve()
    })
  })
  const port = (server.address() as AddressInfo).port
  const url = `http://127.0.0.1:${port}`
  return {
    url,
    port,
    root,
    urlFor: (repo) => `${url}/${repo.replace(/^\/+/, '')}`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        // git keeps connections alive; without this close() waits for them to time out
        server.closeAllConnections()
      }),
  }
}

function serveCgi(backend: string, root: string, req: http.IncomingMessage, res: http.ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://127.0.0.1')
  let pathInfo: string
  try {
    pathInfo = decodeURIComponent(url.pathname)
  } catch {
    return fail(res, 'malformed path', 400)
  }
  const encoding = (req.headers['content-encoding'] ?? '').toLowerCase()
  const gzipped = encoding === 'gzip' || encoding === 'x-gzip'
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    GIT_PROJECT_ROOT: root,
    GIT_HTTP_EXPORT_ALL: '1',
    PATH_INFO: pathInfo,
    QUERY_STRING: url.search.replace(/^\?/, ''),
    REQUEST_METHOD: req.method ?? 'GET',
    CONTENT_TYPE: req.headers['content-type'] ?? '',
    REMOTE_ADDR: req.socket.remoteAddress ?? '127.0.0.1',
    SERVER_PROTOCOL: `HTTP/${req.httpVersion}`,
    GATEWAY_INTERFACE: 'CGI/1.1',
  }
  // The body reaches the backend inflated, so the compressed length would be wrong; without
  // CONTENT_LENGTH http-backend reads to EOF, which also covers chunked requests.
  if (req.headers['content-length'] && !gzipped) env.CONTENT_LENGTH = req.headers['content-length']
  // protocol v2 is negotiated through this header (http-backend reads HTTP_GIT_PROTOCOL)
  const proto = req.headers['git-protocol']
  if (typeof proto === 'string') env.HTTP_GIT_PROTOCOL = proto

  const cgi = spawn(backend, [], { env, stdio: ['pipe', 'pipe', 'pipe'] })
  let stderr = ''
  cgi.stderr.on('data', (d: Buffer) => {
    stderr += d.toString()
  })
  cgi.on('error', (err) => fail(res, `git http-backend could not start: ${err.message}`))

  const body = gzipped ? req.pipe(zlib.createGunzip()) : req
  body.on('error', (err) => {
    cgi.kill()
    fail(res, `bad request body: ${err.message}`, 400)
  })
  body.pipe(cgi.stdin)
  cgi.stdin.on('error', () => {
    /* the backend may answer (and exit) before reading all input */
  })

  // CGI output: header lines, a blank line, then the body, piped as it comes
  let head = Buffer.alloc(0)
  let headersSent = false
  const onHead = (chunk: Buffer) => {
    head = Buffer.concat([head, chunk])
    const end = headerEnd(head)
    if (!end) return
    const { status, headers } = parseCgiHeaders(head.subarray(0, end.at).toString('latin1'))
    res.writeHead(status, headers)
    headersSent = true
    cgi.stdout.off('data', onHead)
    const rest = head.subarray(end.at + end.length)
    if (rest.length) res.write(rest)
    cgi.stdout.pipe(res)
  }
  cgi.stdout.on('data', onHead)
  cgi.on('close', (code) => {
    if (!headersSent) fail(res, `git http-backend exited ${code}: ${stderr.trim()}`)
  })
}

function headerEnd(buf: Buffer): { at: number; length: number } | undefined {
  const crlf = buf.indexOf('\r\n\r\n')
  const lf = buf.indexOf('\n\n')
  if (crlf >= 0 && (lf < 0 || crlf < lf)) return { at: crlf, length: 4 }
  if (lf >= 0) return { at: lf, length: 2 }
  return undefined
}

function parseCgiHeaders(text: string): { status: number; headers: Record<string, string> } {
  let status = 200
  const headers: Record<string, string> = {}
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(':')
    if (i <= 0) continue
    const name = line.slice(0, i).trim()
    const value = line.slice(i + 1).trim()
    if (name.toLowerCase() === 'status') status = Number.parseInt(value, 10) || 500
    else headers[name] = value
  }
  return { status, headers }
}

function fail(res: http.ServerResponse, message: string, status = 500): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  res.writeHead(status, { 'Content-Type': 'text/plain' })
  res.end(`${message}\n`)
}

// As a sim cluster component (`just dev-up`): node --import tsx git-server.ts ROOT PORT
// no top-level await: the namespace scripts' bundles that include this module are CommonJS
// (shared/bin/run-bundled.mjs keeps a V8 code cache for them), and CommonJS has none
if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const [root, port] = process.argv.slice(2)
  if (!root || !port) {
    console.error('usage: git-server.ts ROOT PORT')
    process.exit(1)
  }
  void startGitServer({ root, port: Number(port) }).then(
    (srv) => {
      console.log(`serving the bare repositories in ${root} at ${srv.url}`)
      for (const sig of ['SIGTERM', 'SIGINT'] as const)
        process.once(sig, () => void srv.stop().then(() => process.exit(0)))
    },
    (err: unknown) => {
      console.error(`git-server: ${err instanceof Error ? err.message : String(err)}`)
      process.exit(1)
    },
  )
}
