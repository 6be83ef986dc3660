// The flags every command shares: Go durations (how flux and kubectl print them) and
// `-o json` as a synonym of --json.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { goDuration, parseCommand, parseDuration } from '../../shared/cli.ts'
import { NsopsError } from '../../shared/errors.ts'

describe('cli: durations', () => {
  it('reads Go durations: 90s, 1m30s, 5m0s, 300ms, 1h, 1.5h, 2h45m', () => {
    assert.equal(parseDuration('90s'), 90_000)
    assert.equal(parseDuration('1m30s'), 90_000)
    assert.equal(parseDuration('5m0s'), 300_000)
    assert.equal(parseDuration('300ms'), 300)
    assert.equal(parseDuration('1h'), 3_600_000)
    assert.equal(parseDuration('1.5h'), 5_400_000)
    assert.equal(parseDuration('2h45m'), 9_900_000)
    assert.equal(parseDuration('1m0.5s'), 60_500)
  })

  it('takes a bare number as seconds, as the flags always did', () => {
    assert.equal(parseDuration('90'), 90_000)
  })

  it('refuses what is not a duration, naming the flag and giving examples', () => {
    for (const bad of ['5 m', '1m30', 'm', '5d', '-5m', '', '1h-5m']) {
      assert.throws(() => parseDuration(bad, '--timeout'), (err: unknown) => {
        assert.ok(err instanceof NsopsError, String(err))
        assert.match(err.message, /--timeout/)
        assert.match(err.hint ?? '', /1m30s/)
        return true
      }, bad)
    }
  })

  it('refuses zero unless the flag gives 0 a meaning', () => {
    assert.throws(() => parseDuration('0s'), /longer than 0/)
    assert.equal(parseDuration('0', '--timeout', { allowZero: true }), 0)
    assert.equal(goDuration('0s'), 0)
    assert.equal(goDuration(undefined), undefined)
  })
})

describe('cli: -o json', () => {
  const spec = { usage: 'Usage: x', options: { json: { type: 'boolean' as const } } }

  it('sets json for -o json and --output json, as --json does', () => {
    assert.equal((parseCommand(['-o', 'json'], spec).values as { json?: boolean }).json, true)
    assert.equal((parseCommand(['--output=json'], spec).values as { json?: boolean }).json, true)
    assert.equal((parseCommand(['--json'], spec).values as { json?: boolean }).json, true)
    assert.equal((parseCommand([], spec).values as { json?: boolean }).json, undefined)
  })

  it('refuses other formats, and -o on a command without --json', () => {
    assert.throws(() => parseCommand(['-o', 'yaml'], spec), /only output format is json/)
    assert.throws(() => parseCommand(['-o', 'json'], { usage: 'Usage: y', options: {} }), NsopsError)
  })
})
