// The shipped namespaces as Flux runs them, through `npx just …` in a copy of this repository
// (test/ci-fixture.ts) with a state folder of its own: `just dev-up monitoring --ci --down`
// starts a sim with the real source-, kustomize- and helm-controller, pushes the repository to
// the sim's git server and applies k8s/flux, so prod's arr-stack and monitoring are Flux's.
// Then the headline post-build case goes out with `just deploy arr-stack`
// (postBuild.substitute { SONARR_TZ: Europe/Berlin } on the Flux Kustomization, TZ=${SONARR_TZ:=Etc/UTC}
// in a configMapGenerator, a prod patch replicas: ${SONARR_REPLICAS:=1}): the live ConfigMap
// has TZ Europe/Berlin under the generated name Flux gives it, and drift is clean. And the
// monitoring namespace (home-ops' per-app ks.yaml shape, grafana a HelmRelease of the
// repository's chart): `just drift monitoring` is clean, a `kubectl scale` of grafana shows
// attributed to its HelmRelease, `just dashboard monitoring --json` shows the release.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { after, before, describe, it } from 'node:test'
import YAML from 'yaml'
import { conditionOf, fluxKinds, type FluxObject } from '../../shared/flux/kinds.ts'
import type { Kube } from '../../shared/kube/client.ts'
import { simRepo, type SimRepo } from '../sim-repo-fixture.ts'
import { git } from '../git-fixture.ts'
import { until } from '../until.ts'

const run = promisify(execFile)

describe('the shipped namespaces under the real Flux controllers, through npx just', () => {
  let repo: SimRepo
  let kube: Kube
  const just = (args: string[], timeout?: number) => repo.just(args, timeout)
  const fluxGet = (kind: 'Kustomization' | 'HelmRelease', namespace: string, name: string) =>
    kube.custom.getNamespacedCustomObject({ ...fluxKinds[kind], namespace, name }).then((o) => o as FluxObject)
  const settled = async (kind: 'Kustomization' | 'HelmRelease', namespace: string, name: string) => {
    const o = await fluxGet(kind, namespace, name)
    return conditionOf(o, 'Ready')?.status === 'True' && o.status?.observedGeneration === o.metadata.generation
  }
  const waitSettled = (kind: 'Kustomization' | 'HelmRelease', namespace: string, name: string, ms = 300_000) =>
    until(`${kind} ${namespace}/${name} Ready`, () => settled(kind, namespace, name), ms).catch(async (err: Error) => {
      const o = await fluxGet(kind, namespace, name).catch(() => undefined)
      throw new Error(`${err.message}: ${JSON.stringify(o?.status?.conditions)}`, { cause: err })
    })

  before(async () => {
    repo = simRepo()
    const up = await just(['dev-up', 'monitoring', '--ci', '--down', '--no-ui', '--timeout', '6m'], 900_000)
    assert.equal(up.code, 0, `${up.stdout}\n${up.stderr}`)
    kube = repo.kube()
    // dev-up pushed the branch to the sim's git server; deploy pushes there too
    git(repo.work, 'branch', '-q', '-u', 'nsops-local/change')
    for (const name of ['arr-stack', 'monitoring', 'monitoring-grafana'])
      await waitSettled('Kustomization', 'flux-system', name)
    await waitSettled('HelmRelease', 'monitoring', 'grafana')
  })

  after(() => repo?.close())

  it('the headline post-build case through just deploy arr-stack: TZ Europe/Berlin in the live ConfigMap under the name Flux generates, replicas 1, drift clean', async () => {
    // the Flux Kustomization is applied from k8s/flux (not by Flux itself): committed, pushed, applied
    const KS = 'k8s/flux/arr-stack.yaml'
    fs.appendFileSync(path.join(repo.work, KS), '  postBuild:\n    substitute:\n      SONARR_TZ: Europe/Berlin\n')
    git(repo.work, 'commit', '-qm', 'arr-stack: SONARR_TZ for the post-build', '--', KS)
    await run('git', ['-C', repo.work, 'push', '-q'])
    await run('kubectl', ['--kubeconfig', repo.kubeconfig, 'apply', '-f', path.join(repo.work, KS)])
    await waitSettled('Kustomization', 'flux-system', 'arr-stack')

    const PROD = 'namespaces/arr-stack/overlays/prod/kustomization.yaml'
    fs.appendFileSync(
      path.join(repo.work, PROD),
      `configMapGenerator:
  - name: sonarr-env
    literals:
      - TZ=\${SONARR_TZ:=Etc/UTC}
patches:
  - target: { kind: Deployment, name: sonarr }
    patch: |
      apiVersion: apps/v1
      kind: Deployment
      metadata: { name: sonarr }
      spec:
        replicas: \${SONARR_REPLICAS:=1}
`,
    )
    const rendered = await just(['render', 'arr-stack'])
    assert.equal(rendered.code, 0, rendered.stderr)
    const predicted = YAML.parseAllDocuments(rendered.stdout)
      .map((d) => d.toJS() as { kind: string; metadata: { name: string } })
      .find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('sonarr-env-'))
    assert.ok(predicted, 'render gives the generated ConfigMap')

    const d = await just(['deploy', 'arr-stack', '--yes', '--json', '--timeout', '4m'], 600_000)
    const report = JSON.parse(d.stdout || '{}') as { exitCode?: number; outcome?: string; summary?: string }
    assert.equal(report.exitCode, 0, `${report.outcome}: ${report.summary}\n${d.stderr}`)
    assert.equal(d.code, 0)
    const cms = (await kube.core.listNamespacedConfigMap({ namespace: 'arr-stack' })).items
    const live = cms.find((c) => c.metadata?.name?.startsWith('sonarr-env-'))
    assert.ok(live, `a sonarr-env ConfigMap: ${cms.map((c) => c.metadata?.name).join(', ')}`)
    assert.equal(live.data?.TZ, 'Europe/Berlin')
    assert.equal(live.metadata?.name, predicted.metadata.name, 'the name render predicted (hashed before substitution)')
    assert.equal(live.metadata?.labels?.['kustomize.toolkit.fluxcd.io/name'], 'arr-stack', 'applied by Flux')
    const sonarr = await kube.apps.readNamespacedDeployment({ namespace: 'arr-stack', name: 'sonarr' })
    assert.equal(sonarr.spec?.replicas, 1)

    const drift = await just(['drift', 'arr-stack'])
    assert.equal(drift.code, 0, `${drift.stdout}\n${drift.stderr}`)
    assert.match(drift.stdout, /→ in sync \(exit 0\)|0 modified, 0 missing, 0 gone from git/)
  })

  it('monitoring (per-app ks.yaml, grafana a HelmRelease): drift clean, a kubectl scale of grafana shows under its HelmRelease; dashboard --json shows the release', async () => {
    const clean = await just(['drift', 'monitoring', '--json'])
    assert.equal(clean.code, 0, `${clean.stdout}\n${clean.stderr}`)
    const before = JSON.parse(clean.stdout) as {
      source: { kustomization?: { name: string }; also?: string[]; helmReleases?: { name: string; baseline: string }[] }
      counts: Record<string, number>
    }
    assert.equal(before.source.kustomization?.name, 'monitoring')
    assert.ok(before.source.also?.includes('flux-system/monitoring-grafana'), JSON.stringify(before.source))
    assert.deepEqual(
      before.source.helmReleases?.map((h) => `${h.name} ${h.baseline}`),
      ['grafana rendered'],
    )
    assert.ok(before.counts['in-sync'] > 5, JSON.stringify(before.counts))

    await run('kubectl', [
      '--kubeconfig',
      repo.kubeconfig,
      '-n',
      'monitoring',
      'scale',
      'deployment/grafana',
      '--replicas=2',
    ])
    const drifted = await just(['drift', 'monitoring', '--json'])
    assert.equal(drifted.code, 1, `${drifted.stdout}\n${drifted.stderr}`)
    const after = JSON.parse(drifted.stdout) as {
      objects: { class: string; ref: { kind: string; name: string }; helmRelease?: string }[]
    }
    assert.deepEqual(
      after.objects
        .filter((o) => o.class === 'modified' || o.class === 'missing' || o.class === 'gone-from-git')
        .map((o) => `${o.class} ${o.ref.kind}/${o.ref.name} ${o.helmRelease ?? ''}`),
      ['modified Deployment/grafana monitoring/grafana'],
    )

    // the Kustomizations reconcile every new revision of the repository (the arr-stack deploy
    // above pushed one), and monitoring-grafana waits for monitoring-prometheus (dependsOn)
    // meanwhile: read the dashboard until Flux has settled, as a person would look again
    type Model = {
      namespace: { name: string }
      flux: {
        objects: { kind: string; name: string; ready: string }[]
        releases: { name: string; chartVersion: string; ready: string; revision: number; lastResult: string }[]
      }
    }
    let model: Model | undefined
    let last = ''
    await until(
      'the dashboard shows Kustomization monitoring-grafana and its release Ready',
      async () => {
        const dash = await just(['dashboard', 'monitoring', '--env', 'prod', '--json'])
        last = `${dash.code} ${dash.stdout.slice(0, 2000)} ${dash.stderr}`
        if (dash.code !== 0) return false
        const m = JSON.parse(dash.stdout) as Model
        model = m
        return (
          m.flux.objects.some(
            (o) => o.kind === 'Kustomization' && o.name === 'monitoring-grafana' && o.ready === 'True',
          ) && m.flux.releases.some((r) => r.name === 'grafana' && r.ready === 'True')
        )
      },
      180_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; the last dashboard: ${last}`, { cause: err })
    })
    assert.ok(model)
    assert.equal(model.namespace.name, 'monitoring')
    const grafana = model.flux.releases.find((r) => r.name === 'grafana')
    assert.ok(grafana, JSON.stringify(model.flux.releases))
    assert.match(grafana.chartVersion, /^nsops-app@0\.1\.0/)
    assert.equal(grafana.ready, 'True')
    assert.equal(grafana.lastResult, 'succeeded')
    assert.ok(grafana.revision >= 1)
    assert.ok(
      model.flux.objects.some(
        (o) => o.kind === 'Kustomization' && o.name === 'monitoring-grafana' && o.ready === 'True',
      ),
      JSON.stringify(model.flux.objects),
    )
  })
})
