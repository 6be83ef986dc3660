// The dev web page in chromium: page load with the three shipped namespaces (navigation →
// every namespace rendered), and a change in the cluster → visible on the page, timed by the
// browser's own clock: a Deployment's pod template is patched (generation bump: kstatus says
// InProgress at once) and the page's row turns InProgress. Target p50 ≤ 300 ms, load ≤ 500 ms.
// With the log pane: a line a simulated container writes → shown in the app's pane (browser
// clock); the load figure includes the log checkpoint every page gets when it connects.
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { chromium } from 'playwright-core'
import { appendContainerLog } from '../shared/cluster/sim/container-logs.ts'
import { repoRoot } from '../shared/core/paths.ts'
import { withBenchCluster } from './cluster.ts'
import { report } from './stats.ts'

export default async function (): Promise<void> {
  const browserPath = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p))
  if (!browserPath) {
    console.log('web: skipped, chromium is not installed')
    return
  }
  await withBenchCluster(async (kube, kubeconfig, sim) => {
    const state = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-bench-web-'))
    const child = spawn(path.join(repoRoot, 'shared/bin/nsops.ts'), ['dev-up', '--ui-port', '0'], {
      env: {
        ...process.env,
        CI: '1',
        NO_COLOR: '1',
        NSOPS_PROVIDER: 'existing',
        KUBECONFIG: kubeconfig,
        NSOPS_STATE_DIR: state,
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    let out = ''
    child.stderr!.on('data', (b) => {
      out += b
    })
    const browser = await chromium.launch({ executablePath: browserPath, args: ['--no-sandbox'] })
    try {
      const end = Date.now() + 300_000
      let url: string | undefined
      while (!(url && ['sonarr', 'grafana', 'loki'].every((a) => new RegExp(`Deployment/${a} Current`).test(out)))) {
        if (Date.now() > end || child.exitCode !== null)
          throw new Error(`dev-up did not become healthy:\n${out.slice(-2000)}`)
        url = /web: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out)?.[1]
        await new Promise((r) => setTimeout(r, 100))
      }
      const loads: number[] = []
      for (let i = 0; i < 5; i++) {
        const page = await browser.newPage()
        await page.goto(url!)
        await page.waitForFunction(
          'document.querySelectorAll("section.loop").length === 3 && document.querySelectorAll("tr.app").length >= 13',
        )
        loads.push((await page.evaluate('performance.now()')) as number)
        await page.close()
      }
      report('web page: load with 3 namespaces → rendered', loads, 'target ≤ 500 ms')

      const page = await browser.newPage()
      await page.goto(url!)
      await page.waitForSelector('tr.app[data-app="sonarr"] [data-status="Current"]')
      const latencies: number[] = []
      for (let i = 0; i < 10; i++) {
        const t0 = Date.now()
        await kube.apps.patchNamespacedDeployment({
          name: 'sonarr',
          namespace: 'arr-stack-dev',
          body: [{ op: 'add', path: '/spec/template/metadata/annotations', value: { 'nsops.dev/bench': String(i) } }],
        })
        const seenAt = await page.waitForFunction(
          'document.querySelector(\'tr.app[data-app="sonarr"] [data-status]\')?.dataset.status !== "Current" && Date.now()',
          undefined,
          { polling: 'raf', timeout: 30_000 },
        )
        latencies.push(Number(await seenAt.jsonValue()) - t0)
        await page.waitForSelector('tr.app[data-app="sonarr"] [data-status="Current"]', { timeout: 60_000 })
      }
      report('web page: cluster change → visible (browser clock)', latencies, 'target p50 ≤ 300 ms')

      // the log pane: a line written into the sonarr container's log → in the pane
      await page.click('tr.app[data-app="sonarr"]')
      await page.waitForSelector('#logpane')
      const pods = await kube.core.listNamespacedPod({
        namespace: 'arr-stack-dev',
        labelSelector: 'app.kubernetes.io/name=sonarr',
      })
      const p = pods.items.find((x) => x.status?.podIP && !x.metadata?.deletionTimestamp)!
      const ref = {
        namespace: 'arr-stack-dev',
        pod: p.metadata!.name!,
        uid: p.metadata!.uid!,
        container: p.spec!.containers[0].name,
      }
      const logLatencies: number[] = []
      for (let i = 0; i < 10; i++) {
        const mark = `bench-line-${i}-${Date.now()}`
        const t0 = Date.now()
        appendContainerLog(sim.podLogRoot, ref, [mark])
        const seenAt = await page.waitForFunction(
          `[...document.querySelectorAll('#log-lines .ll .txt')].some((e) => e.textContent === ${JSON.stringify(mark)}) && Date.now()`,
          undefined,
          { polling: 'raf', timeout: 30_000 },
        )
        logLatencies.push(Number(await seenAt.jsonValue()) - t0)
      }
      report(
        "web page: log line written → in the app's pane (browser clock)",
        logLatencies,
        'no target (Tilt streams its logs the same way)',
      )
    } finally {
      await browser.close()
      if (child.exitCode === null) {
        child.kill('SIGINT')
        await new Promise((r) => child.once('exit', r))
      }
      fs.rmSync(state, { recursive: true, force: true })
    }
  })
}
