// helm-controller v1.4.0 (Flux 2.7) on the sim, beside source-controller v1.9.5: run by
// ensure({ flux: true }) like the other Flux controllers, its HelmRelease CRD its own, and a
// HelmRelease of a real chart (library subchart, a CRD in crds/, a post-install hook Job)
// served by a real chart repository installs, labels what it made, and upgrades on a values
// change. The flux CLI reads the same release.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { promisify } from 'node:util'
import { fluxControllerCheck } from '../../shared/cluster/flux-presence.ts'
import { SimCluster } from '../../shared/cluster/sim/index.ts'
import { pidAlive } from '../../shared/core/lock.ts'
import { waitFor } from '../../shared/health/wait.ts'
import { scaffoldFiles } from '../../shared/commands/new-namespace.ts'
import { loadNamespace } from '../../shared/config/namespaces.ts'
import { DevLoop } from '../../shared/dev/loop.ts'
import { appRows } from '../../shared/dev/app-rows.ts'
import { readSession } from '../../shared/dev/session.ts'
import { isApiError } from '../../shared/kube/client.ts'
import { privateStateDir } from '../state-dir.ts'
import { fluxCrdBundle } from '../../shared/flux/crds.ts'
import { conditionOf, fluxKinds, type FluxKind, type FluxObject } from '../../shared/flux/kinds.ts'
import type { Kube } from '../../shared/kube/client.ts'
import { repoRoot } from '../../shared/core/paths.ts'
import { toolPath } from '../../shared/tools/provision.ts'
import { toolSpec } from '../../shared/tools/versions.ts'
import type { StaticServer } from '../static-server.ts'
import { applyFluxObject, serveTestCharts, startFluxSim } from '../flux-fixture.ts'
import { until } from '../until.ts'

const run = promisify(execFile)

describe('helm-controller on the sim cluster', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-helm-controller-'))
  const sim = new SimCluster({ dir: path.join(tmp, 'sim') })
  let kube: Kube
  let kubeconfig: string
  let charts: StaticServer
  const ns = 'media'

  const get = (kind: FluxKind, name: string) =>
    kube.custom.getNamespacedCustomObject({ ...fluxKinds[kind], namespace: ns, name }) as Promise<FluxObject>
  const apply = (kind: FluxKind, name: string, spec: Record<string, unknown>) =>
    applyFluxObject(kube, kind, ns, name, spec)
  /** the HelmRelease once Ready for its generation, with `n` entries in its history */
  const releasedAt = async (name: string, n: number) => {
    let last: FluxObject | undefined
    try {
      return await until(
        `HelmRelease ${name} Ready with ${n} history entries`,
        async () => {
          last = await get('HelmRelease', name)
          const history = (last.status?.history as unknown[] | undefined) ?? []
          return conditionOf(last, 'Ready')?.status === 'True' &&
            last.status?.observedGeneration === last.metadata.generation &&
            history.length === n
            ? last
            : undefined
        },
        120_000,
      )
    } catch (err) {
      throw new Error(`${(err as Error).message}; last status: ${JSON.stringify(last?.status)}`, { cause: err })
    }
  }

  before(async () => {
    ;({ kube, kubeconfig } = await startFluxSim(sim))
    await kube.core.createNamespace({ body: { metadata: { name: ns } } })
    // the test chart as a chart repository would serve it: packaged with its library subchart
    charts = await serveTestCharts(tmp)
  })

  after(async () => {
    await charts?.stop()
    await sim.stop({ purge: true })
    fs.rmSync(tmp, { recursive: true, force: true })
  })

  it('runs helm-controller as a cluster component beside source- and kustomize-controller, with its own v1.4.0 HelmRelease CRD', async () => {
    const components = await sim.describe()
    for (const name of ['source-controller', 'kustomize-controller', 'helm-controller'])
      assert.equal(components.find((c) => c.name === name)?.state, 'running', JSON.stringify(components))
    assert.equal(toolSpec('helm-controller').version, 'v1.4.0')
    const bundle = await fluxCrdBundle()
    const crd = bundle.crds.find((c) => c.name === 'helmreleases.helm.toolkit.fluxcd.io')
    assert.equal(crd?.version, 'v2')
    const text = fs.readFileSync(path.join(bundle.dir, crd!.file), 'utf8')
    // the CRD comes from helm-controller v1.4.0's config/crd/bases, which v1.4.0 serves
    assert.match(text, /controller-gen\.kubebuilder\.io\/version/)
    assert.ok(fs.existsSync((await sim.logs())['helm-controller']), 'its log is kept like the others')
  })

  it('installs a HelmRelease from a HelmRepository (CRD from crds/, hook Job run), labels what it made, and upgrades on a values change', async () => {
    await apply('HelmRepository', 'local', { url: charts.url, interval: '10m' })
    await apply('HelmRelease', 'queue', {
      interval: '10m',
      chart: { spec: { chart: 'queue', version: '0.4.x', sourceRef: { kind: 'HelmRepository', name: 'local' } } },
      values: { replicas: 1, workers: { replicas: 1 } },
    })
    const installed = await releasedAt('queue', 1)
    const [first] = installed.status!.history as { chartName: string; chartVersion: string; version: number }[]
    assert.equal(`${first.chartName}@${first.chartVersion}`, 'queue@0.4.0')
    assert.equal(first.version, 1)
    assert.equal(conditionOf(installed, 'Released')?.reason, 'InstallSucceeded')

    const labelled = await kube.apps.listNamespacedDeployment({
      namespace: ns,
      labelSelector: `helm.toolkit.fluxcd.io/name=queue,helm.toolkit.fluxcd.io/namespace=${ns}`,
    })
    assert.deepEqual(labelled.items.map((d) => d.metadata!.name).sort(), ['queue', 'queue-worker'])
    // the chart's CRD went in from crds/ before the templates
    const crds = await kube.kc
      .makeApiClient((await import('@kubernetes/client-node')).ApiextensionsV1Api)
      .readCustomResourceDefinition({ name: 'queues.queue.example.com' })
    assert.equal(crds.spec.names.kind, 'Queue')

    await apply('HelmRelease', 'queue', {
      interval: '10m',
      chart: { spec: { chart: 'queue', version: '0.4.x', sourceRef: { kind: 'HelmRepository', name: 'local' } } },
      values: { replicas: 1, workers: { replicas: 3 } },
    })
    const upgraded = await releasedAt('queue', 2)
    assert.equal(conditionOf(upgraded, 'Released')?.reason, 'UpgradeSucceeded')
    assert.equal((upgraded.status!.history as { version: number }[])[0].version, 2)
    const worker = await kube.apps.readNamespacedDeployment({ namespace: ns, name: 'queue-worker' })
    assert.equal(worker.spec?.replicas, 3)

    // the flux CLI, a peer: `flux get hr` reads the same release as Ready at the chart version
    const flux = await toolPath('flux')
    const { stdout } = await run(flux, ['get', 'hr', 'queue', '--kubeconfig', kubeconfig, '--namespace', ns])
    const [header, row] = stdout.trim().split('\n')
    assert.match(header, /^NAME\s+REVISION\s+SUSPENDED\s+READY\s+MESSAGE/)
    assert.match(row, /^queue\s+0\.4\.0\s+False\s+True\s+Helm upgrade succeeded/)
  })

  const hrRef = (name: string) => ({
    apiVersion: 'helm.toolkit.fluxcd.io/v2',
    kind: 'HelmRelease',
    metadata: { name, namespace: ns },
  })

  it("health: values that break the chart make the HelmRelease Failed with helm-controller's reason within seconds, not at the timeout", async () => {
    await apply('HelmRepository', 'local', { url: charts.url, interval: '10m' })
    await apply('HelmRelease', 'broken', {
      interval: '10m',
      chart: { spec: { chart: 'queue', version: '0.4.x', sourceRef: { kind: 'HelmRepository', name: 'local' } } },
      // an invalid port: the API server refuses the Deployment and the Service helm renders
      values: { port: 'eighty' },
    })
    const t0 = Date.now()
    const r = await waitFor(kube, [hrRef('broken')], {
      timeoutMs: 90_000,
      fluxControllers: fluxControllerCheck(kube),
    })
    assert.equal(r.outcome, 'failed', r.report)
    const [h] = r.statuses
    assert.equal(h.reason, 'InstallFailed', h.message)
    assert.match(h.message, /Helm install failed for release media\/broken/)
    assert.ok(Date.now() - t0 < 60_000, `failed after ${Date.now() - t0} ms`)
  })

  it('health: with no helm-controller running, a HelmRelease is Failed at once naming the missing controller; once it runs again the release installs', async () => {
    const state = JSON.parse(fs.readFileSync(path.join(sim.dir, 'state.json'), 'utf8')) as {
      components: { name: string; pid: number }[]
    }
    const pid = state.components.find((c) => c.name === 'helm-controller')!.pid
    process.kill(pid, 'SIGTERM')
    await until('helm-controller stopped', async () => !pidAlive(pid), 30_000)
    await apply('HelmRelease', 'orphan', {
      interval: '10m',
      chart: { spec: { chart: 'queue', version: '0.4.x', sourceRef: { kind: 'HelmRepository', name: 'local' } } },
      values: { workers: { enabled: false } },
    })
    const t0 = Date.now()
    const r = await waitFor(kube, [hrRef('orphan')], { timeoutMs: 60_000, fluxControllers: fluxControllerCheck(kube) })
    assert.equal(r.outcome, 'failed', r.report)
    assert.equal(r.statuses[0].reason, 'ControllerMissing')
    assert.match(
      r.statuses[0].message,
      /^no helm-controller runs on this cluster, so nothing will reconcile this HelmRelease/,
    )
    assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`)
    // without the check (no way to ask the cluster) it is only InProgress: nothing is claimed
    const blind = await waitFor(kube, [hrRef('orphan')], { timeoutMs: 1500 })
    assert.equal(blind.outcome, 'timeout')
    assert.equal(blind.statuses[0].status, 'InProgress')

    await sim.ensure({ flux: true })
    const healed = await waitFor(kube, [hrRef('orphan')], {
      timeoutMs: 120_000,
      fluxControllers: fluxControllerCheck(kube),
    })
    assert.equal(healed.outcome, 'current', healed.report)
  })

  it("just chart push puts a chart (with its library subchart) into the sim's registry, just charts lists it, and a HelmRelease reads it through an OCIRepository (chartRef, layerSelector)", async () => {
    const just = (...args: string[]) =>
      run('npx', ['just', ...args, '--kubeconfig', kubeconfig], {
        cwd: repoRoot,
        env: { ...process.env, NO_COLOR: '1' },
      }).then((r) => r.stdout + r.stderr)
    const out = await just('chart', 'push', path.join(tmp, 'charts-src', 'queue'))
    const pushed = /pushed queue 0\.4\.0 to (oci:\/\/127\.0\.0\.1:\d+\/charts\/queue) \(sha256:[0-9a-f]{64}\)/.exec(out)
    assert.ok(pushed, out)
    assert.match(out, /layerSelector: \{ mediaType: application\/vnd\.cncf\.helm\.chart\.content\.v1\.tar\+gzip/)
    assert.match(await just('charts'), /queue\s+0\.4\.0/)
    // a packaged .tgz goes in as it is (no helm package): another version, listed beside the first
    const copy = path.join(tmp, 'tgz-src', 'queue')
    fs.cpSync(path.join(tmp, 'charts-src', 'queue'), copy, { recursive: true })
    const chartYaml = path.join(copy, 'Chart.yaml')
    fs.writeFileSync(chartYaml, fs.readFileSync(chartYaml, 'utf8').replace(/^version: .*$/m, 'version: 0.4.1'))
    await run(await toolPath('helm'), ['package', copy, '--destination', path.join(tmp, 'tgz-src')])
    const tgz = await just('chart', 'push', path.join(tmp, 'tgz-src', 'queue-0.4.1.tgz'))
    assert.match(tgz, /pushed queue 0\.4\.1 to oci:\/\/127\.0\.0\.1:\d+\/charts\/queue \(sha256:[0-9a-f]{64}\)/)
    assert.match(await just('charts'), /queue\s+0\.4\.0, 0\.4\.1|queue\s+0\.4\.1, 0\.4\.0/)

    await apply('OCIRepository', 'queue-chart', {
      url: pushed[1],
      ref: { tag: '0.4.0' },
      insecure: true,
      interval: '10m',
      layerSelector: { mediaType: 'application/vnd.cncf.helm.chart.content.v1.tar+gzip', operation: 'copy' },
    })
    await apply('HelmRelease', 'from-oci', {
      interval: '10m',
      chartRef: { kind: 'OCIRepository', name: 'queue-chart' },
      values: { workers: { enabled: false } },
    })
    const installed = await releasedAt('from-oci', 1)
    const [first] = installed.status!.history as { chartName: string; chartVersion: string }[]
    assert.equal(first.chartName, 'queue')
    assert.match(first.chartVersion, /^0\.4\.0/)
    const d = await kube.apps.readNamespacedDeployment({ namespace: ns, name: 'from-oci-queue' })
    assert.equal(d.metadata?.labels?.['helm.toolkit.fluxcd.io/name'], 'from-oci')
  })

  describe('the dev loop on a namespace whose app is a HelmRelease', () => {
    const name = `hrdev-${process.pid}`
    const dir = path.join(repoRoot, 'namespaces', name)
    const devNs = `${name}-dev`
    const state = privateStateDir('nsops-hrdev-state-')
    const release = (values: string) => `apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: { name: queue }
spec:
  interval: 10m
  chart:
    spec:
      chart: queue
      version: 0.4.x
      sourceRef: { kind: HelmRepository, name: charts }
  values:
${values.replace(/^/gm, '    ')}
`
    const writeValues = (values: string) =>
      fs.writeFileSync(path.join(dir, 'base', 'helmrelease.yaml'), release(values))

    before(() => {
      state.enter()
      const files = scaffoldFiles(name)
      const own: Record<string, string> = {
        'namespace.ts': files['namespace.ts']
          .replace(
            /apps: \[\{ name: 'web'[^\]]*\]/,
            "apps: [{ name: 'queue', port: 6380, description: 'a HelmRelease' }]",
          )
          .replace(/portForwards: \[[^\]]*\],/, 'portForwards: [],'),
        'dev.ts': files['dev.ts'],
        'base/kustomization.yaml': 'resources: [helmrepository.yaml, helmrelease.yaml]\n',
        'base/helmrepository.yaml': `apiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata: { name: charts }\nspec: { url: ${charts.url}, interval: 10m }\n`,
        'base/helmrelease.yaml': release('persistence: { enabled: true }\nworkers: { replicas: 1 }'),
        'overlays/dev/kustomization.yaml': `namespace: ${devNs}\nresources: [namespace.yaml, ../../base]\n`,
        'overlays/dev/namespace.yaml': `apiVersion: v1\nkind: Namespace\nmetadata: { name: ${devNs} }\n`,
        'overlays/prod/kustomization.yaml': `namespace: ${name}\nresources: [namespace.yaml, ../../base]\n`,
        'overlays/prod/namespace.yaml': `apiVersion: v1\nkind: Namespace\nmetadata: { name: ${name} }\n`,
      }
      for (const [rel, text] of Object.entries(own)) {
        fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true })
        fs.writeFileSync(path.join(dir, rel), text, { mode: rel === 'dev.ts' ? 0o755 : 0o644 })
      }
    })
    after(async () => {
      fs.rmSync(dir, { recursive: true, force: true })
      state.leave()
      await kube.core.deleteNamespace({ name: devNs }).catch(() => {})
    })

    const devCi = (...extra: string[]) =>
      run(
        path.join(dir, 'dev.ts'),
        ['--ci', '--down', '--no-ui', '--timeout', '3m', '--kubeconfig', kubeconfig, ...extra],
        {
          env: { ...process.env, NSOPS_STATE_DIR: state.dir, NO_COLOR: '1' },
          timeout: 240_000,
        },
      ).then(
        (r) => ({ code: 0, out: r.stdout + r.stderr }),
        (e: { code?: number; stdout?: string; stderr?: string }) => ({
          code: e.code ?? -1,
          out: `${e.stdout}${e.stderr}`,
        }),
      )

    it('dev.ts --ci: the real helm-controller installs the release; the verdict names chart@version, revision and action, and the objects the chart made', async () => {
      const r = await devCi()
      assert.equal(r.code, 0, r.out)
      assert.match(r.out, /HelmRelease\/queue queue@0\.4\.0 r1 install succeeded/)
      // what helm-controller made is followed by its labels, so the chart's Deployments show
      assert.match(r.out, /Deployment\/queue-worker/)
    })

    it("dev.ts --ci fails fast with helm-controller's reason when the values break the chart", async () => {
      writeValues('port: eighty')
      const t0 = Date.now()
      const r = await devCi()
      assert.equal(r.code, 1, r.out)
      assert.match(r.out, /HelmRelease\/queue.*InstallFailed/)
      assert.ok(Date.now() - t0 < 90_000, `took ${Date.now() - t0} ms`)
    })

    it('the dev loop: a values save upgrades the release to a new revision in the view; stop uninstalls it through helm-controller and keeps its PVC', async () => {
      writeValues('persistence: { enabled: true }\nworkers: { replicas: 1 }')
      const loop = new DevLoop(kube, await loadNamespace(name), { forwards: false })
      const hr = () => loop.status.resources.find((x) => x.kind === 'HelmRelease' && x.name === 'queue')
      let notes: string[] = []
      try {
        await loop.start()
        const first = await until(
          'release installed',
          async () => hr()?.release?.result === 'succeeded' && hr(),
          120_000,
        )
        const revision = first.release!.revision
        await until(
          "the chart's objects in the view",
          async () => loop.status.resources.some((x) => x.kind === 'Deployment' && x.name === 'queue-worker'),
          30_000,
        )
        writeValues('persistence: { enabled: true }\nworkers: { replicas: 2 }')
        const next = await until(
          'a new revision after the save',
          async () => (hr()?.release?.revision ?? 0) > revision && hr()?.release?.result === 'succeeded' && hr(),
          120_000,
        )
        assert.equal(next.release!.action, 'upgrade')
        // the row the terminal view and the web page render for the app
        const row = appRows(loop.status).apps.find((a) => a.app === 'queue')
        assert.match(row?.release ?? '', new RegExp(`^queue@0\\.4\\.0 r${next.release!.revision} upgrade succeeded$`))
        const worker = await kube.apps.readNamespacedDeployment({ namespace: devNs, name: 'queue-worker' })
        assert.equal(worker.spec?.replicas, 2)
      } finally {
        notes = await loop.stop()
      }
      assert.ok(
        notes.some((n) => /uninstalled HelmRelease queue/.test(n)),
        notes.join('\n'),
      )
      assert.ok(
        notes.some((n) => /kept the PVCs of HelmRelease queue: queue-data/.test(n)),
        notes.join('\n'),
      )
      await assert.rejects(
        kube.custom.getNamespacedCustomObject({ ...fluxKinds.HelmRelease, namespace: devNs, name: 'queue' }),
        (e) => isApiError(e, 404),
      )
      await assert.rejects(kube.apps.readNamespacedDeployment({ namespace: devNs, name: 'queue' }), (e) =>
        isApiError(e, 404),
      )
      const pvc = await kube.core.readNamespacedPersistentVolumeClaim({ namespace: devNs, name: 'queue-data' })
      assert.equal(pvc.metadata?.deletionTimestamp, undefined, 'the PVC is kept')
    })

    it('the dev loop: a stop while an upgrade waits for its pods exits within seconds, leaves the release installed with its PVC, and the session says what is left and how to finish', async () => {
      writeValues('persistence: { enabled: true }\nworkers: { replicas: 1 }')
      const loop = new DevLoop(kube, await loadNamespace(name), { forwards: false })
      const hr = () => loop.status.resources.find((x) => x.kind === 'HelmRelease' && x.name === 'queue')
      const live = async () =>
        (await kube.custom.getNamespacedCustomObject({
          ...fluxKinds.HelmRelease,
          namespace: devNs,
          name: 'queue',
        })) as FluxObject
      const doing: string[] = []
      let notes: string[] = []
      let took = 0
      try {
        await loop.start()
        await until('release installed', async () => hr()?.release?.result === 'succeeded', 120_000)
        // requests no node can meet: the pod stays Pending and the upgrade waits (helm's --wait,
        // helm-controller's default) for the release's timeout, 5 minutes
        writeValues(
          'persistence: { enabled: true }\nworkers: { replicas: 1 }\nresources: { requests: { cpu: "1000" } }',
        )
        await until(
          'helm-controller running the upgrade',
          async () => {
            const ready = conditionOf(await live(), 'Ready')
            return ready?.status === 'Unknown' && /upgrade/i.test(ready.message ?? '')
          },
          120_000,
        )
      } finally {
        const t0 = Date.now()
        notes = await loop.stop({ progress: (d) => doing.push(d) })
        took = Date.now() - t0
      }
      assert.ok(took < 30_000, `stop took ${took} ms: ${notes.join('\n')}`)
      assert.ok(
        doing.some((d) => /marking the PVCs of HelmRelease queue/.test(d)),
        doing.join('\n'),
      )
      const left = notes.find((n) =>
        /left HelmRelease .*\/queue installed: helm-controller is still working on it/.test(n),
      )
      assert.ok(left, notes.join('\n'))
      assert.match(left, /queue-data/)
      assert.match(left, /`just dev-down` uninstalls it keeping them/)
      // the release stays (deleting it now would uninstall it with its PVC unmarked), the PVC too
      assert.equal((await live()).metadata.deletionTimestamp, undefined)
      const pvc = await kube.core.readNamespacedPersistentVolumeClaim({ namespace: devNs, name: 'queue-data' })
      assert.equal(pvc.metadata?.deletionTimestamp, undefined, 'the PVC is kept')
      // the session is kept unfinished, for `just dev-down`
      const session = readSession(name)
      assert.equal(session?.kept, true)
      assert.match(session?.unfinished ?? '', /HelmRelease\(s\) of .* left installed to keep their PVCs/)
    })
  })
})
