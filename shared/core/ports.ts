// Free TCP ports on 127.0.0.1 for the components we start (etcd, kube-apiserver, controllers).
// A port the OS hands out for bind(0) comes from the ephemeral range, the same range every
// outgoing connection takes its local port from: in the moment between picking a port and
// the component binding it, a client connection (ours or anyone's) can take it, and the
// component dies with "address already in use". So ports are picked below that range,
// checked bindable, and never handed out twice by one process.
import fs from 'node:fs'
import net from 'node:net'

const handedOut = new Set<number>()

/** The kernel's ephemeral range start (Linux); 32768 where it cannot be read. */
function ephemeralStart(): number {
  try {
    const lo = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0])
    return Number.isInteger(lo) && lo > 2048 ? lo : 32768
  } catch {
    return 32768
  }
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer()
    srv.unref()
    srv.once('error', () => resolve(false))
    srv.listen({ port, host: '127.0.0.1', exclusive: true }, () => srv.close(() => resolve(true)))
  })
}

function bindAny(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.unref()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo
      srv.close(() => resolve(port))
    })
  })
}

/** A port on 127.0.0.1 that nothing listens on now, outside the ephemeral range when possible. */
export async function freePort(range?: [number, number]): Promise<number> {
  const hi = range?.[1] ?? ephemeralStart() - 1
  const lo = range?.[0] ?? Math.max(1024, hi - 12_000)
  for (let i = 0; i < 50 && hi >= lo; i++) {
    const port = lo + Math.floor(Math.random() * (hi - lo + 1))
    if (handedOut.has(port)) continue
    handedOut.add(port) // reserved before the async check, so concurrent callers never share one
    if (await canBind(port)) return port
  }
  for (;;) {
    const port = await bindAny()
    if (!handedOut.has(port)) {
      handedOut.add(port)
      return port
    }
  }
}

/** How long a kept port may stay taken before another is picked (see reclaimPort). */
const RECLAIM_WAIT_MS = 1000

/**
 * `port` again if nothing listens on it (a component taking back the port it had before a
 * restart, so URLs naming it stay valid), else undefined. A process that was just killed can
 * still hold its socket for a moment after it looks gone (Linux frees its memory, and so its
 * command line, before its files): a taken port is tried again for up to a second. Allowed
 * even when this process handed it out before: that was the same component's earlier run.
 */
export async function reclaimPort(port: number, waitMs = RECLAIM_WAIT_MS): Promise<number | undefined> {
  const until = Date.now() + waitMs
  while (!(await canBind(port))) {
    if (Date.now() >= until) return undefined
    await new Promise((r) => setTimeout(r, 50))
  }
  handedOut.add(port)
  return port
}
