// `just deploy` through the user's door: `npx just deploy arr-stack …` in a real clone of this
// repository (its own justfile and scripts; node_modules linked), pushing to a bare remote in
// a temp dir. An invalid manifest is refused at file:line with nothing committed or pushed
// (exit 1), offline and on the test cluster where the namespace does not exist yet; --push-only pushes a valid one and exits 4; a
// quoted message with spaces and `$` reaches git exactly as typed.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { after, before, describe, it } from 'node:test'
import { repoRoot } from '../../shared/core/paths.ts'
import { git } from '../git-fixture.ts'
import { testCluster } from '../harness.ts'

const exec = promisify(execFile)
const SONARR = 'namespaces/arr-stack/base/sonarr/deployment.yaml'

interface Ran {
  code: number
  stdout: string
  stderr: string
}

describe('just deploy in a clone', () => {
  let tmp = ''
  let clone = ''
  let bare = ''
  let deadKubeconfig = ''

  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-just-deploy-'))
    bare = path.join(tmp, 'remote.git')
    clone = path.join(tmp, 'clone')
    git(tmp, 'clone', '-q', '--no-hardlinks', repoRoot, clone)
    git(tmp, 'init', '-q', '--bare', bare)
    git(clone, 'remote', 'set-url', 'origin', bare)
    for (const [k, v] of [
      ['user.name', 'just test'],
      ['user.email', 'just@nsops.test'],
    ])
      git(clone, 'config', k, v)
    git(clone, 'push', '-q', '-u', 'origin', 'HEAD:main')
    git(clone, 'branch', '-q', '--set-upstream-to=origin/main')
    fs.symlinkSync(path.join(repoRoot, 'node_modules'), path.join(clone, 'node_modules'))
    deadKubeconfig = path.join(tmp, 'kubeconfig')
    fs.writeFileSync(
      deadKubeconfig,
      `apiVersion: v1
kind: Config
clusters: [{ name: dead, cluster: { server: "https://127.0.0.1:1", insecure-skip-tls-verify: true } }]
users: [{ name: dead, user: { token: x } }]
contexts: [{ name: dead, context: { cluster: dead, user: dead } }]
current-context: dead
`,
    )
  })
  after(() => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true })
  })

  const just = async (...args: string[]): Promise<Ran> => {
    try {
      const { stdout, stderr } = await exec('npx', ['just', ...args], {
        cwd: clone,
        env: { ...process.env, CI: '1', NO_COLOR: '1', NSOPS_STATE_DIR: path.join(tmp, 'state') },
        maxBuffer: 32 << 20,
        timeout: 240_000,
      })
      return { code: 0, stdout, stderr }
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string }
      return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }
    }
  }
  const remoteHead = () => git(bare, 'rev-parse', 'refs/heads/main')

  it('refuses replicas: "two" offline, naming file and line: exit 1, nothing committed, nothing pushed', async () => {
    const file = path.join(clone, SONARR)
    const good = fs.readFileSync(file, 'utf8')
    const line = good.split('\n').findIndex((l) => /^\s+replicas:/.test(l)) + 1
    assert.ok(line > 0, 'the sonarr Deployment sets replicas')
    fs.writeFileSync(file, good.replace(/^(\s+replicas:).*$/m, '$1 "two"'))
    const head = git(clone, 'rev-parse', 'HEAD')
    const remote = remoteHead()
    try {
      const r = await just('deploy', 'arr-stack', '--yes', '--kubeconfig', deadKubeconfig)
      assert.equal(r.code, 1, r.stderr)
      assert.match(
        r.stderr,
        new RegExp(
          `${SONARR.replace(/[./]/g, '\\$&')}:${line}: Deployment arr-stack/sonarr: spec\\.replicas: must be integer, not "two"`,
        ),
      )
      assert.match(r.stderr, /nothing was committed or pushed/)
      assert.equal(git(clone, 'rev-parse', 'HEAD'), head, 'nothing committed')
      assert.equal(remoteHead(), remote, 'nothing pushed')
    } finally {
      fs.writeFileSync(file, good)
    }
  })

  it("on a cluster that lacks the namespace arr-stack: refused against the cluster's schemas at file:line, nothing committed or pushed", async () => {
    const { kube, kubeconfig } = await testCluster()
    const existing = await kube.core.readNamespace({ name: 'arr-stack' }).then(
      () => true,
      () => false,
    )
    assert.equal(existing, false, 'precondition: the prod namespace does not exist on the test cluster')
    const file = path.join(clone, SONARR)
    const good = fs.readFileSync(file, 'utf8')
    const line = good.split('\n').findIndex((l) => /^\s+replicas:/.test(l)) + 1
    fs.writeFileSync(file, good.replace(/^(\s+replicas:).*$/m, '$1 "two"'))
    const head = git(clone, 'rev-parse', 'HEAD')
    const remote = remoteHead()
    try {
      const r = await just('deploy', 'arr-stack', '--yes', '--kubeconfig', kubeconfig)
      assert.equal(r.code, 1, r.stderr)
      assert.match(r.stderr, /strict schema validation against the cluster's OpenAPI/)
      assert.match(
        r.stderr,
        new RegExp(
          `${SONARR.replace(/[./]/g, '\\$&')}:${line}: Deployment arr-stack/sonarr: spec\\.replicas: must be integer, not "two"`,
        ),
      )
      assert.equal(git(clone, 'rev-parse', 'HEAD'), head, 'nothing committed')
      assert.equal(remoteHead(), remote, 'nothing pushed')
    } finally {
      fs.writeFileSync(file, good)
    }
  })

  it('without a cluster a valid change is refused too (nothing could verify it), unless --push-only', async () => {
    const file = path.join(clone, SONARR)
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace(/^(\s+replicas:).*$/m, '$1 2'))
    const remote = remoteHead()
    const refused = await just('deploy', 'arr-stack', '--yes', '--kubeconfig', deadKubeconfig)
    assert.equal(refused.code, 1, refused.stderr)
    assert.match(refused.stderr, /no cluster answers .*nothing was committed or pushed/)
    assert.match(refused.stderr, /--push-only/)
    assert.equal(remoteHead(), remote)
    // one error, the script's own: just adds no "recipe `deploy` failed" line under its hint
    assert.equal(refused.stderr.match(/^error:/gm)?.length, 1, refused.stderr)
    assert.doesNotMatch(refused.stderr, /recipe `deploy` failed/)

    // the message as typed: spaces, a `$` that a shell would expand, double quotes
    const message = 'sonarr: 2 replicas $HOME "and quotes"'
    const r = await just(
      'deploy',
      'arr-stack',
      '--yes',
      '--push-only',
      '-m',
      message,
      '-o',
      'json',
      '--kubeconfig',
      deadKubeconfig,
    )
    assert.equal(r.code, 4, r.stderr)
    const report = JSON.parse(r.stdout) as {
      outcome: string
      exitCode: number
      git: { pushed: string[]; remote: { name: string; url: string } }
    }
    assert.equal(report.outcome, 'pushed-unverified')
    assert.equal(report.exitCode, 4)
    assert.deepEqual(report.git.pushed, [remoteHead()])
    assert.deepEqual(report.git.remote, { name: 'origin', url: bare })
    assert.equal(git(bare, 'log', '-1', '--format=%s', 'refs/heads/main'), message, 'one argument, unexpanded')
    assert.deepEqual(git(bare, 'show', '--name-only', '--format=', 'refs/heads/main').split('\n'), [SONARR])
  })

  it('just dev-status -o json is one JSON document, saying the cluster does not answer (exit 1)', async () => {
    const r = await just('dev-status', '-o', 'json')
    assert.equal(r.code, 1, r.stderr)
    const doc = JSON.parse(r.stdout) as { schema: string; cluster: { reachable: boolean; error?: string } }
    assert.equal(doc.schema, 'nsops.dev-status/v1')
    assert.equal(doc.cluster.reachable, false)
    assert.ok(doc.cluster.error)
  })
})
