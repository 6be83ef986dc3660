// How durations read in every view and message: ms, then tenths of seconds, then minutes and
// seconds; a value on the edge carries over (59.96 s is 1 min 0 s, never "60.0 s").
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { duration } from '../../shared/core/output.ts'

describe('output: duration', () => {
  it('reads as ms, s with tenths, then min and s', () => {
    assert.equal(duration(412.4), '412 ms')
    assert.equal(duration(3412), '3.4 s')
    assert.equal(duration(125_000), '2 min 5 s')
  })

  it('carries over on every edge instead of showing 1000 ms, 60.0 s or 60 s', () => {
    assert.equal(duration(999.7), '1.0 s')
    assert.equal(duration(59_960), '1 min 0 s')
    assert.equal(duration(1_199_600), '20 min 0 s') // the live display showed "19 min 60 s"
    assert.equal(duration(119_500), '2 min 0 s')
  })
})
