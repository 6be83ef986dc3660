// How the dev session's logs read in the views: the level a line states (the web page's
// level filter), and the terminal's logs screen (newest lines that fit, app column only when
// more than one app is shown, pod/container only when the app runs several).
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { detectLevel, type FeedLine } from '../../shared/dev/log-feed.ts'
import { logPrefix, renderLogs } from '../../shared/dev/view.ts'

describe('log lines in the dev views', () => {
  it('detects the level a line states, not a lower-case word in prose', () => {
    assert.equal(detectLevel('2026-12-03 ERROR could not connect'), 'error')
    assert.equal(detectLevel('[WARN] slow response'), 'warn')
    assert.equal(detectLevel('time=1 level=debug msg=x'), 'debug')
    assert.equal(detectLevel('{"level":"warning","msg":"x"}'), 'warn')
    assert.equal(detectLevel('INFO Now listening on: http://[::]:8989'), 'info')
    assert.equal(detectLevel('no error here, all fine'), undefined)
    assert.equal(detectLevel('TERRORIST is not a level'), undefined)
  })

  const line = (seq: number, app: string, text: string, source?: string): FeedLine => ({
    seq,
    loop: 'arr-stack',
    app,
    pod: `${app}-1`,
    container: app,
    ts: '2026-12-03T06:00:00.000Z',
    line: text,
    ...(source ? { source } : {}),
  })

  it('the logs screen keeps the newest lines that fit and the app column only for all apps', () => {
    const lines = [line(1, 'sonarr', 'one'), line(2, 'radarr', 'two'), line(3, 'sonarr', 'three')]
    const all = renderLogs(lines, {}, false, 2, 200)
    assert.equal(all.length, 2)
    assert.match(all[0], /radarr\s+│ two/)
    assert.match(all[1], /sonarr\s+│ three/)
    const one = renderLogs(lines, { loop: 'arr-stack', app: 'sonarr' }, false, 10, 200)
    assert.deepEqual(one, ['one', 'three'])
    assert.equal(renderLogs([line(4, 'sonarr', 'x'.repeat(300))], { app: 'sonarr' }, false, 5, 80)[0].length, 80)
  })

  it('off a terminal a line is prefixed with its app, the loop when there are several, and the source when ambiguous', () => {
    assert.equal(logPrefix(line(1, 'sonarr', 'x'), false), '[sonarr]')
    assert.equal(logPrefix(line(1, 'sonarr', 'x', 'sonarr-1/sidecar'), true), '[arr-stack/sonarr sonarr-1/sidecar]')
  })
})
