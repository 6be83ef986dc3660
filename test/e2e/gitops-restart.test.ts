// GitOps state across a restart of the sim cluster with its state kept (cluster-down, then
// cluster-up --flux): the cluster's own git server keeps its URL, or, when its port was taken
// meanwhile, the GitRepository and the `nsops-local` remote follow it to the new one; and a
// dev-up whose push is refused still points Flux at the live server. Real source-controller,
// real git, a sim cluster of its own.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { after, before, describe, it } from 'node:test'
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node'
import { SimCluster } from '../../shared/cluster/sim/index.ts'
import { NsopsError } from '../../shared/core/errors.ts'
import { fluxKinds, type FluxObject } from '../../shared/flux/kinds.ts'
import { reconcileSource } from '../../shared/flux/reconcile.ts'
import { FLUX_NAMESPACE, localGitUrl } from '../../shared/cluster/sim/controllers.ts'
import { bootstrapLocalGitOps, LOCAL_REMOTE } from '../../shared/cluster/sim/local-remote.ts'
import { connect, type Kube } from '../../shared/kube/client.ts'
import { isolated } from '../git-fixture.ts'

const run = promisify(execFile)

describe('GitOps state across a sim restart with its state kept', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-gitops-restart-'))
  const simDir = path.join(tmp, 'sim')
  const fluxDir = path.join(simDir, 'flux')
  const sim = new SimCluster({ dir: simDir })
  const clone = path.join(tmp, 'clone')
  let kube: Kube
  let blocker: net.Server | undefined
  const blocked = new Set<net.Socket>()
  const git = async (dir: string, ...args: string[]) =>
    (await run('git', [...isolated, '-C', dir, ...args])).stdout.trim()
  const repo = async () =>
    (await kube.custom.getNamespacedCustomObject({
      ...fluxKinds.GitRepository,
      namespace: FLUX_NAMESPACE,
      name: 'nsops',
    })) as FluxObject
  const commit = async (dir: string, file: string) => {
    fs.writeFileSync(path.join(dir, file), `${file} ${Date.now()}\n`)
    await git(dir, 'add', '-A')
    await git(dir, '-c', 'user.name=t', '-c', 'user.email=t@example.com', 'commit', '-qm', file)
    return git(dir, 'rev-parse', 'HEAD')
  }
  const sourceAt = async (sha: string) => {
    const r = await reconcileSource(
      kube,
      { namespace: FLUX_NAMESPACE, name: 'nsops' },
      { revision: sha, timeoutMs: 60_000 },
    )
    assert.ok(r.ok, r.message)
    return r
  }
  const restart = async () => {
    await sim.stop()
    const info = await sim.ensure({ flux: true })
    kube = connect({ kubeconfig: info.kubeconfig })
    return info
  }

  before(async () => {
    const info = await sim.ensure({ flux: true })
    kube = connect({ kubeconfig: info.kubeconfig })
    fs.mkdirSync(clone)
    await run('git', [...isolated, 'init', '-q', clone])
    await commit(clone, 'README')
  })

  after(async () => {
    // the cluster first (its controllers are the blocker's only clients), then the blocker
    // with every connection it accepted destroyed, so its close cannot wait on a peer
    await sim.stop({ purge: true })
    for (const s of blocked) s.destroy()
    if (blocker?.listening) await new Promise<void>((resolve) => blocker!.close(() => resolve()))
    fs.rmSync(tmp, { recursive: true, force: true })
  })

  it("dev-up's bootstrap points Flux at the cluster's git server and the source turns Ready at the pushed commit", async () => {
    const r = await bootstrapLocalGitOps(kube, path.join(simDir, 'kubeconfig'), clone)
    assert.equal(r.url, localGitUrl(fluxDir))
    await sourceAt(await git(clone, 'rev-parse', 'HEAD'))
  })

  it('after cluster-down and cluster-up --flux the git server has the same URL and the GitRepository is Ready there', async () => {
    const before = localGitUrl(fluxDir)
    const sha = await commit(clone, 'second')
    await restart()
    assert.equal(localGitUrl(fluxDir), before, 'the git server kept its port')
    assert.equal((await repo()).spec?.url, before)
    await git(clone, 'push', '-q', LOCAL_REMOTE, 'HEAD:refs/heads/main')
    await sourceAt(sha)
  })

  it('when the port was taken meanwhile, the next start re-points the GitRepository and the nsops-local remote at the new URL', async () => {
    const old = localGitUrl(fluxDir)!
    await sim.stop()
    // someone else listens on the git server's port while the cluster is down
    blocker = net.createServer((socket) => {
      blocked.add(socket)
      socket.on('close', () => blocked.delete(socket))
    })
    await new Promise<void>((resolve, reject) =>
      blocker!.once('error', reject).listen(Number(new URL(old).port), '127.0.0.1', resolve),
    )
    const info = await sim.ensure({ flux: true })
    kube = connect({ kubeconfig: info.kubeconfig })
    const now = localGitUrl(fluxDir)!
    assert.notEqual(now, old)
    assert.equal((await repo()).spec?.url, now)
    assert.equal(await git(clone, 'remote', 'get-url', LOCAL_REMOTE), now)
    const sha = await commit(clone, 'third')
    await git(clone, 'push', '-q', LOCAL_REMOTE, 'HEAD:refs/heads/main')
    await sourceAt(sha)
  })

  it('a bootstrap whose push is refused (non-fast-forward) still points the GitRepository at the live server', async () => {
    const live = localGitUrl(fluxDir)!
    // another clone pushed a commit this one lacks
    const other = path.join(tmp, 'other')
    await run('git', [...isolated, 'clone', '-q', live, other])
    const theirs = await commit(other, 'theirs')
    await git(other, 'push', '-q', 'origin', 'HEAD:refs/heads/main')
    await commit(clone, 'ours')
    // and the GitRepository names a server that is gone (as after a restart on a new port)
    await kube.custom.patchNamespacedCustomObject(
      {
        ...fluxKinds.GitRepository,
        namespace: FLUX_NAMESPACE,
        name: 'nsops',
        body: { spec: { url: 'http://127.0.0.1:9/nsops.git' } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    )
    await assert.rejects(bootstrapLocalGitOps(kube, path.join(simDir, 'kubeconfig'), clone), (err: unknown) => {
      assert.ok(err instanceof NsopsError)
      assert.match(err.message, /pushing main to nsops-local .* failed: .*(rejected|non-fast-forward)/s)
      assert.match(err.hint ?? '', /Flux reads .* all the same/)
      return true
    })
    assert.equal((await repo()).spec?.url, live)
    await sourceAt(theirs)
  })
})
