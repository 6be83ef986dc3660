// A home-ops repository (test/fixtures/home-ops: kubernetes/apps/<ns>/<app>/ks.yaml, a root
// Kustomization over kubernetes/apps substituted from cluster-settings) run the way its owner
// runs it, through `npx just …` in a clone with nsops added (test/adopt-fixture.ts) and
// `just init` run: against a sim cluster with the real source-controller, kustomize-controller
// and helm-controller, bootstrapped as `flux bootstrap` leaves a cluster (GitRepository
// flux-system over a smart-HTTP git server, Kustomization flux-system over
// kubernetes/flux/cluster). A one-app change goes out with `just deploy default` and Flux
// applies it with both levels of substitution; `just drift default` is clean, then shows a
// `kubectl scale`; `just ci diff` selects the changed app's Kustomization. A HelmRelease app
// in onedr0p's shape (OCIRepository + HelmRelease, its chart pushed with `just chart push`)
// validates and deploys.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { after, before, describe, it } from 'node:test'
import { KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node'
import YAML from 'yaml'
import { SimCluster } from '../../shared/cluster/sim/index.ts'
import { createBareRepo, startGitServer, type GitServer } from '../../shared/cluster/sim/git-server.ts'
import { repoRoot } from '../../shared/core/paths.ts'
import { conditionOf, fluxKinds, type FluxObject } from '../../shared/flux/kinds.ts'
import { clientsFor, type Kube } from '../../shared/kube/client.ts'
import { adoptRepo, justIn, type AdoptRepo } from '../adopt-fixture.ts'
import { git } from '../git-fixture.ts'
import { until } from '../until.ts'

const run = promisify(execFile)

interface DeployReport {
  exitCode: number
  outcome: string
  summary: string
  steps: { name: string; status: string; message: string; detail?: { releases?: { release: string; ok: boolean }[] } }[]
}

describe('a home-ops repository deployed, drifted and diffed through npx just', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-home-ops-'))
  const sim = new SimCluster({ dir: path.join(tmp, 'sim') })
  let server: GitServer | undefined
  let r: AdoptRepo
  let kube: Kube
  let kubeconfig = ''
  const target = () => ['--kubeconfig', kubeconfig]
  const just = (args: string[]) => justIn(r.work, args, { NSOPS_STATE_DIR: path.join(tmp, 'state') })
  const write = (rel: string, text: string) => {
    fs.mkdirSync(path.dirname(path.join(r.work, rel)), { recursive: true })
    fs.writeFileSync(path.join(r.work, rel), text)
  }
  const edit = (rel: string, from: string, to: string) => {
    const text = fs.readFileSync(path.join(r.work, rel), 'utf8')
    assert.ok(text.includes(from), `${rel} has ${from}`)
    fs.writeFileSync(path.join(r.work, rel), text.replace(from, to))
  }
  const ks = (name: string) =>
    kube.custom
      .getNamespacedCustomObject({ ...fluxKinds.Kustomization, namespace: 'flux-system', name })
      .then((o) => o as FluxObject)
  const ready = async (name: string) => {
    const o = await ks(name)
    return conditionOf(o, 'Ready')?.status === 'True' && o.status?.observedGeneration === o.metadata.generation
  }
  const deploy = async (ns: string) => {
    const d = await just(['deploy', ns, '--yes', '--json', '--timeout', '3m', ...target()])
    let report: DeployReport
    try {
      report = JSON.parse(d.stdout) as DeployReport
    } catch {
      throw new Error(`no JSON report (exit ${d.code}):\n${d.stdout}\n${d.stderr}`)
    }
    const why = `${report.outcome}: ${report.summary}\n${JSON.stringify(report.steps.map((s) => [s.name, s.status, s.message]))}\n${d.stderr}`
    return { ...d, report, why }
  }

  before(async () => {
    const info = await sim.ensure({ flux: true })
    kubeconfig = info.kubeconfig
    const kc = new KubeConfig()
    kc.loadFromFile(kubeconfig)
    kube = clientsFor(kc, kubeconfig)
    const repos = path.join(tmp, 'repos')
    await createBareRepo(repos, 'home-ops.git')
    server = await startGitServer({ root: repos })
    const url = server.urlFor('home-ops.git')

    // their repository, nsops added and adopted: `just init` writes namespaces/<ns>/
    r = adoptRepo('home-ops')
    const init = await just(['init'])
    assert.equal(init.code, 0, init.stderr)
    git(r.work, 'add', '-A')
    git(r.work, 'commit', '-qm', 'nsops: just init')
    git(r.work, 'remote', 'set-url', 'origin', url)
    // async: the git server answers from this process
    await run('git', ['-C', r.work, 'push', '-q', 'origin', 'HEAD:main'])
    await run('git', ['-C', r.work, 'fetch', '-q', 'origin'])

    // what `flux bootstrap` leaves on a cluster: the source and the root over kubernetes/flux/cluster
    const apply = (plural: string, group: string, body: object) =>
      kube.custom.createNamespacedCustomObject({ group, version: 'v1', namespace: 'flux-system', plural, body })
    await kube.core.createNamespace({ body: { metadata: { name: 'flux-system' } } }).catch(() => {})
    await apply('gitrepositories', 'source.toolkit.fluxcd.io', {
      apiVersion: 'source.toolkit.fluxcd.io/v1',
      kind: 'GitRepository',
      metadata: { name: 'flux-system' },
      spec: { url, interval: '10m', ref: { branch: 'main' } },
    })
    await apply('kustomizations', 'kustomize.toolkit.fluxcd.io', {
      apiVersion: 'kustomize.toolkit.fluxcd.io/v1',
      kind: 'Kustomization',
      metadata: { name: 'flux-system' },
      spec: {
        interval: '10m',
        path: './kubernetes/flux/cluster',
        prune: true,
        sourceRef: { kind: 'GitRepository', name: 'flux-system' },
      },
    })
    // kustomize-controller v1.9.5 sometimes loses its own temp dir when many Kustomizations
    // build at once (as test/integration/flux-build-matrix.test.ts saw): it would retry at the
    // app's 30m interval; ask for that retry now, as `flux reconcile ks` does (3 times at most)
    const retried = new Map<string, number>()
    const readyOrRetried = async (name: string) => {
      if (await ready(name)) return true
      const c = conditionOf(await ks(name), 'Ready')
      if (
        c?.status !== 'False' ||
        !/\/tmp\/kustomization-[^:]*: no such file|evalsymlink failure/.test(c.message ?? '')
      )
        return false
      const n = (retried.get(name) ?? 0) + 1
      if (n > 3) throw new Error(`${name} keeps failing: ${c.message}`)
      retried.set(name, n)
      await kube.custom.patchNamespacedCustomObject(
        {
          ...fluxKinds.Kustomization,
          namespace: 'flux-system',
          name,
          body: { metadata: { annotations: { 'reconcile.fluxcd.io/requestedAt': `${Date.now()}` } } },
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      )
      return false
    }
    for (const name of ['cluster-apps', 'jellyfin', 'prowlarr', 'radarr', 'sonarr', 'grafana', 'node-exporter'])
      await until(`Flux Kustomization ${name} Ready`, () => readyOrRetried(name), 240_000).catch(async (err: Error) => {
        throw new Error(`${err.message}: ${JSON.stringify((await ks(name).catch(() => undefined))?.status)}`, {
          cause: err,
        })
      })
  })

  after(async () => {
    await server?.stop()
    await sim.stop({ purge: true })
    if (r) fs.rmSync(r.root, { recursive: true, force: true })
    fs.rmSync(tmp, { recursive: true, force: true })
  })

  it('just deploy default of a one-app change: pushed, applied by kustomize-controller, healthy, substituted on both levels', async () => {
    // sonarr gets a variable of its own: its ks.yaml substitutes it into its generator
    edit(
      'kubernetes/apps/default/sonarr/ks.yaml',
      '      APP: sonarr\n',
      '      APP: sonarr\n      SONARR_LOG_LEVEL: debug\n',
    )
    edit(
      'kubernetes/apps/default/sonarr/app/kustomization.yaml',
      '      - HOST=${APP_HOST}\n',
      '      - HOST=${APP_HOST}\n      - LOG_LEVEL=${SONARR_LOG_LEVEL:=info}\n',
    )
    const rendered = await just(['render', 'default'])
    assert.equal(rendered.code, 0, rendered.stderr)
    const predicted = YAML.parseAllDocuments(rendered.stdout)
      .map((d) => d.toJS() as { kind: string; metadata: { name: string } })
      .find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('sonarr-env-'))
    assert.ok(predicted, 'render gives the generated ConfigMap')

    const d = await deploy('default')
    assert.equal(d.report.exitCode, 0, d.why)
    assert.equal(d.code, 0)
    assert.equal(d.report.outcome, 'deployed')
    // what was pushed is what Flux applied
    const head = git(r.work, 'rev-parse', 'HEAD')
    assert.equal(git(r.work, 'rev-parse', 'origin/main'), head, 'pushed')
    assert.match(String((await ks('sonarr')).status?.lastAppliedRevision), new RegExp(`${head}$`))
    assert.match(git(r.work, 'show', '--stat', '--format=', 'HEAD'), /kubernetes\/apps\/default\/sonarr\//)

    const cms = (await kube.core.listNamespacedConfigMap({ namespace: 'default' })).items
    const env = cms.find((c) => c.metadata?.name?.startsWith('sonarr-env-') && c.data?.LOG_LEVEL)
    assert.ok(env, `the new sonarr-env: ${cms.map((c) => c.metadata?.name).join(', ')}`)
    assert.equal(env.metadata?.name, predicted.metadata.name, 'the generated name render predicted')
    assert.equal(env.data?.LOG_LEVEL, 'debug', "the app's own postBuild")
    assert.equal(
      env.data?.HOST,
      'sonarr.home.example',
      "the root's substituteFrom cluster-settings, in the app's ks.yaml",
    )
    assert.equal(env.data?.TZ, 'Etc/UTC', 'the default: the app substitutes no TIMEZONE')
    assert.equal(
      env.metadata?.labels?.['home.example/cluster'],
      'main',
      "the root's patch into every app's Kustomization",
    )
    const sonarr = await kube.apps.readNamespacedDeployment({ namespace: 'default', name: 'sonarr' })
    assert.equal(
      sonarr.spec?.template.spec?.containers[0].envFrom?.[0].configMapRef?.name,
      env.metadata?.name,
      'the Deployment refers to the generated name',
    )
    assert.equal(sonarr.spec?.replicas, 1)
    assert.equal(sonarr.status?.readyReplicas, 1, 'healthy')
  })

  it('just drift default: in sync, then a kubectl scale shows, naming the field and who changed it', async () => {
    const clean = await just(['drift', 'default', ...target()])
    assert.equal(clean.code, 0, `${clean.stdout}\n${clean.stderr}`)
    await run('kubectl', ['--kubeconfig', kubeconfig, '-n', 'default', 'scale', 'deployment/radarr', '--replicas=3'])
    const drifted = await just(['drift', 'default', '--json', ...target()])
    assert.equal(drifted.code, 1, `${drifted.stdout}\n${drifted.stderr}`)
    const report = JSON.parse(drifted.stdout) as {
      source: { kustomization?: { name: string }; also?: string[] }
      counts: Record<string, number>
      objects: { class: string; ref: { kind: string; name: string }; changes?: { path: string }[] }[]
    }
    // every app's objects are in sync but the one scaled: each built by its own Kustomization
    assert.deepEqual(
      report.objects
        .filter((o) => o.class !== 'in-sync' && o.class !== 'extra')
        .map((o) => `${o.class} ${o.ref.kind}/${o.ref.name}`),
      ['modified Deployment/radarr'],
    )
    assert.ok(report.counts['in-sync'] >= 16, JSON.stringify(report.counts))
    assert.equal(report.source.kustomization?.name, 'cluster-apps')
    assert.deepEqual(report.source.also, [
      'flux-system/jellyfin',
      'flux-system/prowlarr',
      'flux-system/radarr',
      'flux-system/sonarr',
    ])
    const human = await just(['drift', 'default', ...target()])
    assert.equal(human.code, 1)
    assert.match(human.stdout, /~ Deployment\/default\/radarr\n\s+\/spec\/replicas: 1 → 3\s+set by kubectl \(scale\)/)
  })

  it("just ci diff of a change to one app: its Kustomization's objects, substituted, no other app", async () => {
    edit('kubernetes/apps/default/radarr/app/deployment.yaml', 'radarr:1.0.0', 'radarr:1.1.0')
    try {
      const changed = await just(['ci', 'changed', '--json'])
      assert.equal(changed.code, 0, changed.stderr)
      assert.match(changed.stdout, /"default"/)
      const d = await just(['ci', 'diff', '--out', r.out])
      assert.equal(d.code, 0, d.stderr)
      const json = JSON.parse(fs.readFileSync(path.join(r.out, 'diff.json'), 'utf8')) as {
        namespaces: {
          name: string
          error?: string
          objects: { action: string; ref: { kind: string; name: string }; diff?: string }[]
        }[]
        signals: { kind: string; object: string }[]
      }
      assert.deepEqual(
        json.namespaces.map((n) => n.name),
        ['default'],
      )
      const ns = json.namespaces[0]
      assert.equal(ns.error, undefined)
      assert.deepEqual(
        ns.objects.map((o) => `${o.action} ${o.ref.kind}/${o.ref.name}`),
        ['update Deployment/radarr'],
      )
      assert.match(ns.objects[0].diff ?? '', /-\s+image: ghcr\.io\/home-operations\/radarr:1\.0\.0/)
      assert.match(ns.objects[0].diff ?? '', /\+\s+image: ghcr\.io\/home-operations\/radarr:1\.1\.0/)
      assert.ok(
        json.signals.some((s) => s.kind === 'image'),
        JSON.stringify(json.signals),
      )
    } finally {
      git(r.work, 'checkout', '-q', '--', '.')
    }
  })

  it("a HelmRelease app in onedr0p's shape (OCIRepository + HelmRelease, chart pushed with just chart push): validated with the chart rendered, deployed, installed by helm-controller", async () => {
    // a copy of the chart and its library (chart push builds the dependency into charts/, which
    // must not touch this repository's tree): the upstream a home-ops repository pulls from
    const charts = path.join(tmp, 'charts')
    fs.cpSync(path.join(repoRoot, 'namespaces/monitoring/charts'), charts, { recursive: true })
    const chart = path.join(charts, 'nsops-app')
    const pushed = await just(['chart', 'push', chart, ...target()])
    assert.equal(pushed.code, 0, pushed.stderr)
    const url = /url: (oci:\/\/\S+\/charts\/nsops-app)/.exec(pushed.stdout + pushed.stderr)?.[1]
    assert.ok(url, `the OCIRepository's URL: ${pushed.stdout}${pushed.stderr}`)
    write(
      'kubernetes/apps/default/echo/ks.yaml',
      `---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: echo
  namespace: flux-system
spec:
  targetNamespace: default
  commonMetadata:
    labels:
      app.kubernetes.io/name: echo
  path: ./kubernetes/apps/default/echo/app
  prune: true
  wait: true
  interval: 30m
  sourceRef: { kind: GitRepository, name: flux-system }
  dependsOn:
    - name: prowlarr
  postBuild:
    substitute:
      APP: echo
      APP_HOST: echo.\${SECRET_DOMAIN}
`,
    )
    write('kubernetes/apps/default/echo/app/kustomization.yaml', 'resources: [ocirepository.yaml, helmrelease.yaml]\n')
    write(
      'kubernetes/apps/default/echo/app/ocirepository.yaml',
      `apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata:
  name: echo
spec:
  interval: 15m
  url: ${url}
  insecure: true
  ref: { tag: 0.1.0 }
  layerSelector:
    mediaType: application/vnd.cncf.helm.chart.content.v1.tar+gzip
    operation: copy
`,
    )
    write(
      'kubernetes/apps/default/echo/app/helmrelease.yaml',
      `apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: echo
spec:
  interval: 1h
  chartRef: { kind: OCIRepository, name: echo }
  install:
    remediation: { retries: 0 }
  upgrade:
    remediation: { retries: 0, remediateLastFailure: true }
  values:
    controllers:
      echo:
        containers:
          echo:
            image: { repository: ghcr.io/home-operations/echo, tag: 1.0.0 }
            env:
              HOST: \${APP_HOST}
              TZ: \${TIMEZONE:=Etc/UTC}
    service:
      echo:
        ports:
          http: { port: 8080 }
`,
    )
    edit(
      'kubernetes/apps/default/kustomization.yaml',
      '  - jellyfin/ks.yaml\n',
      '  - echo/ks.yaml\n  - jellyfin/ks.yaml\n',
    )
    // namespace.ts is not edited: `just init` wrote kubernetes/apps/default/*/ks.yaml, which the new app matches

    const v = await just(['validate', 'default', ...target()])
    assert.equal(v.code, 0, v.stderr)
    assert.match(v.stderr, /default: 5 Flux Kustomizations/)
    const rendered = await just(['render', 'default'])
    assert.equal(rendered.code, 0, rendered.stderr)
    const objs = YAML.parseAllDocuments(rendered.stdout).map(
      (d) =>
        d.toJS() as { kind: string; metadata: { name: string; namespace?: string }; spec?: Record<string, unknown> },
    )
    const chartDeploy = objs.find((o) => o.kind === 'Deployment' && o.metadata.name === 'echo')
    assert.ok(chartDeploy, `the chart rendered: ${objs.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')}`)
    assert.match(JSON.stringify(chartDeploy), /"name":"HOST","value":"echo\.home\.example"/)

    const d = await deploy('default')
    assert.equal(d.report.exitCode, 0, d.why)
    assert.equal(d.report.outcome, 'deployed')
    const hr = (await kube.custom.getNamespacedCustomObject({
      ...fluxKinds.HelmRelease,
      namespace: 'default',
      name: 'echo',
    })) as FluxObject
    assert.equal(conditionOf(hr, 'Ready')?.status, 'True', JSON.stringify(hr.status))
    const live = await kube.apps.readNamespacedDeployment({ namespace: 'default', name: 'echo' })
    assert.equal(live.metadata?.labels?.['helm.toolkit.fluxcd.io/name'], 'echo')
    assert.equal(
      live.spec?.template.spec?.containers[0].env?.find((e) => e.name === 'HOST')?.value,
      'echo.home.example',
    )
    assert.equal(live.status?.readyReplicas, 1)
  })
})
