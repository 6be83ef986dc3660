// postBuild.substituteFrom a Secret the repository does not hold (home-ops' cluster-secrets,
// made on the cluster by SOPS or by hand), through the user's door (`npx just …`) in a home-ops
// repository with nsops added, against a sim cluster of its own running the real
// source-controller and kustomize-controller, reading a real git server. Offline, the error
// names the Kustomization, the variable and the Secret it would come from; connected,
// validate, render and deploy read it from the cluster and build what the controller applied
// (compared object by object), and no output prints the Secret's values. deploy's diff labels
// each object with the Flux Kustomization that builds it (one per app here): an unchanged app
// shows no change.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { after, before, describe, it } from 'node:test'
import { KubeConfig } from '@kubernetes/client-node'
import YAML from 'yaml'
import { SimCluster } from '../../shared/cluster/sim/index.ts'
import { createBareRepo, startGitServer, type GitServer } from '../../shared/cluster/sim/git-server.ts'
import { clientsFor, type Kube } from '../../shared/kube/client.ts'
import { adoptRepo, justIn, type AdoptRepo } from '../adopt-fixture.ts'
import { git, write } from '../git-fixture.ts'
import { until } from '../until.ts'

const run = promisify(execFile)

const APPS = ['jellyfin', 'prowlarr', 'radarr', 'sonarr']
const DOMAIN = 'home.sim.test'
// a value of the Secret no object uses: it must never show up in any output
const TOKEN = 'tok-9f3a1c-never-printed'

const namespaceTs = `import { defineNamespace } from '../../shared/config/namespace-config.ts'

export default defineNamespace({
  name: 'default',
  description: 'media apps',
  namespaces: { dev: 'default-dev', prod: 'default' },
  layout: { kustomizations: ${JSON.stringify(APPS.map((a) => `kubernetes/apps/default/${a}/ks.yaml`))} },
})
`

type Obj = {
  kind: string
  metadata: { name: string; namespace?: string; labels?: Record<string, string> }
  data?: Record<string, string>
  spec?: Record<string, unknown>
}

interface FluxKs {
  status?: { lastAppliedRevision?: string; conditions?: { type: string; status: string }[] }
}

describe('substituteFrom a Secret made on the cluster (real source- and kustomize-controller)', () => {
  let r: AdoptRepo
  let sim: SimCluster
  let server: GitServer | undefined
  let kube: Kube
  let kubeconfig = ''
  const ks = async (name: string) =>
    (await kube.custom.getNamespacedCustomObject({
      group: 'kustomize.toolkit.fluxcd.io',
      version: 'v1',
      namespace: 'flux-system',
      plural: 'kustomizations',
      name,
    })) as FluxKs
  const applied = async (name: string, sha: string) => {
    const k = await ks(name).catch(() => undefined)
    return Boolean(
      k?.status?.lastAppliedRevision?.endsWith(sha) &&
      k.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
    )
  }
  const allApplied = async (sha: string) => {
    for (const a of APPS) if (!(await applied(a, sha))) return false
    return true
  }
  const liveEnv = async () =>
    (await kube.core.listNamespacedConfigMap({ namespace: 'default' })).items.find((c) =>
      c.metadata?.name?.startsWith('sonarr-env-'),
    )

  before(async () => {
    r = adoptRepo('home-ops')
    sim = new SimCluster({ dir: path.join(r.root, 'sim') })
    const info = await sim.ensure({ flux: true })
    kubeconfig = info.kubeconfig
    const kc = new KubeConfig()
    kc.loadFromFile(kubeconfig)
    kube = clientsFor(kc, kubeconfig)
    const repos = path.join(r.root, 'repos')
    fs.mkdirSync(repos)
    await createBareRepo(repos, 'home.git')
    server = await startGitServer({ root: repos })
    const url = server.urlFor('home.git')

    // SECRET_DOMAIN leaves the repository's cluster-settings for a Secret only the cluster has
    const settings = 'kubernetes/flux/vars/cluster-settings.yaml'
    fs.writeFileSync(
      path.join(r.work, settings),
      fs.readFileSync(path.join(r.work, settings), 'utf8').replace(/^\s*SECRET_DOMAIN:.*\n/m, ''),
    )
    const root = 'kubernetes/flux/cluster/ks.yaml'
    fs.writeFileSync(
      path.join(r.work, root),
      fs
        .readFileSync(path.join(r.work, root), 'utf8')
        .replace(
          '      - { kind: ConfigMap, name: cluster-settings }\n',
          '      - { kind: ConfigMap, name: cluster-settings }\n      - { kind: Secret, name: cluster-secrets }\n',
        ),
    )
    write(r.work, 'namespaces/default/namespace.ts', namespaceTs)
    git(r.work, 'switch', '-q', 'main')
    git(r.work, 'add', '-A')
    git(r.work, 'commit', '-qm', 'cluster-secrets from the cluster; nsops namespace default')
    git(r.work, 'remote', 'set-url', 'origin', url)
    // not execFileSync: the git server answers from this process's event loop
    await run('git', ['-C', r.work, 'push', '-q', '-u', 'origin', 'main'])
    const head = git(r.work, 'rev-parse', 'HEAD')

    await kube.core.createNamespace({ body: { metadata: { name: 'flux-system' } } }).catch(() => {})
    await kube.core.createNamespacedSecret({
      namespace: 'flux-system',
      body: { metadata: { name: 'cluster-secrets' }, stringData: { SECRET_DOMAIN: DOMAIN, SECRET_TOKEN: TOKEN } },
    })
    const create = (plural: string, group: string, body: object) =>
      kube.custom.createNamespacedCustomObject({ group, version: 'v1', namespace: 'flux-system', plural, body })
    await create('gitrepositories', 'source.toolkit.fluxcd.io', {
      apiVersion: 'source.toolkit.fluxcd.io/v1',
      kind: 'GitRepository',
      metadata: { name: 'flux-system' },
      spec: { url, interval: '10m', ref: { branch: 'main' } },
    })
    for (const doc of YAML.parseAllDocuments(fs.readFileSync(path.join(r.work, root), 'utf8')))
      await create('kustomizations', 'kustomize.toolkit.fluxcd.io', doc.toJS())
    await until('Flux applied every app of the first version', () => allApplied(head), 180_000)
  })
  after(async () => {
    await server?.stop()
    await sim?.stop({ purge: true })
    fs.rmSync(r.root, { recursive: true, force: true })
  })

  it('offline: the error names the Kustomization, the variable and the Secret on the cluster it would come from', async () => {
    const v = await justIn(r.work, ['validate', 'default', '--offline'])
    assert.equal(v.code, 1, v.stderr)
    assert.match(
      v.stderr,
      /Flux Kustomization flux-system\/cluster-apps \(kubernetes\/flux\/cluster\/ks\.yaml\): variable SECRET_DOMAIN is not set in Kustomization \w+: it would come from Secret flux-system\/cluster-secrets on the cluster \(postBuild\.substituteFrom\)/,
    )
    assert.match(v.stderr, /hint: Run it connected to the cluster/)
  })

  it('connected: validate and render read the Secret from the cluster and build what the controller applied', async () => {
    const v = await justIn(r.work, ['validate', 'default', '--kubeconfig', kubeconfig])
    assert.equal(v.code, 0, v.stderr)
    assert.match(v.stderr, /default: 4 Flux Kustomizations .* builds .*the API server .* accepts/)
    const out = await justIn(r.work, ['render', 'default', '--online', '--kubeconfig', kubeconfig])
    assert.equal(out.code, 0, out.stderr)
    const objects = YAML.parseAllDocuments(out.stdout).map((d) => d.toJS()) as Obj[]
    const env = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('sonarr-env-'))
    assert.equal(env?.data?.HOST, `sonarr.${DOMAIN}`, 'substituted from the Secret')
    // what kustomize-controller applied: the same generated name and data
    const live = await liveEnv()
    assert.equal(live?.metadata?.name, env?.metadata.name)
    assert.deepEqual({ ...live?.data }, { ...env?.data })
    // ${APP} from each app's own Kustomization, as applied
    for (const app of APPS) {
      const d = await kube.apps.readNamespacedDeployment({ name: app, namespace: 'default' })
      const built = objects.find((o) => o.kind === 'Deployment' && o.metadata.name === app) as
        { spec: { template: { spec: { volumes?: { persistentVolumeClaim?: { claimName?: string } }[] } } } } | undefined
      assert.equal(
        d.spec?.template.spec?.volumes?.[0]?.persistentVolumeClaim?.claimName,
        built?.spec.template.spec.volumes?.[0]?.persistentVolumeClaim?.claimName,
        app,
      )
    }
    for (const text of [v.stdout, v.stderr, out.stdout, out.stderr]) assert.ok(!text.includes(TOKEN), 'a Secret value')
  })

  it('deploy reads it too; its diff shows the one changed app only, each object as its own Kustomization applies it', async () => {
    const file = path.join(r.work, 'kubernetes/apps/default/sonarr/app/deployment.yaml')
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('sonarr:1.0.0', 'sonarr:1.0.1'))
    const dry = await justIn(r.work, ['diff', 'default', '--json', '--kubeconfig', kubeconfig])
    assert.equal(dry.code, 0, dry.stderr)
    const report = JSON.parse(dry.stdout) as {
      steps: {
        name: string
        detail?: { objects?: { ref: { kind: string; name: string }; action: string; diff?: string }[] }
      }[]
    }
    const changed = (report.steps.find((s) => s.name === 'diff')?.detail?.objects ?? []).filter(
      (o) => o.action !== 'unchanged',
    )
    assert.deepEqual(
      changed.map((o) => `${o.ref.kind}/${o.ref.name}`),
      ['Deployment/sonarr'],
      changed.map((o) => o.diff).join('\n'),
    )
    assert.match(
      changed[0].diff ?? '',
      /-\s+image: ghcr\.io\/home-operations\/sonarr:1\.0\.0\n\+\s+image: ghcr\.io\/home-operations\/sonarr:1\.0\.1/,
    )

    const d = await justIn(r.work, ['deploy', 'default', '--yes', '--timeout', '3m', '--kubeconfig', kubeconfig])
    assert.equal(d.code, 0, `${d.stdout}\n${d.stderr}`)
    for (const text of [dry.stdout, dry.stderr, d.stdout, d.stderr]) assert.ok(!text.includes(TOKEN), 'a Secret value')
    const head = git(r.work, 'rev-parse', 'HEAD')
    assert.ok(await applied('sonarr', head), 'Flux applied the deploy')
    const live = await kube.apps.readNamespacedDeployment({ name: 'sonarr', namespace: 'default' })
    assert.equal(live.spec?.template.spec?.containers[0].image, 'ghcr.io/home-operations/sonarr:1.0.1')
    assert.equal((await liveEnv())?.data?.HOST, `sonarr.${DOMAIN}`)
  })
})
