// What stands behind a simulated container's ports: a small HTTP app per (pod, port), all
// served by one http.Server in this process. kwok's PortForward for the pod sends each port
// to its own 127.0.0.1 listener here, because a forwarded connection carries nothing else
// that says which pod it is for. The app answers as a health-checked app would:
//   the paths of the container's httpGet readiness/liveness/startup probes → 200,
//   `/` → a page naming the pod, its image and that it is simulated, anything else → 404;
// and each request is printed to the container's log, as an app's access log would be.
import http from 'node:http'
import net from 'node:net'

export interface PortApp {
  namespace: string
  pod: string
  container: string
  image: string
  port: number
  /** httpGet probe paths declared for this port (path only, no query) */
  probePaths: Set<string>
}

export interface PortListener {
  app: PortApp
  localPort: number
  close(): Promise<void>
}

const apps = new WeakMap<net.Socket, PortApp>()

export class ContainerPortServer {
  private readonly http: http.Server

  constructor(private readonly onRequest: (app: PortApp, line: string) => void = () => {}) {
    this.http = http.createServer((req, res) => this.answer(req, res))
    this.http.keepAliveTimeout = 5000
  }

  /** Opens a 127.0.0.1 listener on a free port for one container port. */
  async listen(app: PortApp): Promise<PortListener> {
    const server = net.createServer((socket) => {
      apps.set(socket, app)
      this.http.emit('connection', socket)
    })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(0, '127.0.0.1', () => {
        server.off('error', reject)
        resolve()
      })
    })
    const localPort = (server.address() as net.AddressInfo).port
    return {
      app,
      localPort,
      close: () => new Promise<void>((resolve) => server.close(() => resolve())),
    }
  }

  close(): void {
    this.http.closeAllConnections()
  }

  private answer(req: http.IncomingMessage, res: http.ServerResponse): void {
    const app = apps.get(req.socket)
    if (!app) {
      res.statusCode = 500
      res.end()
      return
    }
    const pathname = new URL(req.url ?? '/', 'http://x').pathname
    let status: number
    if (app.probePaths.has(pathname)) {
      status = 200
      res.setHeader('content-type', 'text/plain; charset=utf-8')
      res.end('ok\n')
    } else if (pathname === '/') {
      status = 200
      res.setHeader('content-type', 'text/html; charset=utf-8')
      res.end(page(app))
    } else {
      status = 404
      res.statusCode = 404
      res.setHeader('content-type', 'text/plain; charset=utf-8')
      res.end(
        `404 not found: ${pathname} (simulated pod ${app.namespace}/${app.pod} answers ${[...app.probePaths].join(', ') || 'no probe paths'} and /)\n`,
      )
    }
    this.onRequest(app, `${req.method} ${req.url} ${status}`)
  }
}

function escape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

function page(app: PortApp): string {
  const probes = [...app.probePaths].map((p) => `<li><a href="${escape(p)}">${escape(p)}</a></li>`).join('')
  return `<!doctype html><meta charset="utf-8"><title>${escape(app.pod)} (simulated)</title>
<h1>${escape(app.namespace)}/${escape(app.pod)}</h1>
<p>Simulated by the nsops sim cluster: no container runs here. Container <b>${escape(app.container)}</b>,
image <code>${escape(app.image)}</code>, port ${app.port}.</p>
<p>Probe paths answering 200:</p><ul>${probes || '<li>(none declared)</li>'}</ul>
`
}
