// HelmReleases in the dashboard, its --json and its web page, and in drift, on sim with the
// real source-controller, kustomize-controller and helm-controller and the real flux CLI: a
// Kustomization applies a HelmRepository, a HelmRelease of a real chart (values from a
// ConfigMap, a Secret and spec.values) and a plain Deployment. The views show chart@version,
// where it comes from, revision, last action and history, the values in effect with the
// Secret's values masked, and the Flux tree; suspend/resume/reconcile from the page agree with
// `flux get hr`; who suspended it (nsops, flux CLI, by hand) is told apart; drift compares a
// release's objects with its chart rendered from git (or, for a HelmRelease not in git, its live
// Helm release's manifest) and attributes a kubectl scale to kubectl and the HelmRelease.
import assert from 'node:assert/strict'
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { after, before, describe, it } from 'node:test'
import { chromium, type Browser, type Page } from 'playwright-core'
import type { DashboardModel } from '../../shared/dashboard/collect.ts'
import type { DriftReport } from '../../shared/drift/types.ts'
import { repoRoot } from '../../shared/core/paths.ts'
import { toolPath } from '../../shared/tools/provision.ts'
import type { StaticServer } from '../static-server.ts'
import { serveTestCharts } from '../flux-fixture.ts'
import { Terminal, tmuxAvailable } from '../tty.ts'
import { until } from '../until.ts'
import { DEMO, gitOpsWorld, type GitOpsWorld } from './gitops-fixture.ts'

const run = promisify(execFile)
const browserPath = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p))
const SECRET_VALUE = 'hunter2-not-for-eyes'

describe('HelmReleases in the dashboard, --json, the web page and drift', () => {
  let w: GitOpsWorld
  let charts: StaticServer
  let flux = ''
  let kubectl = ''
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-helm-views-'))

  const script = (verb: 'dashboard' | 'drift') => {
    const file = path.join(tmp, `${verb}.mts`)
    if (!fs.existsSync(file))
      fs.writeFileSync(
        file,
        `import { runMain } from ${JSON.stringify(path.join(repoRoot, 'shared/core/cli.ts'))}
import { demoNamespace } from ${JSON.stringify(path.join(repoRoot, 'test/e2e/gitops-fixture.ts'))}
import { ${verb} } from ${JSON.stringify(path.join(repoRoot, `shared/commands/${verb}.ts`))}
runMain(() => ${verb}(demoNamespace(${JSON.stringify(w.work)}), process.argv.slice(2)))
`,
      )
    return file
  }
  const cli = async (verb: 'dashboard' | 'drift', ...args: string[]) => cliWith({}, verb, ...args)
  const cliWith = async (env: Record<string, string>, verb: 'dashboard' | 'drift', ...args: string[]) => {
    try {
      const { stdout, stderr } = await run(
        path.join(repoRoot, 'shared/bin/nsops-node'),
        [script(verb), '--kubeconfig', w.kubeconfig, ...args],
        { env: { ...process.env, NO_COLOR: '1', ...env }, maxBuffer: 32 << 20 },
      )
      return { code: 0, stdout, stderr }
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string }
      return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }
    }
  }
  const dashboardJson = async () => {
    const r = await cli('dashboard', '--env', 'prod', '--json')
    assert.equal(r.code, 0, r.stderr)
    assert.ok(!r.stdout.includes(SECRET_VALUE), 'a Secret value in --json')
    return JSON.parse(r.stdout) as DashboardModel
  }
  const fluxCli = async (...args: string[]) => {
    const { stdout } = await run(flux, ['--kubeconfig', w.kubeconfig, '--namespace', DEMO, ...args], {
      timeout: 120_000,
    })
    return stdout
  }
  /** `flux get hr queue`: SUSPENDED and READY columns */
  const fluxGetHr = async () => {
    const [header, row] = (await fluxCli('get', 'hr', 'queue')).trim().split('\n')
    assert.match(header, /^NAME\s+REVISION\s+SUSPENDED\s+READY\s+MESSAGE/)
    const [name, revision, suspended, ready] = row.trim().split(/\s+/)
    return { name, revision, suspended, ready }
  }
  const kc = (...args: string[]) => run(kubectl, ['--kubeconfig', w.kubeconfig, '-n', DEMO, ...args])

  before(async () => {
    flux = await toolPath('flux')
    kubectl = await toolPath('kubectl')
    charts = await serveTestCharts(tmp)
    w = await gitOpsWorld()
    // the release as a Flux user writes it: a HelmRepository, values from a ConfigMap, a Secret and inline
    w.write(
      `namespaces/${DEMO}/base/release.yaml`,
      `apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata: { name: local }
spec: { url: "${charts.url}", interval: 10m }
---
apiVersion: v1
kind: ConfigMap
metadata: { name: queue-values }
data:
  values.yaml: |
    port: 6381
---
apiVersion: v1
kind: Secret
metadata: { name: queue-secret-values }
stringData:
  values.yaml: |
    auth:
      token: ${SECRET_VALUE}
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: { name: queue }
spec:
  interval: 10m
  chart:
    spec: { chart: queue, version: 0.4.x, sourceRef: { kind: HelmRepository, name: local } }
  valuesFrom:
    - { kind: ConfigMap, name: queue-values }
    - { kind: Secret, name: queue-secret-values }
  values:
    replicas: 1
    workers: { enabled: false }
`,
    )
    w.write(`namespaces/${DEMO}/base/kustomization.yaml`, 'resources: [web.yaml, settings.yaml, release.yaml]\n')
    const sha = await w.commitAndPush('demo: the queue release')
    await fluxCli('reconcile', 'source', 'git', 'demo-src', '--namespace', 'flux-system').catch(() => {})
    await w.waitApplied(sha, 180_000)
  })
  after(async () => {
    await w?.stop()
    await charts?.stop()
    fs.rmSync(tmp, { recursive: true, force: true })
  })

  it('--json shows the release: chart@version from the HelmRepository URL, revision, last action, history, values with the Secret masked; the Flux tree', async () => {
    // The Kustomization's wait saw the release Ready, but helm-controller may be reconciling it
    // once more: its log shows a second reconcile starting right after the install's (its first
    // one found the HelmChart not ready and asked to come back in 5 s, --requeue-dependency, which
    // falls due during a slower install). Every reconcile begins with Ready=Unknown "Fulfilling
    // prerequisites", which --json shows as it is: read it until helm-controller is done.
    let last: DashboardModel | undefined
    const queueNode = (m: DashboardModel) => m.flux.tree.nodes.find((n) => n.id === `HelmRelease/${DEMO}/queue`)
    const m = await until(
      'the queue release Ready=True in --json',
      async () => {
        last = await dashboardJson()
        const ready = [last.flux.releases.find((x) => x.name === 'queue')?.ready, queueNode(last)?.ready]
        return ready.every((x) => x === 'True') ? last : undefined
      },
      120_000,
    ).catch((err: Error) => {
      const node = last && queueNode(last)
      throw new Error(`${err.message}; last: Ready=${node?.ready} ${node?.message ?? ''}`, { cause: err })
    })
    const r = m.flux.releases.find((x) => x.name === 'queue')
    assert.ok(r, JSON.stringify(m.flux))
    assert.equal(r.chartVersion, 'queue@0.4.0')
    assert.equal(r.revision, 1)
    assert.equal(r.lastAction, 'install')
    assert.equal(r.lastResult, 'succeeded')
    assert.equal(r.source?.kind, 'HelmRepository')
    assert.equal(r.source?.url, charts.url)
    assert.deepEqual(
      r.history.map((h) => [h.revision, h.chart, h.status]),
      [[1, 'queue@0.4.0', 'deployed']],
    )
    assert.equal(r.suspended, false)
    // valuesFrom in order, spec.values on top; the Secret's leaves masked, its keys shown
    assert.deepEqual(r.values.effective, {
      port: 6381,
      auth: { token: '***' },
      replicas: 1,
      workers: { enabled: false },
    })
    assert.deepEqual(
      r.values.from.map((f) => f.kind),
      ['ConfigMap', 'Secret', 'spec.values'],
    )
    // the tree: source → Kustomization → HelmRelease → its Deployment; web hangs under the Kustomization
    const t = m.flux.tree
    const node = (id: string) => t.nodes.find((n) => n.id === id)
    assert.deepEqual(t.roots, ['GitRepository/flux-system/demo-src'])
    assert.ok(node('GitRepository/flux-system/demo-src')!.children.includes('Kustomization/flux-system/demo'))
    const ks = node('Kustomization/flux-system/demo')!
    assert.ok(ks.children.includes(`HelmRelease/${DEMO}/queue`), JSON.stringify(ks))
    assert.ok(ks.children.includes(`Deployment/${DEMO}/web`), JSON.stringify(ks))
    const hr = node(`HelmRelease/${DEMO}/queue`)!
    assert.deepEqual(hr.children, [`Deployment/${DEMO}/queue`])
    assert.equal(hr.revision, 'queue@0.4.0 r1')
    assert.equal(hr.ready, 'True')

    // the terminal view renders the same model
    const text = await cli('dashboard', '--env', 'prod')
    assert.equal(text.code, 0, text.stderr)
    assert.match(text.stdout, /HELMRELEASE demo\/queue\n\s+queue@0\.4\.0 r1\s+Ready\s+last install succeeded/)
    assert.match(text.stdout, new RegExp(`from HelmRepository/local ${charts.url.replace(/[.]/g, '\\.')}`))
    assert.match(text.stdout, /FLUX TREE\n\s+GitRepository\/flux-system\/demo-src/)
    assert.match(text.stdout, /└─ Deployment\/demo\/queue/)
    assert.ok(!text.stdout.includes(SECRET_VALUE))
  })

  it('a values change in git: revision 2 and two history entries in --json', async () => {
    const file = path.join(w.work, 'namespaces', DEMO, 'base', 'release.yaml')
    w.write(`namespaces/${DEMO}/base/release.yaml`, fs.readFileSync(file, 'utf8').replace('replicas: 1', 'replicas: 2'))
    const sha = await w.commitAndPush('demo: two queue replicas')
    await fluxCli('reconcile', 'ks', DEMO, '--with-source', '--namespace', 'flux-system')
    await w.waitApplied(sha, 180_000)
    const m = await until(
      'revision 2 in --json',
      async () => {
        const m = await dashboardJson()
        const r = m.flux.releases.find((x) => x.name === 'queue')
        return r?.revision === 2 && r.ready === 'True' ? m : undefined
      },
      120_000,
    )
    const r = m.flux.releases.find((x) => x.name === 'queue')!
    assert.equal(r.lastAction, 'upgrade')
    assert.deepEqual(
      r.history.map((h) => [h.revision, h.status]),
      [
        [2, 'deployed'],
        [1, 'superseded'],
      ],
    )
  })

  const driftJson = async () => {
    const r = await cli('drift', '-o', 'json')
    assert.ok(r.code === 0 || r.code === 1, r.stderr)
    return { code: r.code, report: JSON.parse(r.stdout) as DriftReport }
  }
  const released = (r: DriftReport, kind: string, name: string) =>
    r.objects.find((o) => o.ref.kind === kind && o.ref.name === name && o.helmRelease)

  it("drift: the release's objects are compared with its chart rendered offline from git (the LeafRenderer) and in sync; a kubectl scale of its Deployment is attributed to kubectl and the HelmRelease", async () => {
    const clean = await driftJson()
    assert.equal(clean.code, 0, JSON.stringify(clean.report.objects.filter((o) => o.class !== 'in-sync')))
    assert.deepEqual(
      clean.report.source.helmReleases?.map((h) => [h.name, h.release, h.revision, h.status, h.baseline, h.chart]),
      [['queue', 'queue', 2, 'deployed', 'rendered', 'queue@0.4.0']],
    )
    for (const [kind, name] of [
      ['Deployment', 'queue'],
      ['Service', 'queue'],
      ['ConfigMap', 'queue'],
      // the chart picks policy/v1 by .Capabilities: rendered for the cluster's APIs, as helm-controller does
      ['PodDisruptionBudget', 'queue'],
    ]) {
      const o = released(clean.report, kind, name)
      assert.equal(o?.class, 'in-sync', `${kind}/${name}: ${JSON.stringify(o)}`)
      assert.equal(o?.helmRelease, 'demo/queue')
    }

    await kc('scale', 'deployment', 'queue', '--replicas=3')
    const { code, report } = await driftJson()
    assert.equal(code, 1)
    const d = released(report, 'Deployment', 'queue')
    assert.equal(d?.class, 'modified', JSON.stringify(d))
    assert.equal(d?.helmRelease, 'demo/queue')
    const replicas = d?.changes?.find((c) => c.path === '/spec/replicas')
    assert.deepEqual([replicas?.git, replicas?.live], [2, 3])
    assert.equal(replicas?.setBy[0]?.manager, 'kubectl')
    assert.equal(d?.changes?.length, 1, JSON.stringify(d?.changes))
    const text = await cli('drift')
    assert.equal(text.code, 1, text.stderr)
    assert.match(
      text.stdout,
      /HelmRelease demo\/queue: its objects against chart queue@0\.4\.0 rendered for it as git has it \(live: Helm release queue r2, deployed\)/,
    )
    assert.match(
      text.stdout,
      /~ Deployment\/demo\/queue \(HelmRelease demo\/queue\)\n\s+\/spec\/replicas: 2 → 3\s+set by kubectl \(scale\)/,
    )
  })

  it('drift: a HelmRelease suspended by hand is context: named with who suspended it, beside the drift it keeps', async () => {
    await kc(
      'patch',
      'hr',
      'queue',
      '--type',
      'merge',
      '--field-manager',
      'ops-script',
      '-p',
      '{"spec":{"suspend":true}}',
    )
    try {
      const { code, report } = await driftJson()
      assert.equal(code, 1)
      const s = report.suspensions.find((x) => x.kustomization === `HelmRelease/${DEMO}/queue`)
      assert.equal(s?.by, 'by hand (ops-script)', JSON.stringify(report.suspensions))
      assert.match(s?.note ?? '', /helm-controller is not reconciling it: the change to its objects below stays/)
      const d = released(report, 'Deployment', 'queue')
      assert.match(d?.context ?? '', /suspended by hand \(ops-script\)/)
      // the HelmRelease object itself is not drift: git does not set spec.suspend
      const hr = report.objects.find((o) => o.ref.kind === 'HelmRelease' && o.ref.name === 'queue')
      assert.equal(hr?.class, 'in-sync', JSON.stringify(hr))
      const text = await cli('drift')
      assert.match(
        text.stdout,
        /⏸ HelmRelease\/demo\/queue suspended by hand \(ops-script\): helm-controller is not reconciling it/,
      )
    } finally {
      await fluxCli('resume', 'hr', 'queue')
    }
  })

  it("drift: a HelmRelease that is not in git (applied by hand) is compared with its live Helm release's manifest, and says so", async () => {
    const hr = path.join(tmp, 'extra-hr.yaml')
    fs.writeFileSync(
      hr,
      `apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: { name: extra, namespace: ${DEMO} }
spec:
  interval: 10m
  chart:
    spec: { chart: queue, version: 0.4.x, sourceRef: { kind: HelmRepository, name: local } }
  values: { workers: { enabled: false } }
`,
    )
    await kc('apply', '-f', hr)
    await until(
      'HelmRelease extra installed',
      async () => {
        const o = JSON.parse((await kc('get', 'hr', 'extra', '-o', 'json')).stdout) as {
          status?: { history?: unknown[]; conditions?: { type: string; status: string }[] }
        }
        return (
          o.status?.history?.length === 1 && o.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')
        )
      },
      120_000,
    )
    const { report } = await driftJson()
    const b = report.source.helmReleases?.find((h) => h.name === 'extra')
    assert.deepEqual([b?.baseline, b?.release, b?.revision, b?.status], ['release-manifest', 'extra', 1, 'deployed'])
    const d = released(report, 'Deployment', 'extra-queue')
    assert.equal(d?.class, 'in-sync', JSON.stringify(d))
    assert.equal(d?.helmRelease, 'demo/extra')
    assert.ok(
      report.warnings.some((w) =>
        /HelmRelease demo\/extra: compared with its live Helm release's manifest \(r1\), not the chart rendered from git: it is not in the baseline build/.test(
          w,
        ),
      ),
      JSON.stringify(report.warnings),
    )
    await kc('scale', 'deployment', 'extra-queue', '--replicas=2')
    const after = released((await driftJson()).report, 'Deployment', 'extra-queue')
    assert.equal(after?.class, 'modified')
    assert.deepEqual(
      after?.changes?.map((c) => [c.path, c.git, c.live, c.setBy[0]?.manager]),
      [['/spec/replicas', 1, 2, 'kubectl']],
    )
  })

  it('drift keeps its baseline with the HelmRelease rendered (build cache) until an input changes: an edited values file is built and rendered again', async () => {
    const traced = (env: Record<string, string>, ...args: string[]) =>
      cliWith({ NSOPS_TRACE: '1', ...env }, 'drift', '-o', 'json', ...args)
    const comparable = (text: string) => {
      const r = JSON.parse(text) as Partial<DriftReport>
      delete r.generatedAt
      delete r.tookMs
      return r
    }
    const fresh = await traced({ NSOPS_DRIFT_CACHE: '0' })
    assert.doesNotMatch(fresh.stderr, /build cache hit/)
    await traced({}) // keeps it, if no drift of this suite has yet
    const kept = await traced({})
    assert.match(kept.stderr, /drift: build cache hit/, kept.stderr)
    assert.deepEqual(comparable(kept.stdout), comparable(fresh.stdout))
    const queue = (JSON.parse(kept.stdout) as DriftReport).source.helmReleases?.find((h) => h.name === 'queue')
    assert.equal(queue?.baseline, 'rendered')

    // the values file in git (the ConfigMap valuesFrom reads) edited and committed, not
    // pushed; the commit also reads values from a ConfigMap only the cluster may hold
    const file = path.join(w.work, 'namespaces', DEMO, 'base', 'release.yaml')
    const before = fs.readFileSync(file, 'utf8')
    const secretRef = '    - { kind: Secret, name: queue-secret-values }\n'
    assert.match(before, /port: 6381/)
    assert.ok(before.includes(secretRef))
    fs.writeFileSync(
      file,
      before
        .replace('port: 6381', 'port: 6390')
        .replace(secretRef, `${secretRef}    - { kind: ConfigMap, name: queue-cluster-values, optional: true }\n`),
    )
    await w.git$('commit', '-qam', 'demo: the queue on another port')
    const servicePort = (text: string) =>
      released(JSON.parse(text) as DriftReport, 'Service', 'queue')
        ?.changes?.filter((c) => c.path === '/spec/ports/0/port')
        .map((c) => [c.git, c.live])
    try {
      const edited = await traced({}, '--baseline', 'HEAD')
      assert.equal(edited.code, 1, edited.stderr)
      assert.doesNotMatch(edited.stderr, /build cache hit/)
      const svc = released(JSON.parse(edited.stdout) as DriftReport, 'Service', 'queue')
      assert.equal(svc?.class, 'modified', JSON.stringify(svc))
      assert.deepEqual(servicePort(edited.stdout), [[6390, 6381]])
      // that commit's build and render are kept in turn
      const again = await traced({}, '--baseline', 'HEAD')
      assert.match(again.stderr, /drift: build cache hit/, again.stderr)
      assert.deepEqual(comparable(again.stdout), comparable(edited.stdout))

      // the cluster's ConfigMap appears: the same commit is rendered again, with its values
      await kc('create', 'configmap', 'queue-cluster-values', '--from-literal=values.yaml=port: 6395')
      const cluster = await traced({}, '--baseline', 'HEAD')
      assert.doesNotMatch(cluster.stderr, /build cache hit/)
      assert.deepEqual(servicePort(cluster.stdout), [[6395, 6381]])
    } finally {
      await w.git$('reset', '-q', '--hard', 'HEAD~1')
      await kc('delete', 'configmap', 'queue-cluster-values', '--ignore-not-found')
    }
  })

  describe('the web page', { skip: !browserPath && 'chromium is not installed (.ci/run installs it)' }, () => {
    let child: ChildProcess
    let out = ''
    let url = ''
    let browser: Browser
    let page: Page
    before(async () => {
      child = spawn(
        path.join(repoRoot, 'shared/bin/nsops-node'),
        [script('dashboard'), '--web', '--env', 'prod', '--ui-port', '0', '--kubeconfig', w.kubeconfig],
        { env: { ...process.env, NO_COLOR: '1', CI: '1' }, stdio: ['ignore', 'ignore', 'pipe'] },
      )
      child.stderr!.on('data', (b) => {
        out += b
      })
      url = await until(
        'the page URL',
        async () => {
          if (child.exitCode !== null) throw new Error(`dashboard --web exited ${child.exitCode}:\n${out}`)
          return /(http:\/\/127\.0\.0\.1:\d+\/)/.exec(out)?.[1]
        },
        60_000,
      )
      browser = await chromium.launch({ executablePath: browserPath, args: ['--no-sandbox'] })
      page = await browser.newPage({ viewport: { width: 1280, height: 1200 } })
      page.on('dialog', (d) => void d.accept().catch(() => {}))
    })
    after(async () => {
      await browser?.close()
      if (child && child.exitCode === null) {
        child.kill('SIGINT')
        await new Promise((r) => child.once('exit', r))
      }
    })

    const release = () => page.locator('section.release[data-release="demo/queue"]')
    const button = (action: string) => release().locator(`button[data-action="${action}"]`)

    it("shows the release's chart@version, revision, history, source and masked values, and the tree", async () => {
      await page.goto(url)
      await release().waitFor({ timeout: 60_000 })
      assert.equal(await release().locator('.chart').textContent(), 'queue@0.4.0')
      assert.equal(await release().locator('.revision').textContent(), 'r2')
      assert.equal(await release().locator('tbody.history tr').count(), 2)
      assert.match((await release().locator('code.url').textContent()) ?? '', /^http:\/\/127\.0\.0\.1:\d+/)
      const values = (await release().locator('pre.values').textContent()) ?? ''
      assert.match(values, /"token": "\*\*\*"/)
      assert.ok(!(await page.content()).includes(SECRET_VALUE))
      await page.locator(`ul.flux-tree li[data-node="HelmRelease/${DEMO}/queue"]`).waitFor()
      assert.equal(
        await page
          .locator(`li[data-node="HelmRelease/${DEMO}/queue"] li[data-node="Deployment/${DEMO}/queue"]`)
          .count(),
        1,
      )
    })

    it('suspend from the page: flux get hr shows it suspended, the page and --json say by nsops; resume: flux get hr agrees', async () => {
      await button('suspend').click()
      await page.waitForSelector('#result:has-text("suspended HelmRelease/demo/queue")')
      assert.equal((await fluxGetHr()).suspended, 'True')
      await release().locator('.state:has-text("suspended by nsops")').waitFor({ timeout: 30_000 })
      const m = await dashboardJson()
      assert.equal(m.flux.releases.find((r) => r.name === 'queue')?.suspendedBy?.kind, 'nsops')
      assert.equal(m.flux.tree.nodes.find((n) => n.id === `HelmRelease/${DEMO}/queue`)?.suspended, true)

      await button('resume').click()
      await page.waitForSelector('#result:has-text("resumed HelmRelease/demo/queue")')
      assert.equal((await fluxGetHr()).suspended, 'False')
      await button('suspend').waitFor({ timeout: 30_000 })
    })

    it('reconcile from the page: helm-controller handles the request, flux get hr shows it Ready', async () => {
      const before = JSON.parse((await kc('get', 'hr', 'queue', '-o', 'json')).stdout) as {
        status: { lastHandledReconcileAt?: string }
      }
      await button('reconcile').click()
      await page.waitForSelector('#result:has-text("asked Flux to reconcile HelmRelease/demo/queue")')
      const requested = JSON.parse((await kc('get', 'hr', 'queue', '-o', 'json')).stdout) as {
        metadata: { annotations: Record<string, string> }
      }
      const token = requested.metadata.annotations['reconcile.fluxcd.io/requestedAt']
      assert.ok(token && token !== before.status.lastHandledReconcileAt)
      await until(
        'helm-controller handled the page’s request',
        async () => {
          const now = JSON.parse((await kc('get', 'hr', 'queue', '-o', 'json')).stdout) as {
            status: { lastHandledReconcileAt?: string }
          }
          return now.status.lastHandledReconcileAt === token
        },
        60_000,
      )
      assert.equal((await fluxGetHr()).ready, 'True')
    })

    it('flux suspend is told from a suspension by hand; the page does not resume either, it names who', async () => {
      await fluxCli('suspend', 'hr', 'queue')
      await release().locator('.state:has-text("suspended")').waitFor({ timeout: 30_000 })
      const byCli = (await dashboardJson()).flux.releases.find((r) => r.name === 'queue')?.suspendedBy
      assert.equal(byCli?.kind, 'flux CLI', JSON.stringify(byCli))
      await button('resume').click()
      await page.waitForSelector('#result.err:has-text("stays suspended")')
      assert.equal((await fluxGetHr()).suspended, 'True')
      await fluxCli('resume', 'hr', 'queue')

      await kc(
        'patch',
        'hr',
        'queue',
        '--type',
        'merge',
        '--field-manager',
        'ops-script',
        '-p',
        '{"spec":{"suspend":true}}',
      )
      const by = (await dashboardJson()).flux.releases.find((r) => r.name === 'queue')?.suspendedBy
      assert.equal(by?.kind, 'hand')
      assert.equal(by?.text, 'by hand (ops-script)')
      assert.equal((await fluxGetHr()).suspended, 'True')
      await fluxCli('resume', 'hr', 'queue')
      assert.equal((await fluxGetHr()).suspended, 'False')
    })
  })

  describe(
    'dashboard --watch keys',
    { skip: !tmuxAvailable() && 'tmux is not installed (.ci/run installs it)' },
    () => {
      let term: Terminal | undefined
      after(async () => {
        await term?.close()
      })

      it('n selects the HelmRelease, s suspends it (flux get hr agrees), u resumes it, r reconciles; Ctrl-C exits 130', async () => {
        term = await Terminal.open(
          [
            path.join(repoRoot, 'shared/bin/nsops-node'),
            script('dashboard'),
            '--watch',
            '--env',
            'prod',
            '--kubeconfig',
            w.kubeconfig,
          ],
          {
            cwd: os.tmpdir(),
            env: {
              PATH: process.env.PATH ?? '',
              HOME: process.env.HOME ?? os.homedir(),
              TERM: 'xterm-256color',
              ...(process.env.XDG_CACHE_HOME ? { XDG_CACHE_HOME: process.env.XDG_CACHE_HOME } : {}),
            },
          },
        )
        await term.waitFor(/▶ HELMRELEASE demo\//, 60_000)
        // the frame is cut to the terminal: its top (the namespace, Flux) stays in view
        assert.match((await term.screen()).split('\n')[0], /demo · demo \(prod\)/)
        for (let i = 0; i < 3 && !/▶ HELMRELEASE demo\/queue/.test(await term.screen()); i++) {
          const before = await term.screen()
          await term.press('n')
          await until('the selection moved', async () => (await term!.screen()) !== before, 10_000)
        }
        await term.waitFor(/▶ HELMRELEASE demo\/queue/, 10_000)
        await term.press('s')
        await term.waitFor(/✔ suspended HelmRelease\/demo\/queue/, 30_000)
        assert.equal((await fluxGetHr()).suspended, 'True')
        await term.waitFor(/suspended by nsops: \S+ with dashboard --watch at/, 30_000)
        await term.press('u')
        await term.waitFor(/✔ resumed HelmRelease\/demo\/queue/, 30_000)
        assert.equal((await fluxGetHr()).suspended, 'False')
        await term.press('r')
        await term.waitFor(/✔ asked Flux to reconcile HelmRelease\/demo\/queue/, 30_000)
        await term.press('C-c')
        assert.equal(await term.waitExit(30_000), 130)
        assert.equal(await term.restored(), true, 'main screen and cursor back')
      })
    },
  )

  it('flux reconcile hr --force (the real flux CLI): nsops --json shows the upgrade it made, the revision flux get hr shows', async () => {
    const queue = (m: DashboardModel) => m.flux.releases.find((x) => x.name === 'queue')!
    const before = queue(await dashboardJson())
    await fluxCli('reconcile', 'hr', 'queue', '--force')
    const after = queue(await dashboardJson())
    assert.equal(after.revision, before.revision + 1, 'a forced reconcile is a Helm upgrade: one revision more')
    assert.equal(after.lastAction, 'upgrade')
    assert.equal(after.lastResult, 'succeeded')
    assert.equal(after.ready, 'True')
    assert.equal(after.history[0].revision, after.revision, 'the newest history entry is that upgrade')
    const got = await fluxGetHr()
    assert.equal(got.ready, 'True')
    assert.equal(got.revision, after.version, 'flux get hr shows the chart version nsops shows')
  })
})
