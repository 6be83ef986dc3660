// The conventions kubectl, flux and just users expect, through the user's door (`npx just …`
// in this repository): --version with the pinned versions, an unknown flag answered in one
// line, a grouped `just --list`, a [confirm] before a recipe deletes state, and which cluster
// the scripts talk to (the order kubectl, flux and helm follow, for every cluster-facing script).
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import YAML from 'yaml'
import { repoRoot } from '../../shared/core/paths.ts'
import { testCluster } from '../harness.ts'
import { just, type Ran } from '../just.ts'

describe('conventions: version, flags, just --list', () => {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-conv-state-'))
  after(() => fs.rmSync(stateDir, { recursive: true, force: true }))

  it('just version prints just, nsops, the Node running it and every version pinned in k8s/versions.yaml', async () => {
    const r = await just(['version'])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /^just \d+\.\d+\.\d+$/m)
    const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string }
    assert.match(r.stdout, new RegExp(`^nsops ${pkg.version.replaceAll('.', '\\.')}( \\([0-9a-f]+\\))?$`, 'm'))
    assert.match(r.stdout, /^node v24\.\d+\.\d+ /m, 'the pinned Node 24 runs nsops, whatever node is on PATH')
    const pinned = YAML.parse(fs.readFileSync(path.join(repoRoot, 'k8s/versions.yaml'), 'utf8')) as Record<
      string,
      { version: string }
    >
    for (const [tool, spec] of Object.entries(pinned))
      assert.match(r.stdout, new RegExp(`^  ${tool} +${spec.version.replaceAll('.', '\\.')}$`, 'm'), tool)
  })

  it('nsops --version answers as just version does (no just needed)', async () => {
    const r = await new Promise<Ran>((resolve) =>
      execFile(path.join(repoRoot, 'shared/bin/nsops.ts'), ['--version'], { cwd: os.tmpdir() }, (err, stdout, stderr) =>
        resolve({ code: err ? 1 : 0, stdout, stderr }),
      ),
    )
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /^nsops \d+\.\d+\.\d+/)
    assert.match(r.stdout, /^ {2}kubernetes +v\d/m)
  })

  it('an unknown flag is one line naming it and the command, then "see --help": not the whole usage', async () => {
    const r = await just(['dashboard', 'arr-stack', '--foo'], { NSOPS_STATE_DIR: stateDir })
    assert.equal(r.code, 1)
    assert.equal(r.stderr, 'error: unknown flag --foo for dashboard\nhint: see --help\n')
    assert.equal(r.stdout, '')
    const missing = await just(['logs', 'arr-stack', '--since'], { NSOPS_STATE_DIR: stateDir })
    assert.equal(missing.stderr, 'error: flag --since of logs needs a value\nhint: see --help\n')
    const extra = await just(['setup', 'kubectl'], { NSOPS_STATE_DIR: stateDir })
    assert.equal(extra.stderr, 'error: setup takes no argument kubectl\nhint: see --help\n')
  })

  it('the same one line from nsops itself and from each namespace script run directly', async () => {
    const run = (file: string, ...args: string[]) =>
      new Promise<Ran>((resolve) =>
        execFile(file, args, { cwd: os.tmpdir(), env: { ...process.env, NO_COLOR: '1' } }, (err, stdout, stderr) =>
          resolve({ code: err ? Number(err.code) : 0, stdout, stderr }),
        ),
      )
    const top = await run(path.join(repoRoot, 'shared/bin/nsops.ts'), '--foo')
    assert.deepEqual(top, { code: 1, stdout: '', stderr: 'error: unknown flag --foo for nsops\nhint: see --help\n' })
    const scripts = fs.globSync('namespaces/*/*.ts', { cwd: repoRoot }).filter((f) => !f.endsWith('/namespace.ts'))
    assert.ok(scripts.length >= 5, scripts.join(' '))
    for (const script of scripts) {
      const verb = path.basename(script, '.ts')
      const r = await run(path.join(repoRoot, script), '--foo')
      // drift's exit codes are flux diff's: 2 is "error" (1 means drift found)
      assert.deepEqual(
        r,
        {
          code: verb === 'drift' ? 2 : 1,
          stdout: '',
          stderr: `error: unknown flag --foo for ${verb}\nhint: see --help\n`,
        },
        script,
      )
    }
  })

  it('just --list shows the recipes in groups, and a failing recipe adds no "recipe failed" line', async () => {
    const r = await just(['--list'])
    assert.equal(r.code, 0, r.stderr)
    for (const g of ['setup', 'dev', 'deploy', 'flux', 'cluster', 'ci', 'tanka'])
      assert.match(r.stdout, new RegExp(`^ +\\[${g}\\]$`, 'm'), g)
    // each group lists its own recipes under it
    const group = (name: string) => r.stdout.split(`[${name}]`)[1].split(/\n\s*\n/)[0]
    for (const recipe of ['cluster-up', 'cluster-down', 'cluster-purge'])
      assert.match(group('cluster'), new RegExp(`^ +${recipe} `, 'm'))
    assert.match(group('tanka'), /tk-apply/)
    assert.match(group('deploy'), /rollback/)
    for (const recipe of ['reconcile', 'suspend', 'resume'])
      assert.match(group('flux'), new RegExp(`^ +${recipe} NS `, 'm'))
    assert.match(group('dev'), /^ +browse-pvc NS PVC /m)
    const failed = await just(['dashboard', 'arr-stack', '--foo'], { NSOPS_STATE_DIR: stateDir })
    assert.doesNotMatch(failed.stderr, /[Rr]ecipe/)
  })

  it('just cluster-purge asks first: "n" (or no terminal answer) deletes nothing; just --yes purges', async () => {
    const simDir = path.join(stateDir, 'sim')
    fs.mkdirSync(simDir, { recursive: true })
    fs.writeFileSync(path.join(simDir, 'state.json'), JSON.stringify({ components: [] }))
    const no = await just(['cluster-purge'], { NSOPS_STATE_DIR: stateDir }, 'n\n')
    assert.notEqual(no.code, 0)
    assert.match(no.stderr, /Delete the sim cluster's state/)
    assert.match(no.stderr, /not confirmed/)
    assert.ok(fs.existsSync(path.join(simDir, 'state.json')), 'declined: the state is still there')
    const yes = await just(['--yes', 'cluster-purge'], { NSOPS_STATE_DIR: stateDir })
    assert.equal(yes.code, 0, yes.stderr)
    assert.match(yes.stderr + yes.stdout, /sim cluster stopped and its state deleted/)
    assert.ok(!fs.existsSync(simDir), 'confirmed: the state is gone')
  })

  it('just cluster-down --purge asks too: with no terminal to ask on it deletes nothing and names --yes; --yes purges', async () => {
    const simDir = path.join(stateDir, 'sim')
    fs.mkdirSync(simDir, { recursive: true })
    fs.writeFileSync(path.join(simDir, 'state.json'), JSON.stringify({ components: [] }))
    const no = await just(['cluster-down', '--purge'], { NSOPS_STATE_DIR: stateDir }, 'y\n')
    assert.equal(no.code, 1)
    assert.match(no.stderr, /deleting the sim cluster's state needs a confirmation.*nothing was stopped or deleted/)
    assert.match(no.stderr, /hint: pass --yes/)
    assert.ok(fs.existsSync(path.join(simDir, 'state.json')), 'refused: the state is still there')
    // without --purge nothing is asked and the cluster's data is kept (the pid file goes)
    fs.mkdirSync(path.join(simDir, 'etcd'), { recursive: true })
    const kept = await just(['cluster-down'], { NSOPS_STATE_DIR: stateDir })
    assert.equal(kept.code, 0, kept.stderr)
    assert.ok(fs.existsSync(path.join(simDir, 'etcd')), 'without --purge the state is kept')
    const yes = await just(['cluster-down', '--purge', '--yes'], { NSOPS_STATE_DIR: stateDir })
    assert.equal(yes.code, 0, yes.stderr)
    assert.ok(!fs.existsSync(simDir), 'confirmed: the state is gone')
  })
})

describe('conventions: which cluster — --kubeconfig/--context, then $KUBECONFIG (merged as kubectl does), then the remembered one', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-conv-kubeconfig-'))
  const stateDir = path.join(tmp, 'state')
  const fileA = path.join(tmp, 'a', 'config')
  const fileB = path.join(tmp, 'b', 'config')
  const dead = path.join(tmp, 'dead', 'config')
  const noKubeconfig = { KUBECONFIG: '' } // unset for the child (an empty KUBECONFIG is unset, as for kubectl)
  after(() => fs.rmSync(tmp, { recursive: true, force: true }))

  before(async () => {
    const { kubeconfig } = await testCluster()
    const sim = YAML.parse(fs.readFileSync(kubeconfig, 'utf8')) as {
      clusters: { cluster: Record<string, string> }[]
      users: { user: Record<string, string> }[]
    }
    const server = sim.clusters[0].cluster.server
    const caData = sim.clusters[0].cluster['certificate-authority-data']
    const user = sim.users[0].user
    const write = (file: string, doc: object) => {
      fs.mkdirSync(path.dirname(file), { recursive: true })
      fs.writeFileSync(file, YAML.stringify(doc))
    }
    const ctx = (name: string, cluster: string) => ({ name, context: { cluster, user: 'admin' } })
    // A: context kind-a → the sim, and current-context
    write(fileA, {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'shared', cluster: { server, 'certificate-authority-data': caData } }],
      users: [{ name: 'admin', user }],
      contexts: [ctx('kind-a', 'shared')],
      'current-context': 'kind-a',
    })
    // B: names A defines too (A's win), its own contexts, a CA by a path relative to B's folder,
    // and a current-context of its own that A's overrides
    fs.mkdirSync(path.dirname(fileB), { recursive: true })
    fs.writeFileSync(path.join(tmp, 'b', 'ca.crt'), Buffer.from(caData, 'base64'))
    write(fileB, {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        { name: 'shared', cluster: { server: 'https://127.0.0.1:1', 'insecure-skip-tls-verify': true } },
        { name: 'b', cluster: { server, 'certificate-authority': 'ca.crt' } },
      ],
      users: [
        { name: 'admin', user: { token: 'not-this-one' } },
        { name: 'b', user },
      ],
      contexts: [
        { name: 'kind-a', context: { cluster: 'nowhere', user: 'nobody' } },
        { name: 'kind-b', context: { cluster: 'b', user: 'b' } },
        { name: 'prod-b', context: { cluster: 'b', user: 'b' } },
      ],
      'current-context': 'kind-b',
    })
    write(dead, {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'dead', cluster: { server: 'https://127.0.0.1:1', 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'dead', user: { token: 'x' } }],
      contexts: [{ name: 'kind-dead', context: { cluster: 'dead', user: 'dead' } }],
      'current-context': 'kind-dead',
    })
    // what `just cluster-up` leaves: nsops remembers a cluster (here one that does not answer)
    fs.mkdirSync(stateDir, { recursive: true })
    fs.writeFileSync(path.join(stateDir, 'target.json'), JSON.stringify({ kubeconfig: dead, context: 'kind-dead' }))
  })

  const dashboard = (env: NodeJS.ProcessEnv, ...flags: string[]) =>
    just(['dashboard', 'arr-stack', '--json', ...flags], { NSOPS_STATE_DIR: stateDir, NSOPS_KUBECONFIG: '', ...env })
  const contextOf = (r: Ran) => (JSON.parse(r.stdout) as { context: string }).context

  it('without $KUBECONFIG the remembered cluster is used', async () => {
    const r = await dashboard(noKubeconfig)
    assert.notEqual(r.code, 0)
    assert.match(r.stderr, /context kind-dead/)
  })

  it('$KUBECONFIG wins over the remembered cluster; its files merge: first file wins per name and for current-context', async () => {
    const r = await dashboard({ KUBECONFIG: [fileA, fileB].join(path.delimiter) })
    assert.equal(r.code, 0, r.stderr)
    assert.equal(contextOf(r), 'kind-a', "A's current-context, A's kind-a (B's points nowhere), A's cluster and user")
  })

  it("--context picks a context of $KUBECONFIG's second file (its CA path relative to that file); a missing file in the list is skipped", async () => {
    const list = [path.join(tmp, 'missing'), fileA, fileB].join(path.delimiter)
    const r = await dashboard({ KUBECONFIG: list }, '--context', 'kind-b')
    assert.equal(r.code, 0, r.stderr)
    assert.equal(contextOf(r), 'kind-b')
  })

  it('--kubeconfig/--context win over $KUBECONFIG', async () => {
    const r = await dashboard({ KUBECONFIG: fileA }, '--kubeconfig', dead)
    assert.notEqual(r.code, 0)
    assert.match(r.stderr, /context kind-dead/)
  })

  it('dev-status and dev-down take --kubeconfig/--context too (over the remembered cluster)', async () => {
    const env = { NSOPS_STATE_DIR: stateDir, NSOPS_KUBECONFIG: '', ...noKubeconfig }
    const remembered = await just(['dev-status', '--json'], env)
    assert.equal((JSON.parse(remembered.stdout) as { cluster: { reachable: boolean } }).cluster.reachable, false)
    const picked = await just(['dev-status', '--json', '--kubeconfig', fileB, '--context', 'kind-b'], env)
    const doc = JSON.parse(picked.stdout) as { cluster: { reachable: boolean; context: string } }
    assert.deepEqual([doc.cluster.reachable, doc.cluster.context], [true, 'kind-b'], picked.stderr)
    const down = await just(['dev-down', '--keep-cluster', '--context', 'nope'], env)
    assert.match(down.stderr + down.stdout, /nope/, 'dev-down took --context (and says it has no such context)')
  })

  it('drift, deploy, logs and dev choose the same way: --kubeconfig over $KUBECONFIG (merged) over the remembered one', async () => {
    // every cluster here answers nothing, so each command stops at its first request and names
    // the context it chose: which one it chose is the point, not what it would find there
    const unreachable = (file: string, ...contexts: string[]) => {
      fs.mkdirSync(path.dirname(file), { recursive: true })
      fs.writeFileSync(
        file,
        YAML.stringify({
          apiVersion: 'v1',
          kind: 'Config',
          clusters: [{ name: 'off', cluster: { server: 'https://127.0.0.1:1', 'insecure-skip-tls-verify': true } }],
          users: [{ name: 'off', user: { token: 'x' } }],
          contexts: contexts.map((name) => ({ name, context: { cluster: 'off', user: 'off' } })),
          'current-context': contexts[0],
        }),
      )
    }
    const first = path.join(tmp, 'off1', 'config')
    const second = path.join(tmp, 'off2', 'config')
    unreachable(first, 'kind-off1')
    unreachable(second, 'kind-off2', 'kind-off2b')
    const cases: { why: string; env: NodeJS.ProcessEnv; flags: string[]; context: string }[] = [
      { why: 'nothing set: the remembered cluster', env: noKubeconfig, flags: [], context: 'kind-dead' },
      {
        why: "$KUBECONFIG over the remembered one; the first file's current-context; a missing file skipped",
        env: { KUBECONFIG: [path.join(tmp, 'missing'), first, second].join(path.delimiter) },
        flags: [],
        context: 'kind-off1',
      },
      {
        why: "--context picks a context of $KUBECONFIG's second file",
        env: { KUBECONFIG: [first, second].join(path.delimiter) },
        flags: ['--context', 'kind-off2b'],
        context: 'kind-off2b',
      },
      {
        why: '--kubeconfig over $KUBECONFIG',
        env: { KUBECONFIG: first },
        flags: ['--kubeconfig', second],
        context: 'kind-off2',
      },
    ]
    const commands = [
      ['drift', 'arr-stack'],
      ['deploy', 'arr-stack', '--dry-run'],
      ['logs', 'arr-stack'],
      ['dev', 'arr-stack', '--ci', '--timeout', '1m'],
    ]
    for (const command of commands) {
      for (const c of cases) {
        const r = await just([...command, ...c.flags], { NSOPS_STATE_DIR: stateDir, NSOPS_KUBECONFIG: '', ...c.env })
        assert.match(
          r.stderr + r.stdout,
          new RegExp(`context ${c.context}\\b`),
          `${command.join(' ')} ${c.flags.join(' ')}: ${c.why}\n${r.stderr}`,
        )
      }
    }
  })

  it('a $KUBECONFIG whose files all are missing does not hide the remembered cluster', async () => {
    const r = await dashboard({ KUBECONFIG: path.join(tmp, 'missing') })
    assert.match(r.stderr, /context kind-dead/)
  })

  it('the context guard still refuses a write to a context $KUBECONFIG brings that is not local or allowed', async () => {
    const r = await just(['dev', 'arr-stack', '--ci', '--timeout', '1m', '--context', 'prod-b'], {
      NSOPS_STATE_DIR: stateDir,
      NSOPS_KUBECONFIG: '',
      KUBECONFIG: [fileA, fileB].join(path.delimiter),
    })
    assert.equal(r.code, 1)
    assert.match(r.stderr, /Stop! Context "prod-b"/)
  })
})
