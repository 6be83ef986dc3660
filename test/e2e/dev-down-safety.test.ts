// `npx just dev-down` as a user runs it, where it could hurt: a session file whose pid now
// belongs to another process (the loop died, the pid was reused) is not signalled, and a kept
// session is not ended against a context that is neither local nor allow-listed.
import assert from 'node:assert/strict'
import { execFile, spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { after, before, describe, it } from 'node:test'
import YAML from 'yaml'
import { pidAlive } from '../../shared/core/lock.ts'
import { repoRoot } from '../../shared/core/paths.ts'
import { isApiError } from '../../shared/kube/client.ts'
import { testCluster, type TestCluster } from '../harness.ts'

const run = promisify(execFile)

describe('npx just dev-down acts only on what is still its own', () => {
  let cluster: TestCluster
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-down-state-'))
  const sessions = path.join(stateDir, 'dev')
  const env = (kubeconfig: string) => ({
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? os.homedir(),
    NSOPS_STATE_DIR: stateDir,
    NSOPS_KUBECONFIG: kubeconfig,
    NSOPS_ALLOW_CONTEXTS: '',
    ...(process.env.XDG_CACHE_HOME ? { XDG_CACHE_HOME: process.env.XDG_CACHE_HOME } : {}),
  })
  const devDown = (kubeconfig: string) =>
    run('npx', ['just', 'dev-down', '--keep-cluster'], { cwd: repoRoot, env: env(kubeconfig) }).then(
      (r) => ({ code: 0, out: r.stdout + r.stderr }),
      (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout + e.stderr }),
    )
  const session = (ns: string, fields: Record<string, unknown>) => {
    fs.mkdirSync(sessions, { recursive: true })
    fs.writeFileSync(
      path.join(sessions, `${ns}.json`),
      JSON.stringify({
        namespace: ns,
        kubernetesNamespace: `${ns}-dev`,
        host: os.hostname(),
        user: os.userInfo().username,
        context: 'nsops-sim',
        forwards: [],
        ...fields,
      }),
    )
  }

  before(async () => {
    cluster = await testCluster()
  })
  after(() => {
    fs.rmSync(stateDir, { recursive: true, force: true })
  })

  it('does not signal a pid that now belongs to another process (the loop is gone, its pid reused)', async () => {
    // a process that started after the session was written: it holds the pid now
    const other = spawn('sleep', ['120'], { stdio: 'ignore' })
    try {
      session('arr-stack', { pid: other.pid, startedAt: new Date(Date.now() - 3_600_000).toISOString() })
      const r = await devDown(cluster.kubeconfig)
      assert.equal(pidAlive(other.pid!), true, 'the unrelated process was not signalled')
      assert.equal(other.exitCode, null)
      assert.equal(other.signalCode, null)
      assert.match(r.out, /pid \d+ in the session of arr-stack is a process that started after that session/)
    } finally {
      other.kill('SIGKILL')
      fs.rmSync(path.join(sessions, 'arr-stack.json'), { force: true })
    }
  })

  it('refuses to end a kept session against a context that is not local or allow-listed', async () => {
    // the same cluster, reached through a context named like a production one
    const kc = YAML.parse(fs.readFileSync(cluster.kubeconfig, 'utf8')) as {
      contexts: { name: string }[]
      'current-context': string
    }
    kc.contexts[0].name = 'prod-eu'
    kc['current-context'] = 'prod-eu'
    const prodKubeconfig = path.join(stateDir, 'prod-kubeconfig')
    fs.writeFileSync(prodKubeconfig, YAML.stringify(kc))
    // what the kept session's end would delete: its inventory in arr-stack-dev
    await cluster.kube.core.createNamespace({ body: { metadata: { name: 'arr-stack-dev' } } }).catch(() => {})
    const inventory = { name: 'nsops-inventory-dev-arr-stack', namespace: 'arr-stack-dev' }
    await cluster.kube.core.createNamespacedConfigMap({
      namespace: inventory.namespace,
      body: { metadata: { name: inventory.name }, data: { 'objects.json': '{}' } },
    })
    try {
      session('arr-stack', { pid: 999_999, startedAt: new Date().toISOString(), kept: true, context: 'prod-eu' })
      const r = await devDown(prodKubeconfig)
      assert.equal(r.code, 1, r.out)
      assert.match(r.out, /prod-eu/)
      assert.match(r.out, /allowed-contexts|NSOPS_ALLOW_CONTEXTS/)
      const still = await cluster.kube.core.readNamespacedConfigMap(inventory).then(
        () => true,
        (e) => (isApiError(e, 404) ? false : Promise.reject(e)),
      )
      assert.equal(still, true, 'nothing was deleted in the cluster behind that context')
      assert.equal(fs.existsSync(path.join(sessions, 'arr-stack.json')), true, 'the kept session stays')
    } finally {
      fs.rmSync(path.join(sessions, 'arr-stack.json'), { force: true })
      await cluster.kube.core.deleteNamespacedConfigMap(inventory).catch(() => {})
    }
  })
})
