// A failed build's output where the user looks, off a terminal and on the page: `npx just dev
// observability` with its web page (CI=1: one log line per event), a syntax error saved in
// logdemo's main.go → the log has the compiler's lines under the image, and the page (in
// chromium) shows the image failed with its build log open, the previous digest still named;
// the fix saved → ok again, the log closed.
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { chromium, type Browser } from 'playwright-core'
import { ciRepo, type CiRepo } from '../ci-fixture.ts'
import { testCluster } from '../harness.ts'
import { until } from '../until.ts'

const browserPath = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p))
const MAIN = 'namespaces/observability/src/logdemo/main.go'

describe(
  'a failed build in the dev log and on the page',
  { skip: !browserPath && 'chromium is not installed (.ci/run installs it)' },
  () => {
    let repo: CiRepo
    let child: ChildProcess | undefined
    let browser: Browser | undefined
    let out = ''
    const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-images-page-'))

    before(async () => {
      const cluster = await testCluster()
      repo = ciRepo()
      child = spawn('npx', ['just', 'dev', 'observability', '--no-forwards', '--ui-port', '0'], {
        cwd: repo.work,
        env: {
          ...process.env,
          KUBECONFIG: cluster.kubeconfig,
          NSOPS_PROVIDER: 'existing',
          NSOPS_STATE_DIR: stateDir,
          CI: '1',
          NO_COLOR: '1',
        },
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      child.stdout!.on('data', (b) => (out += b))
      child.stderr!.on('data', (b) => (out += b))
      browser = await chromium.launch({ executablePath: browserPath, args: ['--no-sandbox'] })
    })
    after(async () => {
      await browser?.close()
      if (child && child.exitCode === null) {
        process.kill(-child.pid!, 'SIGINT')
        await new Promise((r) => child!.once('exit', r))
      }
      if (repo) fs.rmSync(repo.root, { recursive: true, force: true })
      fs.rmSync(stateDir, { recursive: true, force: true })
    })

    const edit = (from: string, to: string) => {
      const file = path.join(repo.work, MAIN)
      fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace(from, to))
    }

    it('shows the compiler output in the log and, open, on the page; the fix closes it', async () => {
      const url = await until(
        'the page and the loop watching',
        async () => /watching for saves/.test(out) && /web: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out)?.[1],
        180_000,
      )
      const page = await browser!.newPage()
      await page.goto(url)
      const image = page.locator('.image', { hasText: 'image logdemo' })
      await until('logdemo ok on the page', async () =>
        (await image.textContent())?.includes('ok') ? true : undefined,
      )
      const before = out.length

      edit('const greeting = "hello from logdemo"', 'const greeting = "hello from logdemo" +')
      // the log: the failure, then the compiler's lines under the image's name
      const log = await until(
        'the failure in the log',
        async () => {
          const s = out.slice(before)
          return /image logdemo: image logdemo did not build/.test(s) &&
            /observability\/logdemo: .*main\.go:\d+:\d+: syntax error/.test(s)
            ? s
            : undefined
        },
        120_000,
      )
      assert.match(log, /observability\/logdemo: \$ go build/)
      // the page: failed, the build log open with the same lines, the last good digest still runs
      await until('failed on the page', async () =>
        (await image.locator('.Failed').first().textContent())?.includes('failed') ? true : undefined,
      )
      assert.equal(await image.locator('details').getAttribute('open'), '')
      assert.match((await image.locator('details pre').textContent()) ?? '', /main\.go:\d+:\d+: syntax error/)
      assert.match((await image.textContent()) ?? '', /runs .*\/observability\/logdemo@sha256:/)

      edit('const greeting = "hello from logdemo" +', 'const greeting = "hello from logdemo"')
      await until('ok again on the page', async () =>
        (await image.locator('.Current').first().textContent())?.includes('ok') ? true : undefined,
      )
      assert.equal(await image.locator('details').getAttribute('open'), null, 'a good build log is closed')
      await page.close()
    })
  },
)
