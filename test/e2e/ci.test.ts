// `just ci` and the workflows users copy, end to end: every step runs as the real command in
// a real repository in a temp dir (a copy of this repo's files, a bare remote, a branch with
// a real merge base), against real kustomize, the pinned schemas and a real cluster. The e2e
// step uses the suite's shared sim cluster (NSOPS_PROVIDER=existing with its kubeconfig) to
// save a cluster start per test; the workflow run at the end starts a sim cluster of its own
// with the real Flux controllers, as a runner would.
import assert from 'node:assert/strict'
import { execFile, execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { after, before, describe, it } from 'node:test'
import YAML from 'yaml'
import { CI_STEPS } from '../../shared/commands/ci.ts'
import { COMMENT_MARKER } from '../../shared/ci/diff.ts'
import { repoRoot } from '../../shared/core/paths.ts'
import { toolPath } from '../../shared/tools/provision.ts'
import { ciRepo, type CiRepo } from '../ci-fixture.ts'
import { git, write } from '../git-fixture.ts'
import { testCluster } from '../harness.ts'

const run = promisify(execFile)
interface Ran {
  code: number
  stdout: string
  stderr: string
  ms: number
}

/** The environment of a CI machine: none of this checkout's nsops settings leak in. */
function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, CI: '1', NO_COLOR: '1' }
  for (const k of Object.keys(env)) if (k.startsWith('NSOPS_') || k.startsWith('GITHUB_')) delete env[k]
  delete env.NODE_OPTIONS // the test runner's reporters are not the commands'
  return { ...env, ...extra }
}

async function exec(
  cmd: string,
  args: string[],
  cwd: string,
  env: NodeJS.ProcessEnv = {},
  timeout = 300_000,
): Promise<Ran> {
  const t0 = performance.now()
  try {
    const { stdout, stderr } = await run(cmd, args, { cwd, env: cleanEnv(env), maxBuffer: 64 << 20, timeout })
    return { code: 0, stdout, stderr, ms: performance.now() - t0 }
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string }
    return {
      code: typeof e.code === 'number' ? e.code : -1,
      stdout: e.stdout ?? '',
      stderr: e.stderr ?? '',
      ms: performance.now() - t0,
    }
  }
}

const nsops = (work: string, args: string[], env: NodeJS.ProcessEnv = {}, timeout?: number) =>
  exec(path.join(work, 'shared/bin/nsops.ts'), args, work, env, timeout)

function reset(r: CiRepo): void {
  git(r.work, 'reset', '-q', '--hard', 'origin/main')
  git(r.work, 'clean', '-fdq', '-e', 'node_modules', '-e', '.nsops')
  fs.rmSync(r.out, { recursive: true, force: true })
}

function edit(dir: string, file: string, fn: (text: string) => string): void {
  const p = path.join(dir, file)
  const next = fn(fs.readFileSync(p, 'utf8'))
  assert.notEqual(next, fs.readFileSync(p, 'utf8'), `the edit of ${file} changed nothing`)
  fs.writeFileSync(p, next)
}

const LOKI = 'namespaces/observability/base/loki/deployment.yaml'
const CHECKS = `checks: [
    { name: 'loki-rollout', run: 'kubectl -n {namespace} rollout status deploy/loki --timeout=60s' },
    { name: 'ready', task: 'loki-ready' },
  ],
  portForwards:`

describe('namespace.ts checks are validated like the other fields', () => {
  it('refuses a check with both or neither of run and task, a task that does not exist, and duplicate names', async () => {
    const { defineNamespace } = await import('../../shared/config/namespace-config.ts')
    const base = { name: 'shop', description: 'a shop', namespaces: { dev: 'shop-dev', prod: 'shop' } }
    assert.deepEqual(
      defineNamespace({ ...base, checks: [{ name: 'up', run: 'kubectl -n {namespace} get deploy' }] }).checks,
      [{ name: 'up', run: 'kubectl -n {namespace} get deploy' }],
    )
    assert.throws(
      () => defineNamespace({ ...base, checks: [{ name: 'x', run: 'true', task: 't' } as never] }),
      /checks\[0\] needs exactly one of run \(a shell command\) or task/,
    )
    assert.throws(
      () => defineNamespace({ ...base, checks: [{ name: 'x', task: 'nope' }] }),
      /checks\[0\]\.task names "nope", which is not a task of this namespace/,
    )
    assert.throws(
      () =>
        defineNamespace({
          ...base,
          checks: [
            { name: 'x', run: 'true' },
            { name: 'x', run: 'false' },
          ],
        }),
      /checks \(by name\) lists "x" more than once/,
    )
    assert.throws(
      () => defineNamespace({ ...base, checks: [{ name: 'Bad Name', run: 'true' }] }),
      /checks\[0\]\.name must be a DNS-1123 label/,
    )
  })
})

describe('just ci on a real repository with a merge base', () => {
  let r: CiRepo
  before(() => {
    r = ciRepo()
  })
  after(() => fs.rmSync(r.root, { recursive: true, force: true }))

  it('changed: a change in one namespace selects only it, one in shared/ selects everything, no upstream is a clear error', async () => {
    reset(r)
    edit(r.work, LOKI, (t) => t.replace('  replicas: 1', '  replicas: 2'))
    const one = await nsops(r.work, ['ci', 'changed', '--json', '--out', r.out])
    assert.equal(one.code, 0, one.stderr)
    const sel = JSON.parse(one.stdout)
    assert.deepEqual(sel.namespaces, ['observability'])
    assert.deepEqual(sel.tankaEnvironments, [])
    assert.equal(sel.base, 'origin/main')
    assert.equal(sel.mergeBase, git(r.work, 'rev-parse', 'origin/main'))
    assert.deepEqual(sel.files, [LOKI])
    assert.match(
      one.stderr,
      /ci changed: ok — namespaces observability; no Tanka environment — 1 file\(s\) differ from the merge base \w{7} with origin\/main/,
    )

    // committed on the branch, a Tanka environment and a file in shared/ (all of it)
    git(r.work, 'commit', '-qam', 'loki: 2 replicas')
    write(r.work, 'tanka/environments/local/extra.libsonnet', '{}\n')
    const tanka = JSON.parse((await nsops(r.work, ['ci', 'changed', '--json', '--out', r.out])).stdout)
    assert.deepEqual([tanka.namespaces, tanka.tankaEnvironments], [['observability'], ['local']])
    fs.appendFileSync(path.join(r.work, 'shared/core/output.ts'), '\n// a change in the library\n')
    const all = await nsops(r.work, ['ci', 'changed', '--json', '--out', r.out])
    const every = JSON.parse(all.stdout)
    assert.deepEqual(every.namespaces, ['arr-stack', 'monitoring', 'observability'])
    assert.deepEqual(every.tankaEnvironments, ['local', 'prod'])
    assert.equal(every.all, 'shared/ changed')

    // --base wins; a branch without upstream gets the error and the way out
    git(r.work, 'switch', '-q', '-c', 'lonely')
    const none = await nsops(r.work, ['ci', 'changed'])
    assert.equal(none.code, 1)
    assert.match(
      none.stderr,
      /error: branch "lonely" has no upstream, so there is no base branch to compare with\.\nhint: name it: `just ci --base origin\/main`/,
    )
    assert.doesNotMatch(none.stderr, /at .*\.ts:\d+/, 'no stack without --debug')
    const named = await nsops(r.work, ['ci', 'changed', '--base', 'origin/main', '--json', '--out', r.out])
    assert.equal(named.code, 0, named.stderr)
    const unknown = await nsops(r.work, ['ci', 'changed', '--base', 'origin/nope'])
    assert.equal(unknown.code, 1)
    assert.match(unknown.stderr, /no merge base between origin\/nope[\s\S]*hint: .*fetch/)
    git(r.work, 'switch', '-q', 'change')
    git(r.work, 'branch', '-q', '-D', 'lonely')
  })

  it('validate: a valid change passes; an invalid manifest fails with file:line', async () => {
    reset(r)
    edit(r.work, LOKI, (t) => t.replace('  replicas: 1', '  replicas: 2'))
    const ok = await nsops(r.work, ['ci', 'validate', '--out', r.out])
    assert.equal(ok.code, 0, ok.stderr)
    assert.match(
      ok.stderr,
      /observability: Flux Kustomization flux-system\/observability \(k8s\/flux\/observability\.yaml\) builds \(\d+ objects\); all \d+ objects pass strict schema validation against the pinned schemas/,
    )
    assert.match(ok.stderr, /ci validate: ok — 1 valid \(observability\)/)
    assert.doesNotMatch(ok.stderr, /arr-stack|monitoring/, 'only the changed namespace is validated')

    edit(r.work, LOKI, (t) => t.replace('  replicas: 2', '  replicas: two'))
    const bad = await nsops(r.work, ['ci', 'validate', '--out', r.out])
    assert.equal(bad.code, 1, bad.stderr)
    assert.match(
      bad.stderr,
      /namespaces\/observability\/base\/loki\/deployment\.yaml:8: Deployment observability\/loki: spec\.replicas: /,
    )
    assert.match(bad.stderr, /ci validate: FAILED — 1 of 1 invalid: observability/)
    const report = JSON.parse(fs.readFileSync(path.join(r.out, 'validate.json'), 'utf8'))
    assert.equal(report.ok, false)
  })

  it('diff: a replica change and an image change appear per object, the image flagged, chart noise left out, capped Markdown', async () => {
    reset(r)
    edit(r.work, LOKI, (t) =>
      t
        .replace('  replicas: 1', '  replicas: 2')
        .replace('loki:3.5.3', 'loki:3.5.4')
        .replace(
          '    app.kubernetes.io/name: loki\nspec:',
          '    app.kubernetes.io/name: loki\n    app.kubernetes.io/version: "3.5.4"\nspec:',
        ),
    )
    git(r.work, 'commit', '-qam', 'loki 3.5.4, 2 replicas')
    const d = await nsops(r.work, ['ci', 'diff', '--out', r.out])
    assert.equal(d.code, 0, d.stderr)
    assert.match(
      d.stderr,
      /ci diff: ok — 1 namespace\(s\), 1 object\(s\) differ \(0 added, 1 changed, 0 deleted\); 1 danger signal\(s\): image/,
    )
    const json = JSON.parse(fs.readFileSync(path.join(r.out, 'diff.json'), 'utf8'))
    assert.equal(json.schema, 'nsops.ci-diff/v1')
    const [ns] = json.namespaces
    assert.equal(ns.name, 'observability')
    assert.deepEqual(
      ns.objects.map(
        (o: { ref: { kind: string; name: string }; action: string }) => `${o.action} ${o.ref.kind}/${o.ref.name}`,
      ),
      ['update Deployment/loki'],
    )
    const text = ns.objects[0].diff as string
    assert.match(text, /^-\s+replicas: 1$/m)
    assert.match(text, /^\+\s+replicas: 2$/m)
    assert.match(text, /^\+\s+image: docker\.io\/grafana\/loki:3\.5\.4$/m)
    assert.doesNotMatch(text, /app\.kubernetes\.io\/version/, 'chart version labels are noise')
    assert.deepEqual(json.signals, [
      {
        kind: 'image',
        namespace: 'observability',
        object: 'Deployment/observability/loki',
        message: 'container loki: `docker.io/grafana/loki:3.5.3` → `docker.io/grafana/loki:3.5.4`',
      },
    ])
    const md = fs.readFileSync(path.join(r.out, 'diff.md'), 'utf8')
    assert.ok(md.startsWith(COMMENT_MARKER), 'the marker a workflow finds its comment by')
    assert.match(md, /\| \*\*image\*\* \| `Deployment\/observability\/loki` \|/)
    assert.match(md, /```diff\n[\s\S]*\+\s+replicas: 2/)
    assert.equal(git(r.work, 'worktree', 'list').split('\n').length, 1, 'the merge base worktree is gone')

    // a deletion is a prune; scaling to zero is called out; the cap keeps the comment small
    edit(r.work, LOKI, (t) => t.replace('  replicas: 2', '  replicas: 0'))
    edit(r.work, 'namespaces/observability/base/loki/kustomization.yaml', (t) => t.replace(/^\s*- pvc\.yaml\n/m, ''))
    const capped = await nsops(r.work, ['ci', 'diff', '--out', r.out, '--limit', '1200'])
    assert.equal(capped.code, 0, capped.stderr)
    const kinds = JSON.parse(fs.readFileSync(path.join(r.out, 'diff.json'), 'utf8'))
      .signals.map((s: { kind: string }) => s.kind)
      .sort()
    assert.deepEqual(kinds, ['image', 'prune', 'scale-to-zero'])
    const small = fs.readFileSync(path.join(r.out, 'diff.md'), 'utf8')
    assert.ok(small.length <= 1200, `capped: ${small.length}`)
    assert.match(small, /Truncated to fit a comment/)
    assert.match(
      fs.readFileSync(path.join(r.out, 'diff-full.md'), 'utf8'),
      /deleted <code>PersistentVolumeClaim\/observability\/loki/,
    )
  })

  it("diff: a HelmRelease's values change shows in the objects its chart renders (the Deployment, image flagged), no cluster", async () => {
    reset(r)
    const GRAFANA = 'namespaces/monitoring/base/grafana/helmrelease.yaml'
    edit(r.work, GRAFANA, (t) => t.replace('tag: 12.1.1', 'tag: 12.1.2'))
    git(r.work, 'commit', '-qam', 'grafana 12.1.2')
    const d = await nsops(r.work, ['ci', 'diff', '--out', r.out])
    assert.equal(d.code, 0, d.stderr)
    const json = JSON.parse(fs.readFileSync(path.join(r.out, 'diff.json'), 'utf8'))
    const [ns] = json.namespaces
    assert.equal(ns.name, 'monitoring')
    const objects = ns.objects as { ref: { kind: string; name: string }; action: string; diff: string }[]
    assert.deepEqual(objects.map((o) => `${o.action} ${o.ref.kind}/${o.ref.name}`).sort(), [
      'update Deployment/grafana',
      'update HelmRelease/grafana',
    ])
    // the Deployment is the chart's rendering of the new values, not the HelmRelease's text
    const deployment = objects.find((o) => o.ref.kind === 'Deployment')!
    assert.match(deployment.diff, /^-\s+image: docker\.io\/grafana\/grafana:12\.1\.1$/m)
    assert.match(deployment.diff, /^\+\s+image: docker\.io\/grafana\/grafana:12\.1\.2$/m)
    assert.deepEqual(
      json.signals.map((x: { kind: string; object: string }) => `${x.kind} ${x.object}`),
      ['image Deployment/monitoring/grafana'],
    )
  })

  describe("e2e on the sim cluster (the suite's shared one: NSOPS_PROVIDER=existing)", () => {
    let env: NodeJS.ProcessEnv = {}
    before(async () => {
      const tc = await testCluster()
      env = { NSOPS_PROVIDER: 'existing', KUBECONFIG: tc.kubeconfig }
    })
    const devDown = async () => {
      const down = await nsops(r.work, ['dev-down', '--keep-cluster'], { NSOPS_KUBECONFIG: env.KUBECONFIG })
      assert.equal(down.code, 0, down.stderr)
    }

    it("passes for a healthy change, runs the namespace's checks, keeps the stack and writes the artifacts", async () => {
      reset(r)
      edit(r.work, 'namespaces/observability/namespace.ts', (t) => t.replace('portForwards:', CHECKS))
      edit(r.work, LOKI, (t) => t.replace('prometheus.io/scrape: "true"', 'prometheus.io/scrape: "false"'))
      try {
        const e = await nsops(r.work, ['ci', 'e2e', '--timeout', '2m', '--out', r.out], env)
        assert.equal(e.code, 0, e.stderr)
        assert.match(e.stderr, /ci e2e: ok — observability healthy on the cluster; checks 2\/2 passed; artifacts in /)
        const dir = path.join(r.out, 'e2e')
        const snap = JSON.parse(fs.readFileSync(path.join(dir, 'snapshot.json'), 'utf8'))
        const loki = snap.loops[0].resources.find(
          (x: { kind: string; name: string }) => x.kind === 'Deployment' && x.name === 'loki',
        )
        assert.equal(loki.status, 'Current')
        assert.match(
          fs.readFileSync(path.join(dir, 'namespaces/observability/get-all.txt'), 'utf8'),
          /deployment\.apps\/loki\s+1\/1/,
        )
        assert.ok(fs.existsSync(path.join(dir, 'namespaces/observability/events.txt')))
        assert.match(
          fs.readFileSync(path.join(dir, 'checks/observability/loki-rollout.log'), 'utf8'),
          /successfully rolled out/,
        )
        assert.match(
          fs.readFileSync(path.join(dir, 'checks/observability/ready.log'), 'utf8'),
          /rollout status daemonset\/promtail/,
        )
        assert.match(fs.readFileSync(path.join(dir, 'dev-up.log'), 'utf8'), /SUCCESS/)
        const summary = JSON.parse(fs.readFileSync(path.join(dir, 'summary.json'), 'utf8'))
        assert.equal(summary.ok, true)
        assert.deepEqual(
          summary.checks.map((c: { name: string; ok: boolean }) => [c.name, c.ok]),
          [
            ['loki-rollout', true],
            ['ready', true],
          ],
        )
        // the stack is kept for the job's later steps
        const { kube } = await testCluster()
        const deps = await kube.apps.listNamespacedDeployment({ namespace: 'observability-dev' })
        assert.deepEqual(
          deps.items.map((d) => d.metadata?.name),
          ['logdemo', 'loki'], // logdemo built from src/logdemo and rolled out by digest
        )
      } finally {
        await devDown()
      }
    })

    it('fails when a check fails, naming it, with its log in the artifacts', async () => {
      reset(r)
      edit(r.work, 'namespaces/observability/namespace.ts', (t) =>
        t.replace(
          'portForwards:',
          `checks: [
    { name: 'missing', run: 'kubectl -n {namespace} get deploy/no-such-app' },
  ],
  portForwards:`,
        ),
      )
      try {
        const e = await nsops(r.work, ['ci', 'e2e', '--timeout', '2m', '--out', r.out], env)
        assert.equal(e.code, 1, e.stderr)
        assert.match(
          e.stderr,
          /ci e2e: FAILED — observability healthy, but checks failed; checks 0\/1 passed \(failed: observability\/missing\)/,
        )
        assert.match(
          fs.readFileSync(path.join(r.out, 'e2e/checks/observability/missing.log'), 'utf8'),
          /"no-such-app" not found/,
        )
        assert.equal(JSON.parse(fs.readFileSync(path.join(r.out, 'e2e/summary.json'), 'utf8')).failed, 'checks')
      } finally {
        await devDown()
      }
    })

    it('fails fast for a pod that cannot be scheduled, and writes the artifacts all the same', async () => {
      reset(r)
      edit(r.work, LOKI, (t) =>
        t.replace(
          '      enableServiceLinks: false',
          '      enableServiceLinks: false\n      nodeSelector:\n        nsops.dev/no-such-node: "true"',
        ),
      )
      try {
        const e = await nsops(r.work, ['ci', 'e2e', '--timeout', '4m', '--out', r.out], env)
        assert.equal(e.code, 1, e.stderr)
        assert.ok(e.ms < 120_000, `failed fast, not at the 4m timeout (${Math.round(e.ms / 1000)} s)`)
        assert.match(e.stderr, /Unschedulable/)
        assert.match(e.stderr, /ci e2e: FAILED — dev-up --ci of observability failed \(exit 1\); artifacts in /)
        const dir = path.join(r.out, 'e2e')
        assert.ok(JSON.parse(fs.readFileSync(path.join(dir, 'snapshot.json'), 'utf8')).loops.length === 1)
        assert.match(fs.readFileSync(path.join(dir, 'namespaces/observability/events.txt'), 'utf8'), /FailedScheduling/)
        assert.match(
          fs.readFileSync(path.join(dir, 'namespaces/observability/describe-pods.txt'), 'utf8'),
          /nsops\.dev\/no-such-node/,
        )
        const summary = JSON.parse(fs.readFileSync(path.join(dir, 'summary.json'), 'utf8'))
        assert.deepEqual([summary.ok, summary.failed], [false, 'dev-up'])
      } finally {
        await devDown()
      }
    })
  })
})

// ---- the workflow files ---------------------------------------------------------------------

interface Step {
  name?: string
  uses?: string
  run?: string
  if?: string
  with?: Record<string, unknown>
  env?: Record<string, string>
}
interface Job {
  name?: string
  needs?: string | string[]
  if?: string
  permissions?: Record<string, string>
  steps: Step[]
  'runs-on': string
  env?: Record<string, string>
}
interface Workflow {
  on: { pull_request: { paths: string[] } }
  concurrency: { 'cancel-in-progress': boolean; group: string }
  permissions: Record<string, string>
  env?: Record<string, string>
  jobs: Record<string, Job>
}

const WORKFLOWS = ['.github/workflows/nsops.yaml', '.forgejo/workflows/nsops.yaml']
const load = (file: string) => YAML.parse(fs.readFileSync(path.join(repoRoot, file), 'utf8')) as Workflow
const RUN = new RegExp(`^(npm ci|npx just ci(?: (${CI_STEPS.join('|')}))?)$`)

describe('the workflows users copy', () => {
  for (const file of WORKFLOWS) {
    it(`${file}: pull requests on the repo's paths, every run: a just ci call, SHA-pinned actions, least privilege, artifacts always`, () => {
      const wf = load(file)
      for (const p of ['namespaces/**', 'tanka/**', 'k8s/**', 'shared/**'])
        assert.ok(wf.on.pull_request.paths.includes(p), p)
      assert.equal(wf.concurrency['cancel-in-progress'], true)
      assert.deepEqual(wf.permissions, { contents: 'read' })
      const jobs = Object.entries(wf.jobs)
      for (const [id, job] of jobs) {
        const perms = job.permissions ?? {}
        const writes = Object.entries(perms).filter(([, v]) => v === 'write')
        const comments = job.steps.some((s) => s.name === 'Comment the diff')
        assert.deepEqual(writes, comments ? [['pull-requests', 'write']] : [], `${id}: only the commenting job writes`)
        for (const s of job.steps) {
          if (s.run !== undefined) assert.match(s.run.trim(), RUN, `${id}: run: ${s.run}`)
          if (s.uses) {
            assert.match(s.uses, /^[\w.-]+\/[\w.-]+@[0-9a-f]{40}$/, `${id}: ${s.uses} is pinned by full commit SHA`)
            if (s.uses.startsWith('actions/checkout@'))
              assert.equal(s.with?.['persist-credentials'], false, `${id}: checkout keeps no credentials`)
            if (s.uses.startsWith('actions/upload-artifact@'))
              assert.equal(s.if, 'always()', `${id}: the artifacts upload also after a failure`)
            if (s.uses.startsWith('actions/cache@'))
              assert.match(String(s.with?.key), /hashFiles\('k8s\/versions\.yaml'\)/)
          }
        }
      }
      // each SHA says which tag it is, in a comment on its line
      for (const line of fs
        .readFileSync(path.join(repoRoot, file), 'utf8')
        .split('\n')
        .filter((l) => /^\s*(- )?uses: /.test(l))) {
        assert.match(line, /@[0-9a-f]{40} # v\d+\.\d+\.\d+$/, line)
      }
      const ran = jobs.flatMap(([, j]) => j.steps.map((s) => s.run?.trim()).filter(Boolean))
      for (const step of ['validate', 'diff', 'e2e']) assert.ok(ran.includes(`npx just ci ${step}`), step)
      const e2e = jobs.find(([, j]) => j.steps.some((s) => s.run === 'npx just ci e2e'))![1]
      assert.ok(
        e2e.steps.some((s) => s.uses?.startsWith('actions/upload-artifact@') && s.with?.path === '.nsops/ci/e2e'),
      )
      const comment = jobs.flatMap(([, j]) => j.steps).find((s) => s.name === 'Comment the diff')!
      assert.ok(
        String(comment.with?.script).includes(COMMENT_MARKER),
        'the comment is found again by the marker ci diff writes',
      )
      const [, success] = jobs.find(([id]) => id === 'success')!
      assert.equal(success.if, 'always()')
      assert.deepEqual(
        [...(success.needs as string[])].sort(),
        jobs
          .map(([id]) => id)
          .filter((id) => id !== 'success')
          .sort(),
      )
    })
  }

  it('pass actionlint v1.7.12', async () => {
    const actionlint = await toolPath('actionlint')
    const gh = await exec(actionlint, ['-no-color', '.github/workflows/nsops.yaml'], repoRoot)
    assert.equal(gh.code, 0, gh.stdout + gh.stderr)
    const fj = await exec(
      actionlint,
      ['-no-color', '-config-file', '.forgejo/actionlint.yaml', '.forgejo/workflows/nsops.yaml'],
      repoRoot,
    )
    assert.equal(fj.code, 0, fj.stdout + fj.stderr)
    // and it would catch a broken file (an unknown key in a step)
    const broken = path.join(os.tmpdir(), `nsops-actionlint-${process.pid}.yaml`)
    fs.writeFileSync(
      broken,
      fs
        .readFileSync(path.join(repoRoot, WORKFLOWS[0]), 'utf8')
        .replace('      - run: npx just ci validate', '      - run: npx just ci validate\n        runs: twice'),
    )
    try {
      const bad = await exec(actionlint, ['-no-color', broken], repoRoot)
      assert.equal(bad.code, 1, bad.stdout)
    } finally {
      fs.rmSync(broken, { force: true })
    }
  })

  it('run: steps pass in order in a fresh clone of a pull request, as a runner would run them (own sim with Flux)', async () => {
    const r = ciRepo()
    const clone = path.join(r.root, 'clone')
    try {
      // the pull request: one namespace changed, with a check; pushed as its own branch
      edit(r.work, 'namespaces/observability/namespace.ts', (t) => t.replace('portForwards:', CHECKS))
      edit(r.work, LOKI, (t) => t.replace('  replicas: 1', '  replicas: 2'))
      git(r.work, 'commit', '-qam', 'observability: 2 loki replicas, checks')
      git(r.work, 'push', '-q', 'origin', 'change:pr')
      execFileSync('git', ['clone', '-q', r.remote, clone])
      git(clone, 'checkout', '-q', '--detach', 'origin/pr') // as actions/checkout leaves it: detached, every branch fetched
      const wf = load(WORKFLOWS[0])
      const summaryFile = path.join(r.root, 'step-summary.md')
      // the few expressions the workflow uses in env, as GitHub fills them for this PR
      const expr = (v: string) => v.replace(/\$\{\{\s*github\.base_ref\s*\}\}/g, 'main')
      const wfEnv = Object.fromEntries(Object.entries(wf.env ?? {}).map(([k, v]) => [k, expr(String(v))]))
      for (const v of Object.values(wfEnv))
        assert.doesNotMatch(v, /\$\{\{/, "every expression of a run: step's env is known here")
      // no kube context on a fresh runner: the sim cluster it is
      const env = { ...wfEnv, GITHUB_STEP_SUMMARY: summaryFile, KUBECONFIG: path.join(r.root, 'no-kubeconfig') }
      const order = Object.keys(wf.jobs) // listed in dependency order (e2e needs validate)
      const ran: string[] = []
      for (const id of order) {
        for (const s of wf.jobs[id].steps.filter((x) => x.run)) {
          const res = await exec('bash', ['-eo', 'pipefail', '-c', s.run!], clone, env, 600_000)
          assert.equal(res.code, 0, `${id}: ${s.run} exited ${res.code}\n${res.stdout}\n${res.stderr}`)
          ran.push(`${id}: ${s.run} (${Math.round(res.ms / 1000)} s)`)
          if (s.run === 'npx just ci e2e')
            assert.match(res.stderr, /ci e2e: ok — observability healthy on the cluster; checks 2\/2 passed/)
        }
      }
      assert.deepEqual(
        ran.map((x) => x.replace(/ \(\d+ s\)$/, '')),
        [
          'validate: npm ci',
          'validate: npx just ci validate',
          'diff: npm ci',
          'diff: npx just ci diff',
          'e2e: npm ci',
          'e2e: npx just ci e2e',
        ],
      )
      assert.ok(fs.readFileSync(summaryFile, 'utf8').startsWith(COMMENT_MARKER), 'ci diff wrote the job summary')
      const art = path.join(clone, '.nsops/ci/e2e')
      const logs = fs.readdirSync(path.join(art, 'sim-logs'))
      for (const c of ['kube-apiserver', 'etcd', 'kwok', 'source-controller', 'kustomize-controller'])
        assert.ok(
          logs.some((l) => l.startsWith(c)),
          `${c} log in ${logs.join(', ')}`,
        )
      assert.equal(JSON.parse(fs.readFileSync(path.join(art, 'summary.json'), 'utf8')).ok, true)
    } finally {
      // the runner would be thrown away; here the sim cluster of the clone is stopped for it
      if (fs.existsSync(path.join(clone, 'shared/bin/nsops.ts'))) {
        await nsops(clone, ['dev-down'], { KUBECONFIG: path.join(r.root, 'no-kubeconfig') })
        await nsops(clone, ['cluster-down', '--purge', '--yes'], { KUBECONFIG: path.join(r.root, 'no-kubeconfig') })
      }
      fs.rmSync(r.root, { recursive: true, force: true })
    }
  })
})
