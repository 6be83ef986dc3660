// The deploy's confirmation: asked only on a terminal, refused without one, no on EOF,
// Interrupted on Ctrl-C; --yes never reads.
import assert from 'node:assert/strict'
import { PassThrough } from 'node:stream'
import { describe, it } from 'node:test'
import { confirm, isYes } from '../../shared/deploy/confirm.ts'
import { Interrupted } from '../../shared/deploy/interrupt.ts'
import { NsopsError } from '../../shared/core/errors.ts'

/** A stream that says it is a terminal, as process.stdin does in one. */
function terminal(): PassThrough & { isTTY: boolean } {
  return Object.assign(new PassThrough(), { isTTY: true })
}

describe('deploy: confirm', () => {
  it('takes y and yes in any case as yes, and anything else as no', () => {
    for (const a of ['y', 'Y', 'yes', ' YES ']) assert.equal(isYes(a), true, a)
    for (const a of ['', 'n', 'no', 'yep', 'y y']) assert.equal(isYes(a), false, a)
  })

  it('answers yes for --yes without reading anything', async () => {
    const input = new PassThrough()
    assert.equal(await confirm('go?', { yes: true, input }), true)
    assert.equal(input.listenerCount('data'), 0)
  })

  it('refuses without a terminal instead of hanging on the prompt', async () => {
    await assert.rejects(confirm('go?', { input: new PassThrough(), what: 'deploying demo' }), (err: unknown) => {
      assert.ok(err instanceof NsopsError)
      assert.match(err.message, /^deploying demo needs a confirmation, and there is no terminal/)
      assert.match(err.hint!, /--yes/)
      return true
    })
  })

  it('asks on a terminal and reads the answer', async () => {
    for (const [answer, expected] of [
      ['y\n', true],
      ['no\n', false],
      ['\n', false],
    ] as const) {
      const input = terminal()
      const output = new PassThrough()
      let asked = ''
      output.on('data', (d) => {
        asked += String(d)
      })
      const pending = confirm('Commit and push?', { input, output })
      input.write(answer)
      assert.equal(await pending, expected, JSON.stringify(answer))
      assert.match(asked, /Commit and push\? \[y\/N\] /)
    }
  })

  it('takes the end of input (Ctrl-D) as no', async () => {
    const input = terminal()
    const pending = confirm('go?', { input, output: new PassThrough() })
    input.end()
    assert.equal(await pending, false)
  })

  it('stops with Interrupted when the deploy is interrupted while it asks', async () => {
    const ac = new AbortController()
    const pending = confirm('go?', { input: terminal(), output: new PassThrough(), signal: ac.signal })
    ac.abort()
    await assert.rejects(pending, Interrupted)
  })
})
