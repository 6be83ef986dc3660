// drift end to end on sim with Flux's own source-controller and kustomize-controller: after a
// deploy, hand edits (a strategic-merge patch, a deleted Service, a ConfigMap made by hand,
// `kubectl scale`) under a dev-loop style hold each land in their class, attributed to the
// manager that made them, exit 1; `flux resume` + reconcile makes it clean again, exit 0.
// It only reads: it runs as a ServiceAccount whose every write is refused unless it is a
// dry run. `.spec.ignore`, namespace.ts drift.ignore, the skip annotations, prune: disabled,
// the baselines, Secrets by hash and a namespace not under Flux each have a test.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import diagnostics from 'node:diagnostics_channel'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Writable } from 'node:stream'
import { promisify } from 'node:util'
import { after, before, describe, it } from 'node:test'
import { KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node'
import { runDeploy } from '../../shared/deploy/run.ts'
import { computeDrift, type DriftOptions } from '../../shared/drift/compute.ts'
import type { DriftObject, DriftReport } from '../../shared/drift/types.ts'
import { reconcileAndWait } from '../../shared/flux/reconcile.ts'
import { currentOwner, resumeOwned, suspendFor } from '../../shared/flux/suspend.ts'
import { clientsFor, type Kube } from '../../shared/kube/client.ts'
import type { KubeRequest } from '../../shared/kube/rest.ts'
import { refString } from '../../shared/kube/refs.ts'
import { defineNamespace, namespacePaths, type NamespaceConfig } from '../../shared/config/namespace-config.ts'
import { repoRoot } from '../../shared/core/paths.ts'
import { toolPath } from '../../shared/tools/provision.ts'
import { until } from '../until.ts'
import { DEMO, gitOpsWorld, type GitOpsWorld } from './gitops-fixture.ts'

const run = promisify(execFile)
const sink = () =>
  new Writable({
    write(_c, _e, cb) {
      cb()
    },
  })
const quiet = { info() {}, step() {}, ok() {}, warn() {}, fail() {} }
const KS = { kind: 'Kustomization' as const, namespace: 'flux-system', name: DEMO }

const service = `apiVersion: v1
kind: Service
metadata: { name: web }
spec:
  selector: { app.kubernetes.io/name: web }
  ports: [{ port: 80, targetPort: 80 }]
`

const find = (r: DriftReport, kind: string, name: string): DriftObject | undefined =>
  r.objects.find((o) => o.ref.kind === kind && o.ref.name === name)

describe('drift against the real kustomize-controller', () => {
  let w: GitOpsWorld
  let kubectl = ''
  let tmp = ''
  let script = ''
  before(async () => {
    w = await gitOpsWorld()
    kubectl = await toolPath('kubectl')
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-drift-test-'))
    // the command as a user runs it (flags, -o json, exit codes), for the fixture's namespace
    script = path.join(tmp, 'drift.mts') // .mts: an ES module outside any package.json
    fs.writeFileSync(
      script,
      `import { runMain } from ${JSON.stringify(path.join(repoRoot, 'shared/core/cli.ts'))}
import { demoNamespace } from ${JSON.stringify(path.join(repoRoot, 'test/e2e/gitops-fixture.ts'))}
import { drift } from ${JSON.stringify(path.join(repoRoot, 'shared/commands/drift.ts'))}
runMain(() => drift(demoNamespace(${JSON.stringify(w.work)}), process.argv.slice(2)))
`,
    )
    fs.writeFileSync(
      path.join(tmp, 'dashboard.mts'),
      `import { runMain } from ${JSON.stringify(path.join(repoRoot, 'shared/core/cli.ts'))}
import { demoNamespace } from ${JSON.stringify(path.join(repoRoot, 'test/e2e/gitops-fixture.ts'))}
import { dashboard } from ${JSON.stringify(path.join(repoRoot, 'shared/commands/dashboard.ts'))}
runMain(() => dashboard(demoNamespace(${JSON.stringify(w.work)}), process.argv.slice(2)))
`,
    )
    // the Service arrives through a deploy, as a user's would
    w.write(`namespaces/${DEMO}/base/service.yaml`, service)
    w.write(`namespaces/${DEMO}/base/kustomization.yaml`, 'resources: [web.yaml, settings.yaml, service.yaml]\n')
    await w.waitApplied(await w.git$('rev-parse', 'HEAD'))
    const r = await runDeploy({
      ns: w.ns,
      repoDir: w.work,
      yes: true,
      target: { kubeconfig: w.kubeconfig },
      timeoutMs: 120_000,
      log: quiet,
      out: sink(),
      prompt: sink(),
    })
    assert.equal(r.exitCode, 0, r.summary)
  })
  after(async () => {
    await w?.stop()
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true })
  })

  const k = (...args: string[]) => run(kubectl, ['--kubeconfig', w.kubeconfig, '-n', DEMO, ...args])
  const cli = async (...args: string[]) => cliWith({}, ...args)
  const cliWith = async (env: Record<string, string>, ...args: string[]) => {
    try {
      const { stdout, stderr } = await run(
        path.join(repoRoot, 'shared/bin/nsops-node'),
        [script, '--kubeconfig', w.kubeconfig, ...args],
        { env: { ...process.env, NO_COLOR: '1', ...env }, maxBuffer: 32 << 20 },
      )
      return { code: 0, stdout, stderr }
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string }
      return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }
    }
  }
  const json = async (...args: string[]) => {
    const r = await cli('-o', 'json', ...args)
    return { code: r.code, report: JSON.parse(r.stdout) as DriftReport, stderr: r.stderr }
  }
  const drift = (opts: DriftOptions = {}, ns: NamespaceConfig = w.ns, kube: Kube = w.kube) =>
    computeDrift(kube, ns, { repoDir: w.work, ...opts })
  const mergeKs = (body: object) =>
    w.kube.custom.patchNamespacedCustomObject(
      {
        group: 'kustomize.toolkit.fluxcd.io',
        version: 'v1',
        namespace: 'flux-system',
        plural: 'kustomizations',
        name: DEMO,
        body,
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    )
  const reconciled = async () => {
    const res = await reconcileAndWait(w.kube, KS, { revision: await w.git$('rev-parse', 'HEAD'), timeoutMs: 90_000 })
    assert.ok(res.ok, res.message)
  }

  it('right after Flux applied, every object is in sync: exit 0, schema nsops.drift/v1', async () => {
    const { code, report, stderr } = await json()
    assert.equal(code, 0, stderr)
    assert.equal(report.schema, 'nsops.drift/v1')
    assert.equal(report.drifted, false)
    assert.equal(report.source.mode, 'flux')
    assert.equal(report.source.baseline.kind, 'applied')
    assert.equal(report.source.baseline.sha, await w.git$('rev-parse', 'HEAD'))
    for (const [kind, name] of [
      ['Deployment', 'web'],
      ['ConfigMap', 'settings'],
      ['Service', 'web'],
    ]) {
      assert.equal(
        find(report, kind, name)?.class,
        'in-sync',
        `${kind}/${name}: ${JSON.stringify(find(report, kind, name))}`,
      )
    }
    // defaults the server filled in (strategy, revisionHistoryLimit, clusterIP…) are no drift
    assert.equal(report.counts.modified, 0, JSON.stringify(report.objects.filter((o) => o.class === 'modified')))
    // every kind of the namespace was listed for extras, the empty ones too
    assert.deepEqual(report.notChecked, [])
  })

  it('a report of a commit built before reuses that build (build cache): the same report as building afresh', async () => {
    const fresh = await cliWith({ NSOPS_DRIFT_CACHE: '0', NSOPS_TRACE: '1' }, '-o', 'json')
    const cached = await cliWith({ NSOPS_TRACE: '1' }, '-o', 'json')
    assert.equal(fresh.code, 0, fresh.stderr)
    assert.equal(cached.code, 0, cached.stderr)
    assert.match(fresh.stderr, /drift: baseline tree ready/)
    assert.doesNotMatch(fresh.stderr, /build cache hit/)
    // the first test of this suite made the same report, so its build is kept
    assert.match(cached.stderr, /drift: build cache hit/)
    assert.doesNotMatch(cached.stderr, /baseline tree ready/)
    const comparable = (text: string) => {
      const r = JSON.parse(text) as Partial<DriftReport>
      delete r.generatedAt
      delete r.tookMs
      return r
    }
    assert.deepEqual(comparable(cached.stdout), comparable(fresh.stdout))
  })

  it('hand edits under a dev-loop hold: each in its class with the manager that made it, exit 1; resume + reconcile → clean, exit 0', async () => {
    const owner = currentOwner('drift-e2e')
    const held = await suspendFor(w.kube, [KS], owner)
    assert.equal(held.suspended.length, 1)
    try {
      await k(
        'patch',
        'deployment',
        'web',
        '--type',
        'strategic',
        '-p',
        JSON.stringify({
          spec: { template: { spec: { containers: [{ name: 'web', image: 'traefik/whoami:v1.10.4' }] } } },
        }),
      )
      await k('delete', 'service', 'web')
      await k('create', 'configmap', 'by-hand', '--from-literal=a=b')
      await k('scale', 'deployment', 'web', '--replicas=3')

      const { code, report, stderr } = await json()
      assert.equal(code, 1, stderr)
      assert.equal(report.drifted, true)
      const web = find(report, 'Deployment', 'web')
      assert.equal(web?.class, 'modified')
      const replicas = web?.changes?.find((c) => c.path === '/spec/replicas')
      assert.deepEqual([replicas?.git, replicas?.live], [2, 3])
      assert.equal(replicas?.setBy[0]?.manager, 'kubectl')
      assert.equal(replicas?.setBy[0]?.subresource, 'scale')
      const image = web?.changes?.find((c) => c.path === '/spec/template/spec/containers/0/image')
      assert.deepEqual([image?.git, image?.live], ['traefik/whoami:v1.10.3', 'traefik/whoami:v1.10.4'])
      assert.equal(image?.setBy[0]?.manager, 'kubectl-patch')
      assert.ok(image?.setBy[0]?.time, 'with the time the server recorded (the scale subresource records none)')
      assert.equal(web?.changes?.length, 2, `only the two hand edits: ${JSON.stringify(web?.changes)}`)
      assert.equal(find(report, 'Service', 'web')?.class, 'missing')
      assert.equal(find(report, 'ConfigMap', 'by-hand')?.class, 'extra')
      assert.match(find(report, 'ConfigMap', 'by-hand')?.reason ?? '', /kubectl-create/)
      assert.equal(find(report, 'ConfigMap', 'settings')?.class, 'in-sync')
      for (const [kind, name] of [
        ['ConfigMap', 'kube-root-ca.crt'],
        ['ServiceAccount', 'default'],
      ])
        assert.equal(find(report, kind, name), undefined, `${kind}/${name} is not extra`)
      assert.ok(
        !report.objects.some((o) => ['ReplicaSet', 'Pod', 'EndpointSlice', 'Event'].includes(o.ref.kind)),
        'owned objects and events are not extra',
      )
      const s = report.suspensions[0]
      assert.equal(s?.kustomization, 'Kustomization/flux-system/demo')
      assert.equal(s?.session, 'drift-e2e')
      assert.equal(s?.user, owner.user)
      assert.match(s?.note ?? '', /on resume it reverts/)

      const text = await cli()
      assert.equal(text.code, 1, text.stderr)
      assert.match(text.stdout, /\/spec\/replicas: 2 → 3\s+set by kubectl \(scale\)/)
      assert.match(
        text.stdout,
        /\/spec\/template\/spec\/containers\/0\/image: traefik\/whoami:v1\.10\.3 → traefik\/whoami:v1\.10\.4\s+set by kubectl-patch at \d\d:\d\d/,
      )
      assert.match(text.stdout, /suspended since \d\d:\d\d by .*session drift-e2e.*on resume it reverts/)
      assert.match(text.stdout, /MISSING LIVE \(1\)\n\s+- Service\/demo\/web/)
      assert.match(text.stdout, /EXTRA IN THE NAMESPACE \(1\)\n\s+\+ ConfigMap\/demo\/by-hand/)

      // the dashboard's on-demand section is the same report, summarised
      const dash = await run(
        path.join(repoRoot, 'shared/bin/nsops-node'),
        [path.join(tmp, 'dashboard.mts'), '--kubeconfig', w.kubeconfig, '--env', 'prod', '--drift', '--json'],
        { maxBuffer: 32 << 20 },
      )
      const model = JSON.parse(dash.stdout) as {
        drift?: { drifted: boolean; counts: Record<string, number>; items: string[]; suspensions: string[] }
      }
      assert.equal(model.drift?.drifted, true)
      assert.deepEqual(
        [model.drift?.counts.modified, model.drift?.counts.missing, model.drift?.counts.extra],
        [1, 1, 1],
      )
      assert.ok(
        model.drift?.items.some((i) => /Deployment\/demo\/web: .*\/spec\/replicas by kubectl/.test(i)),
        model.drift?.items.join('\n'),
      )
      assert.equal(model.drift?.suspensions.length, 1)
      const plain = await run(
        path.join(repoRoot, 'shared/bin/nsops-node'),
        [path.join(tmp, 'dashboard.mts'), '--kubeconfig', w.kubeconfig, '--env', 'prod', '--drift'],
        { env: { ...process.env, NO_COLOR: '1' }, maxBuffer: 32 << 20 },
      )
      assert.match(plain.stdout, /DRIFT \(demo vs git applied [0-9a-f]{12}\)\n\s+drifted: 1 modified, 1 missing/)
    } finally {
      const resumed = await resumeOwned(w.kube, [KS], owner)
      assert.equal(resumed.resumed.length, 1)
    }
    await reconciled()
    const { code, report } = await json()
    assert.equal(code, 0, JSON.stringify(report.objects.filter((o) => o.class !== 'in-sync' && o.class !== 'extra')))
    assert.equal(report.suspensions.length, 0)
    assert.equal(find(report, 'Service', 'web')?.class, 'in-sync')
    // Flux does not delete what it never applied: still extra, counted as drift only with --strict
    assert.equal(find(report, 'ConfigMap', 'by-hand')?.class, 'extra')
    assert.equal((await cli('--strict')).code, 1)
    await k('delete', 'configmap', 'by-hand')
  })

  it("honours the Kustomization's .spec.ignore and namespace.ts drift.ignore", async () => {
    // suspended too, so Flux (reconciling the changed spec) does not undo the edits under test
    await mergeKs({
      spec: { suspend: true, ignore: [{ paths: ['/spec/replicas'], target: { kind: 'Deployment', name: 'we.' } }] },
    })
    try {
      await k('scale', 'deployment', 'web', '--replicas=4')
      await k('patch', 'configmap', 'settings', '--type', 'merge', '-p', '{"data":{"mode":"by-hand"}}')
      let r = await drift()
      assert.equal(find(r, 'Deployment', 'web')?.class, 'in-sync', JSON.stringify(find(r, 'Deployment', 'web')))
      assert.deepEqual(find(r, 'Deployment', 'web')?.ignored, ['/spec/replicas'])
      assert.equal(find(r, 'ConfigMap', 'settings')?.class, 'modified')
      assert.match(r.ignoreRules[0]?.from ?? '', /Kustomization\/flux-system\/demo \.spec\.ignore\[0\]/)

      const local: NamespaceConfig = { ...w.ns, drift: { ignore: ['ConfigMap/settings:/data/mode'] } }
      r = await drift({}, local)
      assert.equal(find(r, 'ConfigMap', 'settings')?.class, 'in-sync')
      assert.equal(r.drifted, false)
      // a local rule for another object leaves this one alone
      r = await drift({}, { ...w.ns, drift: { ignore: ['ConfigMap/other:/data/mode'] } })
      assert.equal(find(r, 'ConfigMap', 'settings')?.class, 'modified')
    } finally {
      await mergeKs({ spec: { suspend: false, ignore: null } })
    }
    await reconciled()
    const r = await drift()
    assert.equal(r.drifted, false, JSON.stringify(r.objects.filter((o) => o.class === 'modified')))
  })

  it('skips what Flux skips: reconcile: disabled and ssa: Ignore live, ssa: IfNotPresent in git', async () => {
    await mergeKs({ spec: { suspend: true } })
    try {
      await k('patch', 'configmap', 'settings', '--type', 'merge', '-p', '{"data":{"mode":"by-hand"}}')
      assert.equal(find(await drift(), 'ConfigMap', 'settings')?.class, 'modified')
      await k('annotate', 'configmap', 'settings', 'kustomize.toolkit.fluxcd.io/reconcile=disabled')
      let o = find(await drift(), 'ConfigMap', 'settings')
      assert.equal(o?.class, 'skipped')
      assert.match(o?.reason ?? '', /reconcile: disabled on the live object/)
      await k(
        'annotate',
        'configmap',
        'settings',
        'kustomize.toolkit.fluxcd.io/reconcile-',
        'kustomize.toolkit.fluxcd.io/ssa=Ignore',
      )
      o = find(await drift(), 'ConfigMap', 'settings')
      assert.equal(o?.class, 'skipped')
      assert.match(o?.reason ?? '', /ssa: Ignore on the live object/)
      await k('annotate', 'configmap', 'settings', 'kustomize.toolkit.fluxcd.io/ssa-')
      // IfNotPresent is git's: Flux creates the object once and leaves it alone after
      const file = path.join(w.work, `namespaces/${DEMO}/base/settings.yaml`)
      const good = fs.readFileSync(file, 'utf8')
      fs.writeFileSync(
        file,
        good.replace(
          'metadata: { name: settings }',
          'metadata: { name: settings, annotations: { kustomize.toolkit.fluxcd.io/ssa: IfNotPresent } }',
        ),
      )
      try {
        o = find(await drift({ baseline: 'worktree' }), 'ConfigMap', 'settings')
        assert.equal(o?.class, 'skipped')
        assert.match(o?.reason ?? '', /IfNotPresent/)
      } finally {
        fs.writeFileSync(file, good)
      }
    } finally {
      await mergeKs({ spec: { suspend: false } })
    }
    await reconciled()
  })

  it('an object that left git: Flux prunes it, unless it carries prune: disabled', async () => {
    const kfile = path.join(w.work, `namespaces/${DEMO}/base/kustomization.yaml`)
    const good = fs.readFileSync(kfile, 'utf8')
    fs.writeFileSync(kfile, 'resources: [web.yaml, service.yaml]\n')
    try {
      let o = find(await drift({ baseline: 'worktree' }), 'ConfigMap', 'settings')
      assert.equal(o?.class, 'gone-from-git')
      assert.equal(o?.willPrune, true)
      await k('annotate', 'configmap', 'settings', 'kustomize.toolkit.fluxcd.io/prune=disabled')
      const r = await drift({ baseline: 'worktree' })
      o = find(r, 'ConfigMap', 'settings')
      assert.equal(o?.class, 'gone-from-git')
      assert.equal(o?.pruneDisabled, true)
      assert.equal(o?.willPrune, false)
      assert.equal(r.drifted, true)
      assert.ok(
        r.warnings.some((x) => /baseline worktree/.test(x)),
        r.warnings.join('\n'),
      )
    } finally {
      fs.writeFileSync(kfile, good)
      await k('annotate', 'configmap', 'settings', 'kustomize.toolkit.fluxcd.io/prune-')
    }
  })

  it('baselines: applied is what Flux applied, HEAD a commit it has not applied yet, worktree uncommitted edits', async () => {
    await mergeKs({ spec: { suspend: true } })
    const file = path.join(w.work, `namespaces/${DEMO}/base/settings.yaml`)
    const good = fs.readFileSync(file, 'utf8')
    try {
      fs.writeFileSync(file, good.replace('prod-v1', 'committed-not-applied'))
      await w.git$('commit', '-qam', 'drift: a commit Flux has not applied')
      assert.equal((await drift()).drifted, false, 'against what Flux applied, nothing drifted')
      const head = await drift({ baseline: 'HEAD' })
      const ch = find(head, 'ConfigMap', 'settings')?.changes?.[0]
      assert.deepEqual([ch?.path, ch?.git, ch?.live], ['/data/mode', 'committed-not-applied', 'prod-v1'])
      assert.equal(ch?.setBy[0]?.manager, 'kustomize-controller', 'Flux set the live value')
      fs.writeFileSync(file, good.replace('prod-v1', 'uncommitted'))
      assert.equal(
        find(await drift({ baseline: 'worktree' }), 'ConfigMap', 'settings')?.changes?.[0]?.git,
        'uncommitted',
      )
      assert.equal((await cli('--baseline', 'no-such-rev')).code, 2)
    } finally {
      fs.writeFileSync(file, good)
      await w.git$('reset', '-q', '--hard', 'HEAD~1')
      await mergeKs({ spec: { suspend: false } })
    }
  })

  it('a Secret that changed shows which keys, by hash; its values never appear', async () => {
    const dir = path.join(w.work, `namespaces/${DEMO}/base`)
    const kfile = path.join(dir, 'kustomization.yaml')
    const good = fs.readFileSync(kfile, 'utf8')
    fs.writeFileSync(
      path.join(dir, 'creds.yaml'),
      'apiVersion: v1\nkind: Secret\nmetadata: { name: creds }\nstringData: { password: git-secret-value, user: admin }\n',
    )
    fs.writeFileSync(kfile, 'resources: [web.yaml, settings.yaml, service.yaml, creds.yaml]\n')
    try {
      await k(
        'create',
        'secret',
        'generic',
        'creds',
        '--from-literal=password=live-secret-value',
        '--from-literal=user=admin',
      )
      const out = await cli('--baseline', 'worktree', '-o', 'json')
      const text = await cli('--baseline', 'worktree')
      for (const o of [out, text]) {
        assert.equal(o.code, 1, o.stderr)
        assert.doesNotMatch(o.stdout, /git-secret-value|live-secret-value/)
        assert.doesNotMatch(o.stdout, new RegExp(Buffer.from('live-secret-value').toString('base64')))
      }
      const creds = find(JSON.parse(out.stdout) as DriftReport, 'Secret', 'creds')
      assert.equal(creds?.class, 'modified')
      assert.deepEqual(creds?.secretKeys, ['password'])
      assert.match(String(creds?.changes?.[0]?.git), /^sha256:[0-9a-f]{12}$/)
      assert.notEqual(creds?.changes?.[0]?.git, creds?.changes?.[0]?.live)
      assert.match(text.stdout, /Secret keys changed: password/)
    } finally {
      fs.writeFileSync(kfile, good)
      fs.rmSync(path.join(dir, 'creds.yaml'))
      await k('delete', 'secret', 'creds')
    }
  })

  it('a Secret whose whole data map is missing on one side shows no value, in text and -o json', async () => {
    const dir = path.join(w.work, `namespaces/${DEMO}/base`)
    const kfile = path.join(dir, 'kustomization.yaml')
    const good = fs.readFileSync(kfile, 'utf8')
    const values = ['git-only-secret-value', 'second-git-only-value']
    fs.writeFileSync(
      path.join(dir, 'creds2.yaml'),
      `apiVersion: v1\nkind: Secret\nmetadata: { name: creds2 }\nstringData: { password: ${values[0]}, token: ${values[1]} }\n`,
    )
    fs.writeFileSync(kfile, 'resources: [web.yaml, settings.yaml, service.yaml, creds2.yaml]\n')
    try {
      // live, the Secret has no data map at all: the change is /data itself, every key at once
      await k('create', 'secret', 'generic', 'creds2')
      const out = await cli('--baseline', 'worktree', '-o', 'json')
      const text = await cli('--baseline', 'worktree')
      for (const o of [out, text]) {
        assert.equal(o.code, 1, o.stderr)
        for (const v of values) {
          assert.doesNotMatch(o.stdout, new RegExp(v))
          assert.doesNotMatch(o.stdout, new RegExp(Buffer.from(v).toString('base64').replace(/=+$/, '')))
        }
      }
      const creds = find(JSON.parse(out.stdout) as DriftReport, 'Secret', 'creds2')
      assert.equal(creds?.class, 'modified')
      assert.deepEqual(creds?.secretKeys?.sort(), ['password', 'token'])
      const data = creds?.changes?.find((ch) => ch.path === '/data')
      assert.ok(data, JSON.stringify(creds?.changes))
      for (const h of Object.values(data.git as Record<string, string>)) assert.match(h, /^sha256:[0-9a-f]{12}$/)
      assert.match(text.stdout, /Secret keys changed: password, token/)
    } finally {
      fs.writeFileSync(kfile, good)
      fs.rmSync(path.join(dir, 'creds2.yaml'))
      await k('delete', 'secret', 'creds2')
    }
  })

  it('only reads: runs as a ServiceAccount that may get/list/watch, and patch only in dry runs', async () => {
    // patch is granted because a server-side dry run is authorised as the write it simulates;
    // an admission policy refuses every write of this ServiceAccount that is not a dry run
    const apply = async (yaml: string) => {
      await run('sh', ['-c', `"${kubectl}" --kubeconfig "${w.kubeconfig}" apply -f - <<'EOF'\n${yaml}\nEOF`])
    }
    const user = `system:serviceaccount:${DEMO}:drift-reader`
    await apply(`apiVersion: v1
kind: ServiceAccount
metadata: { name: drift-reader, namespace: ${DEMO} }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: { name: drift-reader, namespace: ${DEMO} }
rules:
  - { apiGroups: ["*"], resources: ["*"], verbs: [get, list, watch, patch] }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: { name: drift-reader, namespace: ${DEMO} }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: Role, name: drift-reader }
subjects: [{ kind: ServiceAccount, name: drift-reader, namespace: ${DEMO} }]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: { name: drift-reader, namespace: flux-system }
rules:
  - { apiGroups: [kustomize.toolkit.fluxcd.io, source.toolkit.fluxcd.io, helm.toolkit.fluxcd.io], resources: ["*"], verbs: [get, list, watch] }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: { name: drift-reader, namespace: flux-system }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: Role, name: drift-reader }
subjects: [{ kind: ServiceAccount, name: drift-reader, namespace: ${DEMO} }]
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: { name: drift-reader-dry-run-only }
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules: [{ apiGroups: ["*"], apiVersions: ["*"], operations: [CREATE, UPDATE, DELETE], resources: ["*"] }]
  matchConditions: [{ name: drift-reader, expression: "request.userInfo.username == '${user}'" }]
  validations: [{ expression: "request.dryRun == true", message: "drift-reader writes nothing: dry runs only" }]
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: { name: drift-reader-dry-run-only }
spec: { policyName: drift-reader-dry-run-only, validationActions: [Deny] }`)
    try {
      const token = await w.kube.core.createNamespacedServiceAccountToken({
        name: 'drift-reader',
        namespace: DEMO,
        body: { spec: { audiences: [], expirationSeconds: 3600 } },
      })
      const admin = new KubeConfig()
      admin.loadFromFile(w.kubeconfig)
      const cluster = admin.getCurrentCluster()!
      const kc = new KubeConfig()
      kc.loadFromOptions({
        clusters: [{ ...cluster }],
        users: [{ name: 'drift-reader', token: token.status!.token }],
        contexts: [{ name: 'drift-reader', cluster: cluster.name, user: 'drift-reader' }],
        currentContext: 'drift-reader',
      })
      const reader = clientsFor(kc)
      // the policy is live once a real write of the reader is refused by it
      await until('the dry-run-only policy to refuse a write', async () => {
        try {
          await reader.core.patchNamespacedConfigMap(
            { name: 'settings', namespace: DEMO, body: { metadata: { labels: { touched: 'yes' } } } },
            setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
          )
          await w.kube.core.patchNamespacedConfigMap(
            { name: 'settings', namespace: DEMO, body: { metadata: { labels: { touched: null } } } },
            setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
          )
          return false
        } catch (err) {
          return /dry runs only/.test(String((err as { body?: unknown }).body))
        }
      })

      await k('scale', 'deployment', 'web', '--replicas=5')
      // the Deployment's status keeps moving while it scales: its generation, spec and managedFields must not
      const versions = async () => {
        const [dep, cm, svc] = await Promise.all([
          w.kube.apps.readNamespacedDeployment({ name: 'web', namespace: DEMO }),
          w.kube.core.readNamespacedConfigMap({ name: 'settings', namespace: DEMO }),
          w.kube.core.readNamespacedService({ name: 'web', namespace: DEMO }),
        ])
        return [
          dep.metadata?.generation,
          JSON.stringify(dep.spec),
          JSON.stringify(
            dep.metadata?.managedFields?.filter((m) => m.subresource !== 'status').map((m) => [m.manager, m.time]),
          ),
          cm.metadata?.resourceVersion,
          svc.metadata?.resourceVersion,
        ]
      }
      const before = await versions()
      const r = await drift({}, w.ns, reader)
      assert.equal(r.context, 'drift-reader')
      const replicas = find(r, 'Deployment', 'web')?.changes?.find((c) => c.path === '/spec/replicas')
      assert.deepEqual([replicas?.git, replicas?.live, replicas?.setBy[0]?.manager], [2, 5, 'kubectl'])
      assert.deepEqual(await versions(), before, 'nothing was written')
    } finally {
      await run(kubectl, [
        '--kubeconfig',
        w.kubeconfig,
        'delete',
        '--ignore-not-found',
        'validatingadmissionpolicybinding/drift-reader-dry-run-only',
        'validatingadmissionpolicy/drift-reader-dry-run-only',
      ])
      await k(
        'delete',
        '--ignore-not-found',
        'rolebinding/drift-reader',
        'role/drift-reader',
        'serviceaccount/drift-reader',
      )
      await run(kubectl, [
        '--kubeconfig',
        w.kubeconfig,
        '-n',
        'flux-system',
        'delete',
        '--ignore-not-found',
        'rolebinding/drift-reader',
        'role/drift-reader',
      ])
      await reconciled()
    }
  })

  it('a namespace no Kustomization manages: compared with overlays/prod at HEAD', async () => {
    const name = 'loose'
    const base = defineNamespace({
      name,
      description: 'not under Flux',
      namespaces: { dev: `${name}-dev`, prod: name },
    })
    const ns: NamespaceConfig = { ...base, paths: namespacePaths(path.join(w.work, 'namespaces', name)) }
    w.write(`namespaces/${name}/overlays/prod/kustomization.yaml`, `namespace: ${name}\nresources: [cm.yaml]\n`)
    w.write(
      `namespaces/${name}/overlays/prod/cm.yaml`,
      'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: plain }\ndata: { a: "1" }\n',
    )
    await w.git$('add', '-A')
    await w.git$('commit', '-qm', 'loose namespace')
    await w.kube.core.createNamespace({ body: { metadata: { name } } })
    try {
      await run(kubectl, [
        '--kubeconfig',
        w.kubeconfig,
        'apply',
        '--server-side',
        '-k',
        path.join(w.work, `namespaces/${name}/overlays/prod`),
      ])
      let r = await drift({}, ns)
      assert.equal(r.source.mode, 'local')
      assert.equal(r.source.baseline.requested, 'HEAD')
      assert.equal(find(r, 'ConfigMap', 'plain')?.class, 'in-sync')
      assert.equal(r.drifted, false)
      assert.ok(r.warnings.some((x) => /not under Flux/.test(x)))
      await run(kubectl, ['--kubeconfig', w.kubeconfig, '-n', name, 'edit', 'configmap', 'plain'], {
        env: { ...process.env, KUBE_EDITOR: `sed -i 's/a: "1"/a: "2"/'` },
      })
      r = await drift({}, ns)
      const ch = find(r, 'ConfigMap', 'plain')?.changes?.[0]
      assert.deepEqual([ch?.path, ch?.git, ch?.live, ch?.setBy[0]?.manager], ['/data/a', '1', '2', 'kubectl-edit'])
      await assert.rejects(
        drift({ baseline: 'applied' }, ns),
        (err: Error & { exitCode?: number }) => err.exitCode === 2 && /needs a Flux Kustomization/.test(err.message),
      )
    } finally {
      await w.kube.core.deleteNamespace({ name })
    }
  })

  it('a repeat drift asks for no dry run of what did not change; an edited object, and a kind mutating admission may touch, are asked again', async () => {
    // every dry run drift sends, as the API sees it (kube/rest.ts publishes each request)
    const dryRunsOf = async () => {
      const seen: string[] = []
      const on = (m: unknown) => {
        const r = m as KubeRequest
        if (r.method === 'PATCH' && r.url.includes('dryRun=All')) seen.push(r.url.split('?')[0])
      }
      diagnostics.subscribe('nsops:kube-request', on)
      try {
        return { report: await drift(), asked: seen }
      } finally {
        diagnostics.unsubscribe('nsops:kube-request', on)
      }
    }
    const settingsPath = `/api/v1/namespaces/${DEMO}/configmaps/settings`
    const first = await dryRunsOf()
    const compared = first.report.objects.filter((o) => o.class === 'in-sync' || o.class === 'modified')
    assert.ok(compared.length >= 3, JSON.stringify(first.report.objects))
    // Secrets and refused dry runs are always asked; nothing else is (once the server's schemas
    // and admission configuration have been the same for 10 s), and the report is the same
    const always = compared.filter((o) => o.ref.kind === 'Secret' || o.dryRunError).length
    const again = await until('the answers to be kept', async () => {
      const r = await dryRunsOf()
      return r.asked.length === always ? r : undefined
    })
    assert.deepEqual(
      again.report.objects.map((o) => [refString(o.ref), o.class, o.changes]),
      first.report.objects.map((o) => [refString(o.ref), o.class, o.changes]),
    )

    // a write to one object moves its resourceVersion: only its dry run is asked again
    await k('label', 'configmap', 'settings', 'nsops.test/touched=yes', '--overwrite')
    const edited = await dryRunsOf()
    assert.deepEqual(
      edited.asked.filter((u) => !u.includes('/secrets/')),
      [settingsPath],
    )

    // a mutating admission policy on ConfigMaps: their dry runs are asked every time it exists,
    // and what it would add shows as the change Flux's next apply makes
    const policy = path.join(tmp, 'policy.yaml')
    fs.writeFileSync(
      policy,
      `apiVersion: admissionregistration.k8s.io/v1
kind: MutatingAdmissionPolicy
metadata: { name: nsops-drift-test }
spec:
  matchConstraints:
    resourceRules: [{ apiGroups: [""], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [configmaps] }]
  failurePolicy: Fail
  reinvocationPolicy: Never
  mutations:
    - patchType: ApplyConfiguration
      applyConfiguration:
        expression: 'Object{metadata: Object.metadata{labels: {"nsops.test/mutated": "yes"}}}'
---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingAdmissionPolicyBinding
metadata: { name: nsops-drift-test }
spec:
  policyName: nsops-drift-test
  matchResources:
    namespaceSelector: { matchLabels: { kubernetes.io/metadata.name: ${DEMO} } }
`,
    )
    await run(kubectl, ['--kubeconfig', w.kubeconfig, 'apply', '-f', policy])
    try {
      let notAsked = 0
      const mutated = await until('the policy to act on the dry run', async () => {
        const r = await dryRunsOf()
        if (!r.asked.includes(settingsPath)) notAsked++
        return find(r.report, 'ConfigMap', 'settings')?.changes?.find((c) => c.path.includes('mutated'))
      })
      assert.equal(notAsked, 0, 'a kind admission may mutate is asked every time')
      assert.deepEqual([mutated.git, mutated.live], ['yes', undefined])
      // once the new configuration has settled, other kinds' answers are kept again; not a ConfigMap's
      const settledWithPolicy = await until('the answers of kinds the policy does not touch to be kept', async () => {
        const r = await dryRunsOf()
        return r.asked.some((u) => u.includes('/deployments/web')) ? undefined : r
      })
      assert.ok(settledWithPolicy.asked.includes(settingsPath), 'a ConfigMap is still asked: the policy may mutate it')
    } finally {
      await run(kubectl, ['--kubeconfig', w.kubeconfig, 'delete', '--ignore-not-found', '-f', policy])
    }
    let last = ''
    const clean = await until('the policy to be gone', async () => {
      const r = await dryRunsOf()
      last = JSON.stringify(find(r.report, 'ConfigMap', 'settings'))
      return find(r.report, 'ConfigMap', 'settings')?.changes?.some((c) => c.path.includes('mutated')) ? undefined : r
    }).catch((err: Error) => {
      throw new Error(`${err.message}: ${last}`)
    })
    assert.ok(clean.asked.includes(settingsPath))
    // the server went on mutating for a moment after the policy was deleted: what it answered
    // then was not kept, and once the configuration has settled the answers are kept again
    const settled = await until('the answers to be kept again', async () => {
      const r = await dryRunsOf()
      return r.asked.length === always ? r : undefined
    })
    assert.equal(find(settled.report, 'ConfigMap', 'settings')?.class, 'in-sync')
    await k('label', 'configmap', 'settings', 'nsops.test/touched-')
  })
})
