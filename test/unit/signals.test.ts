// How a long-running command ends when its cleanup never does (shared/core/signals.ts): real
// processes (test/fixtures/signals/stuck-cleanup.ts, a cleanup waiting on a cluster that does
// not answer) and real signals. SIGHUP (the terminal closed) and SIGTERM end it at the
// cleanup's deadline with what was left; one Ctrl-C does not (a person is there and can force
// it with two more presses), but a SIGHUP after it does; a cleanup that finishes in time exits
// as it would anyway.
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import path from 'node:path'
import { describe, it } from 'node:test'
import { repoRoot } from '../../shared/core/paths.ts'
import { until } from '../until.ts'

const DEADLINE_MS = 1500

interface Run {
  child: ChildProcess
  out: () => string
  err: () => string
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>
}

async function start(env: Record<string, string> = {}): Promise<Run> {
  const child = spawn(
    path.join(repoRoot, 'shared/bin/nsops-node'),
    [path.join(repoRoot, 'test/fixtures/signals/stuck-cleanup.ts')],
    { env: { ...process.env, SIGNALS_DEADLINE_MS: String(DEADLINE_MS), ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  )
  let out = ''
  let err = ''
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()))
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal, at: Date.now() })),
  )
  await until('the command to install its handlers', async () => out.includes('ready'), 30_000)
  return { child, out: () => out, err: () => err, exited }
}

/** Whether the process is still running `ms` after now (its deadline passed meanwhile). */
async function stillRunningAfter(r: Run, ms: number): Promise<boolean> {
  const ended = await Promise.race([r.exited.then(() => true), new Promise((ok) => setTimeout(() => ok(false), ms))])
  return !ended
}

describe('the cleanup nobody can cut short has a deadline', () => {
  for (const [sig, code] of [
    ['SIGHUP', 129],
    ['SIGTERM', 143],
  ] as const) {
    it(`${sig}: exits ${code} at the deadline, saying what it was doing, what is left and what finishes it`, async () => {
      const r = await start()
      const t0 = Date.now()
      r.child.kill(sig)
      const { code: got, at } = await r.exited
      assert.equal(got, code, r.err())
      assert.ok(at - t0 >= DEADLINE_MS - 50, `exited after ${at - t0} ms: before the deadline`)
      assert.ok(at - t0 < DEADLINE_MS + 10_000, `exited after ${at - t0} ms`)
      assert.match(r.out(), new RegExp(`cleanup: ${sig}`))
      assert.match(
        r.err(),
        /the cleanup did not finish within 2 s \(still deleting the dev-only objects of stuck\): exiting\./,
      )
      assert.match(
        r.err(),
        /stuck: left the dev-only objects in stuck-dev\nRun `just dev-down` to finish the cleanup\./,
      )
    })
  }

  it('one Ctrl-C: no deadline (a person can force it); two more presses force the exit with what is left', async () => {
    const r = await start()
    r.child.kill('SIGINT')
    await until('the cleanup to start', async () => r.out().includes('cleanup: SIGINT'), 10_000)
    assert.equal(await stillRunningAfter(r, DEADLINE_MS * 2), true, `exited: ${r.err()}`)
    // presses, not a relayed signal: further apart than the relay window (300 ms)
    r.child.kill('SIGINT')
    await until('the second press to be answered', async () => /Press Ctrl-C again/.test(r.err()), 10_000)
    await new Promise((ok) => setTimeout(ok, 400))
    r.child.kill('SIGINT')
    const { code } = await r.exited
    assert.equal(code, 130)
    assert.match(r.err(), /forced exit while deleting the dev-only objects of stuck\./)
    assert.match(r.err(), /stuck: left the dev-only objects in stuck-dev/)
  })

  it('Ctrl-C, then the terminal closes (SIGHUP): nobody can force it any more, so the deadline ends it (130)', async () => {
    const r = await start()
    r.child.kill('SIGINT')
    await until('the cleanup to start', async () => r.out().includes('cleanup: SIGINT'), 10_000)
    const t0 = Date.now()
    r.child.kill('SIGHUP')
    const { code, at } = await r.exited
    assert.equal(code, 130, r.err())
    assert.ok(at - t0 >= DEADLINE_MS - 50, `exited after ${at - t0} ms: before the deadline`)
    assert.match(r.err(), /the cleanup did not finish within/)
  })

  it('a cleanup that finishes before the deadline exits as it always did, with nothing said about a deadline', async () => {
    const r = await start({ SIGNALS_FINISH_MS: '200' })
    r.child.kill('SIGHUP')
    const { code } = await r.exited
    assert.equal(code, 129)
    assert.match(r.out(), /cleanup done/)
    assert.doesNotMatch(r.err(), /did not finish/)
  })
})
