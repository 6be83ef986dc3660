// dependsOn along a deploy, with the real source-controller and kustomize-controller on a sim
// cluster of its own reading a real git server: a namespace (namespace.ts layout) applied by
// two Flux Kustomizations, chain-app depending on chain-db. A change whose first link can
// never become healthy: deploy applies the chain in dependsOn order, waits on chain-db before
// chain-app, names chain-db as the link that is not Ready, and rolls back (exit 2). And a
// dependency that is one of the namespace's own Kustomizations never blocks the push.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import YAML from 'yaml'
import { SimCluster } from '../../shared/cluster/sim/index.ts'
import { createBareRepo, startGitServer, type GitServer } from '../../shared/cluster/sim/git-server.ts'
import type { Kube } from '../../shared/kube/client.ts'
import { defineNamespace, namespacePaths, type NamespaceConfig } from '../../shared/config/namespace-config.ts'
import { runDeployQuietly } from './deploy-fixture.ts'
import { until } from '../until.ts'
import { startFluxSim } from '../flux-fixture.ts'
import { fluxGitSource, newWorkClone } from './gitops-fixture.ts'

const NS = 'chain'

const ks = (name: string, extra: string) => `apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: ${name}
  namespace: flux-system
spec:
  interval: 10m
  timeout: 60s
  path: ./chain/${name.replace('chain-', '')}/app
  prune: true
  wait: true
  targetNamespace: ${NS}
  sourceRef: { kind: GitRepository, name: chain-src }
${extra}`

const deployment = (name: string) => `apiVersion: apps/v1
kind: Deployment
metadata: { name: ${name}, labels: { app.kubernetes.io/name: ${name} } }
spec:
  replicas: 1
  selector: { matchLabels: { app.kubernetes.io/name: ${name} } }
  template:
    metadata: { labels: { app.kubernetes.io/name: ${name} } }
    spec:
      containers:
        - name: ${name}
          image: traefik/whoami:v1.10.3
`

describe('deploy along a dependsOn chain (real source- and kustomize-controller)', () => {
  let tmp = ''
  let sim: SimCluster
  let server: GitServer | undefined
  let kube: Kube
  let kubeconfig = ''
  let work = ''
  let ns: NamespaceConfig
  let git$: (...args: string[]) => Promise<string>
  let write: (rel: string, text: string) => void
  const applied = async (name: string, sha: string) => {
    const k = (await kube.custom.getNamespacedCustomObject({
      group: 'kustomize.toolkit.fluxcd.io',
      version: 'v1',
      namespace: 'flux-system',
      plural: 'kustomizations',
      name,
    })) as { status?: { lastAppliedRevision?: string; conditions?: { type: string; status: string }[] } }
    return (
      k.status?.lastAppliedRevision?.endsWith(sha) &&
      k.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')
    )
  }

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-chain-'))
    sim = new SimCluster({ dir: path.join(tmp, 'sim') })
    ;({ kube, kubeconfig } = await startFluxSim(sim))
    const repos = path.join(tmp, 'repos')
    fs.mkdirSync(repos)
    await createBareRepo(repos, 'chain.git')
    server = await startGitServer({ root: repos })
    work = path.join(tmp, 'work')
    ;({ git$, write } = await newWorkClone(work))
    write('chain/db/ks.yaml', ks('chain-db', ''))
    write('chain/db/app/kustomization.yaml', 'resources: [deployment.yaml]\n')
    write('chain/db/app/deployment.yaml', deployment('db'))
    write('chain/app/ks.yaml', ks('chain-app', '  dependsOn:\n    - name: chain-db\n'))
    write('chain/app/app/kustomization.yaml', 'resources: [deployment.yaml]\n')
    write('chain/app/app/deployment.yaml', deployment('web'))
    await git$('add', '-A')
    await git$('commit', '-qm', 'chain: first version')
    await git$('remote', 'add', 'origin', server.urlFor('chain.git'))
    await git$('push', '-q', '-u', 'origin', 'main')

    const create = await fluxGitSource(kube, NS, 'chain-src', server.urlFor('chain.git'))
    for (const f of ['chain/db/ks.yaml', 'chain/app/ks.yaml'])
      await create(
        'kustomizations',
        'kustomize.toolkit.fluxcd.io',
        YAML.parse(fs.readFileSync(path.join(work, f), 'utf8')),
      )
    const base = defineNamespace({
      name: NS,
      description: 'a dependsOn chain',
      namespaces: { dev: `${NS}-dev`, prod: NS },
      layout: { kustomizations: ['chain/db/ks.yaml', 'chain/app/ks.yaml'] },
    })
    // its folders in the clone, not in this repository
    ns = {
      ...base,
      paths: namespacePaths(path.join(work, 'namespaces', NS)),
      layout: { ...base.layout!, root: 'chain' },
    }
    const head = await git$('rev-parse', 'HEAD')
    await until(
      'Flux applied the first version of both links',
      async () => (await applied('chain-db', head)) && (await applied('chain-app', head)),
      120_000,
    )
  })
  after(async () => {
    await server?.stop()
    await sim?.stop({ purge: true })
    fs.rmSync(tmp, { recursive: true, force: true })
  })

  it('the first link can never become healthy: deploy names it, holds back what depends on it and rolls back (exit 2)', async () => {
    const before = await git$('rev-parse', 'HEAD')
    // no node has this label, and the Deployment gives up after 10 s (ProgressDeadlineExceeded)
    write(
      'chain/db/app/deployment.yaml',
      deployment('db')
        .replace('  replicas: 1\n', '  replicas: 1\n  progressDeadlineSeconds: 10\n')
        .replace(
          '    spec:\n      containers:',
          '    spec:\n      nodeSelector: { disk: nvme-that-does-not-exist }\n      containers:',
        ),
    )
    write('chain/app/app/deployment.yaml', deployment('web').replace('v1.10.3', 'v1.10.2'))
    const t0 = Date.now()
    const r = await runDeployQuietly({ ns, repoDir: work, yes: true, target: { kubeconfig }, timeoutMs: 150_000 })
    assert.equal(
      r.exitCode,
      2,
      `${r.outcome}: ${r.summary}\n${JSON.stringify(r.steps.map((s) => [s.name, s.status, s.message]))}`,
    )
    assert.equal(r.outcome, 'rolled-back')
    assert.ok(Date.now() - t0 < 140_000, 'failed on the link, not after the timeout')
    assert.match(
      r.summary,
      /dependsOn: Kustomization\/flux-system\/chain-db \(Kustomization\/flux-system\/chain-app depends on it\) is not Ready: .*\bdb\b/s,
    )
    // Flux held back what depends on the broken link: it never ran the new version
    const web = await kube.apps.readNamespacedDeployment({ name: 'web', namespace: NS })
    assert.equal(web.spec?.template.spec?.containers[0].image, 'traefik/whoami:v1.10.3')
    const log = (await git$('log', '--format=%s', `${before}..HEAD`)).split('\n')
    assert.equal(log.length, 2, log.join(' | '))
    assert.match(log[0], /revert/i)
  })
})
