// The namespace scripts as a user runs them: real processes, the real sim cluster, exit codes
// and messages. Each run passes --kubeconfig of the test cluster.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { after, before, describe, it } from 'node:test'
import YAML from 'yaml'
import { repoRoot } from '../../shared/core/paths.ts'
import { testCluster } from '../harness.ts'
import { installFluxCrds } from '../../shared/flux/index.ts'

const run = promisify(execFile)

interface Ran {
  code: number
  stdout: string
  stderr: string
}

async function script(file: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Ran> {
  try {
    const { stdout, stderr } = await run(path.join(repoRoot, file), args, {
      cwd: os.tmpdir(), // scripts must work from any directory
      env: { ...process.env, CI: '1', NO_COLOR: '1', NSOPS_STATE_DIR: stateDir, ...env },
      maxBuffer: 32 << 20,
      timeout: 240_000,
    })
    return { code: 0, stdout, stderr }
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string }
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }
  }
}

const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-e2e-state-'))

describe('namespace scripts end to end', () => {
  let kubeconfig = ''
  before(async () => {
    kubeconfig = (await testCluster()).kubeconfig
  })
  after(() => fs.rmSync(stateDir, { recursive: true, force: true }))

  it('dev.ts --ci is tilt ci: healthy, exit 0, the stack left running until just dev-down', async () => {
    const snapshot = path.join(stateDir, 'snapshot.json')
    const r = await script('namespaces/arr-stack/dev.ts', [
      '--ci',
      '--timeout',
      '2m',
      '--output-snapshot',
      snapshot,
      '--kubeconfig',
      kubeconfig,
    ])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stderr, /SUCCESS\. All workloads are healthy \(arr-stack\)/)
    // --output-snapshot: every resource's status and the namespace's events, as JSON
    const snap = JSON.parse(fs.readFileSync(snapshot, 'utf8'))
    const sonarr = snap.loops[0].resources.find(
      (x: { kind: string; name: string }) => x.kind === 'Deployment' && x.name === 'sonarr',
    )
    assert.equal(sonarr.status, 'Current')
    assert.ok(Array.isArray(snap.events['arr-stack-dev']))
    assert.match(r.stderr, /kept arr-stack running in arr-stack-dev: `just dev-down` ends it/)
    // off a terminal the log tells the story: the apply and each resource turning healthy
    assert.match(r.stderr, /arr-stack: applied \(start; \d+ created/)
    assert.match(r.stderr, /arr-stack: Deployment\/sonarr Current/)
    assert.match(r.stderr, /arr-stack: Flux holds nothing/)
    const { kube } = await testCluster()
    const deps = await kube.apps.listNamespacedDeployment({ namespace: 'arr-stack-dev' })
    assert.equal(deps.items.length, 8, 'the stack is still there for the CI steps after it')
    const status = await script('shared/bin/nsops.ts', ['dev-status'], { NSOPS_KUBECONFIG: kubeconfig })
    assert.match(status.stderr, /arr-stack\s+kept by dev --ci/)
    // with no --env the dashboard shows the namespace the dev loop works on while it is kept
    const devDash = await script('namespaces/arr-stack/dashboard.ts', ['--json', '--kubeconfig', kubeconfig])
    assert.equal(devDash.code, 0, devDash.stderr)
    assert.deepEqual(
      [JSON.parse(devDash.stdout).namespace.env, JSON.parse(devDash.stdout).namespace.name],
      ['dev', 'arr-stack-dev'],
    )

    // a typed zx task of arr-stack's namespace.ts, by hand, against the stack --ci kept
    const task = await script('shared/bin/nsops.ts', [
      'task',
      'arr-stack',
      'restart-downloads',
      '--kubeconfig',
      kubeconfig,
    ])
    assert.equal(task.code, 0, task.stderr)
    assert.match(
      task.stderr,
      /\[sonarr-ready\] \$ kubectl -n arr-stack-dev rollout status deploy\/sonarr/,
      'its `after` task ran first',
    )
    assert.match(task.stderr, /\[restart-downloads\] \$ kubectl -n arr-stack-dev rollout restart deploy\/qbittorrent/)
    assert.match(task.stderr, /task restart-downloads succeeded/)
    const unknown = await script('shared/bin/nsops.ts', ['task', 'arr-stack', 'nope', '--kubeconfig', kubeconfig])
    assert.equal(unknown.code, 1)
    assert.match(unknown.stderr, /arr-stack has no task "nope"[\s\S]*hint: Its tasks: sonarr-ready, restart-downloads/)

    const down = await script('shared/bin/nsops.ts', ['dev-down', '--keep-cluster'], { NSOPS_KUBECONFIG: kubeconfig })
    assert.equal(down.code, 0, down.stderr)
    assert.match(down.stderr, /ended the kept session of arr-stack: deleted \d+ dev-only object/)
    // …and prod once the session has ended
    const prodDash = await script('namespaces/arr-stack/dashboard.ts', ['--json', '--kubeconfig', kubeconfig])
    assert.deepEqual(
      [JSON.parse(prodDash.stdout).namespace.env, JSON.parse(prodDash.stdout).namespace.name],
      ['prod', 'arr-stack'],
    )
    const after = await kube.apps.listNamespacedDeployment({ namespace: 'arr-stack-dev' })
    assert.equal(after.items.length, 0, 'dev-down deleted the dev-only Deployments')
  })

  it('dashboard.ts --json lists every arr-stack app as Current; --check exits 3 once a pod cannot run', async () => {
    const up = await script('namespaces/arr-stack/dev.ts', ['--ci', '--kubeconfig', kubeconfig])
    assert.equal(up.code, 0, up.stderr)
    const r = await script('namespaces/arr-stack/dashboard.ts', ['--json', '--env', 'dev', '--kubeconfig', kubeconfig])
    assert.equal(r.code, 0, r.stderr)
    const m = JSON.parse(r.stdout)
    assert.equal(m.schema, 'nsops.dashboard/v1')
    const apps = m.groups.flatMap((g: { apps: { name: string; status: string }[] }) => g.apps)
    assert.deepEqual(apps.map((a: { name: string }) => a.name).sort(), [
      'bazarr',
      'jellyfin',
      'jellyseerr',
      'lidarr',
      'prowlarr',
      'qbittorrent',
      'radarr',
      'sonarr',
    ])
    for (const a of apps) assert.equal(a.status, 'Current', `${a.name}: ${JSON.stringify(a)}`)
    assert.equal(
      m.pvcs.every((p: { status: string }) => p.status === 'Bound'),
      true,
    )
    assert.doesNotMatch(r.stdout, /\x1b\[/, 'no ANSI codes in --json')

    const ok = await script('namespaces/arr-stack/dashboard.ts', [
      '--check',
      '--env',
      'dev',
      '--kubeconfig',
      kubeconfig,
    ])
    assert.equal(ok.code, 0, ok.stdout + ok.stderr)

    // break one app for real: its new pod can never be scheduled
    const { kube } = await testCluster()
    await kube.apps.patchNamespacedDeployment({
      name: 'sonarr',
      namespace: 'arr-stack-dev',
      body: [{ op: 'add', path: '/spec/template/spec/nodeSelector', value: { 'nsops.dev/no-such-node': 'true' } }],
    })
    const bad = await script('namespaces/arr-stack/dashboard.ts', [
      '--check',
      '--env',
      'dev',
      '--kubeconfig',
      kubeconfig,
    ])
    assert.equal(bad.code, 3, bad.stdout + bad.stderr)
    assert.match(bad.stdout, /sonarr/)

    // undo the break (it was made by another field manager, so the dev overlay does not own
    // it), then clean up through the real command path: --ci --down deletes the dev objects
    await kube.apps.patchNamespacedDeployment({
      name: 'sonarr',
      namespace: 'arr-stack-dev',
      body: [{ op: 'remove', path: '/spec/template/spec/nodeSelector' }],
    })
    const down = await script('namespaces/arr-stack/dev.ts', [
      '--ci',
      '--down',
      '--timeout',
      '2m',
      '--kubeconfig',
      kubeconfig,
    ])
    assert.equal(down.code, 0, down.stderr)
  })

  it('just validate checks every prod overlay: strict schemas of the cluster, then a server-side dry run', async () => {
    // the prod overlays are for a Flux cluster (monitoring's grafana is a HelmRelease from an
    // OCIRepository): the cluster's schemas know those kinds once its Flux CRDs are installed,
    // as dev-up and cluster-up --flux install them
    await installFluxCrds((await testCluster()).kube)
    const r = await script('shared/bin/nsops.ts', ['validate', '--kubeconfig', kubeconfig])
    assert.equal(r.code, 0, r.stderr)
    for (const ns of ['arr-stack', 'monitoring', 'observability']) {
      assert.match(
        r.stderr,
        new RegExp(
          `${ns}: .*builds .*pass strict schema validation against the cluster's OpenAPI \\(context nsops-sim\\); the API server \\(nsops-sim\\) accepts`,
        ),
      )
    }
  })

  describe('bad input gets one clear message and a non-zero exit', () => {
    it('an unknown namespace lists the known ones', async () => {
      const r = await script('shared/bin/nsops.ts', ['dashboard', 'nope'])
      assert.equal(r.code, 1)
      assert.match(r.stderr, /unknown namespace "nope"/)
      assert.match(r.stderr, /arr-stack, monitoring, observability/)
    })

    it('a name with / or .. is refused before touching the disk', async () => {
      for (const name of ['../etc', 'arr-stack/..', 'a/b']) {
        const r = await script('shared/bin/nsops.ts', ['deploy', name, '--dry-run'])
        assert.equal(r.code, 1, name)
        assert.match(r.stderr, /is not a namespace name/)
      }
    })

    it('a context that might be production is refused and nothing is applied', async () => {
      const doc = YAML.parse(fs.readFileSync(kubeconfig, 'utf8'))
      doc.contexts[0].name = 'admin@homelab-prod'
      doc['current-context'] = 'admin@homelab-prod'
      const file = path.join(stateDir, 'prod-kubeconfig')
      fs.writeFileSync(file, YAML.stringify(doc))
      const r = await script('namespaces/monitoring/dev.ts', ['--ci', '--kubeconfig', file])
      assert.equal(r.code, 1)
      assert.match(r.stderr, /Stop! Context "admin@homelab-prod".*might be production/)
      const { kube } = await testCluster()
      await assert.rejects(kube.core.readNamespace({ name: 'monitoring-dev' }), 'nothing applied')
    })

    it('a cluster that does not answer is named with its context and server', async () => {
      const doc = YAML.parse(fs.readFileSync(kubeconfig, 'utf8'))
      doc.clusters[0].cluster.server = 'https://127.0.0.1:1'
      const file = path.join(stateDir, 'dead-kubeconfig')
      fs.writeFileSync(file, YAML.stringify(doc))
      const r = await script('namespaces/arr-stack/dashboard.ts', ['--kubeconfig', file])
      assert.equal(r.code, 1)
      assert.match(r.stderr, /does not answer: context nsops-sim, server https:\/\/127\.0\.0\.1:1/)
      assert.match(r.stderr, /hint:/)
    })

    it('a missing tool says what to install', async () => {
      // a PATH with only node and sh: no go, no helm
      const bin = path.join(stateDir, 'bin')
      fs.mkdirSync(bin, { recursive: true })
      for (const [name, target] of [
        ['node', process.execPath],
        ['sh', '/bin/sh'],
      ]) {
        if (!fs.existsSync(path.join(bin, name))) fs.symlinkSync(target, path.join(bin, name))
      }
      const r = await script('shared/bin/nsops.ts', ['setup', '--only', 'helm'], {
        PATH: bin,
        XDG_CACHE_HOME: path.join(stateDir, 'empty-cache'),
        NSOPS_NO_DOWNLOAD: '1',
      })
      assert.equal(r.code, 1)
      assert.match(r.stderr, /helm v3\.22\.0 is not available/)
      assert.match(r.stderr, /Install Go/)
    })
  })

  describe('new-namespace', () => {
    const name = `scaffold-${process.pid}`
    const dir = path.join(repoRoot, 'namespaces', name)
    const fluxFile = path.join(repoRoot, 'k8s', 'flux', `${name}.yaml`)
    const fluxKustomization = path.join(repoRoot, 'k8s', 'flux', 'kustomization.yaml')
    after(() => {
      fs.rmSync(dir, { recursive: true, force: true })
      fs.rmSync(fluxFile, { force: true })
      // take out only our own entry: another run may have changed the file meanwhile
      const doc = YAML.parseDocument(fs.readFileSync(fluxKustomization, 'utf8'))
      const list = doc.get('resources') as { items: { value: unknown }[] } | undefined
      if (list) list.items = list.items.filter((i) => i.value !== `${name}.yaml`)
      fs.writeFileSync(fluxKustomization, doc.toString())
    })

    it('scaffolds a namespace whose dev loop works, and reports malformed YAML with file:line', async () => {
      const made = await script('shared/bin/nsops.ts', ['new-namespace', name])
      assert.equal(made.code, 0, made.stderr)
      for (const f of [
        'namespace.ts',
        'dev.ts',
        'dashboard.ts',
        'deploy.ts',
        'base/kustomization.yaml',
        'overlays/dev/kustomization.yaml',
        'overlays/prod/kustomization.yaml',
      ]) {
        assert.ok(fs.existsSync(path.join(dir, f)), f)
      }
      const again = await script('shared/bin/nsops.ts', ['new-namespace', name])
      assert.equal(again.code, 1)
      assert.match(again.stderr, /already exists/)

      const ci = await script(`namespaces/${name}/dev.ts`, [
        '--ci',
        '--down',
        '--timeout',
        '2m',
        '--kubeconfig',
        kubeconfig,
      ])
      assert.equal(ci.code, 0, ci.stderr)

      // the scaffold's example task runs as scaffolded, and its example hook passes the config's checks
      const listed = await script('shared/bin/nsops.ts', ['task', name, '--kubeconfig', kubeconfig])
      assert.equal(listed.code, 0, listed.stderr)
      assert.match(listed.stderr, /status {2}on manual {2}what runs of/)
      const task = await script('shared/bin/nsops.ts', ['task', name, 'status', '--kubeconfig', kubeconfig])
      assert.equal(task.code, 0, task.stderr)
      assert.match(
        task.stderr,
        new RegExp(`\\[status\\] \\$ kubectl -n ${name}-dev get deploy,pods -l app\\.kubernetes\\.io/part-of=${name}`),
      )
      assert.match(task.stderr, /task status succeeded/)
      assert.match(
        fs.readFileSync(path.join(dir, 'namespace.ts'), 'utf8'),
        /hooks: \{\n    afterDeploy: async \(\{ \$, namespace \}\) => \{/,
      )

      // fail fast: a pod no node can take is Failed after kstatus' 15 s window, long before --timeout
      const depFile = path.join(dir, 'base/web/deployment.yaml')
      const depYaml = fs.readFileSync(depFile, 'utf8')
      fs.writeFileSync(
        depFile,
        depYaml.replace(/\n    spec:\n/, '\n    spec:\n      nodeSelector: { nsops.dev/no-such-node: "true" }\n'),
      )
      const unschedulable = await script(`namespaces/${name}/dev.ts`, [
        '--ci',
        '--down',
        '--timeout',
        '10m',
        '--kubeconfig',
        kubeconfig,
      ])
      assert.equal(unschedulable.code, 1, unschedulable.stderr)
      assert.match(unschedulable.stderr, /Failed after/, 'a verdict before the timeout')
      assert.doesNotMatch(unschedulable.stderr, /timed out/)
      assert.match(unschedulable.stderr, /Deployment\/\S*web: Failed: 1 pod has failed .*nodes are available/)
      fs.writeFileSync(depFile, depYaml)

      fs.writeFileSync(
        path.join(dir, 'base/web/service.yaml'),
        'apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  labels: [oops\n',
      )
      const broken = await script(`namespaces/${name}/dev.ts`, ['--ci', '--down', '--kubeconfig', kubeconfig])
      assert.notEqual(broken.code, 0)
      assert.match(broken.stderr, /service\.yaml:\d+/)

      // a namespace.ts that fails its checks: error + hint, no bundle line, no stack trace
      const cfg = path.join(dir, 'namespace.ts')
      fs.writeFileSync(cfg, fs.readFileSync(cfg, 'utf8').replace(/apps: \[/, 'apps: [], unused: ['))
      const invalid = await script(`namespaces/${name}/dashboard.ts`, ['--kubeconfig', kubeconfig])
      assert.equal(invalid.code, 1)
      assert.match(
        invalid.stderr,
        new RegExp(
          `^error: namespaces/${name}/namespace\\.ts is invalid: groups\\[0\\]\\.apps must list at least one app`,
        ),
      )
      assert.match(invalid.stderr, /\nhint: /)
      assert.doesNotMatch(invalid.stderr, /\.[mc]?js:\d+|    at /, 'no bundle line, no stack trace')
    })
  })

  it('scripts run from a CommonJS bundle with a V8 code cache made by the first run and used by the next; a namespace.ts loaded at run time still loads', async () => {
    const entry = fs.realpathSync(path.join(repoRoot, 'shared/bin/nsops.ts'))
    const key = createHash('sha256').update(entry).digest('hex').slice(0, 16)
    const dir = path.join(repoRoot, 'node_modules/.nsops/run')
    const cache = path.join(dir, `${key}.cache`)
    fs.rmSync(cache, { force: true })
    // validate loads namespaces/arr-stack/namespace.ts through tsx: an import() from the bundle
    const first = await script('shared/bin/nsops.ts', ['validate', 'arr-stack', '--offline'])
    assert.equal(first.code, 0, first.stderr)
    assert.equal(JSON.parse(fs.readFileSync(path.join(dir, `${key}.json`), 'utf8')).format, 'cjs')
    assert.ok(fs.existsSync(cache), 'the first run wrote the code cache')
    const made = fs.statSync(cache).mtimeMs
    const second = await script('shared/bin/nsops.ts', ['validate', 'arr-stack', '--offline'])
    assert.equal(second.code, 0, second.stderr)
    assert.match(
      second.stdout + second.stderr,
      /arr-stack: Flux Kustomization flux-system\/arr-stack \(k8s\/flux\/arr-stack\.yaml\) builds \(\d+ objects\)/,
    )
    assert.equal(fs.statSync(cache).mtimeMs, made, 'V8 took the cache (a refused one is written anew)')
    // node's loader reached from a vm.Script is 'experimental' in Node 24: the user never hears of it
    for (const r of [first, second]) assert.doesNotMatch(r.stderr, /Warning|USE_MAIN_CONTEXT/)
  })

  it('removes a bundle whose script is gone when it makes another (a namespace deleted or renamed)', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-prune-'))
    const dir = path.join(repoRoot, 'node_modules/.nsops/run')
    const keyOf = (f: string) => createHash('sha256').update(path.resolve(f)).digest('hex').slice(0, 16)
    // through the launcher, bundled as a namespace script is (NSOPS_BUNDLE=1: any entry)
    const bundled = async (f: string) =>
      (await run(path.join(repoRoot, 'shared/bin/nsops-node'), [f], { env: { ...process.env, NSOPS_BUNDLE: '1' } }))
        .stdout
    try {
      const gone = path.join(tmp, 'gone.mts')
      fs.writeFileSync(gone, "console.log('gone')\n")
      assert.equal(await bundled(gone), 'gone\n')
      const goneKey = keyOf(gone)
      assert.ok(fs.existsSync(path.join(dir, `${goneKey}.json`)), 'its bundle was made')
      fs.rmSync(gone)
      const next = path.join(tmp, 'next.mts')
      fs.writeFileSync(next, "console.log('next')\n")
      assert.equal(await bundled(next), 'next\n')
      const left = fs.readdirSync(dir).filter((f) => f.startsWith(goneKey))
      assert.deepEqual(left, [], 'the gone script has no bundle left')
      assert.ok(fs.existsSync(path.join(dir, `${keyOf(next)}.json`)), "the new script's bundle stays")
    } finally {
      const files = fs.readdirSync(tmp).map((f) => path.join(tmp, f))
      fs.rmSync(tmp, { recursive: true, force: true })
      // this test's own bundles: the one left is removed by the next bundle made, or here
      for (const f of files)
        for (const ext of ['.json', '.cjs', '.mjs', '.cache'])
          fs.rmSync(path.join(dir, `${keyOf(f)}${ext}`), { force: true })
    }
  })
})
