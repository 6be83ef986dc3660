// Every namespace's overlays, built with the pinned kustomize and read as a user's cluster
// would receive them; and the namespace.ts config that the commands read beside them.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { pathToFileURL } from 'node:url'
import { before, describe, it } from 'node:test'
import type {
  V1Container,
  V1Ingress,
  V1PersistentVolumeClaim,
  V1PodTemplateSpec,
  V1Service,
} from '@kubernetes/client-node'
import { parseAllDocuments } from 'yaml'
import { NsopsError } from '../../shared/core/errors.ts'
import {
  defineNamespace,
  developedInPlace,
  sourceRoot,
  environments,
  type Environment,
  type NamespaceConfig,
  type NamespaceInput,
} from '../../shared/config/namespace-config.ts'
import { repoRoot } from '../../shared/core/paths.ts'
import { buildProd } from '../../shared/flux/build/index.ts'
import { toolPath } from '../../shared/tools/provision.ts'

const run = promisify(execFile)

interface K8sObject {
  apiVersion: string
  kind: string
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> }
  spec?: Record<string, unknown>
  data?: Record<string, string>
  stringData?: Record<string, string>
  sops?: unknown
}

interface Workload extends K8sObject {
  spec: { template: V1PodTemplateSpec; strategy?: { type?: string } }
}

const clusterScoped = new Set([
  'Namespace',
  'ClusterRole',
  'ClusterRoleBinding',
  'StorageClass',
  'PersistentVolume',
  'CustomResourceDefinition',
  'PriorityClass',
  'IngressClass',
])
const workloadKinds = new Set(['Deployment', 'StatefulSet', 'DaemonSet'])

interface Build {
  config: NamespaceConfig
  env: Environment
  objects: K8sObject[]
}

const namespacesDir = path.join(repoRoot, 'namespaces')
// listed when the suite starts, not when the file is imported: test/all.ts imports every file
// while the first ones already run, and e2e/bad-namespace makes (and removes) a folder here
const shippedNamespaces = () =>
  fs
    .readdirSync(namespacesDir)
    .filter((n) => fs.existsSync(path.join(namespacesDir, n, 'namespace.ts')))
    .sort()
let namespaceNames: string[] = []

async function loadConfig(name: string): Promise<NamespaceConfig> {
  const mod = (await import(pathToFileURL(path.join(namespacesDir, name, 'namespace.ts')).href)) as {
    default: NamespaceConfig
  }
  return mod.default
}

async function build(kustomize: string, dir: string): Promise<K8sObject[]> {
  const { stdout } = await run(kustomize, ['build', dir], { maxBuffer: 64 * 1024 * 1024 })
  return parseAllDocuments(stdout).map((doc) => {
    assert.equal(doc.errors.length, 0, `${dir}: ${doc.errors.map((e) => e.message).join('; ')}`)
    return doc.toJS() as K8sObject
  })
}

/**
 * What helm-controller would apply for each HelmRelease whose chart is one the namespace folder
 * holds (its OCIRepository names <ns>/charts/<name>): `helm template` of that chart with the
 * release's values, by the pinned helm, so every check below sees grafana's Deployment,
 * Service, Ingress and PVC as it sees a plain manifest's.
 */
async function renderReleases(objects: K8sObject[], nsRoot: string, tmp: string): Promise<K8sObject[]> {
  const helm = await toolPath('helm')
  const out: K8sObject[] = []
  for (const hr of objects.filter((o) => o.kind === 'HelmRelease')) {
    const spec = hr.spec as { chartRef?: { kind: string; name: string }; values?: unknown }
    const source = objects.find((o) => o.kind === spec.chartRef?.kind && o.metadata.name === spec.chartRef?.name)
    const chart = String((source?.spec as { url?: string } | undefined)?.url ?? '')
      .split('/')
      .pop()!
    const dir = path.join(nsRoot, 'charts', chart)
    assert.ok(fs.existsSync(dir), `HelmRelease ${hr.metadata.name}: its chart ${chart} is not in ${nsRoot}/charts`)
    const work = path.join(tmp, `${path.basename(nsRoot)}-${hr.metadata.namespace}-${hr.metadata.name}`)
    fs.cpSync(path.join(nsRoot, 'charts'), work, { recursive: true })
    await run(helm, ['dependency', 'build', path.join(work, chart)])
    fs.writeFileSync(path.join(work, 'values.json'), JSON.stringify(spec.values ?? {}))
    const { stdout } = await run(helm, [
      'template',
      hr.metadata.name,
      path.join(work, chart),
      '--namespace',
      hr.metadata.namespace ?? 'default',
      '--values',
      path.join(work, 'values.json'),
    ])
    for (const doc of parseAllDocuments(stdout)) {
      const o = doc.toJS() as K8sObject | null
      if (o) out.push({ ...o, metadata: { ...o.metadata, namespace: o.metadata.namespace ?? hr.metadata.namespace } })
    }
  }
  return out
}

const id = (o: K8sObject) => `${o.kind}/${o.metadata.name}`
const workloadsOf = (b: Build) => b.objects.filter((o): o is Workload => workloadKinds.has(o.kind))
const ofKind = <T>(b: Build, kind: string) => b.objects.filter((o) => o.kind === kind) as unknown as T[]
const containersOf = (w: Workload): V1Container[] => [
  ...(w.spec.template.spec?.initContainers ?? []),
  ...(w.spec.template.spec?.containers ?? []),
]
const claimsOf = (w: Workload): string[] =>
  (w.spec.template.spec?.volumes ?? []).flatMap((v) =>
    v.persistentVolumeClaim ? [v.persistentVolumeClaim.claimName] : [],
  )

describe('namespace manifests', () => {
  const builds: Build[] = []

  before(async () => {
    namespaceNames = shippedNamespaces()
    const kustomize = await toolPath('kustomize')
    const configs = await Promise.all(namespaceNames.map(loadConfig))
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-manifests-'))
    try {
      const all = await Promise.all(
        configs.flatMap((config) =>
          environments.map(async (env) => {
            // prod of a namespace whose namespace.ts has a layout (monitoring: one Flux
            // Kustomization per app) is what those Kustomizations apply to it, as Flux builds them
            const objects =
              env === 'prod' && config.layout
                ? ((await buildProd(config, repoRoot)).objects.filter(
                    (o) => !(o.kind === 'Kustomization' && o.apiVersion.startsWith('kustomize.toolkit.fluxcd.io/')),
                  ) as unknown as K8sObject[])
                : await build(kustomize, config.paths.overlays[env])
            return { config, env, objects: [...objects, ...(await renderReleases(objects, config.paths.root, tmp))] }
          }),
        ),
      )
      builds.push(...all)
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true })
    }
  })

  it('finds the three functional namespaces, each with a namespace.ts named after its folder', async () => {
    for (const n of ['arr-stack', 'monitoring', 'observability']) assert.ok(namespaceNames.includes(n), n)
    for (const n of namespaceNames) {
      const config = await loadConfig(n)
      assert.equal(config.name, n)
      for (const dir of [
        config.paths.base,
        config.paths.overlays.dev,
        config.layout ? sourceRoot(config) : config.paths.overlays.prod,
        config.paths.components,
      ]) {
        assert.ok(fs.statSync(dir).isDirectory(), `${n}: ${dir} is missing`)
      }
    }
    assert.equal(builds.length, namespaceNames.length * environments.length)
  })

  it("puts every object in the overlay's namespace and ships that Namespace with it", () => {
    for (const b of builds) {
      const ns = b.config.namespaces[b.env]
      const stray = b.objects.filter((o) => !clusterScoped.has(o.kind) && o.metadata.namespace !== ns).map(id)
      assert.deepEqual(stray, [], `${b.config.name}/${b.env}: objects outside ${ns}`)
      const scopedWithNs = b.objects.filter((o) => clusterScoped.has(o.kind) && o.metadata.namespace).map(id)
      assert.deepEqual(scopedWithNs, [], `${b.config.name}/${b.env}: cluster-scoped objects with a namespace`)
      const namespaces = b.objects.filter((o) => o.kind === 'Namespace').map((o) => o.metadata.name)
      assert.deepEqual(namespaces, [ns], `${b.config.name}/${b.env}: the overlay must include Namespace ${ns}`)
    }
  })

  it("names cluster-scoped objects after the overlay's namespace, so dev and prod can share a cluster", () => {
    const seen = new Map<string, string>()
    for (const b of builds) {
      const ns = b.config.namespaces[b.env]
      for (const o of b.objects.filter((x) => clusterScoped.has(x.kind) && x.kind !== 'Namespace')) {
        assert.ok(o.metadata.name.startsWith(`${ns}-`), `${b.config.name}/${b.env}: ${id(o)} should be named ${ns}-…`)
        const other = seen.get(id(o))
        assert.equal(other, undefined, `${id(o)} is in both ${other} and ${b.config.name}/${b.env}`)
        seen.set(id(o), `${b.config.name}/${b.env}`)
      }
      for (const rb of b.objects.filter((x) => x.kind === 'ClusterRoleBinding') as unknown as {
        roleRef: { name: string }
        subjects: { namespace?: string }[]
      }[]) {
        assert.ok(
          rb.roleRef.name.startsWith(`${ns}-`),
          `${b.config.name}/${b.env}: binding refers to ${rb.roleRef.name}`,
        )
        for (const s of rb.subjects)
          assert.equal(s.namespace, ns, `${b.config.name}/${b.env}: binding subject outside ${ns}`)
      }
    }
  })

  it('gives every container a readiness probe, resource requests and a memory limit', () => {
    for (const b of builds) {
      for (const w of workloadsOf(b)) {
        for (const c of containersOf(w)) {
          const at = `${b.config.name}/${b.env} ${id(w)} container ${c.name}`
          assert.ok(c.readinessProbe, `${at}: no readinessProbe`)
          assert.ok(c.livenessProbe, `${at}: no livenessProbe`)
          assert.ok(c.resources?.requests?.cpu && c.resources.requests.memory, `${at}: no cpu/memory requests`)
          assert.ok(c.resources?.limits?.memory, `${at}: no memory limit`)
        }
      }
    }
  })

  it('pins every image to a version tag or digest', () => {
    for (const b of builds) {
      for (const w of workloadsOf(b)) {
        for (const c of containersOf(w)) {
          const image = c.image ?? ''
          // an image the namespace builds (namespace.ts images:) is pinned by digest when the dev
          // loop applies it; prod pins the release its CI published
          if (b.env === 'dev' && image in b.config.images) continue
          const tag = image.includes('@') ? 'digest' : image.slice(image.lastIndexOf('/') + 1).split(':')[1]
          assert.ok(
            tag && !['latest', 'rolling', 'develop', 'nightly'].includes(tag),
            `${b.config.name} ${id(w)}: ${image} is not pinned`,
          )
        }
      }
    }
  })

  it('has a workload and a Service on the configured port for every app in namespace.ts', () => {
    for (const b of builds) {
      const services = ofKind<V1Service>(b, 'Service')
      for (const app of b.config.apps) {
        const at = `${b.config.name}/${b.env} app ${app.name}`
        const workload = workloadsOf(b).find(
          (w) => w.spec.template.metadata?.labels?.['app.kubernetes.io/name'] === app.name,
        )
        assert.ok(workload, `${at}: no Deployment/StatefulSet/DaemonSet labelled app.kubernetes.io/name=${app.name}`)
        const labels = workload.spec.template.metadata?.labels ?? {}
        assert.equal(
          labels['nsops.dev/group'],
          app.group,
          `${at}: nsops.dev/group label does not match its dashboard group`,
        )
        assert.equal(labels['app.kubernetes.io/part-of'], b.config.name, `${at}: app.kubernetes.io/part-of`)
        const svc = services.find((s) => s.metadata?.name === app.name)
        assert.ok(svc, `${at}: no Service named ${app.name}`)
        assert.ok(
          svc.spec?.ports?.some((p) => p.port === app.port),
          `${at}: Service has no port ${app.port}`,
        )
        for (const [k, v] of Object.entries(svc.spec?.selector ?? {})) {
          assert.equal(labels[k], v, `${at}: Service selector ${k}=${v} does not select the workload's pods`)
        }
      }
    }
  })

  it('forwards only to Services and ports that exist, with local ports unique across namespaces', () => {
    const locals = new Map<number, string>()
    for (const b of builds) {
      const services = ofKind<V1Service>(b, 'Service')
      for (const f of b.config.portForwards) {
        const svc = services.find((s) => s.metadata?.name === f.app)
        assert.ok(
          svc?.spec?.ports?.some((p) => p.port === f.remote),
          `${b.config.name}/${b.env}: no Service ${f.app} with port ${f.remote}`,
        )
        if (b.env !== 'dev') continue
        const other = locals.get(f.local)
        assert.ok(
          other === undefined || other === b.config.name,
          `local port ${f.local} is forwarded by both ${other} and ${b.config.name}`,
        )
        locals.set(f.local, b.config.name)
      }
    }
  })

  it('serves every app with an Ingress at <app>.<domain>, matching the URLs the dashboard shows', () => {
    for (const b of builds) {
      const ingresses = ofKind<V1Ingress>(b, 'Ingress')
      for (const app of b.config.apps.filter((a) => a.ingress)) {
        const at = `${b.config.name}/${b.env} app ${app.name}`
        const host = `${app.name}.${b.config.domains[b.env]}`
        const ing = ingresses.find((i) => i.spec?.rules?.some((r) => r.host === host))
        assert.ok(ing, `${at}: no Ingress for host ${host}`)
        assert.equal(ing.apiVersion, 'networking.k8s.io/v1')
        const backend = ing.spec?.rules?.[0]?.http?.paths?.[0]?.backend.service
        assert.equal(backend?.name, app.name, `${at}: Ingress backend`)
        assert.equal(b.config.urls[b.env](app.name), `http://${host}${app.path === '/' ? '' : app.path}`)
      }
      const hosts = ingresses.flatMap((i) => i.spec?.rules?.map((r) => r.host) ?? [])
      // dev hosts resolve to this machine without any DNS setup; prod's must not
      for (const h of hosts)
        assert.equal(h?.endsWith('.localhost'), b.env === 'dev', `${b.config.name}/${b.env}: host ${h}`)
    }
  })

  it('mounts only PVCs and ConfigMaps that the overlay itself creates', () => {
    for (const b of builds) {
      const pvcs = new Set(ofKind<V1PersistentVolumeClaim>(b, 'PersistentVolumeClaim').map((p) => p.metadata?.name))
      const configMaps = new Set(b.objects.filter((o) => o.kind === 'ConfigMap').map((o) => o.metadata.name))
      for (const w of workloadsOf(b)) {
        for (const claim of claimsOf(w))
          assert.ok(pvcs.has(claim), `${b.config.name}/${b.env} ${id(w)}: PVC ${claim} is not in the build`)
        const cms = [
          ...(w.spec.template.spec?.volumes ?? []).flatMap((v) => (v.configMap?.name ? [v.configMap.name] : [])),
          ...containersOf(w).flatMap((c) =>
            (c.envFrom ?? []).flatMap((e) => (e.configMapRef?.name ? [e.configMapRef.name] : [])),
          ),
        ]
        for (const cm of cms)
          assert.ok(configMaps.has(cm), `${b.config.name}/${b.env} ${id(w)}: ConfigMap ${cm} is not in the build`)
      }
    }
  })

  it("keeps dev on local-path volumes and puts prod's shared volumes on NFS", () => {
    for (const b of builds) {
      const pvcs = ofKind<V1PersistentVolumeClaim>(b, 'PersistentVolumeClaim')
      assert.ok(pvcs.length > 0, `${b.config.name}/${b.env}: no PVCs`)
      if (b.env === 'dev') {
        for (const p of pvcs)
          assert.equal(p.spec?.storageClassName, 'local-path', `${b.config.name}/dev PVC ${p.metadata?.name}`)
        continue
      }
      for (const p of pvcs) {
        const shared = p.metadata?.labels?.['nsops.dev/storage'] === 'shared'
        const cls = p.spec?.storageClassName
        if (shared) assert.match(cls ?? '', /^nfs-/, `${b.config.name}/prod shared PVC ${p.metadata?.name} on ${cls}`)
        else
          assert.notEqual(
            cls,
            'local-path',
            `${b.config.name}/prod PVC ${p.metadata?.name} is pinned to a one-node class`,
          )
      }
    }
    const arrProd = builds.find((b) => b.config.name === 'arr-stack' && b.env === 'prod')!
    for (const name of ['media', 'downloads']) {
      const pvc = ofKind<V1PersistentVolumeClaim>(arrProd, 'PersistentVolumeClaim').find(
        (p) => p.metadata?.name === name,
      )
      assert.equal(pvc?.spec?.storageClassName, 'nfs-media', `arr-stack/prod PVC ${name}`)
      assert.deepEqual(pvc?.spec?.accessModes, ['ReadWriteMany'], `arr-stack/prod PVC ${name}`)
    }
  })

  it('ships no Secret with plaintext data', () => {
    for (const b of builds) {
      const plain = b.objects.filter((o) => o.kind === 'Secret' && !o.sops && (o.data || o.stringData)).map(id)
      assert.deepEqual(plain, [], `${b.config.name}/${b.env}: plaintext Secrets`)
    }
  })

  it('uses the Recreate strategy for every Deployment with a ReadWriteOnce volume', () => {
    for (const b of builds) {
      const rwo = new Set(
        ofKind<V1PersistentVolumeClaim>(b, 'PersistentVolumeClaim')
          .filter((p) => p.spec?.accessModes?.some((m) => m === 'ReadWriteOnce' || m === 'ReadWriteOncePod'))
          .map((p) => p.metadata?.name),
      )
      for (const d of workloadsOf(b).filter((w) => w.kind === 'Deployment')) {
        if (!claimsOf(d).some((c) => rwo.has(c))) continue
        assert.equal(
          d.spec.strategy?.type,
          'Recreate',
          `${b.config.name}/${b.env} ${id(d)} mounts a ReadWriteOnce volume`,
        )
      }
    }
  })

  it('gives the arr-stack the apps, ports and health endpoints its users expect', () => {
    const arrDev = builds.find((b) => b.config.name === 'arr-stack' && b.env === 'dev')!
    const expected: Record<string, [number, string]> = {
      prowlarr: [9696, '/ping'],
      sonarr: [8989, '/ping'],
      radarr: [7878, '/ping'],
      lidarr: [8686, '/ping'],
      bazarr: [6767, '/api/system/ping'],
      qbittorrent: [8080, 'tcp'],
      jellyfin: [8096, '/health'],
      jellyseerr: [5055, '/api/v1/status'],
    }
    for (const [name, [port, probe]] of Object.entries(expected)) {
      const w = workloadsOf(arrDev).find((x) => x.metadata.name === name)
      assert.ok(w, name)
      const c = w.spec.template.spec!.containers[0]
      assert.ok(
        c.ports?.some((p) => p.containerPort === port),
        `${name} listens on ${port}`,
      )
      const actual = c.readinessProbe?.httpGet?.path ?? (c.readinessProbe?.tcpSocket ? 'tcp' : undefined)
      assert.equal(actual, probe, `${name} readiness probe`)
      assert.equal(w.spec.template.spec?.enableServiceLinks, false, `${name}: service links leak <APP>_PORT variables`)
    }
    const qbt = ofKind<V1Service>(arrDev, 'Service').find((s) => s.metadata?.name === 'qbittorrent')
    assert.deepEqual(qbt?.spec?.ports?.map((p) => `${p.port}/${p.protocol}`).sort(), [
      '6881/TCP',
      '6881/UDP',
      '8080/TCP',
    ])
    assert.deepEqual(
      arrDev.config.groups.map((g) => g.title),
      ['Indexers', 'Automation', 'Downloads', 'Media servers', 'Requests'],
    )
  })
})

describe('namespace config', () => {
  const valid = (): NamespaceInput => ({
    name: 'media',
    description: 'test namespace',
    namespaces: { dev: 'media-dev', prod: 'media' },
    domains: { dev: 'media.localhost', prod: 'home.example' },
    groups: [
      { title: 'Media servers', apps: [{ name: 'jellyfin', port: 8096, path: '/web' }] },
      { title: 'Metrics', apps: [{ name: 'exporter', port: 9707, ingress: false }] },
    ],
    portForwards: [{ app: 'jellyfin', local: 18096, remote: 8096 }],
    quickCommands: [{ title: 'Pods', command: 'kubectl -n {namespace} get pods' }],
  })

  const rejects = (input: NamespaceInput, pattern: RegExp) =>
    assert.throws(
      () => defineNamespace(input),
      (err: unknown) => {
        assert.ok(err instanceof NsopsError, String(err))
        assert.equal(err.exitCode, 1)
        assert.match(err.message, pattern)
        assert.ok(err.hint)
        return true
      },
    )

  it('derives absolute paths, the Flux Kustomization, group ids and URLs', () => {
    const c = defineNamespace(valid())
    assert.equal(c.paths.root, path.join(repoRoot, 'namespaces', 'media'))
    assert.equal(c.paths.overlays.prod, path.join(repoRoot, 'namespaces', 'media', 'overlays', 'prod'))
    assert.equal(c.paths.base, path.join(c.paths.root, 'base'))
    assert.equal(c.paths.components, path.join(c.paths.root, 'components'))
    assert.deepEqual(c.flux, { kustomization: 'media', namespace: 'flux-system', hold: 'auto' })
    assert.deepEqual(
      c.groups.map((g) => g.id),
      ['media-servers', 'metrics'],
    )
    assert.deepEqual(
      c.apps.map((a) => [a.name, a.group, a.ingress]),
      [
        ['jellyfin', 'media-servers', true],
        ['exporter', 'metrics', false],
      ],
    )
    assert.equal(c.urls.dev('jellyfin'), 'http://jellyfin.media.localhost/web')
    assert.equal(c.urls.prod('jellyfin'), 'http://jellyfin.home.example/web')
    assert.equal(c.urls.prod('exporter'), undefined)
    assert.deepEqual(c.quickCommandsFor('dev'), [{ title: 'Pods', command: 'kubectl -n media-dev get pods' }])
    assert.ok(Object.isFrozen(c))
  })

  it('has no URLs for an environment without a domain', () => {
    const c = defineNamespace({ ...valid(), domains: { dev: 'media.localhost' } })
    assert.equal(c.urls.prod('jellyfin'), undefined)
    assert.equal(defineNamespace({ ...valid(), domains: undefined }).apps[0].ingress, false)
  })

  it('refuses a name with path characters or capitals', () => {
    rejects({ ...valid(), name: '../etc' }, /a namespace\.ts is invalid: name must be a DNS-1123 label.*"\.\.\/etc"/)
    rejects({ ...valid(), namespaces: { dev: 'Media_Dev', prod: 'media' } }, /namespaces\.dev must be a DNS-1123 label/)
    rejects({ ...valid(), domains: { prod: 'Home.Example' } }, /domains\.prod must be a DNS-1123 subdomain/)
  })

  it('refuses ports that are not port numbers', () => {
    const input = valid()
    input.groups![0].apps[0].port = 99999
    input.portForwards![0].local = 0
    rejects(
      input,
      /namespaces\/media\/namespace\.ts is invalid: .*apps\[0\]\.port .* got 99999.*portForwards\[0\]\.local .* got 0/,
    )
    rejects(
      { ...valid(), groups: [{ title: 'X', apps: [{ name: 'a', port: '80' as unknown as number }] }] },
      /port number.*got "80"/,
    )
  })

  it('refuses duplicate apps, groups and local ports', () => {
    rejects(
      { ...valid(), groups: [...valid().groups!, { title: 'Other', apps: [{ name: 'jellyfin', port: 1 }] }] },
      /lists "jellyfin" more than once/,
    )
    rejects(
      { ...valid(), groups: [...valid().groups!, { title: 'media servers', apps: [{ name: 'x', port: 1 }] }] },
      /lists "media-servers" more than once/,
    )
    rejects(
      {
        ...valid(),
        portForwards: [
          { app: 'a', local: 80, remote: 80 },
          { app: 'b', local: 80, remote: 81 },
        ],
      },
      /portForwards \(by local port\) lists "80"/,
    )
  })

  it('refuses a Flux hold policy it does not know', () => {
    rejects(
      { ...valid(), flux: { hold: 'sometimes' as 'auto' } },
      /flux\.hold must be "auto", "kustomization" or "never"/,
    )
  })

  it('refuses a Flux namespace other than flux-system', () => {
    rejects({ ...valid(), flux: { namespace: 'flux' as 'flux-system' } }, /flux\.namespace must be "flux-system"/)
  })

  it("layout.dev.inPlace: the dev namespace is prod's own; a different namespaces.dev or a dev overlay beside it is refused", () => {
    const layout = { kustomizations: ['media'], dev: { inPlace: true, replicas: 1 } }
    const c = defineNamespace({ ...valid(), namespaces: { prod: 'media' }, layout })
    assert.deepEqual(c.namespaces, { dev: 'media', prod: 'media' })
    assert.equal(developedInPlace(c), true)
    assert.equal(c.quickCommandsFor('dev')[0].command, 'kubectl -n media get pods')
    assert.equal(
      defineNamespace({ ...valid(), namespaces: { dev: 'media', prod: 'media' }, layout }).namespaces.dev,
      'media',
    )
    assert.equal(developedInPlace(defineNamespace({ ...valid(), layout: { kustomizations: ['media'] } })), false)
    rejects(
      { ...valid(), layout },
      /namespaces\.dev is "media-dev", but layout\.dev\.inPlace develops the namespace in "media" itself: leave namespaces\.dev out/,
    )
    rejects(
      {
        ...valid(),
        namespaces: { prod: 'media' },
        layout: { ...layout, dev: { inPlace: true, overlay: 'x/overlays/dev' } },
      },
      /layout\.dev\.inPlace and layout\.dev\.overlay do not go together/,
    )
    rejects(
      {
        ...valid(),
        namespaces: { prod: 'media' },
        layout: { ...layout, dev: { inPlace: 'yes' as unknown as boolean } },
      },
      /layout\.dev\.inPlace must be true or false/,
    )
    // without inPlace, namespaces.dev is still required
    rejects({ ...valid(), namespaces: { prod: 'media' } }, /namespaces\.dev must be a DNS-1123 label/)
  })
})
