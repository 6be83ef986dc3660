// The Tanka workflow offline, end to end through the real commands (`nsops tk-*` as the
// just recipes run them): a Helm chart repository of our own (charts made by `helm package`,
// index by `helm repo index`, served over HTTP on 127.0.0.1), vendored from a chartfile,
// rendered by an environment through helmTemplate, applied to the sim cluster through the
// shared apply module and seen healthy; and every kind of bad input.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { after, before, describe, it } from 'node:test'
import { parse as parseYaml, stringify } from 'yaml'
import { testCluster, testNamespace, type TestCluster } from '../harness.ts'
import { repoRoot } from '../../shared/core/paths.ts'
import { loadEnvironment } from '../../shared/tanka/environments.ts'
import type { TankaObject } from '../../shared/tanka/process.ts'
import { renderEnvironment } from '../../shared/tanka/render.ts'
import { findTk } from '../../shared/tanka/tk.ts'
import { toolPath } from '../../shared/tools/provision.ts'
import { serveDir, type StaticServer } from '../static-server.ts'

const run = promisify(execFile)
const nsops = path.join(repoRoot, 'shared', 'bin', 'nsops.ts')

interface Ran {
  code: number
  stdout: string
  stderr: string
}

/** A chart directory with a Deployment, a Service and a ConfigMap driven by its values. */
function writeChart(dir: string, name: string, version: string): void {
  fs.mkdirSync(path.join(dir, 'templates'), { recursive: true })
  fs.writeFileSync(
    path.join(dir, 'Chart.yaml'),
    stringify({ apiVersion: 'v2', name, version, description: `${name} for the Tanka tests`, type: 'application' }),
  )
  fs.writeFileSync(
    path.join(dir, 'values.yaml'),
    'replicas: 1\nport: 8080\nmessage: hello\nimage: registry.example/app:1.0\n',
  )
  const labels = `app.kubernetes.io/name: ${name}\n    app.kubernetes.io/instance: {{ .Release.Name }}`
  fs.writeFileSync(
    path.join(dir, 'templates', 'configmap.yaml'),
    `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-${name}\n  labels:\n    ${labels}\ndata:\n  message: {{ .Values.message | quote }}\n`,
  )
  fs.writeFileSync(
    path.join(dir, 'templates', 'service.yaml'),
    `apiVersion: v1\nkind: Service\nmetadata:\n  name: {{ .Release.Name }}-${name}\nspec:\n  selector:\n    ${labels.replace('\n    ', '\n    ')}\n  ports:\n    - port: {{ .Values.port }}\n      targetPort: {{ .Values.port }}\n`,
  )
  fs.writeFileSync(
    path.join(dir, 'templates', 'deployment.yaml'),
    [
      'apiVersion: apps/v1',
      'kind: Deployment',
      'metadata:',
      `  name: {{ .Release.Name }}-${name}`,
      'spec:',
      '  replicas: {{ .Values.replicas }}',
      '  selector:',
      '    matchLabels:',
      `      app.kubernetes.io/name: ${name}`,
      '      app.kubernetes.io/instance: {{ .Release.Name }}',
      '  template:',
      '    metadata:',
      '      labels:',
      `        app.kubernetes.io/name: ${name}`,
      '        app.kubernetes.io/instance: {{ .Release.Name }}',
      '    spec:',
      '      containers:',
      `        - name: ${name}`,
      '          image: {{ .Values.image | quote }}',
      '          ports:',
      '            - containerPort: {{ .Values.port }}',
      '          envFrom:',
      '            - configMapRef:',
      `                name: {{ .Release.Name }}-${name}`,
      '',
    ].join('\n'),
  )
}

describe('tanka: vendor, render and apply offline', () => {
  let work: string
  let root: string
  let server: StaticServer | undefined
  let base: string
  let requests: string[] = []
  let cluster: TestCluster
  let ns: { name: string; cleanup: () => Promise<void> }
  let helm: string
  const cleanups: (() => Promise<void>)[] = []

  async function nsopsRun(args: string[], opts: { root?: string; cluster?: boolean } = {}): Promise<Ran> {
    const full = [...args, '--root', opts.root ?? root]
    if (opts.cluster) full.push('--kubeconfig', cluster.kubeconfig, '--context', cluster.context)
    try {
      const { stdout, stderr } = await run(nsops, full, {
        maxBuffer: 64 * 1024 * 1024,
        env: { ...process.env, NO_COLOR: '1', CI: '1' },
      })
      return { code: 0, stdout, stderr }
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string }
      return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }
    }
  }

  /** A Tanka project: our own lib/helm.libsonnet, a chartfile for `repo`, environments added later. */
  function project(dir: string, repo: string, pins: Record<string, string>): void {
    fs.mkdirSync(path.join(dir, 'lib'), { recursive: true })
    fs.writeFileSync(path.join(dir, 'jsonnetfile.json'), '{\n  "version": 1,\n  "dependencies": []\n}\n')
    fs.copyFileSync(path.join(repoRoot, 'tanka', 'lib', 'helm.libsonnet'), path.join(dir, 'lib', 'helm.libsonnet'))
    const requires = Object.entries(pins).map(([chart, version]) => ({ chart: `local/${chart}`, version }))
    fs.writeFileSync(
      path.join(dir, 'chartfile.yaml'),
      stringify({ version: 1, repositories: [{ name: 'local', url: `${base}/${repo}` }], requires }),
    )
  }

  function environment(dir: string, name: string, namespace: string, main: string): void {
    const envDir = path.join(dir, 'environments', name)
    fs.mkdirSync(envDir, { recursive: true })
    fs.writeFileSync(
      path.join(envDir, 'spec.json'),
      `${JSON.stringify(
        {
          apiVersion: 'tanka.dev/v1alpha1',
          kind: 'Environment',
          metadata: { name: `environments/${name}` },
          spec: { apiServer: 'https://127.0.0.1:6443', namespace, injectLabels: true },
        },
        null,
        2,
      )}\n`,
    )
    fs.writeFileSync(path.join(envDir, 'main.jsonnet'), main)
  }

  const mainFor = (replicas: number) => `local helm = (import 'helm.libsonnet').new(std.thisFile);
local namespace = (import 'tk').env.spec.namespace;

{
  web: helm.template('shop', '../../charts/web', {
    namespace: namespace,
    values: { replicas: ${replicas}, message: 'hello from tanka' },
  }),
  cache: helm.template('shop', '../../charts/cache', {
    namespace: namespace,
    values: { port: 6379 },
  }),
  settings: {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'settings' },
    data: { environment: 'test' },
  },
}
`

  before(async () => {
    helm = await toolPath('helm')
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-tanka-'))
    const site = path.join(work, 'site')
    const pack = async (repo: string, name: string, version: string) => {
      const src = path.join(work, 'src', `${name}-${version}`, name)
      writeChart(src, name, version)
      fs.mkdirSync(path.join(site, repo), { recursive: true })
      await run(helm, ['package', src, '--destination', path.join(site, repo)])
    }
    await pack('stable', 'web', '1.2.0')
    await pack('stable', 'web', '1.1.0')
    await pack('stable', 'cache', '0.3.1')
    await run(helm, ['repo', 'index', path.join(site, 'stable')])
    // "tampered": the index promises a digest the archive does not have
    await pack('tampered', 'web', '1.2.0')
    await run(helm, ['repo', 'index', path.join(site, 'tampered')])
    const indexFile = path.join(site, 'tampered', 'index.yaml')
    fs.writeFileSync(
      indexFile,
      fs.readFileSync(indexFile, 'utf8').replace(/digest: [0-9a-f]{64}/, `digest: ${'ab'.repeat(32)}`),
    )

    server = await serveDir(site, (url) => requests.push(url))
    base = server.url

    cluster = await testCluster()
    ns = await testNamespace('tanka')
    root = path.join(work, 'project')
    project(root, 'stable', { web: '1.2.0', cache: '0.3.1' })
    environment(root, 'test', ns.name, mainFor(2))
    fs.writeFileSync(path.join(root, 'validate.yaml'), 'kinds: [ConfigMap, Service, Deployment]\nminObjects: 7\n')
  })

  after(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {})
    await ns?.cleanup()
    await server?.stop()
    if (work) fs.rmSync(work, { recursive: true, force: true })
  })

  it('tk-vendor fetches the pinned charts and says what it fetched; a second run fetches nothing', async () => {
    requests = []
    const first = await nsopsRun(['tk-vendor'])
    assert.equal(first.code, 0, first.stderr)
    assert.match(first.stderr, /fetched web 1\.2\.0/)
    assert.match(first.stderr, /fetched cache 0\.3\.1/)
    assert.deepEqual(requests.sort(), ['/stable/cache-0.3.1.tgz', '/stable/index.yaml', '/stable/web-1.2.0.tgz'])
    assert.equal(parseYaml(fs.readFileSync(path.join(root, 'charts', 'web', 'Chart.yaml'), 'utf8')).version, '1.2.0')

    requests = []
    const again = await nsopsRun(['tk-vendor'])
    assert.equal(again.code, 0, again.stderr)
    assert.match(again.stderr, /up to date: web 1\.2\.0/)
    assert.deepEqual(requests, [])
  })

  it('tk-show renders the charts through helmTemplate with the values, the namespace defaulted, labelled and in tk order', async () => {
    const shown = await nsopsRun(['tk-show', 'test', '--json', '--engine', 'renderer'])
    assert.equal(shown.code, 0, shown.stderr)
    const objects = JSON.parse(shown.stdout) as TankaObject[]
    assert.deepEqual(
      objects.map((o) => `${o.kind}/${o.metadata.name}`),
      [
        'ConfigMap/settings',
        'ConfigMap/shop-cache',
        'ConfigMap/shop-web',
        'Service/shop-cache',
        'Service/shop-web',
        'Deployment/shop-cache',
        'Deployment/shop-web',
      ],
    )
    for (const o of objects) {
      assert.equal(o.metadata.namespace, ns.name, `${o.kind}/${o.metadata.name}`)
      assert.match(o.metadata.labels?.['tanka.dev/environment'] ?? '', /^[0-9a-f]{48}$/)
    }
    const web = objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'shop-web') as TankaObject & {
      spec: { replicas: number }
    }
    assert.equal(web.spec.replicas, 2)
    assert.deepEqual(objects.find((o) => o.metadata.name === 'shop-web' && o.kind === 'ConfigMap')!.data, {
      message: 'hello from tanka',
    })
    const yamlOut = await nsopsRun(['tk-show', 'test'])
    assert.equal(yamlOut.stdout.split('\n---\n').length, 7)
  })

  it('tk-apply applies the environment to the cluster and waits until it is healthy', async () => {
    const applied = await nsopsRun(['tk-apply', 'test', '--timeout', '60s'], { cluster: true })
    assert.equal(applied.code, 0, applied.stderr)
    assert.match(applied.stderr, /7 created, 0 configured, 0 unchanged/)
    assert.match(applied.stderr, /test is healthy/)
    const dep = await cluster.kube.apps.readNamespacedDeployment({ name: 'shop-web', namespace: ns.name })
    assert.equal(dep.status?.readyReplicas, 2)
    assert.ok(
      dep.metadata?.managedFields?.some((m) => m.manager === 'tanka' && m.operation === 'Apply'),
      'applied with field manager tanka',
    )
    const cm = await cluster.kube.core.readNamespacedConfigMap({ name: 'shop-web', namespace: ns.name })
    assert.deepEqual(cm.data, { message: 'hello from tanka' })
  })

  it('tk-apply refuses a context that is neither local nor allow-listed, and applies nothing', async () => {
    // the same cluster under a name that could be production
    const kc = parseYaml(fs.readFileSync(cluster.kubeconfig, 'utf8')) as {
      contexts: { name: string }[]
      'current-context': string
    }
    for (const ctx of kc.contexts) if (ctx.name === cluster.context) ctx.name = 'admin@prod-eu'
    kc['current-context'] = 'admin@prod-eu'
    const kubeconfig = path.join(work, 'prod-kubeconfig')
    fs.writeFileSync(kubeconfig, stringify(kc))
    const env = { ...process.env, NO_COLOR: '1', CI: '1', NSOPS_ALLOW_CONTEXTS: '' }
    const refused = await run(nsops, ['tk-apply', 'test', '--root', root, '--kubeconfig', kubeconfig], { env }).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => e,
    )
    assert.equal(refused.code, 1)
    assert.match(
      refused.stderr,
      /Context "admin@prod-eu" .* might be production, so nsops will not apply the Tanka environment test there/,
    )
    assert.doesNotMatch(refused.stderr, /rendering/)
  })

  it('tk-diff finds nothing to change after the apply, and shows a values change with exit 16', async () => {
    const same = await nsopsRun(['tk-diff', 'test'], { cluster: true })
    assert.equal(same.code, 0, same.stdout + same.stderr)
    assert.match(same.stdout, /0 to create, 0 to update, 0 to prune, 7 unchanged/)
    const main = path.join(root, 'environments', 'test', 'main.jsonnet')
    fs.writeFileSync(main, mainFor(3))
    try {
      const changed = await nsopsRun(['tk-diff', 'test'], { cluster: true })
      assert.equal(changed.code, 16, changed.stdout + changed.stderr)
      assert.match(changed.stdout, /Deployment\/[^ ]+\/shop-web \(changed/)
      assert.match(changed.stdout, /-\s+replicas: 2\n.*\+\s+replicas: 3/s)
      assert.match(changed.stdout, /1 to update/)
    } finally {
      fs.writeFileSync(main, mainFor(2))
    }
  })

  it('tk-export writes one file per object and manifest.json, and refuses a directory that is not empty', async () => {
    const out = path.join(work, 'export')
    const exported = await nsopsRun(['tk-export', 'test', out])
    assert.equal(exported.code, 0, exported.stderr)
    const files = fs.readdirSync(out).sort()
    assert.deepEqual(files, [
      'apps-v1.Deployment-shop-cache.yaml',
      'apps-v1.Deployment-shop-web.yaml',
      'manifest.json',
      'v1.ConfigMap-settings.yaml',
      'v1.ConfigMap-shop-cache.yaml',
      'v1.ConfigMap-shop-web.yaml',
      'v1.Service-shop-cache.yaml',
      'v1.Service-shop-web.yaml',
    ])
    assert.equal(
      parseYaml(fs.readFileSync(path.join(out, 'apps-v1.Deployment-shop-web.yaml'), 'utf8')).spec.replicas,
      2,
    )
    const manifest = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8')) as Record<string, string>
    assert.equal(manifest[path.join(out, 'v1.ConfigMap-settings.yaml')], 'environments/test/main.jsonnet')
    const again = await nsopsRun(['tk-export', 'test', out])
    assert.equal(again.code, 1)
    assert.match(again.stderr, /export directory .* is not empty/)
  })

  it('tk-fmt --test lists unformatted Jsonnet and exits 1; tk-fmt formats it', async () => {
    const main = path.join(root, 'environments', 'test', 'main.jsonnet')
    const tidy = fs.readFileSync(main, 'utf8')
    fs.writeFileSync(main, tidy.replace("data: { environment: 'test' },", 'data: {environment: "test"},'))
    try {
      const test = await nsopsRun(['tk-fmt', '--test'])
      assert.equal(test.code, 1)
      assert.match(test.stdout, /environments\/test\/main\.jsonnet/)
      const fmt = await nsopsRun(['tk-fmt'])
      assert.equal(fmt.code, 0, fmt.stderr)
      assert.equal(fs.readFileSync(main, 'utf8'), tidy)
    } finally {
      fs.writeFileSync(main, tidy)
    }
  })

  it('tk-validate checks formatting, renders, requires the kinds of validate.yaml and dry-runs on the server', async () => {
    const ok = await nsopsRun(['tk-validate'], { cluster: true })
    assert.equal(ok.code, 0, ok.stderr)
    assert.match(ok.stderr, /✔ formatting/)
    assert.match(ok.stderr, /✔ test: 7 objects \(3 kinds\) via (renderer|tk), dry run passed/)

    const rules = path.join(root, 'validate.yaml')
    fs.writeFileSync(rules, 'kinds: [ConfigMap, StatefulSet, CustomResourceDefinition]\n')
    try {
      const missing = await nsopsRun(['tk-validate', '--no-cluster', '--json'])
      assert.equal(missing.code, 1)
      const report = JSON.parse(missing.stdout) as {
        ok: boolean
        environments: { missingKinds: string[]; dryRun: boolean }[]
        noDryRun: string
      }
      assert.equal(report.ok, false)
      assert.deepEqual(report.environments[0].missingKinds, ['StatefulSet', 'CustomResourceDefinition'])
      assert.equal(report.environments[0].dryRun, false)
      assert.equal(report.noDryRun, '--no-cluster')
    } finally {
      fs.writeFileSync(rules, 'kinds: [ConfigMap, Service, Deployment]\nminObjects: 7\n')
    }
  })

  it('a Jsonnet error is reported with file:line:column and the message, and nothing is applied', async () => {
    const other = await testNamespace('tanka-broken')
    cleanups.push(other.cleanup)
    const envDir = path.join(root, 'environments', 'broken')
    environment(
      root,
      'broken',
      other.name,
      "{\n  first: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'first' } },\n  second: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: error 'name the second ConfigMap' } },\n}\n",
    )
    try {
      const failed = await nsopsRun(['tk-apply', 'broken'], { cluster: true })
      assert.equal(failed.code, 1)
      assert.match(failed.stderr, /error: .*environments\/broken\/main\.jsonnet:3:\d+: name the second ConfigMap\n/)
      const cms = await cluster.kube.core.listNamespacedConfigMap({ namespace: other.name })
      assert.deepEqual(
        cms.items.map((c) => c.metadata?.name).filter((n) => n !== 'kube-root-ca.crt'),
        [],
      )

      fs.writeFileSync(
        path.join(envDir, 'main.jsonnet'),
        "{\n  first: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'first' } }\n  second: {},\n}\n",
      )
      const syntax = await nsopsRun(['tk-show', 'broken'])
      assert.equal(syntax.code, 1)
      assert.match(
        syntax.stderr,
        /error: .*environments\/broken\/main\.jsonnet:3:3: Expected a comma before next field/,
      )
      assert.equal(syntax.stdout, '')

      // raised inside the standard library, which has no file: the user's line is the place
      fs.writeFileSync(
        path.join(envDir, 'main.jsonnet'),
        "local meta = { annotations: null };\n{\n  first: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: std.get(meta.annotations, 'name') } },\n}\n",
      )
      const inStd = await nsopsRun(['tk-show', 'broken'])
      assert.equal(inStd.code, 1)
      assert.match(
        inStd.stderr,
        /error: .*environments\/broken\/main\.jsonnet:3:\d+: Unexpected type null, expected object\n/,
      )
    } finally {
      fs.rmSync(envDir, { recursive: true, force: true })
    }
  })

  it('a chart the environment uses but nobody vendored says to run just tk-vendor', async () => {
    const envDir = path.join(root, 'environments', 'unvendored')
    environment(
      root,
      'unvendored',
      ns.name,
      "local helm = (import 'helm.libsonnet').new(std.thisFile);\n{\n  db: helm.template('db', '../../charts/postgres', {}),\n}\n",
    )
    try {
      const failed = await nsopsRun(['tk-show', 'unvendored'])
      assert.equal(failed.code, 1)
      assert.match(
        failed.stderr,
        /uses the Helm chart .*charts\/postgres \(used at .*environments\/unvendored\/main\.jsonnet:3:\d+\), but it is not vendored/,
      )
      assert.match(failed.stderr, /hint: Run `just tk-vendor`/)
    } finally {
      fs.rmSync(envDir, { recursive: true, force: true })
    }
  })

  it('an unknown environment is refused with the known ones listed', async () => {
    const failed = await nsopsRun(['tk-show', 'staging'])
    assert.equal(failed.code, 1)
    assert.match(failed.stderr, /unknown Tanka environment "staging"/)
    assert.match(failed.stderr, /Known environments \(under .*environments\): test\./)
  })

  it('a pinned version the repository does not have is a clear error and nothing is fetched', async () => {
    const other = path.join(work, 'project-missing')
    project(other, 'stable', { web: '2.0.0' })
    requests = []
    const failed = await nsopsRun(['tk-vendor'], { root: other })
    assert.equal(failed.code, 1)
    assert.match(failed.stderr, /chart local\/web has no version 2\.0\.0 .*available: 1\.2\.0, 1\.1\.0/)
    assert.deepEqual(requests, ['/stable/index.yaml'])
    assert.equal(fs.existsSync(path.join(other, 'charts', 'web')), false)
  })

  it('a chart whose digest does not match the index is refused and nothing is unpacked', async () => {
    const other = path.join(work, 'project-tampered')
    project(other, 'tampered', { web: '1.2.0' })
    const failed = await nsopsRun(['tk-vendor'], { root: other })
    assert.equal(failed.code, 1, failed.stderr)
    assert.match(
      failed.stderr,
      /Refused local\/web 1\.2\.0: the archive .* has sha256 [0-9a-f]{64}, but the repository index says (ab){32}\. Nothing was unpacked\./,
    )
    assert.deepEqual(fs.existsSync(path.join(other, 'charts')) ? fs.readdirSync(path.join(other, 'charts')) : [], [])
  })

  // The one comparison that needs Grafana's tk; it cannot be obtained on this project's
  // machines (research/control-plane.md §5), so here it is reported as skipped, not passed.
  const tk = findTk()
  it(
    "renders the same objects with tk as with nsops' renderer",
    {
      skip: tk
        ? false
        : 'tk is not installed (not on PATH, not in the tool cache), so the tk-vs-renderer comparison cannot run here',
    },
    async () => {
      const env = loadEnvironment('test', root)
      const viaTk = await renderEnvironment(env, { engine: 'tk', tk, helm })
      const viaRenderer = await renderEnvironment(env, { engine: 'renderer', helm })
      assert.equal(viaTk.engine, 'tk')
      assert.equal(viaRenderer.engine, 'renderer')
      assert.deepEqual(viaRenderer.objects, viaTk.objects)
    },
  )
})
