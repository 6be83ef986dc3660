// The local source (source-controller's stand-in): GitRepository objects on the real sim
// cluster, a real bare repository behind the local git server, artifacts over real HTTP.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { promisify } from 'node:util'
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node'
import * as tar from 'tar'
import { installFluxCrds } from '../../shared/flux/crds.ts'
import { fluxKinds } from '../../shared/flux/kinds.ts'
import { createBareRepo, startGitServer, type GitServer } from '../../shared/gitops/git-server.ts'
import { parseDuration, REQUESTED_AT, startLocalSource, type GitRepository, type LocalSource } from '../../shared/gitops/local-source.ts'
import type { Kube } from '../../shared/kube.ts'
import { testCluster, testNamespace } from '../harness.ts'
import { until } from '../until.ts'

const run = promisify(execFile)
const gitRepos = fluxKinds.GitRepository

async function git(cwd: string, ...args: string[]): Promise<string> {
  const { stdout } = await run('git', ['-c', 'user.name=test', '-c', 'user.email=test@example.com', ...args], {
    cwd, env: { ...process.env, GIT_CONFIG_NOSYSTEM: '1', GIT_TERMINAL_PROMPT: '0' },
  })
  return stdout.trim()
}


const ready = (o: GitRepository) => o.status?.conditions?.find((c) => c.type === 'Ready')

describe('local source', () => {
  let kube: Kube
  let ns: { name: string; cleanup: () => Promise<void> }
  let tmp: string
  let server: GitServer
  let source: LocalSource
  let work: string

  const get = async (name: string) =>
    (await kube.custom.getNamespacedCustomObject({ ...gitRepos, namespace: ns.name, name })) as GitRepository
  const create = async (name: string, spec: Partial<GitRepository['spec']>) => {
    await kube.custom.createNamespacedCustomObject({ ...gitRepos, namespace: ns.name, body: {
      apiVersion: `${gitRepos.group}/${gitRepos.version}`, kind: 'GitRepository',
      metadata: { name }, spec: { url: server.urlFor('app.git'), interval: '10m', ref: { branch: 'main' }, ...spec },
    } })
  }
  const patch = (name: string, body: object) => kube.custom.patchNamespacedCustomObject(
    { ...gitRepos, namespace: ns.name, name, body }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch))
  const request = async (name: string) => {
    const token = new Date().toISOString()
    await patch(name, { metadata: { annotations: { [REQUESTED_AT]: token } } })
    return token
  }
  const commit = async (file: string, text: string) => {
    fs.mkdirSync(path.dirname(path.join(work, file)), { recursive: true })
    fs.writeFileSync(path.join(work, file), text)
    await git(work, 'add', '-A')
    await git(work, 'commit', '--quiet', '-m', `change ${file}`)
    await git(work, 'push', '--quiet', 'origin', 'HEAD:main')
    return git(work, 'rev-parse', 'HEAD')
  }
  const revisionIs = (name: string, sha: string) => until(`revision ${sha}`, async () => {
    const o = await get(name)
    return o.status?.artifact?.revision.endsWith(sha) && ready(o)?.status === 'True' ? o : undefined
  })

  before(async () => {
    kube = (await testCluster()).kube
    await installFluxCrds(kube)
    ns = await testNamespace('local-source')
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-local-source-'))
    await createBareRepo(path.join(tmp, 'repos'), 'app')
    server = await startGitServer({ root: path.join(tmp, 'repos') })
    await git(tmp, 'clone', '--quiet', server.urlFor('app.git'), 'work')
    work = path.join(tmp, 'work')
    await git(work, 'checkout', '--quiet', '-b', 'main')
    fs.symlinkSync('deploy/app.yaml', path.join(work, 'link.yaml'))
    await commit('deploy/app.yaml', 'kind: ConfigMap\n')
    source = await startLocalSource({ kube, dir: path.join(tmp, 'source'), namespace: ns.name, log: () => {} })
  })

  after(async () => {
    await source?.stop()
    await server?.stop()
    await ns?.cleanup()
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true })
  })

  it('reads Go durations as Flux writes them', () => {
    assert.equal(parseDuration('10m'), 600_000)
    assert.equal(parseDuration('1m30s'), 90_000)
    assert.equal(parseDuration('500ms'), 500)
    assert.equal(parseDuration('1h0m0s'), 3_600_000)
    assert.equal(parseDuration('ten minutes'), undefined)
  })

  it('stores the branch head as an artifact whose digest and size match the served bytes', async () => {
    const head = await git(work, 'rev-parse', 'HEAD')
    await create('app', {})
    const obj = await revisionIs('app', head)
    const artifact = obj.status!.artifact!
    assert.equal(artifact.revision, `main@sha1:${head}`)
    assert.equal(obj.status!.observedGeneration, (obj.metadata as { generation?: number }).generation)
    assert.equal(obj.status!.conditions!.find((c) => c.type === 'ArtifactInStorage')?.status, 'True')
    assert.match(artifact.url, new RegExp(`^${source.url}/gitrepository/${ns.name}/app/${head}\\.tar\\.gz$`))

    const bytes = Buffer.from(await (await fetch(artifact.url)).arrayBuffer())
    assert.equal(artifact.digest, `sha256:${createHash('sha256').update(bytes).digest('hex')}`)
    assert.equal(artifact.size, bytes.length)

    const file = path.join(tmp, 'artifact.tar.gz')
    fs.writeFileSync(file, bytes)
    const entries: { path: string; type: string }[] = []
    await tar.t({ file, onReadEntry: (e) => { entries.push({ path: e.path, type: e.type }) } })
    assert.deepEqual(entries.filter((e) => e.type === 'File').map((e) => e.path), ['deploy/app.yaml'])
    assert.ok(!entries.some((e) => e.path.includes('.git') || e.type === 'SymbolicLink'), JSON.stringify(entries))
  })

  it('fetches at once on reconcile.fluxcd.io/requestedAt and records lastHandledReconcileAt', async () => {
    const sha = await commit('deploy/app.yaml', 'kind: ConfigMap\ndata: {a: "2"}\n')
    const token = await request('app')
    const started = Date.now()
    const obj = await until('the request handled', async () => {
      const o = await get('app')
      return o.status?.lastHandledReconcileAt === token ? o : undefined
    }, 5000)
    assert.equal(obj.status!.artifact!.revision, `main@sha1:${sha}`)
    assert.ok(Date.now() - started < 5000)
  })

  it('re-fetches on spec.interval without a request, and writes status only when something changed', async () => {
    await create('polled', { interval: '1s' })
    let sha = await git(work, 'rev-parse', 'HEAD')
    const before = await revisionIs('polled', sha)
    await new Promise((r) => setTimeout(r, 2500)) // two intervals with nothing new
    assert.equal((await get('polled')).metadata.resourceVersion, before.metadata.resourceVersion)
    sha = await commit('other.yaml', 'kind: Secret\n')
    await revisionIs('polled', sha)
  })

  it('fetches a tag as <tag>@sha1:<commit>', async () => {
    const sha = await git(work, 'rev-parse', 'HEAD')
    await git(work, 'tag', '-a', '-m', 'v1', 'v1.0.0')
    await git(work, 'push', '--quiet', 'origin', 'v1.0.0')
    await create('tagged', { ref: { tag: 'v1.0.0' } })
    const obj = await revisionIs('tagged', sha)
    assert.equal(obj.status!.artifact!.revision, `v1.0.0@sha1:${sha}`)
  })

  it('reports Ready=False with GitOperationFailed and the git error for a repository it cannot fetch', async () => {
    await create('missing', { url: server.urlFor('missing.git') })
    const obj = await until('Ready=False', async () => {
      const o = await get('missing')
      return ready(o)?.status === 'False' ? o : undefined
    })
    const cond = ready(obj)!
    assert.equal(cond.reason, 'GitOperationFailed')
    assert.match(cond.message ?? '', /missing\.git.*not found|not found/i)
    assert.equal(obj.status!.conditions!.find((c) => c.type === 'Reconciling')?.reason, 'ProgressingWithRetry')
    assert.equal(obj.status!.artifact, undefined)

    await create('refused', { url: 'http://127.0.0.1:1/app.git' })
    const refused = await until('Ready=False', async () => {
      const o = await get('refused')
      return ready(o)?.status === 'False' ? o : undefined
    })
    assert.equal(ready(refused)!.reason, 'GitOperationFailed')
    assert.match(ready(refused)!.message ?? '', /127\.0\.0\.1/)
  })

  it('does not fetch a suspended GitRepository, and fetches again once resumed', async () => {
    await patch('app', { spec: { suspend: true } })
    const before = await get('app')
    const sha = await commit('deploy/app.yaml', 'kind: ConfigMap\ndata: {a: "3"}\n')
    const token = await request('app')
    await new Promise((r) => setTimeout(r, 2000))
    const held = await get('app')
    assert.equal(held.status!.artifact!.revision, before.status!.artifact!.revision)
    assert.notEqual(held.status!.lastHandledReconcileAt, token)

    await patch('app', { spec: { suspend: false } })
    const resumed = await revisionIs('app', sha)
    assert.equal(resumed.status!.lastHandledReconcileAt, token)
  })
})
