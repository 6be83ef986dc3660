// A static file server on 127.0.0.1 for tests that need a real HTTP repository (Helm charts).
// `onRequest` sees every path asked for, so a test can prove that nothing was fetched.
import fs from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import path from 'node:path'

export interface StaticServer {
  url: string
  stop(): Promise<void>
}

export async function serveDir(root: string, onRequest: (url: string) => void = () => {}): Promise<StaticServer> {
  const server = http.createServer((req, res) => {
    onRequest(req.url ?? '')
    const file = path.join(root, decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname))
    if (!file.startsWith(root) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404).end('not found')
      return
    }
    res.writeHead(200, { 'content-type': file.endsWith('.yaml') ? 'text/yaml' : 'application/gzip' })
    fs.createReadStream(file).pipe(res)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
