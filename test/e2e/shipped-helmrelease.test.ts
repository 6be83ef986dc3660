// The shipped HelmRelease as a person on a fresh machine meets it: `npx just dev-up monitoring`
// in a real terminal (tmux), in a copy of this repository with a state folder of its own (so
// a sim cluster of its own, with the real source-controller, kustomize-controller and
// helm-controller). dev-up publishes the chart the repository holds (namespaces/monitoring/
// charts/nsops-app) to the sim's registry, Flux installs prod's grafana from it, and the dev
// loop's grafana is installed, upgraded by a save of its values in the dev overlay (the view
// shows the new revision) and by a save in the chart itself (published again, fetched at once),
// shows helm-controller's reason at once for values the chart's schema refuses, and is
// uninstalled (its PVC kept) on Ctrl-C. Then `just deploy monitoring`: a values change upgrades
// prod's release (revisions before/after in the report), a change the API server refuses is
// refused before the push (exit 1), and a change whose upgrade fails only in the cluster is
// reverted and released back (exit 2).
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { after, before, describe, it } from 'node:test'
import { conditionOf, fluxKinds, type FluxObject } from '../../shared/flux/kinds.ts'
import { isApiError, type Kube } from '../../shared/kube/client.ts'
import { REGISTRY_VARS } from '../../shared/images/registry.ts'
import { simRepo, type SimRepo } from '../sim-repo-fixture.ts'
import { Terminal, tmuxAvailable } from '../tty.ts'
import { freePort } from '../../shared/core/ports.ts'
import { chromium } from 'playwright-core'
import { until } from '../until.ts'

const browserPath = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p))

const run = promisify(execFile)
const VALUES = 'namespaces/monitoring/overlays/dev/grafana-values.yaml'

describe(
  'the shipped HelmRelease (monitoring/grafana) through npx just dev-up',
  { skip: !tmuxAvailable() && 'tmux is not installed (.ci/run installs it)' },
  () => {
    let repo: SimRepo
    let kube: Kube

    before(() => {
      repo = simRepo()
    })
    after(() => repo?.close())

    const hr = (namespace: string) =>
      kube.custom.getNamespacedCustomObject({
        ...fluxKinds.HelmRelease,
        namespace,
        name: 'grafana',
      }) as Promise<FluxObject>
    const values = (container: string) =>
      fs.writeFileSync(
        path.join(repo.work, VALUES),
        `apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: grafana
spec:
  values:
${container.replace(/^/gm, '    ')}
`,
      )

    it('installs prod and dev grafana from the published chart; a values save upgrades to a new revision in the view and on the page; broken values show the reason at once; Ctrl-C uninstalls dev', async () => {
      const uiPort = await freePort()
      const t = await Terminal.open(['npx', 'just', 'dev-up', 'monitoring', '--ui-port', String(uiPort)], {
        cwd: repo.work,
        env: repo.env,
      })
      // the dev page in chromium, where there is one (.ci/run installs it)
      const browser = browserPath
        ? await chromium.launch({ executablePath: browserPath, args: ['--no-sandbox'] })
        : undefined
      const page = await browser?.newPage()
      /** the release line in grafana's row of the dev page */
      const onPage = async (re: RegExp) => {
        if (!page) return
        const row = page.locator('tr.app[data-app="grafana"] .release')
        await until(
          `the page shows ${re}`,
          async () => re.test((await row.textContent({ timeout: 1000 }).catch(() => '')) ?? ''),
          60_000,
        )
      }
      try {
        // the chart went to the sim's registry, and dev's release is installed from it
        // [^]: the row may wrap (a port-forward error when another run holds the port)
        await t.waitFor(/grafana\s+✓ Current[^]*?nsops-app@0\.1\.0 r1 install succeeded/, 300_000)
        await page?.goto(`http://127.0.0.1:${uiPort}/`)
        await onPage(/nsops-app@0\.1\.0 r1 install succeeded/)
        kube = repo.kube()

        // what dev-up wrote for Flux: where the registry is, as source-controller reaches it
        const vars = await kube.core.readNamespacedConfigMap({ ...REGISTRY_VARS })
        assert.match(vars.data?.CHART_REGISTRY ?? '', /^127\.0\.0\.1:\d+$/)
        assert.equal(vars.data?.CHART_REGISTRY_INSECURE, 'true')
        const oci = (await kube.custom.getNamespacedCustomObject({
          ...fluxKinds.OCIRepository,
          namespace: 'monitoring-dev',
          name: 'nsops-app',
        })) as FluxObject
        assert.equal(oci.spec?.url, `oci://${vars.data!.CHART_REGISTRY}/charts/nsops-app`)
        let dev: FluxObject | undefined
        await until(
          "dev's HelmRelease Ready",
          async () => {
            dev = await hr('monitoring-dev')
            return conditionOf(dev, 'Ready')?.status === 'True'
          },
          60_000,
        ).catch((err: Error) => {
          throw new Error(`${err.message}; last status: ${JSON.stringify(dev?.status)}`, { cause: err })
        })
        assert.equal((dev!.status?.history as unknown[]).length, 1, JSON.stringify(dev!.status?.history))
        const deploy = await kube.apps.readNamespacedDeployment({ namespace: 'monitoring-dev', name: 'grafana' })
        assert.equal(deploy.metadata?.labels?.['helm.toolkit.fluxcd.io/name'], 'grafana')
        // Flux runs prod from the same registry: the HelmRelease kustomize-controller applied
        const prod = await until(
          "prod's grafana installed by Flux",
          async () => {
            const o = await hr('monitoring').catch(() => undefined)
            return o &&
              conditionOf(o, 'Ready')?.status === 'True' &&
              (o.status?.history as unknown[] | undefined)?.length
              ? o
              : undefined
          },
          240_000,
        )
        assert.match(String((prod.status?.history as { chartVersion: string }[])[0].chartVersion), /^0\.1\.0/)

        // a save of the values upgrades the release: revision 2 in the view
        values(
          'controllers:\n  grafana:\n    containers:\n      grafana:\n        env:\n          GF_LOG_LEVEL: debug\n',
        )
        await t.waitFor(/nsops-app@0\.1\.0 r2 upgrade succeeded/, 120_000)
        await onPage(/nsops-app@0\.1\.0 r2 upgrade succeeded/)
        await browser?.close()
        const upgraded = await kube.apps.readNamespacedDeployment({ namespace: 'monitoring-dev', name: 'grafana' })
        assert.ok(
          upgraded.spec?.template.spec?.containers[0].env?.some(
            (e) => e.name === 'GF_LOG_LEVEL' && e.value === 'debug',
          ),
          JSON.stringify(upgraded.spec?.template.spec?.containers[0].env),
        )

        // values the chart's schema refuses: helm-controller's reason, within seconds
        const t0 = Date.now()
        values('service:\n  grafana:\n    ports:\n      http: { port: eighty }\n')
        const broken = await t.waitFor(/UpgradeFailed|values don't meet the specifications/, 90_000)
        assert.ok(Date.now() - t0 < 60_000, `the reason showed after ${Date.now() - t0} ms`)
        assert.match(broken, /grafana/)

        // fixed again: the next revision succeeds
        values('controllers:\n  grafana:\n    replicas: 1\n')
        await t.waitFor(/nsops-app@0\.1\.0 r\d+ upgrade succeeded/, 120_000)

        // a save in the chart itself: published again (same tag, new digest), the dev
        // OCIRepository fetches it now, helm-controller upgrades to it
        const tpl = path.join(repo.work, 'namespaces/monitoring/charts/common/templates/_services.tpl')
        const original = fs.readFileSync(tpl, 'utf8')
        const revision = async () => ((await hr('monitoring-dev')).status?.history as { version: number }[])[0].version
        const beforeChart = await revision()
        const publishNotReady = async () =>
          (await kube.core.readNamespacedService({ namespace: 'monitoring-dev', name: 'grafana' })).spec
            ?.publishNotReadyAddresses === true
        fs.writeFileSync(
          tpl,
          original.replace(
            '  type: {{ $s.type | default "ClusterIP" }}\n',
            '  type: {{ $s.type | default "ClusterIP" }}\n  publishNotReadyAddresses: true\n',
          ),
        )
        await until('the Service rendered by the saved chart', publishNotReady, 120_000)
        // helm applies the objects before helm-controller records the release in its status
        await until(
          'a new Helm revision for the new chart digest',
          async () => (await revision()) > beforeChart,
          60_000,
        )
        await t.waitFor(new RegExp(`nsops-app@0\\.1\\.0 r${await revision()} upgrade succeeded`), 60_000)
        fs.writeFileSync(tpl, original)
        await until('the chart as it was, released again', async () => !(await publishNotReady()), 120_000)
        const settled = await until(
          'the release settled',
          async () => {
            const o = await hr('monitoring-dev')
            return conditionOf(o, 'Ready')?.status === 'True' && o.status?.observedGeneration === o.metadata.generation
          },
          60_000,
        )
        assert.ok(settled)

        await t.press('C-c')
        const code = await t.waitExit(180_000).catch(async (err: Error) => {
          throw new Error(`${err.message}; the screen:\n${await t.screen()}`, { cause: err })
        })
        assert.equal(code, 130)
        const screen = await t.screen()
        assert.match(screen, /uninstalled HelmRelease grafana/)
        assert.match(screen, /kept the PVCs of HelmRelease grafana: grafana-data/)
      } finally {
        await browser?.close().catch(() => {})
        await t.close()
      }
      await assert.rejects(hr('monitoring-dev'), (e) => isApiError(e, 404))
      const pvc = await kube.core.readNamespacedPersistentVolumeClaim({
        namespace: 'monitoring-dev',
        name: 'grafana-data',
      })
      assert.equal(pvc.metadata?.deletionTimestamp, undefined, 'the PVC is kept')
    })

    it('a second dev-up --ci publishes nothing (the chart is unchanged) and reaches Current at once', async () => {
      const r = await repo.just(['dev-up', 'monitoring', '--ci', '--down', '--no-ui'])
      assert.equal(r.code, 0, r.out)
      assert.match(r.out, /charts: nsops-app 0\.1\.0 unchanged in oci:\/\/127\.0\.0\.1:\d+\/charts\/nsops-app/)
      assert.match(r.out, /HelmRelease\/grafana nsops-app@0\.1\.0 r\d+ (install|upgrade) succeeded/)
    })

    // just deploy of the HelmRelease namespace onto the same sim: its git server is the remote
    const deploy = async () => {
      const r = await repo.just(['deploy', 'monitoring', '--yes', '--json', '--timeout', '4m'], 600_000)
      const report = JSON.parse(r.stdout) as {
        exitCode: number
        outcome: string
        summary: string
        steps: { name: string; status: string; message: string; detail?: { releases?: Release[] } }[]
      }
      return { ...r, report }
    }
    interface Release {
      release: string
      before?: number
      after?: number
      ok: boolean
      message?: string
    }
    const release = (report: Awaited<ReturnType<typeof deploy>>['report'], step: string) =>
      report.steps.find((x) => x.name === step)?.detail?.releases?.[0]
    const RELEASE = 'namespaces/monitoring/base/grafana/helmrelease.yaml'
    const edit = (from: string, to: string) => {
      const file = path.join(repo.work, RELEASE)
      const text = fs.readFileSync(file, 'utf8')
      assert.ok(text.includes(from), `${RELEASE} has ${from}`)
      fs.writeFileSync(file, text.replace(from, to))
    }

    it("just deploy of a values change: helm-controller upgrades prod's release and the report gives its revision before and after", async () => {
      await run('git', ['-C', repo.work, 'branch', '-u', 'nsops-local/change'])
      const before = (await hr('monitoring')).status?.history as { version: number }[]
      edit(
        'GF_ANALYTICS_CHECK_FOR_UPDATES: "false"',
        'GF_ANALYTICS_CHECK_FOR_UPDATES: "false"\n              GF_USERS_ALLOW_SIGN_UP: "false"',
      )
      const r = await deploy()
      assert.equal(
        r.report.exitCode,
        0,
        `${r.report.summary}\n${JSON.stringify(r.report.steps.map((x) => [x.name, x.message]))}\n${r.stderr}`,
      )
      assert.equal(r.code, 0)
      assert.equal(r.report.outcome, 'deployed')
      const rel = release(r.report, 'reconcile')
      assert.deepEqual(
        [rel?.release, rel?.before, rel?.after, rel?.ok],
        ['monitoring/grafana', before[0].version, before[0].version + 1, true],
        JSON.stringify(rel),
      )
      assert.match(
        r.report.summary,
        new RegExp(
          `HelmRelease monitoring/grafana r${before[0].version} → r${before[0].version + 1} \\(nsops-app@0\\.1\\.0 r\\d+ upgrade succeeded\\)`,
        ),
      )
      const d = await kube.apps.readNamespacedDeployment({ namespace: 'monitoring', name: 'grafana' })
      assert.ok(d.spec?.template.spec?.containers[0].env?.some((e) => e.name === 'GF_USERS_ALLOW_SIGN_UP'))
    })

    it('just deploy of a values change the API server would refuse in the rendered chart: refused before anything is committed or pushed (exit 1)', async () => {
      const before = ((await hr('monitoring')).status?.history as { version: number }[])[0].version
      // requests above limits: valid for the chart's schema, refused by the API server; the
      // deploy's server-side dry run of the rendered chart sees it before the push
      edit('requests: { cpu: 50m, memory: 128Mi }', 'requests: { cpu: 50m, memory: 1Gi }')
      const head = (await run('git', ['-C', repo.work, 'rev-parse', 'HEAD'])).stdout.trim()
      const r = await deploy()
      assert.equal(r.report.exitCode, 1, `${r.report.outcome}: ${r.report.summary}\n${r.stderr}`)
      assert.match(r.report.summary, /Deployment\/monitoring\/grafana.*must be less than or equal to memory limit/)
      assert.equal((await run('git', ['-C', repo.work, 'rev-parse', 'HEAD'])).stdout.trim(), head, 'nothing committed')
      assert.equal(((await hr('monitoring')).status?.history as { version: number }[])[0].version, before)
      edit('requests: { cpu: 50m, memory: 1Gi }', 'requests: { cpu: 50m, memory: 128Mi }')
    })

    it("just deploy of a change whose upgrade fails only in the cluster (pods no node can take, a 20 s release timeout): fails fast on helm-controller's verdict, reverts, and follows helm-controller until it has upgraded back (exit 2)", async () => {
      const before = ((await hr('monitoring')).status?.history as { version: number }[])[0].version
      edit('  interval: 30m\n', '  interval: 30m\n  timeout: 20s\n')
      edit(
        '        strategy: Recreate\n        pod:\n',
        '        strategy: Recreate\n        pod:\n          nodeSelector: { nsops.dev/no-such-node: "true" }\n',
      )
      const t0 = Date.now()
      const r = await deploy()
      const dump = async () => {
        const now = await hr('monitoring')
        const ks = await kube.custom
          .getNamespacedCustomObject({
            ...fluxKinds.Kustomization,
            namespace: 'flux-system',
            name: 'monitoring-grafana',
          })
          .catch(() => undefined)
        return `${r.report.outcome}: ${r.report.summary}\n${JSON.stringify(r.report.steps.map((x) => [x.name, x.status, x.message]))}\nHR: ${JSON.stringify(now.metadata.generation)} ${JSON.stringify(now.status)}\nKS: ${JSON.stringify((ks as FluxObject | undefined)?.status?.conditions)}\n${r.stderr}`
      }
      assert.equal(r.report.exitCode, 2, await dump())
      assert.equal(r.code, 2)
      assert.equal(r.report.outcome, 'rolled-back')
      assert.match(r.report.summary, /HelmRelease monitoring\/grafana/)
      // the first thing said is Helm's cause (the upgrade's timeout), then the remediation
      assert.match(
        r.report.summary,
        /failed while helm-controller released it \(HelmRelease\): HelmRelease monitoring\/grafana failed: Helm upgrade failed for release monitoring\/grafana[^;]*: (context deadline exceeded|timed out waiting for the condition)[^;]*; remediation: Helm rollback/,
      )
      // helm-controller rolled the failed upgrade back itself (remediateLastFailure) and stalled
      assert.match(r.report.summary, /Failed to upgrade after 1 attempt/)
      assert.match(r.report.summary, /Helm rollback to previous release monitoring\/grafana\.v\d+/)
      const failed = release(r.report, 'reconcile')
      assert.equal(failed?.ok, false, JSON.stringify(failed))
      const back = release(r.report, 'reconcile-revert')
      assert.equal(back?.ok, true, JSON.stringify(back))
      assert.ok((back?.after ?? 0) > before + 1, `upgraded back to a new revision: ${JSON.stringify(back)}`)
      assert.match(r.report.summary, /HelmRelease monitoring\/grafana r\d+ → r\d+/)
      assert.ok(Date.now() - t0 < 240_000, `took ${Date.now() - t0} ms`)
      const now = await hr('monitoring')
      assert.equal(conditionOf(now, 'Ready')?.status, 'True')
      const d = await kube.apps.readNamespacedDeployment({ namespace: 'monitoring', name: 'grafana' })
      assert.equal(d.spec?.template.spec?.nodeSelector, undefined)
    })

    // last: it leaves dev's release installed, for the after()'s dev-down
    it("Ctrl-C while helm-controller's upgrade waits for a pod that never becomes ready: the exit takes seconds, not the release's timeout; the release and its PVC stay and the screen says how to finish", async () => {
      values('controllers:\n  grafana:\n    replicas: 1\n')
      const t = await Terminal.open(['npx', 'just', 'dev-up', 'monitoring', '--no-ui'], {
        cwd: repo.work,
        env: repo.env,
      })
      try {
        await t.waitFor(/grafana\s+✓ Current[^]*?nsops-app@0\.1\.0 r\d+ (install|upgrade) succeeded/, 300_000)
        // a node no node matches: the pod stays Pending, the upgrade waits (helm's wait, 5m)
        values('controllers:\n  grafana:\n    pod:\n      nodeSelector: { nsops.test/none: "true" }\n')
        await until(
          'helm-controller running the upgrade',
          async () => {
            const ready = conditionOf(await hr('monitoring-dev'), 'Ready')
            return ready?.status === 'Unknown' && /upgrade/i.test(ready.message ?? '')
          },
          120_000,
        )
        const t0 = Date.now()
        await t.press('C-c')
        const code = await t.waitExit(60_000).catch(async (err: Error) => {
          throw new Error(`${err.message}; the screen:\n${await t.screen()}`, { cause: err })
        })
        assert.ok(Date.now() - t0 < 45_000, `exited after ${Date.now() - t0} ms`)
        assert.equal(code, 130)
        const screen = (await t.screen()).replace(/\n/g, '')
        assert.match(
          screen,
          /left HelmRelease monitoring-dev\/grafana installed: helm-controller is still working on it/,
        )
        assert.match(screen, /grafana-data/)
        assert.match(screen, /`just dev-down` uninstalls it keeping them/)
      } finally {
        await t.close()
      }
      assert.equal((await hr('monitoring-dev')).metadata.deletionTimestamp, undefined, 'the release is left installed')
      const pvc = await kube.core.readNamespacedPersistentVolumeClaim({
        namespace: 'monitoring-dev',
        name: 'grafana-data',
      })
      assert.equal(pvc.metadata?.deletionTimestamp, undefined, 'the PVC is kept')
    })
  },
)
