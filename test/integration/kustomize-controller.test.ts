// The real GitOps loop on a sim cluster of its own: Flux's source-controller and
// kustomize-controller v1.9.5, run by ensure({ flux: true }), reading a real repository over
// the local smart-HTTP git server and applying it to the real control plane.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { promisify } from 'node:util'
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node'
import { SimCluster } from '../../shared/cluster/sim/index.ts'
import { conditionOf, fluxKinds, type FluxCondition, type FluxKind, type FluxObject } from '../../shared/flux/kinds.ts'
import { bootstrapFlux, fluxManifests, FLUX_NAMESPACE } from '../../shared/cluster/sim/controllers.ts'
import { repoCharts } from '../../shared/cluster/sim/local-remote.ts'
import { publishCharts } from '../../shared/images/charts.ts'
import { createBareRepo, startGitServer, type GitServer } from '../../shared/cluster/sim/git-server.ts'
import { REQUESTED_AT } from '../../shared/flux/reconcile.ts'
import { applyFluxObject, serveTestCharts, startFluxSim } from '../flux-fixture.ts'
import { isApiError, type Kube } from '../../shared/kube/client.ts'
import { pidAlive } from '../../shared/core/lock.ts'
import { loadNamespaces } from '../../shared/config/namespaces.ts'
import { buildProd } from '../../shared/flux/build/index.ts'
import { repoRoot } from '../../shared/core/paths.ts'
import { crane } from '../../shared/images/crane.ts'
import { advertisedRegistry, REGISTRY_VARS } from '../../shared/images/registry.ts'
import { layerWith } from '../image-fixture.ts'

const run = promisify(execFile)

async function git(cwd: string, ...args: string[]): Promise<string> {
  const { stdout } = await run('git', ['-c', 'user.name=test', '-c', 'user.email=test@example.com', ...args], {
    cwd,
    env: { ...process.env, GIT_CONFIG_NOSYSTEM: '1', GIT_TERMINAL_PROMPT: '0' },
  })
  return stdout.trim()
}

async function until<T>(
  what: string,
  fn: () => Promise<T | undefined>,
  timeoutMs: number,
  lastSeen?: () => string,
): Promise<T> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const v = await fn().catch((err) => {
      if (!isApiError(err, 404)) throw err
      return undefined
    })
    if (v !== undefined) return v
    if (Date.now() > end)
      throw new Error(`timed out waiting for ${what}${lastSeen ? `; last seen: ${lastSeen()}` : ''}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

const cond = (o: FluxObject | undefined, type: string) =>
  (o?.status?.conditions as FluxCondition[] | undefined)?.find((c) => c.type === type)

function statePids(dir: string): Record<string, number> {
  const state = JSON.parse(fs.readFileSync(path.join(dir, 'state.json'), 'utf8')) as {
    components: { name: string; pid: number }[]
  }
  return Object.fromEntries(state.components.map((c) => [c.name, c.pid]))
}

const demoApp = (replicas: number, withService: boolean) => ({
  'apps/demo/kustomization.yaml': `resources:\n  - deployment.yaml\n${withService ? '  - service.yaml\n' : ''}`,
  'apps/demo/deployment.yaml': `apiVersion: apps/v1
kind: Deployment
metadata: { name: web, labels: { app: web } }
spec:
  replicas: ${replicas}
  selector: { matchLabels: { app: web } }
  template:
    metadata: { labels: { app: web } }
    spec: { containers: [{ name: web, image: nginx:1.27, ports: [{ containerPort: 80 }] }] }
`,
  'apps/demo/service.yaml':
    'apiVersion: v1\nkind: Service\nmetadata: { name: web }\nspec: { selector: { app: web }, ports: [{ port: 80 }] }\n',
})

describe('kustomize-controller on the sim cluster', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-gitops-sim-'))
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-gitops-'))
  const sim = new SimCluster({ dir })
  let kube: Kube
  let server: GitServer
  const work = path.join(tmp, 'work')
  const ns = 'demo'

  const get = (kind: FluxKind, namespace: string, name: string) =>
    kube.custom.getNamespacedCustomObject({ ...fluxKinds[kind], namespace, name }) as Promise<FluxObject>
  const apply = (kind: FluxKind, name: string, spec: Record<string, unknown>) =>
    applyFluxObject(kube, kind, ns, name, spec)
  const commit = async (files: Record<string, string>, remove: string[] = []) => {
    for (const [rel, text] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(work, rel)), { recursive: true })
      fs.writeFileSync(path.join(work, rel), text)
    }
    for (const rel of remove) fs.rmSync(path.join(work, rel), { force: true })
    await git(work, 'add', '-A')
    await git(work, 'commit', '--quiet', '-m', 'change')
    await git(work, 'push', '--quiet', 'origin', 'HEAD:main')
    return git(work, 'rev-parse', 'HEAD')
  }
  const appliedRevision = (namespace: string, name: string, revision: string, timeoutMs = 90_000) => {
    let last: FluxObject | undefined
    return until(
      `Kustomization ${namespace}/${name} Ready at ${revision}`,
      async () => {
        last = await get('Kustomization', namespace, name)
        return last.status?.lastAppliedRevision === revision &&
          cond(last, 'Ready')?.status === 'True' &&
          last.status?.observedGeneration === last.metadata.generation
          ? last
          : undefined
      },
      timeoutMs,
      () => JSON.stringify({ status: last?.status }),
    )
  }

  before(async () => {
    ;({ kube } = await startFluxSim(sim))
    const repos = path.join(tmp, 'repos')
    await createBareRepo(repos, 'app')
    await createBareRepo(repos, 'nsops')
    server = await startGitServer({ root: repos })
    await git(tmp, 'clone', '--quiet', server.urlFor('app.git'), 'work')
    await git(work, 'checkout', '--quiet', '-b', 'main')
  })

  after(async () => {
    await server?.stop()
    await sim.stop({ purge: true })
    fs.rmSync(tmp, { recursive: true, force: true })
  })

  it('k8s/flux holds the GitRepository nsops and one Kustomization per namespace, each applying its prod overlay', async () => {
    const objects = fluxManifests()
    const repo = objects.filter((o) => o.kind === 'GitRepository')
    assert.deepEqual(
      repo.map((o) => `${o.metadata.namespace}/${o.metadata.name}`),
      [`${FLUX_NAMESPACE}/nsops`],
    )
    const ks = objects.filter((o) => o.kind === 'Kustomization')
    const names = ks.map((o) => o.metadata.name).sort()
    for (const ns of ['arr-stack', 'monitoring', 'observability'])
      assert.ok(names.includes(ns), `a Kustomization for ${ns}`)
    assert.equal(new Set(names).size, names.length, 'one Kustomization per namespace')
    // checked per Kustomization, not against the namespaces/ folder: other tests create
    // short-lived namespaces there
    for (const c of await loadNamespaces(names)) {
      const k = ks.find((o) => o.metadata.name === c.name)!
      assert.equal(k.metadata.namespace, FLUX_NAMESPACE)
      if (c.layout) {
        // home-ops' shape (monitoring): its Kustomization applies the namespace and one Flux
        // Kustomization per app, each targeting the namespace from its own ks.yaml
        assert.equal(k.spec.path, `./namespaces/${c.name}/apps`)
        assert.equal(k.spec.targetNamespace, undefined, 'the apps’ Kustomizations stay in flux-system')
        const apps = (await buildProd(c, repoRoot)).kustomizations.filter((n) => n.id !== `${FLUX_NAMESPACE}/${c.name}`)
        assert.ok(apps.length >= 2, `${c.name}: one Kustomization per app`)
        for (const a of apps) {
          assert.equal(a.kustomization.spec?.targetNamespace, c.namespaces.prod, a.id)
          assert.deepEqual(a.kustomization.spec?.sourceRef, { kind: 'GitRepository', name: 'nsops' }, a.id)
          assert.ok(a.kustomization.spec?.postBuild?.substitute, `${a.id}: postBuild.substitute`)
        }
        assert.ok(
          apps.some((a) => a.dependsOn.length),
          `${c.name}: the exporters depend on prometheus (dependsOn)`,
        )
        continue
      }
      const { postBuild, ...spec } = k.spec
      assert.deepEqual(
        spec,
        {
          interval: '10m',
          timeout: '5m',
          path: `./namespaces/${c.name}/overlays/prod`,
          prune: true,
          wait: true,
          targetNamespace: c.namespaces.prod,
          sourceRef: { kind: 'GitRepository', name: 'nsops' },
        },
        'its own prod overlay, never the repository root',
      )
      // a namespace whose chart comes from the cluster's registry reads where it is from the
      // ConfigMap nsops writes (optional: the defaults hold without it)
      if (postBuild)
        assert.deepEqual(
          (postBuild as { substituteFrom?: unknown }).substituteFrom,
          [{ kind: 'ConfigMap', name: REGISTRY_VARS.name, optional: true }],
          `${c.name}: postBuild`,
        )
      assert.ok(
        fs.existsSync(path.join(repoRoot, k.spec.path as string, 'kustomization.yaml')),
        `${k.spec.path} exists`,
      )
    }
  })

  it('runs source-controller, kustomize-controller and the git server as cluster components, and a second ensure({ flux: true }) reuses them', async () => {
    const components = await sim.describe()
    for (const name of ['source-controller', 'kustomize-controller', 'git-server']) {
      assert.equal(components.find((c) => c.name === name)?.state, 'running', JSON.stringify(components))
    }
    const pids = statePids(dir)
    const again = await sim.ensure({ flux: true })
    assert.equal(again.reused, true)
    assert.deepEqual(statePids(dir), pids)
    assert.ok(fs.existsSync((await sim.logs())['kustomize-controller']))
  })

  it('applies a Kustomization from a GitRepository, waits for health and reports lastAppliedRevision main@sha1:<sha>', async (t) => {
    const sha = await commit(demoApp(2, true))
    await kube.core.createNamespace({ body: { metadata: { name: ns } } })
    const started = Date.now()
    await apply('GitRepository', 'app', { url: server.urlFor('app.git'), interval: '10m', ref: { branch: 'main' } })
    await apply('Kustomization', 'app', {
      interval: '10m',
      timeout: '2m',
      path: './apps/demo',
      prune: true,
      wait: true,
      targetNamespace: ns,
      sourceRef: { kind: 'GitRepository', name: 'app' },
    })
    const ks = await appliedRevision(ns, 'app', `main@sha1:${sha}`)
    t.diagnostic(
      `first apply: Ready at main@sha1:${sha.slice(0, 7)} ${Date.now() - started} ms after the objects were created`,
    )
    assert.equal(ks.status?.lastAttemptedRevision, `main@sha1:${sha}`)
    const dep = await kube.apps.readNamespacedDeployment({ name: 'web', namespace: ns })
    assert.equal(dep.status?.readyReplicas, 2)
    await kube.core.readNamespacedService({ name: 'web', namespace: ns })
    assert.equal(dep.metadata?.labels?.['kustomize.toolkit.fluxcd.io/name'], 'app')
  })

  it('applies a pushed change once the GitRepository gets reconcile.fluxcd.io/requestedAt, and prunes what left the repo', async (t) => {
    const sha = await commit(demoApp(3, false), ['apps/demo/service.yaml'])
    const started = Date.now()
    await kube.custom.patchNamespacedCustomObject(
      {
        ...fluxKinds.GitRepository,
        namespace: ns,
        name: 'app',
        body: { metadata: { annotations: { [REQUESTED_AT]: new Date().toISOString() } } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    )
    const source = await until(
      'the new artifact',
      async () => {
        const o = await get('GitRepository', ns, 'app')
        return (o.status?.artifact as { revision?: string } | undefined)?.revision === `main@sha1:${sha}`
          ? o
          : undefined
      },
      15_000,
    )
    const sourceMs = Date.now() - started
    await until(
      'kustomize-controller to pick up the revision',
      async () => {
        const o = await get('Kustomization', ns, 'app')
        return o.status?.lastAttemptedRevision === `main@sha1:${sha}` ? o : undefined
      },
      30_000,
    )
    const pickupMs = Date.now() - started
    await appliedRevision(ns, 'app', `main@sha1:${sha}`)
    t.diagnostic(
      `requestedAt → artifact ${sourceMs} ms, → kustomize-controller attempting it ${pickupMs} ms, → Ready ${Date.now() - started} ms (Kustomization interval 10m)`,
    )
    assert.ok(source)
    assert.equal((await kube.apps.readNamespacedDeployment({ name: 'web', namespace: ns })).spec?.replicas, 3)
    await until(
      'the Service pruned',
      async () => {
        try {
          await kube.core.readNamespacedService({ name: 'web', namespace: ns })
          return undefined
        } catch (err) {
          if (isApiError(err, 404)) return true
          throw err
        }
      },
      30_000,
    )
  })

  it('source-controller does what the stand-in never did: ref.semver picks the highest tag, spec.ignore leaves files out of the artifact', async () => {
    await commit({ 'apps/tagged/notes.md': 'v1.2.0', 'apps/tagged/kustomization.yaml': 'resources: []\n' })
    await git(work, 'tag', 'v1.2.0')
    const v130 = await commit({ 'apps/tagged/notes.md': 'v1.3.0', 'secret-notes.txt': 'not for the cluster' })
    await git(work, 'tag', 'v1.3.0')
    await commit({ 'apps/tagged/notes.md': 'v2.0.0-rc.1' })
    await git(work, 'tag', 'v2.0.0-rc.1')
    await git(work, 'push', '--quiet', 'origin', '--tags')
    await apply('GitRepository', 'tagged', {
      url: server.urlFor('app.git'),
      interval: '10m',
      ref: { semver: '>=1.0.0 <2.0.0' },
      ignore: '/secret-notes.txt\n',
    })
    const repo = await until(
      'the semver-selected artifact',
      async () => {
        const o = await get('GitRepository', ns, 'tagged')
        return (o.status?.artifact as { revision?: string } | undefined)?.revision ? o : undefined
      },
      30_000,
      () => 'no artifact',
    )
    const artifact = repo.status?.artifact as { revision: string; url: string }
    assert.equal(artifact.revision, `v1.3.0@sha1:${v130}`, 'the highest tag in range, not the pre-release')
    assert.match(artifact.url, /^http:\/\/127\.0\.0\.1:\d+\//, 'served on 127.0.0.1')
    const tgz = path.join(tmp, 'tagged.tar.gz')
    fs.writeFileSync(tgz, Buffer.from(await (await fetch(artifact.url)).arrayBuffer()))
    const files = (await run('tar', ['tzf', tgz])).stdout.split('\n')
    assert.ok(
      files.some((f) => f.endsWith('apps/tagged/notes.md')),
      files.join(' '),
    )
    assert.ok(!files.some((f) => f.endsWith('secret-notes.txt')), 'spec.ignore honoured')
  })

  it('HelmRepository and HelmChart sources work without helm-controller: the chart is fetched from a chart repository and stored', async () => {
    const charts = await serveTestCharts(tmp)
    try {
      await apply('HelmRepository', 'local', { url: charts.url, interval: '10m' })
      await apply('HelmChart', 'queue', {
        chart: 'queue',
        version: '0.4.x',
        interval: '10m',
        sourceRef: { kind: 'HelmRepository', name: 'local' },
      })
      let last: FluxObject | undefined
      // Ready and its artifact recorded: a CI run under load once read Ready=True in a status
      // that did not carry the artifact yet
      const chart = await until(
        'HelmChart Ready with its artifact',
        async () => {
          last = await get('HelmChart', ns, 'queue')
          return cond(last, 'Ready')?.status === 'True' && last?.status?.artifact ? last : undefined
        },
        60_000,
        () => JSON.stringify(last?.status),
      )
      assert.equal((chart.status?.artifact as { revision?: string }).revision, '0.4.0')
      assert.equal(cond(await get('HelmRepository', ns, 'local'), 'Ready')?.status, 'True')
    } finally {
      await charts.stop()
    }
  })

  it("an OCIRepository (insecure: true) pulls from the sim's registry what crane pushed, and a Kustomization applies it", async () => {
    const host = (await advertisedRegistry(kube))!.host
    assert.equal(host, sim.registryHost())
    const layer = await layerWith(
      tmp,
      'configmap.yaml',
      'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-oci\ndata:\n  pushed: by-crane\n',
    )
    const pushed = (
      await crane(['append', '--new_layer', layer, '--new_tag', `${host}/manifests/demo:v1`])
    ).stdout.trim()
    const digest = pushed.split('@')[1]
    await apply('OCIRepository', 'manifests', {
      url: `oci://${host}/manifests/demo`,
      ref: { tag: 'v1' },
      insecure: true,
      interval: '10m',
    })
    let last: FluxObject | undefined
    const repo = await until(
      'OCIRepository Ready with its artifact',
      async () => {
        last = await get('OCIRepository', ns, 'manifests')
        return cond(last, 'Ready')?.status === 'True' && last?.status?.artifact ? last : undefined
      },
      60_000,
      () => JSON.stringify(last?.status),
    )
    assert.equal((repo.status?.artifact as { revision?: string }).revision, `v1@${digest}`)
    await apply('Kustomization', 'from-oci', {
      interval: '10m',
      path: './',
      prune: true,
      targetNamespace: ns,
      sourceRef: { kind: 'OCIRepository', name: 'manifests' },
    })
    await appliedRevision(ns, 'from-oci', `v1@${digest}`)
    const cm = await kube.core.readNamespacedConfigMap({ name: 'from-oci', namespace: ns })
    assert.equal(cm.data?.pushed, 'by-crane')
  })

  it('starts a Flux controller that died again on the next ensure({ flux: true }), without restarting the cluster', async () => {
    const before = statePids(dir)
    process.kill(before['kustomize-controller'], 'SIGKILL')
    await until(
      'kustomize-controller gone',
      async () => (pidAlive(before['kustomize-controller']) ? undefined : true),
      10_000,
    )
    assert.equal((await sim.describe()).find((c) => c.name === 'kustomize-controller')?.state, 'dead')
    assert.equal(await sim.isUp(), true, 'a dead Flux controller does not make the cluster down')
    const info = await sim.ensure({ flux: true })
    assert.equal(info.reused, true)
    const after = statePids(dir)
    assert.equal(after['kube-apiserver'], before['kube-apiserver'])
    assert.notEqual(after['kustomize-controller'], before['kustomize-controller'])
    assert.ok((await sim.describe()).every((c) => c.state === 'running'))
  })

  it('bootstrapFlux applies k8s/flux pointed at the local git server, and every namespace is reconciled from this repo', async (t) => {
    const clone = path.join(tmp, 'nsops')
    await git(tmp, 'clone', '--quiet', server.urlFor('nsops.git'), 'nsops')
    await git(clone, 'checkout', '--quiet', '-b', 'main')
    // the namespaces k8s/flux names, as they are in this working tree
    const configs = await loadNamespaces(
      fluxManifests()
        .filter((o) => o.kind === 'Kustomization')
        .map((o) => o.metadata.name),
    )
    for (const c of configs) {
      fs.cpSync(path.join(repoRoot, 'namespaces', c.name), path.join(clone, 'namespaces', c.name), { recursive: true })
    }
    await git(clone, 'add', '-A')
    await git(clone, 'commit', '--quiet', '-m', 'namespaces')
    await git(clone, 'push', '--quiet', 'origin', 'main')
    const sha = await git(clone, 'rev-parse', 'HEAD')

    const started = Date.now()
    // as dev-up does: the charts the repository holds into the sim's registry first
    const published = await publishCharts(kube, repoCharts(clone))
    assert.deepEqual(
      published.charts.map((ch) => `${ch.name}@${ch.version}`),
      ['nsops-app@0.1.0'],
    )
    const applied = await bootstrapFlux(kube, { repoUrl: server.urlFor('nsops.git'), branch: 'main' })
    const repo = await get('GitRepository', FLUX_NAMESPACE, 'nsops')
    assert.equal(repo.spec?.url, server.urlFor('nsops.git'))
    for (const c of configs) await appliedRevision(FLUX_NAMESPACE, c.name, `main@sha1:${sha}`, 240_000)
    // a namespace in home-ops' shape (monitoring): its apps' Kustomizations, applied by its own
    for (const c of configs.filter((x) => x.layout))
      for (const n of (await buildProd(c, repoRoot)).kustomizations)
        if (n.kustomization.metadata.name !== c.name)
          await appliedRevision(FLUX_NAMESPACE, n.kustomization.metadata.name, `main@sha1:${sha}`, 240_000)
    t.diagnostic(
      `bootstrap: ${configs.length} Kustomizations Ready at main@sha1:${sha.slice(0, 7)} ${Date.now() - started} ms after bootstrapFlux`,
    )
    assert.equal(applied.filter((o) => o.kind === 'Kustomization').length, configs.length)
    for (const c of configs) {
      const deployments = await kube.apps.listNamespacedDeployment({ namespace: c.namespaces.prod })
      assert.ok(
        deployments.items.length > 0 ||
          (await kube.apps.listNamespacedStatefulSet({ namespace: c.namespaces.prod })).items.length > 0,
        `${c.namespaces.prod} has workloads`,
      )
    }
    // monitoring's grafana is a HelmRelease of the repository's own chart, from the sim's registry
    const grafana = await get('HelmRelease', 'monitoring', 'grafana')
    assert.equal(conditionOf(grafana, 'Ready')?.status, 'True', JSON.stringify(grafana.status))
    const oci = await get('OCIRepository', 'monitoring', 'nsops-app')
    assert.equal(oci.spec?.url, `oci://${published.registry!.clusterHost}/charts/nsops-app`)
    assert.equal(
      (await kube.apps.readNamespacedDeployment({ namespace: 'monitoring', name: 'grafana' })).metadata?.labels?.[
        'helm.toolkit.fluxcd.io/name'
      ],
      'grafana',
    )
    // idempotent: a second bootstrap changes nothing Flux has to act on
    const gen = (await get('Kustomization', FLUX_NAMESPACE, configs[0].name)).metadata.generation
    await bootstrapFlux(kube, { repoUrl: server.urlFor('nsops.git'), branch: 'main' })
    assert.equal((await get('Kustomization', FLUX_NAMESPACE, configs[0].name)).metadata.generation, gen)
  })
})
