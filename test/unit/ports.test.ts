// Ports for the components we start: distinct, bindable, and outside the kernel's ephemeral
// range, where a client connection's local port could take one before the component binds it.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import net from 'node:net'
import { describe, it } from 'node:test'
import { freePort, reclaimPort } from '../../shared/core/ports.ts'

const ephemeralStart = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0])

describe('free ports', () => {
  it('hands out distinct ports below the ephemeral range, even to concurrent callers', async () => {
    const ports = await Promise.all(Array.from({ length: 40 }, () => freePort()))
    assert.equal(new Set(ports).size, ports.length)
    for (const p of ports) assert.ok(p >= 1024 && p < ephemeralStart, `${p} is outside 1024..${ephemeralStart - 1}`)
  })

  it('skips a port something already listens on', async () => {
    const listen = (port: number) =>
      new Promise<net.Server | undefined>((resolve) => {
        const srv = net.createServer()
        srv.once('error', () => resolve(undefined))
        srv.listen(port, '127.0.0.1', () => resolve(srv))
      })
    const close = (srv: net.Server) => new Promise((resolve) => srv.close(resolve))
    // a taken port whose neighbour is free, below the ephemeral range: in the ephemeral range a
    // neighbour is often some client connection's local port on a busy machine (CI saw one).
    // Below the 12,000 ports freePort picks from by default, too: the whole suite runs in one
    // process, and a neighbour an earlier test was handed is never handed out again (CI saw
    // that as well: the pick fell back to another port)
    const below = Math.max(2048, ephemeralStart - 12_001)
    let srv: net.Server | undefined
    let busy = 0
    while (!srv) {
      busy = 1024 + Math.floor(Math.random() * (below - 1026))
      srv = await listen(busy)
      const neighbour = srv && (await listen(busy + 1))
      if (neighbour) {
        await close(neighbour)
      } else if (srv) {
        await close(srv)
        srv = undefined
      }
    }
    try {
      // a window of two ports, one of them taken: the pick must be the other one
      const got = await freePort([busy, busy + 1])
      assert.equal(got, busy + 1)
    } finally {
      await close(srv)
    }
  })

  it('reclaims a kept port a dying process still holds for a moment; gives up on one held longer', async () => {
    const port = await freePort()
    const holder = net.createServer()
    await new Promise<void>((resolve) => holder.listen(port, '127.0.0.1', resolve))
    const reclaiming = reclaimPort(port, 2000)
    setTimeout(() => holder.close(), 300)
    assert.equal(await reclaiming, port, 'taken back once the holder let go')
    const again = net.createServer()
    await new Promise<void>((resolve) => again.listen(port, '127.0.0.1', resolve))
    try {
      assert.equal(await reclaimPort(port, 300), undefined, 'still held after the wait')
    } finally {
      await new Promise((resolve) => again.close(resolve))
    }
  })
})
