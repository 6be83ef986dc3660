// The GitOps deploy up to the push, with real parts: a bare "origin" in a temp dir and a clone
// holding a small namespaces/demo tree (never this repository), kustomize, and the sim cluster
// for schemas, the server-side dry run and the diff. The test cluster runs no Flux for this
// namespace, so a confirmed deploy is refused before committing; --push-only pushes (exit 4).
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { PassThrough } from 'node:stream'
import { after, before, describe, it } from 'node:test'
import { applyObjects } from '../../shared/apply/apply.ts'
import { refString } from '../../shared/kube/refs.ts'
import { buildKustomization } from '../../shared/kustomize/build.ts'
import { defineNamespace, type NamespaceConfig } from '../../shared/config/namespace-config.ts'
import { runDeploy, type DeployOptions, type Logger } from '../../shared/deploy/run.ts'
import type { DeployReport } from '../../shared/deploy/report.ts'
import { testCluster, testNamespace, type TestCluster } from '../harness.ts'
import { git, write } from '../git-fixture.ts'

const NS_DIR = 'namespaces/demo'

const deployment = (replicas: number) => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: { app: web }
spec:
  replicas: ${replicas}
  selector:
    matchLabels: { app: web }
  template:
    metadata:
      labels: { app: web }
    spec:
      containers:
        - name: web
          image: nginx:1.27
          ports: [{ name: http, containerPort: 80 }]
`

const service = `apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: { app: web }
  ports: [{ port: 80, targetPort: http }]
`

const baseKustomization = (resources: string[]) => `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [${resources.join(', ')}]
`

const sopsSecret = `apiVersion: v1
kind: Secret
metadata:
  name: db
type: Opaque
stringData:
  password: ENC[AES256_GCM,data:q83vAw==,iv:Yq6ZeN0cW0fDa1dXnC7c5tQwPq3FZ6U2aB8pQkz6b1c=,tag:2u3y6cJvPq8QG8hK0a2Fjw==,type:str]
sops:
  age:
    - recipient: age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq
      enc: |
        -----BEGIN AGE ENCRYPTED FILE-----
        YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOSBub3QtYS1yZWFsLWtleQo=
        -----END AGE ENCRYPTED FILE-----
  lastmodified: "2025-01-01T00:00:00Z"
  mac: ENC[AES256_GCM,data:bWFj,iv:aXY=,tag:dGFn,type:str]
  unencrypted_suffix: _unencrypted
  version: 3.9.4
`

interface Fixture {
  /** the working clone the deploy runs in */
  dir: string
  origin: string
  remoteHead(): string
  head(): string
}

/** A bare origin with one pushed commit (namespaces/demo, another namespace, a README) and a clone of it. */
function fixture(tmp: string, k8sNamespace: string): Fixture {
  const base = fs.mkdtempSync(path.join(tmp, 'repo-'))
  const origin = path.join(base, 'origin.git')
  git(base, 'init', '--bare', '-q', origin)
  const clone = (who: string) => {
    const dir = path.join(base, who)
    git(base, 'clone', '-q', origin, dir)
    for (const [k, v] of [
      ['user.name', `deploy test ${who}`],
      ['user.email', `${who}@nsops.test`],
      ['commit.gpgsign', 'false'],
      ['core.hooksPath', '/dev/null'],
    ])
      git(dir, 'config', k, v)
    return dir
  }
  const seed = clone('seed')
  write(seed, `${NS_DIR}/base/kustomization.yaml`, baseKustomization(['deployment.yaml', 'service.yaml']))
  write(seed, `${NS_DIR}/base/deployment.yaml`, deployment(1))
  write(seed, `${NS_DIR}/base/service.yaml`, service)
  write(
    seed,
    `${NS_DIR}/overlays/prod/kustomization.yaml`,
    `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: ${k8sNamespace}\nresources: [../../base]\n`,
  )
  write(
    seed,
    'namespaces/other/base/configmap.yaml',
    'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: other }\ndata: { a: "1" }\n',
  )
  write(seed, 'README.md', 'fixture\n')
  git(seed, 'add', '-A')
  git(seed, 'commit', '-q', '-m', 'seed')
  git(seed, 'push', '-q', '-u', 'origin', 'main')
  const dir = clone('work')
  return {
    dir,
    origin,
    remoteHead: () => git(origin, 'rev-parse', 'refs/heads/main'),
    head: () => git(dir, 'rev-parse', 'HEAD'),
  }
}

function collectingLog(): { log: Logger; lines: string[] } {
  const lines: string[] = []
  const push = (m: string) => {
    lines.push(m)
  }
  return { log: { info: push, step: push, ok: push, warn: push, fail: push }, lines }
}

function step(report: DeployReport, name: string) {
  return report.steps.find((s) => s.name === name)
}

describe('deploy', () => {
  let tmp: string
  let cluster: TestCluster
  let k8sNs: { name: string; cleanup: () => Promise<void> }
  let ns: NamespaceConfig

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-deploy-'))
    cluster = await testCluster()
    k8sNs = await testNamespace('deploy')
    // a Kustomization name no other test creates: this cluster has no Flux for it
    ns = defineNamespace({
      name: 'demo',
      description: 'deploy test',
      namespaces: { dev: 'demo-dev', prod: k8sNs.name },
      flux: { kustomization: `demo-${process.pid}` },
    })
  })
  after(async () => {
    await k8sNs?.cleanup()
    fs.rmSync(tmp, { recursive: true, force: true })
  })

  const run = (fx: Fixture, extra: Partial<DeployOptions> = {}) => {
    const out = new PassThrough()
    let printed = ''
    out.on('data', (d) => {
      printed += String(d)
    })
    const { log, lines } = collectingLog()
    return runDeploy({
      ns,
      repoDir: fx.dir,
      target: { kubeconfig: cluster.kubeconfig, context: cluster.context },
      input: new PassThrough(),
      prompt: new PassThrough(),
      out,
      log,
      timeoutMs: 30_000,
      ...extra,
    }).then((report) => ({ report, printed, lines }))
  }

  it('a dry run shows a changed replica count and a new object, and commits and pushes nothing', async () => {
    const fx = fixture(tmp, k8sNs.name)
    // what Flux would have applied from the pushed commit
    await applyObjects(cluster.kube, await buildKustomization(path.join(fx.dir, NS_DIR, 'overlays/prod')), {
      fieldManager: 'kustomize-controller',
    })
    write(fx.dir, `${NS_DIR}/base/deployment.yaml`, deployment(3))
    write(
      fx.dir,
      `${NS_DIR}/base/configmap.yaml`,
      'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: settings }\ndata: { greeting: hello }\n',
    )
    write(
      fx.dir,
      `${NS_DIR}/base/kustomization.yaml`,
      baseKustomization(['deployment.yaml', 'service.yaml', 'configmap.yaml']),
    )
    const [remoteBefore, headBefore] = [fx.remoteHead(), fx.head()]

    const { report, printed } = await run(fx, { dryRun: true })

    assert.equal(report.exitCode, 0, report.summary)
    assert.equal(report.outcome, 'dry-run')
    assert.match(report.summary, /nothing was committed or pushed/)
    const objects = step(report, 'diff')!.detail!.objects as {
      ref: { kind: string; namespace?: string; name: string }
      action: string
      diff?: string
    }[]
    const actions = Object.fromEntries(objects.map((o) => [refString({ apiVersion: '', ...o.ref }), o.action]))
    assert.deepEqual(actions, {
      [`Deployment/${k8sNs.name}/web`]: 'update',
      [`Service/${k8sNs.name}/web`]: 'unchanged',
      [`ConfigMap/${k8sNs.name}/settings`]: 'create',
    })
    const web = objects.find((o) => o.ref.kind === 'Deployment')!
    assert.match(web.diff!, /^-  replicas: 1$/m)
    assert.match(web.diff!, /^\+  replicas: 3$/m)
    assert.match(printed, /replicas: 3/, 'the diff is printed for people')
    assert.match(printed, /1 to create, 1 to update, 0 to prune, 1 unchanged/)
    assert.equal(step(report, 'validate')!.status, 'ok')

    assert.equal(fx.remoteHead(), remoteBefore, 'nothing pushed')
    assert.equal(fx.head(), headBefore, 'nothing committed')
    assert.match(git(fx.dir, 'status', '--porcelain'), /deployment\.yaml/, 'the changes are still in the working tree')
    const live = await cluster.kube.apps.readNamespacedDeployment({ name: 'web', namespace: k8sNs.name })
    assert.equal(live.spec?.replicas, 1, 'the cluster is untouched')
  })

  it('refuses a plaintext Secret, naming its file, and commits nothing', async () => {
    const fx = fixture(tmp, k8sNs.name)
    write(
      fx.dir,
      `${NS_DIR}/base/db-secret.yaml`,
      'apiVersion: v1\nkind: Secret\nmetadata: { name: db }\nstringData: { password: hunter2 }\n',
    )
    write(
      fx.dir,
      `${NS_DIR}/base/kustomization.yaml`,
      baseKustomization(['deployment.yaml', 'service.yaml', 'db-secret.yaml']),
    )
    const head = fx.head()

    const { report } = await run(fx, { yes: true })

    assert.equal(report.exitCode, 1)
    assert.equal(report.outcome, 'refused')
    assert.match(report.summary, /plaintext/)
    assert.match(report.summary, /namespaces\/demo\/base\/db-secret\.yaml:1: Secret db: it is not SOPS-encrypted/)
    assert.match(report.hint!, /sops --encrypt --in-place/)
    assert.doesNotMatch(JSON.stringify(report), /hunter2/, 'the value is never shown')
    assert.equal(step(report, 'secrets')!.status, 'failed')
    assert.equal(fx.head(), head, 'nothing committed')
    assert.equal(fx.remoteHead(), head, 'nothing pushed')
  })

  it('refuses a plaintext Secret file even when no overlay uses it, and a secretGenerator with literals', async () => {
    const fx = fixture(tmp, k8sNs.name)
    write(
      fx.dir,
      `${NS_DIR}/unused/creds.yaml`,
      'apiVersion: v1\nkind: Secret\nmetadata: { name: creds }\ndata: { token: aHVudGVyMg== }\n',
    )
    write(
      fx.dir,
      `${NS_DIR}/overlays/prod/kustomization.yaml`,
      `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: ${k8sNs.name}\nresources: [../../base]\nsecretGenerator:\n  - name: api\n    literals: [key=s3cr3t]\n`,
    )

    const { report } = await run(fx, { yes: true })

    assert.equal(report.exitCode, 1)
    assert.match(report.summary, /2 Secrets would be committed in plaintext/)
    assert.match(report.summary, /namespaces\/demo\/unused\/creds\.yaml:1: Secret creds/)
    assert.match(
      report.summary,
      /namespaces\/demo\/overlays\/prod\/kustomization\.yaml:1: Secret api: its secretGenerator "api" has 1 literal value in clear/,
    )
    assert.equal(fx.head(), fx.remoteHead())
    assert.equal(git(fx.dir, 'rev-list', '--count', 'HEAD'), '1', 'nothing committed')
  })

  it('accepts a SOPS-encrypted Secret and leaves it out of the server dry run and the diff', async () => {
    const fx = fixture(tmp, k8sNs.name)
    write(fx.dir, `${NS_DIR}/base/db-secret.sops.yaml`, sopsSecret)
    write(
      fx.dir,
      `${NS_DIR}/base/kustomization.yaml`,
      baseKustomization(['deployment.yaml', 'service.yaml', 'db-secret.sops.yaml']),
    )

    const { report } = await run(fx, { dryRun: true })

    assert.equal(report.exitCode, 0, `${report.summary}\n${report.hint ?? ''}`)
    assert.equal(step(report, 'secrets')!.message, '1 Secret, all SOPS-encrypted')
    const notValidated = step(report, 'validate')!.detail!.notValidated as { object: string; reason: string }[]
    assert.deepEqual(notValidated, [
      { object: `Secret/${k8sNs.name}/db`, reason: 'SOPS-encrypted: only Flux can decrypt it' },
    ])
    const diff = step(report, 'diff')!.detail!
    assert.deepEqual(
      (diff.notDiffed as { object: string }[]).map((n) => n.object),
      [`Secret/${k8sNs.name}/db`],
    )
    assert.ok(!(diff.objects as { ref: { kind: string } }[]).some((o) => o.ref.kind === 'Secret'))
  })

  it("refuses an object the API server rejects, with the API's message, and commits nothing", async () => {
    const fx = fixture(tmp, k8sNs.name)
    write(fx.dir, `${NS_DIR}/base/service.yaml`, service.replace('port: 80,', 'port: 99999,'))
    const head = fx.head()

    const { report } = await run(fx, { yes: true })

    assert.equal(report.exitCode, 1)
    assert.equal(report.outcome, 'refused')
    assert.match(
      report.summary,
      /the API server \(context [^)]+\) rejects an object of namespaces\/demo\/overlays\/prod in a server-side dry run, so nothing was committed or pushed/,
    )
    assert.match(
      report.summary,
      new RegExp(`Service/${k8sNs.name}/web: .*spec\\.ports\\[0\\]\\.port: Invalid value: 99999`),
    )
    assert.equal(step(report, 'validate')!.status, 'failed')
    assert.equal(step(report, 'commit'), undefined)
    assert.equal(fx.head(), head, 'nothing committed')
    assert.equal(fx.remoteHead(), head, 'nothing pushed')
  })

  it('refuses when changes outside the namespace are staged, naming them', async () => {
    const fx = fixture(tmp, k8sNs.name)
    write(fx.dir, 'README.md', 'changed\n')
    write(fx.dir, 'namespaces/other/base/configmap.yaml', 'changed: true\n')
    git(fx.dir, 'add', 'README.md', 'namespaces/other')
    write(fx.dir, `${NS_DIR}/base/deployment.yaml`, deployment(2))
    const head = fx.head()

    const { report } = await run(fx, { yes: true })

    assert.equal(report.exitCode, 1)
    assert.match(
      report.summary,
      /changes outside namespaces\/demo\/ are staged in .*: README\.md, namespaces\/other\/base\/configmap\.yaml/,
    )
    assert.match(report.hint!, /git restore --staged -- README\.md namespaces\/other\/base\/configmap\.yaml/)
    assert.equal(report.steps.length, 1, 'stopped at preflight')
    assert.equal(fx.head(), head)
    assert.equal(fx.remoteHead(), head)
  })

  it('refuses to ask without a terminal: no --yes and stdin not a TTY commits nothing', async () => {
    const fx = fixture(tmp, k8sNs.name)
    write(fx.dir, `${NS_DIR}/base/deployment.yaml`, deployment(2))
    const head = fx.head()
    const input = fs.createReadStream('/dev/null')
    try {
      const { report } = await run(fx, { input, pushOnly: true }) // the prompt, not Flux, is under test
      assert.equal(report.exitCode, 1)
      assert.match(report.summary, /deploying demo needs a confirmation, and there is no terminal to ask on/)
      assert.match(report.hint!, /--yes/)
      assert.equal(step(report, 'confirm')!.status, 'failed')
    } finally {
      input.destroy()
    }
    assert.equal(fx.head(), head)
    assert.equal(fx.remoteHead(), head)
  })

  it('on a terminal, an answer other than y commits nothing', async () => {
    const fx = fixture(tmp, k8sNs.name)
    write(fx.dir, `${NS_DIR}/base/deployment.yaml`, deployment(2))
    const head = fx.head()
    const input = Object.assign(new PassThrough(), { isTTY: true })
    const deploying = run(fx, { input, pushOnly: true })
    // the question is asked once validation and the diff are done
    const answer = setInterval(() => input.write('n\n'), 100)
    try {
      const { report } = await deploying
      assert.equal(report.exitCode, 1)
      assert.equal(report.outcome, 'declined')
      assert.match(report.summary, /not confirmed: nothing was committed or pushed/)
    } finally {
      clearInterval(answer)
    }
    assert.equal(fx.head(), head)
  })

  it('refuses a detached HEAD and a branch without upstream', async () => {
    const fx = fixture(tmp, k8sNs.name)
    write(fx.dir, `${NS_DIR}/base/deployment.yaml`, deployment(2))
    git(fx.dir, 'checkout', '-q', '--detach')
    const detached = (await run(fx, { yes: true })).report
    assert.equal(detached.exitCode, 1)
    assert.match(detached.summary, /HEAD is detached at [0-9a-f]{7}/)
    assert.match(detached.hint!, /git switch main/)

    git(fx.dir, 'switch', '-q', '-c', 'feature')
    const noUpstream = (await run(fx, { yes: true })).report
    assert.equal(noUpstream.exitCode, 1)
    assert.match(noUpstream.summary, /branch "feature" .* has no upstream/)
    assert.match(noUpstream.hint!, /git push -u origin feature/)
    assert.equal(fx.remoteHead(), fx.head(), 'nothing committed or pushed')
  })

  it('says there is nothing to deploy when the namespace has no changes, and exits 0', async () => {
    const fx = fixture(tmp, k8sNs.name)
    write(fx.dir, 'README.md', 'an unrelated change\n')
    const { report } = await run(fx, { yes: true })
    assert.equal(report.exitCode, 0)
    assert.equal(report.outcome, 'nothing-to-deploy')
    assert.match(report.summary, /nothing to deploy for demo: no changes under namespaces\/demo\//)
    assert.equal(fx.head(), fx.remoteHead())
  })

  it('refuses before committing when nothing on the cluster would apply the push (exit 1, nothing committed or pushed)', async () => {
    const fx = fixture(tmp, k8sNs.name)
    write(fx.dir, `${NS_DIR}/base/deployment.yaml`, deployment(2))
    const before = fx.head()
    const { report } = await run(fx, { yes: true })
    assert.equal(report.exitCode, 1, report.summary)
    assert.equal(report.outcome, 'refused')
    assert.match(
      report.summary,
      /(Flux is not installed|no Flux Kustomization .* manages demo).*nothing would apply the push\. Nothing was committed or pushed/,
    )
    assert.match(report.hint!, /--push-only/)
    assert.equal(fx.head(), before)
    assert.equal(fx.remoteHead(), before)
    assert.deepEqual(report.git.pushed, [])
  })

  it('refuses an invalid field in a namespace the cluster does not have yet, at file:line, pushing nothing', async () => {
    const absent = `nsops-absent-${process.pid}`
    const fx = fixture(tmp, absent)
    write(
      fx.dir,
      `${NS_DIR}/overlays/prod/namespace.yaml`,
      `apiVersion: v1\nkind: Namespace\nmetadata: { name: ${absent} }\n`,
    )
    write(
      fx.dir,
      `${NS_DIR}/overlays/prod/kustomization.yaml`,
      `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: ${absent}\nresources: [namespace.yaml, ../../base]\n`,
    )
    write(fx.dir, `${NS_DIR}/base/deployment.yaml`, deployment(2).replace('replicas: 2', 'replicas: "two"'))
    const before = fx.head()
    for (const extra of [{ yes: true }, { yes: true, pushOnly: true }] as Partial<DeployOptions>[]) {
      const { report } = await run(fx, extra)
      assert.equal(report.exitCode, 1, report.summary)
      assert.equal(report.outcome, 'refused')
      assert.match(
        report.summary,
        new RegExp(
          `namespaces/demo/base/deployment\\.yaml:7: Deployment ${absent}/web: spec\\.replicas: must be integer, not "two"`,
        ),
      )
      assert.match(report.summary, /strict schema validation against the cluster's OpenAPI/)
      assert.equal(fx.head(), before, 'nothing committed')
      assert.equal(fx.remoteHead(), before, 'nothing pushed')
    }
  })

  it("places an unknown field set by a patch at the patch file's line", async () => {
    const fx = fixture(tmp, k8sNs.name)
    write(
      fx.dir,
      `${NS_DIR}/overlays/prod/kustomization.yaml`,
      `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: ${k8sNs.name}\nresources: [../../base]\npatches: [{ path: web-patch.yaml }]\n`,
    )
    write(
      fx.dir,
      `${NS_DIR}/overlays/prod/web-patch.yaml`,
      'apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: web }\nspec:\n  template:\n    spec:\n      containers:\n        - name: web\n          imagePullPolice: Always\n',
    )
    const { report } = await run(fx, { dryRun: true })
    assert.equal(report.exitCode, 1, report.summary)
    assert.match(
      report.summary,
      /namespaces\/demo\/overlays\/prod\/web-patch\.yaml:9: Deployment [^:]+\/web: spec\.template\.spec\.containers\[0\]\.imagePullPolice: unknown field/,
    )
  })

  it('refuses unpushed commits that touch other paths than the namespace, naming them', async () => {
    const fx = fixture(tmp, k8sNs.name)
    write(
      fx.dir,
      'namespaces/other/base/configmap.yaml',
      'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: other }\ndata: { a: "2" }\n',
    )
    git(fx.dir, 'commit', '-q', '-am', 'other: a=2')
    write(fx.dir, `${NS_DIR}/base/deployment.yaml`, deployment(2))
    const head = fx.head()
    const { report } = await run(fx, { yes: true, pushOnly: true })
    assert.equal(report.exitCode, 1, report.summary)
    assert.match(
      report.summary,
      /1 local commit not pushed yet changes files outside namespaces\/demo\/ \([0-9a-f]{7} "other: a=2": namespaces\/other\/base\/configmap\.yaml\)/,
    )
    assert.equal(fx.head(), head)
    assert.notEqual(fx.remoteHead(), head)
  })

  it("with --push-only commits only the namespace's folder, pushes, and exits 4 (pushed, not verified)", async () => {
    const fx = fixture(tmp, k8sNs.name)
    write(fx.dir, `${NS_DIR}/base/deployment.yaml`, deployment(2))
    write(fx.dir, `${NS_DIR}/base/extra.yaml`, 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: extra }\n')
    write(
      fx.dir,
      `${NS_DIR}/base/kustomization.yaml`,
      baseKustomization(['deployment.yaml', 'service.yaml', 'extra.yaml']),
    )
    write(fx.dir, 'README.md', 'unrelated, unstaged\n')
    write(fx.dir, 'notes.txt', 'unrelated, untracked\n')
    const before = fx.head()

    const { report } = await run(fx, { yes: true, pushOnly: true, message: 'demo: 2 replicas' })

    assert.equal(report.exitCode, 4, report.summary)
    assert.equal(report.outcome, 'pushed-unverified')
    assert.match(report.summary, /not verified, as asked \(--push-only\)/)
    assert.match(report.summary, /It stays pushed/)
    assert.equal(report.git.remote?.name, 'origin')
    assert.equal(report.git.remote?.url, fx.origin)
    assert.match(report.hint!, /just rollback demo/)

    const head = fx.head()
    assert.notEqual(head, before)
    assert.equal(fx.remoteHead(), head, 'the remote has the commit')
    assert.deepEqual(report.git.pushed, [head])
    assert.equal(report.git.committed, head)
    assert.equal(git(fx.dir, 'log', '-1', '--format=%s'), 'demo: 2 replicas')
    assert.deepEqual(git(fx.dir, 'show', '--name-only', '--format=', 'HEAD').split('\n').sort(), [
      `${NS_DIR}/base/deployment.yaml`,
      `${NS_DIR}/base/extra.yaml`,
      `${NS_DIR}/base/kustomization.yaml`,
    ])
    assert.deepEqual(
      git(fx.dir, 'status', '--porcelain', '--untracked-files=all')
        .split('\n')
        .map((l) => l.trim())
        .sort(),
      ['?? notes.txt', 'M README.md'],
      'unrelated changes stay uncommitted',
    )
    assert.deepEqual(
      report.steps.map((s) => `${s.name}:${s.status}`),
      [
        'preflight:ok',
        'build:ok',
        'secrets:ok',
        'validate:ok',
        'flux:warning',
        'diff:ok',
        'confirm:ok',
        'commit:ok',
        'push:ok',
      ],
    )
  })

  it('pushes a local commit that touches the namespace even with nothing left to commit', async () => {
    const fx = fixture(tmp, k8sNs.name)
    write(fx.dir, `${NS_DIR}/base/deployment.yaml`, deployment(4))
    git(fx.dir, 'commit', '-q', '-am', 'local: 4 replicas')
    const local = fx.head()

    const { report } = await run(fx, { yes: true, pushOnly: true })

    assert.equal(report.exitCode, 4, report.summary)
    assert.equal(report.outcome, 'pushed-unverified')
    assert.equal(step(report, 'commit'), undefined, 'nothing new to commit')
    assert.equal(fx.head(), local)
    assert.equal(fx.remoteHead(), local)
    assert.deepEqual(report.git.pushed, [local])
  })

  it('validates offline only when no cluster answers, and says so', async () => {
    const fx = fixture(tmp, k8sNs.name)
    write(fx.dir, `${NS_DIR}/base/deployment.yaml`, deployment(2))
    const dead = path.join(tmp, 'dead-kubeconfig')
    fs.writeFileSync(
      dead,
      fs.readFileSync(cluster.kubeconfig, 'utf8').replace(/server: https:\/\/[^\s]+/, 'server: https://127.0.0.1:1'),
    )

    const { report } = await run(fx, { dryRun: true, target: { kubeconfig: dead } })

    assert.equal(report.exitCode, 0, report.summary)
    const validate = step(report, 'validate')!
    assert.equal(validate.status, 'warning')
    assert.match(
      validate.message,
      /strict schema validation against the pinned schemas .*no server-side dry run .*no cluster answers/,
    )
    assert.equal(step(report, 'diff')!.status, 'skipped')
    assert.equal(fx.head(), fx.remoteHead())
  })

  it('interrupted after the commit: keeps it locally, pushes nothing, says how to continue (exit 130)', async () => {
    const fx = fixture(tmp, k8sNs.name)
    write(fx.dir, `${NS_DIR}/base/deployment.yaml`, deployment(2))
    const remote = fx.remoteHead()
    const ac = new AbortController()

    const { report } = await run(fx, {
      yes: true,
      pushOnly: true,
      signal: ac.signal,
      onStep: (s) => {
        if (s.name === 'commit') ac.abort()
      },
    })

    assert.equal(report.exitCode, 130)
    assert.equal(report.outcome, 'interrupted')
    assert.match(report.summary, /the commit [0-9a-f]{7} is made locally and was not pushed\. Nothing is lost/)
    assert.match(report.hint!, /just deploy demo/)
    assert.notEqual(fx.head(), remote)
    assert.equal(git(fx.dir, 'log', '-1', '--format=%H'), report.git.committed)
    assert.equal(fx.remoteHead(), remote, 'nothing pushed')
  })

  it('--rollback reverts the last commit under the namespace as a new commit and pushes it', async () => {
    const fx = fixture(tmp, k8sNs.name)
    write(fx.dir, `${NS_DIR}/base/deployment.yaml`, deployment(5))
    const deployed = (await run(fx, { yes: true, pushOnly: true })).report
    assert.equal(deployed.outcome, 'pushed-unverified')
    const deployCommit = fx.head()
    // a later commit elsewhere is not what a rollback of demo undoes
    write(fx.dir, 'README.md', 'later\n')
    git(fx.dir, 'commit', '-q', '-am', 'docs')
    git(fx.dir, 'push', '-q')

    const { report } = await run(fx, { mode: 'rollback', yes: true, pushOnly: true })

    assert.equal(report.exitCode, 4, report.summary)
    assert.equal(report.outcome, 'pushed-unverified')
    assert.match(
      report.summary,
      /is pushed to origin\/main, but the rollback cannot be confirmed: not verified, as asked/,
    )
    const head = fx.head()
    assert.equal(fx.remoteHead(), head)
    assert.deepEqual(report.git.reverts, [head])
    assert.equal(
      git(fx.dir, 'log', '-1', '--format=%B'),
      `rollback(demo): revert ${deployCommit.slice(0, 7)} "deploy(demo): update base/deployment.yaml"\n\nThis reverts commit ${deployCommit}.`,
    )
    assert.equal(fs.readFileSync(path.join(fx.dir, NS_DIR, 'base/deployment.yaml'), 'utf8'), deployment(1))
    assert.equal(fs.readFileSync(path.join(fx.dir, 'README.md'), 'utf8'), 'later\n', 'the later commit stays')
  })

  it('--rollback refuses a commit that also changed another namespace: reverting it would undo that too', async () => {
    const fx = fixture(tmp, k8sNs.name)
    write(fx.dir, `${NS_DIR}/base/deployment.yaml`, deployment(3))
    write(
      fx.dir,
      'namespaces/other/base/configmap.yaml',
      'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: other }\ndata: { a: "3" }\n',
    )
    git(fx.dir, 'commit', '-q', '-am', 'demo and other together')
    git(fx.dir, 'push', '-q')
    const head = fx.head()
    const { report } = await run(fx, { mode: 'rollback', yes: true, pushOnly: true })
    assert.equal(report.exitCode, 1, report.summary)
    assert.match(
      report.summary,
      /"demo and other together", also changes files outside it \(namespaces\/other\/base\/configmap\.yaml\); reverting it would undo those too, so nothing was done/,
    )
    assert.equal(fx.head(), head)
    assert.equal(fx.remoteHead(), head)
  })

  it('--rollback is refused while local commits are unpushed, and when no commit touches the namespace', async () => {
    const fx = fixture(tmp, k8sNs.name)
    write(fx.dir, 'README.md', 'local only\n')
    git(fx.dir, 'commit', '-q', '-am', 'local docs')
    const head = fx.head()
    const unpushed = (await run(fx, { mode: 'rollback', yes: true })).report
    assert.equal(unpushed.exitCode, 1)
    assert.match(
      unpushed.summary,
      /1 local commit is not pushed to origin\/main \([0-9a-f]{7} local docs\); a rollback would push it too, so nothing was done/,
    )
    assert.equal(fx.head(), head)

    git(fx.dir, 'push', '-q')
    const ghost = defineNamespace({
      name: 'ghost',
      description: 'no folder',
      namespaces: { dev: 'ghost-dev', prod: 'ghost' },
    })
    const none = (await run(fx, { mode: 'rollback', yes: true, ns: ghost })).report
    assert.equal(none.exitCode, 1)
    assert.match(none.summary, /nothing to roll back: no commit on main touches namespaces\/ghost\//)
    assert.equal(fx.head(), head)
    assert.equal(fx.remoteHead(), head)
  })
})
