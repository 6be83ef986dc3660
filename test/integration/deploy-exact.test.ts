// A deploy pushes exactly what it validated, with real git: a bare "origin" in a temp dir and
// a clone holding namespaces/demo. While the "Commit and push?" question waits, a file under
// the folder is changed, or a commit is made in another terminal: the deploy refuses and
// nothing is committed or pushed. A commit made on top of the deploy's own right after it
// stays local: the push sends the deploy's commit by SHA, and the commits a rollback would
// undo are the deploy's only. No cluster answers here (a kubeconfig naming a closed port):
// validation runs offline and --push-only pushes without Flux, which is not under test.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { PassThrough } from 'node:stream'
import { after, before, describe, it } from 'node:test'
import { defineNamespace, type NamespaceConfig } from '../../shared/config/namespace-config.ts'
import { runDeploy, type DeployOptions } from '../../shared/deploy/run.ts'
import { commitAll, git, write } from '../git-fixture.ts'
import { until } from '../until.ts'

const NS_DIR = 'namespaces/demo'

const configMap = (value: string) =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  level: "${value}"\n`

const plaintextSecret = `apiVersion: v1
kind: Secret
metadata:
  name: leaked
stringData:
  password: hunter2
`

function fixture(tmp: string) {
  const base = fs.mkdtempSync(path.join(tmp, 'repo-'))
  const origin = path.join(base, 'origin.git')
  git(base, 'init', '--bare', '-q', origin)
  const clone = (who: string) => {
    const dir = path.join(base, who)
    git(base, 'clone', '-q', origin, dir)
    for (const [k, v] of [
      ['user.name', `deploy test ${who}`],
      ['user.email', `${who}@nsops.test`],
    ])
      git(dir, 'config', k, v)
    return dir
  }
  const seed = clone('seed')
  write(seed, `${NS_DIR}/base/kustomization.yaml`, 'resources: [configmap.yaml]\n')
  write(seed, `${NS_DIR}/base/configmap.yaml`, configMap('1'))
  write(seed, `${NS_DIR}/overlays/prod/kustomization.yaml`, 'namespace: demo\nresources: [../../base]\n')
  write(seed, 'README.md', 'fixture\n')
  commitAll(seed, 'seed')
  git(seed, 'push', '-q', '-u', 'origin', 'HEAD:main')
  const dir = clone('work')
  return {
    dir,
    remoteHead: () => git(origin, 'rev-parse', 'refs/heads/main'),
    head: () => git(dir, 'rev-parse', 'HEAD'),
  }
}

describe('deploy pushes exactly what it validated', () => {
  let tmp: string
  let offline: string
  let ns: NamespaceConfig

  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-deploy-exact-'))
    offline = path.join(tmp, 'kubeconfig')
    fs.writeFileSync(
      offline,
      `apiVersion: v1
kind: Config
clusters: [{ name: closed, cluster: { server: 'https://127.0.0.1:1', insecure-skip-tls-verify: true } }]
users: [{ name: nobody, user: { token: x } }]
contexts: [{ name: closed, context: { cluster: closed, user: nobody } }]
current-context: closed
`,
    )
    ns = defineNamespace({
      name: 'demo',
      description: 'deploy exactness test',
      namespaces: { dev: 'demo-dev', prod: 'demo' },
      flux: { kustomization: 'demo' },
    })
  })
  after(() => {
    fs.rmSync(tmp, { recursive: true, force: true })
  })

  /** A deploy in `dir` that answers the question with y once `meanwhile` has run at the prompt. */
  async function deployAnswering(dir: string, meanwhile: () => void, extra: Partial<DeployOptions> = {}) {
    const input = Object.assign(new PassThrough(), { isTTY: true })
    const prompt = new PassThrough()
    let asked = ''
    prompt.on('data', (d) => (asked += String(d)))
    const done = runDeploy({
      ns,
      repoDir: dir,
      target: { kubeconfig: offline },
      pushOnly: true,
      input,
      prompt,
      out: new PassThrough(),
      log: { info() {}, step() {}, ok() {}, warn() {}, fail() {} },
      ...extra,
    })
    await until('the question', async () => asked.includes('Commit and push?'), 60_000)
    meanwhile()
    input.write('y\n')
    return done
  }

  it('refuses when a file under the folder changed while the question waited (a plaintext Secret added after validation)', async () => {
    const fx = fixture(tmp)
    write(fx.dir, `${NS_DIR}/base/configmap.yaml`, configMap('2'))
    const head = fx.head()
    const report = await deployAnswering(fx.dir, () => {
      write(fx.dir, `${NS_DIR}/base/secret.yaml`, plaintextSecret)
      write(fx.dir, `${NS_DIR}/base/kustomization.yaml`, 'resources: [configmap.yaml, secret.yaml]\n')
    })
    assert.equal(report.exitCode, 1, report.summary)
    assert.equal(report.outcome, 'refused')
    assert.match(
      report.summary,
      /namespaces\/demo\/base\/kustomization\.yaml, namespaces\/demo\/base\/secret\.yaml changed after the deploy validated/,
    )
    assert.match(report.hint!, /just deploy demo/)
    assert.equal(fx.head(), head, 'nothing committed')
    assert.equal(fx.remoteHead(), head, 'nothing pushed')
  })

  it('refuses when a commit was made in another terminal while the question waited', async () => {
    const fx = fixture(tmp)
    write(fx.dir, `${NS_DIR}/base/configmap.yaml`, configMap('2'))
    const head = fx.head()
    const report = await deployAnswering(fx.dir, () => {
      write(fx.dir, 'README.md', 'changed meanwhile\n')
      git(fx.dir, 'commit', '-qm', 'meanwhile', '--', 'README.md')
    })
    assert.equal(report.exitCode, 1, report.summary)
    assert.match(report.summary, /the branch moved from [0-9a-f]{7} to [0-9a-f]{7} while the deploy ran/)
    assert.equal(git(fx.dir, 'log', '-1', '--format=%s'), 'meanwhile', 'no deploy commit on top')
    assert.equal(fx.remoteHead(), head, 'nothing pushed')
  })

  it('a YAML alias bomb the overlay uses is one error naming the file, before kustomize expands it', async () => {
    const fx = fixture(tmp)
    // nine aliases of nine aliases …: 9^9 values once expanded
    const levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for (const [prev, n] of [...'abcdefgh'].map((p, i) => [p, 'bcdefghi'[i]]))
      levels.push(`${n}: &${n} [${Array(9).fill(`*${prev}`).join(',')}]`)
    // a ConfigMap the overlay uses: refused before kustomize would expand it (gigabytes)
    write(
      fx.dir,
      `${NS_DIR}/base/laughs.yaml`,
      `apiVersion: v1\nkind: ConfigMap\nmetadata: { name: lol }\ndata:\n  ${levels.join('\n  ')}\n`,
    )
    write(fx.dir, `${NS_DIR}/base/kustomization.yaml`, 'resources: [configmap.yaml, laughs.yaml]\n')
    const report = await runDeploy({
      ns,
      repoDir: fx.dir,
      target: { kubeconfig: offline },
      dryRun: true,
      input: new PassThrough(),
      prompt: new PassThrough(),
      out: new PassThrough(),
      log: { info() {}, step() {}, ok() {}, warn() {}, fail() {} },
    })
    assert.equal(report.exitCode, 1, report.summary)
    assert.equal(report.outcome, 'refused')
    assert.match(
      report.summary,
      /^namespaces\/demo\/base\/laughs\.yaml: its YAML aliases \(\*name\) expand too far to be read/,
    )
    assert.match(report.hint!, /fewer aliases/)
    assert.equal(report.steps.find((st) => st.name === 'build')?.status, 'failed')
  })

  it('a 50 MB manifest is built, checked for Secrets and validated (a dry run says what would change)', async () => {
    const fx = fixture(tmp)
    const blob = 'x'.repeat(100_000)
    const docs: string[] = []
    for (let i = 0; docs.length * 100_100 < 50 * 1024 * 1024; i++)
      docs.push(`apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big-${i}\ndata:\n  blob: "${blob}"\n`)
    write(fx.dir, `${NS_DIR}/base/big.yaml`, docs.join('---\n'))
    write(fx.dir, `${NS_DIR}/base/kustomization.yaml`, 'resources: [configmap.yaml, big.yaml]\n')
    const report = await runDeploy({
      ns,
      repoDir: fx.dir,
      target: { kubeconfig: offline },
      dryRun: true,
      input: new PassThrough(),
      prompt: new PassThrough(),
      out: new PassThrough(),
      log: { info() {}, step() {}, ok() {}, warn() {}, fail() {} },
    })
    assert.equal(report.exitCode, 0, report.summary)
    assert.equal(report.steps.find((st) => st.name === 'build')?.detail?.objects, docs.length + 1)
    assert.equal(report.steps.find((st) => st.name === 'secrets')?.status, 'ok')
  })

  it('pushes its own commit by SHA: a commit made on top right after stays local and is not "ours"', async () => {
    const fx = fixture(tmp)
    write(fx.dir, `${NS_DIR}/base/configmap.yaml`, configMap('2'))
    const report = await runDeploy({
      ns,
      repoDir: fx.dir,
      target: { kubeconfig: offline },
      pushOnly: true,
      yes: true,
      input: new PassThrough(),
      prompt: new PassThrough(),
      out: new PassThrough(),
      log: { info() {}, step() {}, ok() {}, warn() {}, fail() {} },
      onStep: (s) => {
        // another terminal commits the moment the deploy's commit is made
        if (s.name === 'commit') {
          write(fx.dir, 'README.md', 'changed right after\n')
          git(fx.dir, 'commit', '-qm', 'right after', '--', 'README.md')
        }
      },
    })
    assert.equal(report.exitCode, 4, report.summary)
    const ours = report.git.committed!
    assert.ok(ours)
    assert.equal(fx.remoteHead(), ours, 'the remote has the deploy commit, not the one on top')
    assert.deepEqual(report.git.pushed, [ours], 'what a rollback would revert is the deploy commit only')
    assert.equal(git(fx.dir, 'log', '-1', '--format=%s'), 'right after', 'the other commit is kept locally')
    assert.equal(git(fx.dir, 'rev-list', '--count', `${ours}..HEAD`), '1')
  })
})
