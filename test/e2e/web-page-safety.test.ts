// The web page (shared/web/page.html) in Debian's chromium, served by the real page server
// with snapshots this test writes: it works under its Content-Security-Policy (live stream,
// clicks, actions with the token; not one violation), and what a snapshot holds cannot run
// code — neither pushed live (markup in numbers, javascript: links) nor opened from a file,
// which is checked against the snapshot's shape and opened without the session's token.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { chromium, type Browser, type Page } from 'playwright-core'
import { startPageServer, type PageServer } from '../../shared/web/server.ts'
import { until } from '../until.ts'

const browserPath = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p))

const XSS = (n: number) => `<img src=x onerror="window.__pwned=${n}">`

function loop(name: string, app: Record<string, unknown>, lastApply?: Record<string, unknown>) {
  return {
    name,
    status: {
      target: `${name}-dev`,
      phase: 'watching',
      flux: 'not managed',
      resources: [
        {
          kind: 'Deployment',
          name: String(app.app),
          status: 'Current',
          message: '',
          pods: [{ name: `${String(app.app)}-1`, status: 'Running', ready: '1/1', restarts: app.restarts }],
        },
      ],
      forwards: [],
      tasks: [],
      ...(lastApply ? { lastApply } : {}),
    },
    apps: [{ status: 'Current', ready: '1/1', message: '', ...app }],
    other: [],
  }
}

const snapshot = (loops: unknown[]) => ({
  schema: 'nsops.dev-web/v1',
  at: '2026-12-06T01:00:00.000Z',
  context: 'sim',
  server: 'https://127.0.0.1:1',
  loops,
})

describe(
  'the web page under its CSP, and snapshots that try to run code',
  { skip: !browserPath && 'chromium is not installed (.ci/run installs it)' },
  () => {
    let server: PageServer
    let browser: Browser
    let page: Page
    let current: unknown = snapshot([loop('shop', { app: 'web', restarts: 2, forward: 'http://127.0.0.1:8080' })])
    const actions: string[] = []
    const problems: string[] = []
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-web-page-'))

    before(async () => {
      server = await startPageServer({
        port: 0,
        snapshot: () => current,
        get: (url) => (url.pathname === '/api/events' ? Promise.resolve({ status: 200, body: [] }) : undefined),
        action: async (b) => {
          actions.push(`${b.action} ${b.namespace}`)
          return `did ${b.action} for ${b.namespace}`
        },
      })
      browser = await chromium.launch({ executablePath: browserPath, args: ['--no-sandbox'] })
      page = await browser.newPage()
      // every CSP violation and script error the page meets is a failure of this test
      page.on('console', (m) => {
        // (the browser asks for a favicon on its own; the page has none)
        if (m.type() === 'error' && !m.location().url.endsWith('/favicon.ico')) problems.push(m.text())
      })
      page.on('pageerror', (e) => problems.push(e.message))
    })
    after(async () => {
      await browser?.close()
      await server?.close()
      fs.rmSync(tmp, { recursive: true, force: true })
    })

    it('works under the policy: live over the stream, a row opens its detail, an action goes out with the token', async () => {
      await page.goto(server.url)
      await page.waitForSelector('#conn:has-text("live")')
      await page.waitForSelector('tr.app[data-app="web"]')
      await page.click('tr.app[data-app="web"]')
      await page.waitForSelector('#detail:not([hidden]) tbody.pods tr[data-pod="web-1"]')
      await page.click('#close')
      await page.waitForSelector('#detail', { state: 'hidden' })
      await page.click('button[data-action="reapply"]')
      await page.waitForSelector('#result:has-text("did reapply for shop")')
      assert.deepEqual(actions, ['reapply shop'])
      // a change pushed by the server shows without a reload
      current = snapshot([loop('shop', { app: 'api', restarts: 0 })])
      server.changed()
      await page.waitForSelector('tr.app[data-app="api"]')
      assert.deepEqual(problems, [], 'no CSP violation nor script error')
      // the link a forward shows is a plain http link
      current = snapshot([loop('shop', { app: 'web', restarts: 0, forward: 'http://127.0.0.1:8080' })])
      server.changed()
      await page.waitForSelector('a[href="http://127.0.0.1:8080"]')
    })

    it('markup in numbers and javascript: links pushed live are shown as text and run nothing', async () => {
      current = snapshot([
        loop(
          'shop',
          { app: 'evil', restarts: XSS(1), forward: 'javascript:window.__pwned=2' },
          { at: '2026-12-06T01:00:00.000Z', trigger: 'x', created: XSS(3), configured: 0, pruned: 0, ms: XSS(4) },
        ),
      ])
      server.changed()
      await page.waitForSelector('tr.app[data-app="evil"]')
      await page.click('tr.app[data-app="evil"]')
      await page.waitForSelector('#detail:not([hidden]) tbody.pods tr')
      assert.equal(await page.evaluate('window.__pwned'), undefined, 'no script ran')
      assert.equal(await page.locator('img').count(), 0, 'no element was made from a value')
      assert.equal(await page.locator('a[href^="javascript:" i]').count(), 0, 'no javascript: link')
      assert.match(await page.locator('tr.app[data-app="evil"]').innerText(), /<img src=x onerror/)
    })

    it('a snapshot file of the wrong shape is refused, naming the field; nothing of it is shown', async () => {
      const bad = path.join(tmp, 'bad.json')
      fs.writeFileSync(
        bad,
        JSON.stringify(snapshot([loop('evil', { app: 'evil2', restarts: XSS(5), forward: 'http://x' })])),
      )
      await page.setInputFiles('#open', bad)
      await page.waitForSelector('#result.err')
      assert.match(
        await page.locator('#result').innerText(),
        /bad\.json: not an nsops snapshot: loops\[0\]\.[\w.[\]]*restarts should be a number/,
      )
      assert.equal(await page.locator('tr.app[data-app="evil2"]').count(), 0)
      assert.equal(await page.evaluate('window.__pwned'), undefined)
    })

    it('a snapshot file opens without the token and the stream; its markup and links run nothing; actions are off', async () => {
      const file = path.join(tmp, 'crafted.json')
      fs.writeFileSync(
        file,
        JSON.stringify({
          ...snapshot([
            loop(`x${XSS(6)}`, { app: `a${XSS(7)}`, restarts: 1, forward: 'javascript:window.__pwned=8' }),
            loop('data', { app: 'd', restarts: 0, forward: 'data:text/html,<script>window.__pwned=9</script>' }),
          ]),
          at: XSS(10),
          logs: [{ seq: 1, loop: 'data', app: 'd', pod: XSS(11), container: 'c', ts: XSS(12), line: XSS(13) }],
        }),
      )
      await page.setInputFiles('#open', file)
      await page.waitForSelector('#conn .offline')
      await page.waitForSelector('tr.app[data-app="d"]')
      await page.click('tr.app[data-app="d"]')
      await page.waitForSelector('#log-lines .ll')
      assert.equal(await page.evaluate('window.__pwned'), undefined, 'no script ran')
      assert.equal(await page.locator('img').count(), 0)
      assert.equal(await page.locator('a[href^="javascript:" i], a[href^="data:" i]').count(), 0)
      // the session's token is gone from the page and no action is sent
      assert.equal(await page.locator('meta[name=nsops-token]').count(), 0)
      assert.equal(await page.evaluate('typeof token === "undefined" ? "gone" : String(token)'), 'null')
      const before = actions.length
      await page.evaluate(`document.querySelector('button[data-action="reapply"]').click()`)
      await page.waitForSelector('#result:has-text("a snapshot is open: actions are off")')
      assert.equal(actions.length, before, 'no action reached the server')
      // the page closed its live stream: it shows the file, and nothing of the session reaches it
      await until('the page closed its event stream', async () => server.streams().clients === 0)
      assert.deepEqual(problems, [], 'no CSP violation nor script error')
    })
  },
)
