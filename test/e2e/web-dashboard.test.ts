// `dashboard.ts --web` as a user runs it (a namespace's script, here the fixture's), on sim,
// in Debian's chromium: the page shows the namespace's apps and pods, a pod deleted with
// kubectl shows as re-created without a reload (pushed from watch events), the page is
// read-only but "reconcile", an action without the page's token is refused, and Ctrl-C
// stops the server cleanly. With NSOPS_UPDATE_SCREENSHOTS=1 it saves docs/web-dashboard.png.
import assert from 'node:assert/strict'
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { promisify } from 'node:util'
import type { V1Deployment } from '@kubernetes/client-node'
import { chromium, type Browser, type Page } from 'playwright-core'
import { repoRoot } from '../../shared/core/paths.ts'
import { toolPaths } from '../../shared/tools/provision.ts'
import { testCluster, testNamespace, type TestCluster } from '../harness.ts'
import { until } from '../until.ts'

const run = promisify(execFile)
const browserPath = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p))
const script = path.join(repoRoot, 'test/fixtures/web-ns/dashboard.ts')

// web runs an image by digest: its row says which one
const WEB_DIGEST = `sha256:${'0123456789abcdef'.repeat(4)}`

function app(name: string): V1Deployment {
  const labels = { 'app.kubernetes.io/name': name }
  return {
    metadata: { name, labels },
    spec: {
      replicas: 1,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          containers: [
            {
              name,
              image: name === 'web' ? `example/web@${WEB_DIGEST}` : `example/${name}:1`,
              ports: [{ containerPort: 80 }],
              readinessProbe: { httpGet: { path: '/ready', port: 80 } },
            },
          ],
        },
      },
    },
  }
}

describe(
  'dashboard.ts --web in chromium',
  { skip: !browserPath && 'chromium is not installed (.ci/run installs it)' },
  () => {
    let cluster: TestCluster
    let ns: { name: string; cleanup: () => Promise<void> }
    let child: ChildProcess
    let out = ''
    let url = ''
    let browser: Browser
    let page: Page

    before(async () => {
      cluster = await testCluster()
      ns = await testNamespace('webdash')
      await cluster.kube.apps.createNamespacedDeployment({ namespace: ns.name, body: app('web') })
      await cluster.kube.apps.createNamespacedDeployment({ namespace: ns.name, body: app('api') })
      child = spawn(script, ['--web', '--env', 'dev', '--ui-port', '0', '--kubeconfig', cluster.kubeconfig], {
        env: { ...process.env, NSOPS_TEST_WEB_NS: ns.name, NO_COLOR: '1', CI: '1', NODE_OPTIONS: '' },
        stdio: ['ignore', 'ignore', 'pipe'],
      })
      child.stderr!.on('data', (b) => {
        out += b
      })
      url = await until(
        'the page URL',
        async () => {
          if (child.exitCode !== null) throw new Error(`dashboard.ts --web exited ${child.exitCode}:\n${out}`)
          return /(http:\/\/127\.0\.0\.1:\d+\/)/.exec(out)?.[1]
        },
        60_000,
      )
      browser = await chromium.launch({ executablePath: browserPath, args: ['--no-sandbox'] })
      page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
    })
    after(async () => {
      await browser?.close()
      if (child && child.exitCode === null) {
        child.kill('SIGKILL')
        await new Promise((r) => child.once('exit', r))
      }
      await ns?.cleanup()
    })

    it('shows the apps, and a pod deleted with kubectl shows as re-created without a reload', async () => {
      await page.goto(url)
      await page.waitForSelector('tr.app[data-app="web"] [data-status="Current"]', { timeout: 60_000 })
      await page.waitForSelector('tr.app[data-app="api"] [data-status="Current"]', { timeout: 60_000 })
      assert.equal(await page.locator('h1#title').textContent(), 'nsops dashboard')
      // which digest each app runs; a tag when no digest is known
      assert.equal(await page.locator('tr.app[data-app="web"] td.runs').textContent(), `web@${WEB_DIGEST.slice(0, 19)}`)
      assert.equal(await page.locator('tr.app[data-app="api"] td.runs').textContent(), 'api:1')
      if (process.env.NSOPS_UPDATE_SCREENSHOTS === '1')
        await page.screenshot({ path: path.join(repoRoot, 'docs/web-dashboard.png'), fullPage: true })
      const pods = page.locator('tbody.pods tr')
      await until('both pods on the page', async () => (await pods.count()) === 2)
      const webPod = (
        await cluster.kube.core.listNamespacedPod({ namespace: ns.name, labelSelector: 'app.kubernetes.io/name=web' })
      ).items[0].metadata!.name!
      await page.waitForSelector(`tbody.pods tr[data-pod="${webPod}"]`)
      const { kubectl } = await toolPaths(['kubectl'])
      await run(kubectl, ['--kubeconfig', cluster.kubeconfig, '-n', ns.name, 'delete', 'pod', webPod, '--wait=false'])
      // pushed to the page: the old pod goes and its replacement shows, in the same page
      // read from here: the page's CSP allows no string evaluated as script (waitForFunction)
      await until(
        'the re-created web pod in the page',
        async () => {
          const rows = await page.locator('tbody.pods tr').all()
          const pods = await Promise.all(rows.map((r) => r.getAttribute('data-pod')))
          return !pods.includes(webPod) && pods.some((p) => p?.startsWith('web-'))
        },
        30_000,
      )
    })

    it('is read-only but reconcile: an action without the token, from another origin, or other than reconcile is refused', async () => {
      const base = new URL(url)
      const action = (body: unknown, headers: Record<string, string> = {}) =>
        fetch(new URL('/api/action', base), {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...headers },
          body: JSON.stringify(body),
        })
      assert.equal((await action({ action: 'reconcile' })).status, 403, 'no token')
      const token = (await page.locator('meta[name=nsops-token]').getAttribute('content'))!
      assert.equal(
        (await action({ action: 'reconcile' }, { 'x-nsops-token': token, origin: 'http://evil.example' })).status,
        403,
        'another origin',
      )
      const restart = await action({ action: 'restart', app: 'web' }, { 'x-nsops-token': token })
      assert.equal(restart.status, 400)
      assert.match(((await restart.json()) as { error: string }).error, /read-only/)
      // with the token, from the page: reconcile answers (no Flux on this cluster: it says so)
      page.once('dialog', (d) => void d.accept().catch(() => {}))
      await page.click('button[data-action="reconcile"]')
      await page.waitForSelector('#result:has-text("web-fixture")')
      assert.doesNotMatch((await page.locator('#result').getAttribute('class')) ?? '', /err/)
      // the export is the dashboard's own JSON schema
      // the export needs the token too (or the page's cookie): another site cannot read it
      assert.equal((await fetch(new URL('/api/snapshot', base))).status, 403)
      const snap = (await (
        await fetch(new URL('/api/snapshot', base), { headers: { 'x-nsops-token': token } })
      ).json()) as {
        schema: string
        groups: { apps: { name: string }[] }[]
      }
      assert.equal(snap.schema, 'nsops.dashboard/v1')
      assert.deepEqual(snap.groups.flatMap((g) => g.apps.map((a) => a.name)).sort(), ['api', 'web'])
    })

    it('Ctrl-C stops it cleanly: exit 130, the port closed', async () => {
      child.kill('SIGINT')
      const code = await new Promise<number | null>((r) =>
        child.exitCode !== null ? r(child.exitCode) : child.once('exit', (c) => r(c)),
      )
      assert.equal(code, 130, out)
      await assert.rejects(fetch(url), 'nothing listens any more')
    })
  },
)
