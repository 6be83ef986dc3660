// The dev session's web page in a real browser (Debian's chromium driven by playwright-core):
// served by ./namespaces/arr-stack/dev.ts on the sim cluster, live without reloads (status and
// log lines), actions guarded by the session token and the origin. With NSOPS_UPDATE_SCREENSHOTS=1 it also saves
// the screenshots the README shows (docs/web-ui.png, docs/web-ui-app.png).
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { chromium, type Browser, type Page } from 'playwright-core'
import { appendContainerLog, currentRun } from '../../shared/cluster/sim/container-logs.ts'
import { repoRoot } from '../../shared/core/paths.ts'
import { testCluster, type TestCluster } from '../harness.ts'
import { until } from '../until.ts'

const browserPath = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p))

describe(
  'the dev web page in chromium',
  { skip: !browserPath && 'chromium is not installed (.ci/run installs it)' },
  () => {
    let cluster: TestCluster
    let child: ChildProcess
    let out = ''
    let url = ''
    let browser: Browser
    let page: Page
    const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-web-state-'))

    before(async () => {
      cluster = await testCluster()
      child = spawn(
        path.join(repoRoot, 'namespaces/arr-stack/dev.ts'),
        ['--no-forwards', '--ui-port', '0', '--kubeconfig', cluster.kubeconfig],
        {
          env: { ...process.env, CI: '1', NO_COLOR: '1', NSOPS_STATE_DIR: stateDir, NODE_OPTIONS: '' },
          stdio: ['ignore', 'ignore', 'pipe'],
        },
      )
      child.stderr!.on('data', (b) => {
        out += b
      })
      url = await until(
        'the page URL and a healthy sonarr',
        async () => /Deployment\/sonarr Current/.test(out) && /web: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out)?.[1],
        120_000,
      )
      browser = await chromium.launch({ executablePath: browserPath, args: ['--no-sandbox'] })
      page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
    })
    after(async () => {
      await browser?.close()
      if (child && child.exitCode === null) {
        child.kill('SIGINT')
        await new Promise((r) => child.once('exit', r))
      }
      fs.rmSync(stateDir, { recursive: true, force: true })
    })

    it('loads with one row per app, and follows a pod deleted with kubectl without a reload', async () => {
      await page.goto(url)
      await page.waitForSelector('tr.app[data-app="sonarr"] [data-status="Current"]')
      assert.equal(await page.locator('section.loop[data-ns="arr-stack"] tr.app').count(), 8)
      if (process.env.NSOPS_UPDATE_SCREENSHOTS === '1')
        await page.screenshot({ path: path.join(repoRoot, 'docs/web-ui.png'), fullPage: true })

      await page.click('tr.app[data-app="sonarr"]')
      const podRow = page.locator('#detail tbody.pods tr')
      await podRow.first().waitFor()
      const before = await podRow.first().getAttribute('data-pod')
      await cluster.kube.core.deleteNamespacedPod({ name: before!, namespace: 'arr-stack-dev' })
      // pushed to the page: the replacement shows in the same page, no reload (read from here:
      // the page's CSP allows no string evaluated as script, as waitForFunction would do)
      await until(
        'the replacement pod in the page',
        async () => {
          const rows = await page.locator('#detail tbody.pods tr').all()
          const pods = await Promise.all(rows.map((r) => r.getAttribute('data-pod')))
          return pods.length > 0 && pods.every((p) => p !== before)
        },
        10_000,
      )
    })

    it(
      "a log line written on sim shows in the app's pane, live; the filters hide what does not match; the piped log carries it prefixed",
      { skip: process.env.NSOPS_TEST_CONTEXT ? "writes a simulated container's log: needs the sim cluster" : false },
      async () => {
        const pod = await until(
          'a running sonarr pod with its log',
          async () => {
            const pods = await cluster.kube.core.listNamespacedPod({
              namespace: 'arr-stack-dev',
              labelSelector: 'app.kubernetes.io/name=sonarr',
            })
            const p = pods.items.find((x) => x.status?.podIP && !x.metadata?.deletionTimestamp)
            const ref = p && {
              namespace: 'arr-stack-dev',
              pod: p.metadata!.name!,
              uid: p.metadata!.uid!,
              container: p.spec!.containers[0].name,
            }
            return ref && currentRun(cluster.sim!.podLogRoot, ref) !== undefined ? ref : undefined
          },
          60_000,
        )
        await page.click('tr.app[data-app="sonarr"]')
        await page.waitForSelector('#logpane')
        const mark = `e2e-${Date.now()}`
        appendContainerLog(cluster.sim!.podLogRoot, pod, [
          `INFO ${mark} hello from sonarr`,
          `ERROR ${mark} something failed`,
        ])
        const pane = page.locator('#log-lines')
        await pane.locator(`.ll:has-text("${mark} hello from sonarr")`).waitFor({ timeout: 10_000 })
        await pane.locator(`.ll.error:has-text("${mark} something failed")`).waitFor()
        // text filter: only the matching line stays
        await page.fill('#log-text', 'hello from')
        await pane.locator(`.ll:has-text("${mark} something failed")`).waitFor({ state: 'detached' })
        assert.equal(await pane.locator(`.ll:has-text("${mark}")`).count(), 1)
        // level filter: errors only
        await page.fill('#log-text', mark)
        await page.selectOption('#log-level', 'error')
        await pane.locator(`.ll:has-text("${mark} hello from sonarr")`).waitFor({ state: 'detached' })
        assert.equal(await pane.locator(`.ll:has-text("${mark}")`).count(), 1)
        // a line that arrives while filtered shows only if it matches
        appendContainerLog(cluster.sim!.podLogRoot, pod, [
          `INFO ${mark} later, not an error`,
          `ERROR ${mark} later error`,
        ])
        await pane.locator(`.ll:has-text("${mark} later error")`).waitFor({ timeout: 10_000 })
        assert.equal(await pane.locator(`.ll:has-text("${mark} later, not an error")`).count(), 0)
        await page.selectOption('#log-level', '')
        await page.fill('#log-text', '')
        await pane.locator(`.ll:has-text("${mark} later, not an error")`).waitFor()
        if (process.env.NSOPS_UPDATE_SCREENSHOTS === '1')
          await page.screenshot({ path: path.join(repoRoot, 'docs/web-ui-app.png'), fullPage: true })
        // off a terminal (this process reads the loop's piped stderr) the line is printed with its app
        // ([sonarr pod/container] while the replaced pod of the first test is still followed)
        const prefixed = new RegExp(`^\\[sonarr(?: sonarr-[\\w-]+/sonarr)?\\] INFO ${mark} hello from sonarr$`, 'm')
        await until('the prefixed line in the piped log', async () => prefixed.test(out), 10_000).catch((err) => {
          throw new Error(
            `${(err as Error).message}; its lines:\n${out
              .split('\n')
              .filter((l) => l.includes(mark))
              .join('\n')}`,
          )
        })
      },
    )

    it('"re-apply now" triggers an apply that the terminal log shows', async () => {
      const seen = out.length
      await page.click('section.loop[data-ns="arr-stack"] button[data-action="reapply"]')
      await until(
        'the apply in the terminal log',
        async () => /arr-stack: applied \(web: re-apply/.test(out.slice(seen)),
        30_000,
      )
      // and the task that runs after every apply (sonarr-ready, on: apply) has run
      await until(
        'the on-apply task after it',
        async () => /arr-stack: task sonarr-ready succeeded/.test(out.slice(seen)),
        60_000,
      )
      await page.waitForSelector('#result:has-text("re-applying arr-stack")')
    })

    it("a task's button runs it; the terminal log shows its run", async () => {
      // the re-apply above runs it too (on: apply): wait until that run has ended
      await page.waitForSelector('button[data-task="sonarr-ready"] .Current', { timeout: 60_000 })
      const seen = out.length
      await page.click('section.loop[data-ns="arr-stack"] button[data-action="task"][data-task="sonarr-ready"]')
      await page.waitForSelector('#result:has-text("running the task sonarr-ready of arr-stack")')
      await until(
        'the task run in the log',
        async () => /arr-stack: task sonarr-ready succeeded/.test(out.slice(seen)),
        60_000,
      )
      assert.match(
        out.slice(seen),
        /arr-stack\/sonarr-ready: \$ kubectl -n arr-stack-dev rollout status deploy\/sonarr/,
      )
    })

    it('an action without the token, or from another origin, is refused', async () => {
      const base = new URL(url)
      const noToken = await fetch(new URL('/api/action', base), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ action: 'stop' }),
      })
      assert.equal(noToken.status, 403)
      const token = await page.locator('meta[name=nsops-token]').getAttribute('content')
      const foreign = await fetch(new URL('/api/action', base), {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-nsops-token': token!, origin: 'http://evil.example' },
        body: JSON.stringify({ action: 'stop' }),
      })
      assert.equal(foreign.status, 403)
      assert.equal(child.exitCode, null, 'the session still runs')
      // the snapshot the page exports holds no Secret data: only names and health
      // the export needs the token too (or the page's cookie): another site cannot read it
      assert.equal((await fetch(new URL('/api/snapshot', base))).status, 403)
      const snap = (await (
        await fetch(new URL('/api/snapshot', base), { headers: { 'x-nsops-token': token! } })
      ).json()) as {
        schema: string
        loops: { apps: unknown[] }[]
      }
      assert.equal(snap.schema, 'nsops.dev-web/v1')
      assert.equal(snap.loops[0].apps.length, 8)
    })

    it('"stop session" ends the loop with its cleanup, as Ctrl-C does', async () => {
      // "stop session" asks first (a confirm dialog); accept it
      page.once('dialog', (d) => void d.accept().catch(() => {}))
      await page.click('button[data-action="stop"]')
      const code = await new Promise<number | null>((r) =>
        child.exitCode !== null ? r(child.exitCode) : child.once('exit', (c) => r(c)),
      )
      assert.equal(code, 0, out.slice(-2000))
      assert.match(out, /deleted \d+ dev-only object/)
      const deps = await cluster.kube.apps.listNamespacedDeployment({ namespace: 'arr-stack-dev' })
      assert.equal(deps.items.length, 0)
    })
  },
)
