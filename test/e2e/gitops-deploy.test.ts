// deploy end to end with the real kustomize-controller reading a real git server: commit →
// push → reconcile → Ready at the pushed revision → healthy → exit 0; a push that races
// with another commit is rebased; a commit landing on top right after ours is accepted (Flux
// applies a descendant); a change that can never become available fails fast, is reverted
// (a new commit), Flux brings the previous revision back, exit 2; what would make a push
// pointless (suspended, dependsOn not Ready, another repository) is refused before committing;
// an API server that stops answering after the push (SIGSTOP) ends `just deploy` at its
// --timeout with one error naming what it waited for (exit 4, the commit kept).
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { after, before, describe, it } from 'node:test'
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node'
import type { DeployOptions } from '../../shared/deploy/flow.ts'
import { DEMO, gitOpsWorld, settings, type GitOpsWorld } from './gitops-fixture.ts'
import { deployWorld } from './deploy-fixture.ts'
import { requestReconcile } from '../../shared/flux/reconcile.ts'
import { addNsops, spawnJustIn } from '../adopt-fixture.ts'
import { until } from '../until.ts'

const run = promisify(execFile)

// the fixture namespace (gitops-fixture's demoNamespace) as namespaces/demo/namespace.ts, for `just deploy demo`
const DEMO_NAMESPACE_TS = `import { defineNamespace } from '../../shared/config/namespace-config.ts'

export default defineNamespace({
  name: '${DEMO}',
  description: 'e2e fixture',
  namespaces: { dev: '${DEMO}', prod: '${DEMO}' },
  flux: { kustomization: '${DEMO}' },
  groups: [{ title: 'Apps', apps: [{ name: 'web', port: 80 }] }],
})
`

describe('deploy against the real kustomize-controller', () => {
  let w: GitOpsWorld
  before(async () => {
    w = await gitOpsWorld()
    await w.waitApplied(await w.git$('rev-parse', 'HEAD'))
  })
  after(async () => {
    await w?.stop()
  })

  const deploy = (extra: Partial<DeployOptions> = {}) => deployWorld(w, extra)
  const mode = async () => (await w.kube.core.readNamespacedConfigMap({ name: 'settings', namespace: DEMO })).data?.mode

  it('commits, pushes, has Flux apply exactly that commit and waits until healthy (exit 0)', async () => {
    w.write(`namespaces/${DEMO}/base/settings.yaml`, settings('prod-v2'))
    const r = await deploy()
    assert.equal(r.exitCode, 0, `${r.summary}\n${JSON.stringify(r.steps.map((s) => [s.name, s.status, s.message]))}`)
    assert.equal(r.outcome, 'deployed')
    const head = await w.git$('rev-parse', 'HEAD')
    assert.equal(await w.git$('ls-remote', 'origin', 'refs/heads/main').then((o) => o.split(/\s/)[0]), head)
    const ks = await w.ks()
    assert.ok(ks.status?.lastAppliedRevision?.endsWith(head), ks.status?.lastAppliedRevision)
    assert.equal(await mode(), 'prod-v2')
    const names = r.steps.map((s) => s.name)
    for (const step of ['preflight', 'build', 'validate', 'commit', 'push'])
      assert.ok(names.includes(step as never), `${step} in ${names}`)
  })

  it('rebases onto a commit pushed from elsewhere meanwhile, then deploys', async () => {
    const other = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-race-'))
    try {
      await run('git', ['clone', '-q', w.repoUrl, other])
      await run('git', [
        '-C',
        other,
        '-c',
        'user.name=other',
        '-c',
        'user.email=o@x',
        'commit',
        '-q',
        '--allow-empty',
        '-m',
        'someone else',
      ])
      await run('git', ['-C', other, 'push', '-q', 'origin', 'main'])
      const theirs = (await run('git', ['-C', other, 'rev-parse', 'HEAD'])).stdout.trim()
      w.write(`namespaces/${DEMO}/base/settings.yaml`, settings('prod-v3'))
      const r = await deploy()
      assert.equal(r.exitCode, 0, r.summary)
      await run('git', ['-C', w.work, 'merge-base', '--is-ancestor', theirs, 'HEAD']) // their commit kept, nothing forced
      assert.equal(await mode(), 'prod-v3')
    } finally {
      fs.rmSync(other, { recursive: true, force: true })
    }
  })

  it('a Deployment that can never become available fails fast, is reverted and the previous revision is restored (exit 2)', async () => {
    const before = await w.git$('rev-parse', 'HEAD')
    const webFile = path.join(w.work, `namespaces/${DEMO}/base/web.yaml`)
    const good = fs.readFileSync(webFile, 'utf8')
    // no node has this label, and the Deployment gives up after 10 s (ProgressDeadlineExceeded)
    fs.writeFileSync(
      webFile,
      good
        .replace('  replicas: 2\n', '  replicas: 2\n  progressDeadlineSeconds: 10\n')
        .replace(
          '    spec:\n      containers:',
          '    spec:\n      nodeSelector: { disk: nvme-that-does-not-exist }\n      containers:',
        ),
    )
    const t0 = Date.now()
    const r = await deploy()
    const took = Date.now() - t0
    assert.equal(r.exitCode, 2, `${r.outcome}: ${r.summary}`)
    assert.equal(r.outcome, 'rolled-back')
    assert.ok(took < 110_000, `failed fast (${took} ms), not after the 120 s timeout`)
    assert.match(r.summary, /web|Deployment|ProgressDeadline|Unschedulable/i)
    // history is not rewritten: the broken commit and its revert are both on the remote
    const log = (await w.git$('log', '--format=%s', `${before}..HEAD`)).split('\n')
    assert.equal(log.length, 2, log.join(' | '))
    assert.match(log[0], /revert/i)
    const head = await w.git$('rev-parse', 'HEAD')
    assert.equal(await w.git$('ls-remote', 'origin', 'refs/heads/main').then((o) => o.split(/\s/)[0]), head)
    assert.equal(fs.readFileSync(webFile, 'utf8'), good)
    await w.waitApplied(head)
    const dep = await w.kube.apps.readNamespacedDeployment({ name: 'web', namespace: DEMO })
    assert.equal(dep.spec?.template.spec?.nodeSelector, undefined, 'Flux brought the previous revision back')
  })

  it('a commit pushed on top right after ours: Flux applies the descendant, the deploy succeeds and reverts nothing', async () => {
    // someone else's commit lands on top of ours the moment our push is received: a
    // post-receive hook of the real git server commits on top once (the test's own process
    // serves git, so it cannot push from here while the deploy waits)
    const bare = path.join(w.git.root, 'nsops.git')
    const hook = path.join(bare, 'hooks', 'post-receive')
    fs.writeFileSync(
      hook,
      `#!/bin/sh
[ -f "$GIT_DIR/ontop-sha" ] && exit 0
read old new ref
export GIT_AUTHOR_NAME=other GIT_AUTHOR_EMAIL=o@x GIT_COMMITTER_NAME=other GIT_COMMITTER_EMAIL=o@x
c=$(git commit-tree -p "$new" -m "someone else, on top" "$new^{tree}") && git update-ref refs/heads/main "$c" "$new" && echo "$c" > "$GIT_DIR/ontop-sha"
`,
      { mode: 0o755 },
    )
    try {
      w.write(`namespaces/${DEMO}/base/settings.yaml`, settings('ours'))
      const r = await deploy()
      const theirs = fs.readFileSync(path.join(bare, 'ontop-sha'), 'utf8').trim()
      assert.equal(r.exitCode, 0, `${r.outcome}: ${r.summary}`)
      assert.equal(r.outcome, 'deployed')
      assert.deepEqual(r.git.reverts, [], 'nothing reverted')
      assert.match(r.summary, /which contains [0-9a-f]{7}: a commit pushed on top of it/)
      const ks = await w.ks()
      assert.ok(
        ks.status?.lastAppliedRevision?.endsWith(theirs),
        `Flux applied their commit: ${ks.status?.lastAppliedRevision}`,
      )
      assert.equal(await mode(), 'ours')
      await w.git$('pull', '-q', '--rebase')
    } finally {
      fs.rmSync(hook, { force: true })
    }
  })

  it('refuses before committing: a Kustomization suspended by hand, a dependsOn not Ready, a remote Flux does not read', async () => {
    const flux = (name: string, patch: object) =>
      w.kube.custom.patchNamespacedCustomObject(
        {
          group: 'kustomize.toolkit.fluxcd.io',
          version: 'v1',
          namespace: 'flux-system',
          plural: 'kustomizations',
          name,
          body: patch,
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      )
    w.write(`namespaces/${DEMO}/base/settings.yaml`, settings('refused'))
    const head = await w.git$('rev-parse', 'HEAD')
    const remote = async () => (await w.git$('ls-remote', 'origin', 'refs/heads/main')).split(/\s/)[0]
    const unchanged = async (r: Awaited<ReturnType<typeof deploy>>) => {
      assert.equal(r.exitCode, 1, `${r.outcome}: ${r.summary}`)
      assert.equal(r.outcome, 'refused')
      assert.match(r.summary, /Nothing was committed or pushed/)
      assert.equal(await w.git$('rev-parse', 'HEAD'), head)
      assert.equal(await remote(), head)
    }

    await flux(DEMO, { spec: { suspend: true } })
    try {
      const r = await deploy()
      await unchanged(r)
      assert.match(r.summary, /Kustomization\/flux-system\/demo is suspended .*so Flux would not apply the push/)
    } finally {
      await flux(DEMO, { spec: { suspend: false } })
    }

    // a dependency that can never be Ready: its path does not exist in the repository
    await w.kube.custom.createNamespacedCustomObject({
      group: 'kustomize.toolkit.fluxcd.io',
      version: 'v1',
      namespace: 'flux-system',
      plural: 'kustomizations',
      body: {
        apiVersion: 'kustomize.toolkit.fluxcd.io/v1',
        kind: 'Kustomization',
        metadata: { name: 'infra' },
        spec: {
          interval: '10m',
          path: './no/such/path',
          prune: false,
          sourceRef: { kind: 'GitRepository', name: 'demo-src' },
        },
      },
    })
    await flux(DEMO, { spec: { dependsOn: [{ name: 'infra' }] } })
    try {
      const r = await deploy()
      await unchanged(r)
      assert.match(r.summary, /Kustomization\/flux-system\/demo → Kustomization\/flux-system\/infra: .*is not Ready/)
    } finally {
      await flux(DEMO, { spec: { dependsOn: null } })
      await w.kube.custom.deleteNamespacedCustomObject({
        group: 'kustomize.toolkit.fluxcd.io',
        version: 'v1',
        namespace: 'flux-system',
        plural: 'kustomizations',
        name: 'infra',
      })
    }

    // the clone tracks a remote that is another repository than the GitRepository's URL
    const elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-elsewhere-'))
    try {
      await run('git', ['init', '-q', '--bare', elsewhere])
      await w.git$('remote', 'add', 'elsewhere', elsewhere)
      await w.git$('push', '-q', 'elsewhere', 'main')
      await w.git$('branch', '-q', '--set-upstream-to=elsewhere/main')
      const r = await deploy()
      assert.equal(r.exitCode, 1, `${r.outcome}: ${r.summary}`)
      assert.match(
        r.summary,
        /GitRepository\/flux-system\/demo-src reads http:\/\/127\.0\.0\.1:\d+\/nsops\.git, but this deploy pushes to elsewhere/,
      )
      assert.equal(await w.git$('rev-parse', 'HEAD'), head)
      assert.equal(
        (await run('git', ['-C', elsewhere, 'rev-parse', 'refs/heads/main'])).stdout.trim(),
        head,
        'nothing pushed there either',
      )
    } finally {
      await w.git$('branch', '-q', '--set-upstream-to=origin/main')
      await w.git$('remote', 'remove', 'elsewhere')
      fs.rmSync(elsewhere, { recursive: true, force: true })
      await w.git$('checkout', '-q', '--', `namespaces/${DEMO}/base/settings.yaml`)
    }
  })

  it('`just deploy --timeout 15s` while the API server stops answering after the push: ends within the timeout with one error naming what it waited for (exit 4, not rolled back); nothing is lost', async () => {
    const state = JSON.parse(fs.readFileSync(path.join(w.sim.dir, 'state.json'), 'utf8')) as {
      components: { name: string; pid: number }[]
    }
    const apiserver = state.components.find((c) => c.name === 'kube-apiserver')!.pid
    // through the user's door: nsops beside the demo namespace as a user has it, its files in
    // the clone (ignored here, not committed) and namespaces/demo/namespace.ts committed
    const added = addNsops(w.work)
    fs.appendFileSync(path.join(w.work, '.git/info/exclude'), added.map((f) => `/${f}\n`).join(''))
    w.write(`namespaces/${DEMO}/namespace.ts`, DEMO_NAMESPACE_TS)
    await w.commitAndPush('demo: namespace.ts')
    w.write(`namespaces/${DEMO}/base/settings.yaml`, settings('during-outage'))
    const timeoutMs = 15_000
    let frozen = false
    let pushedAt = 0
    let stderr = ''
    let stdout = ''
    // a real outage: the apiserver process is stopped (SIGSTOP) once the deploy says it pushed
    const child = spawnJustIn(w.work, [
      'deploy',
      DEMO,
      '--yes',
      '--no-rollback',
      '--timeout',
      '15s',
      '--kubeconfig',
      w.kubeconfig,
    ])
    child.stdout.on('data', (b) => (stdout += b))
    child.stderr.on('data', (b) => {
      stderr += b
      if (!frozen && /pushed [0-9a-f]{7,} to origin\/main/.test(stderr)) {
        process.kill(apiserver, 'SIGSTOP')
        frozen = true
        pushedAt = Date.now()
      }
    })
    const ended = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)))
    // should the deploy still wait on the stopped server, the outage ends after a minute (the
    // time assertion below fails then), so no run hangs on it
    const thaw = setTimeout(() => {
      if (frozen) process.kill(apiserver, 'SIGCONT')
    }, 60_000)
    try {
      const code = await ended
      const took = Date.now() - pushedAt
      const out = `exit ${code}\n${stderr}`
      assert.ok(frozen, `the outage started after the push: ${out}`)
      assert.equal(code, 4, `pushed, not verified (never 1, which says nothing was pushed): ${out}`)
      assert.ok(
        took < timeoutMs + 8_000,
        `ended ${took} ms after the push, within --timeout 15s and a few seconds: ${out}`,
      )
      const errors = stderr.split('\n').filter((l) => l.startsWith('error: '))
      assert.equal(errors.length, 1, out)
      assert.match(
        errors[0],
        /^error: [0-9a-f]{7,} is pushed to origin\/main, but the deploy cannot be confirmed: the cluster's API server did not answer within \d+ s \(context [^,]+, server https:\/\/[^)]+\) while the deploy waited for Flux \(.+; no answer to (GET|PATCH) \/.+\)\. It stays pushed; nothing was rolled back\.$/,
      )
      assert.match(stderr, /^hint: check that the cluster answers \(`kubectl --context \S+ get --raw \/readyz`\)/m)
      assert.doesNotMatch(stdout + stderr, /^\s+at /m, 'no stack trace')
      const head = await w.git$('rev-parse', 'HEAD')
      assert.equal(
        await w.git$('ls-remote', 'origin', 'refs/heads/main').then((o) => o.split(/\s/)[0]),
        head,
        'the pushed commit is kept',
      )
      assert.match(await w.git$('log', '-1', '--format=%s'), /^deploy\(demo\): /, 'and not reverted')
    } finally {
      clearTimeout(thaw)
      if (frozen) process.kill(apiserver, 'SIGCONT')
      if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid!, 'SIGKILL')
    }
    // once the API answers again, Flux applies the pushed commit: nothing was lost (its health
    // check may still time out while the simulated node recovers from the outage). The deploy's
    // own "fetch now" request may have fallen into the outage (its request timed out, as it
    // should), so the source is asked again as `flux reconcile source git` would; else its 10m
    // interval decides
    await requestReconcile(w.kube, { kind: 'GitRepository', namespace: 'flux-system', name: 'demo-src' })
    await until(
      'Flux applied the pushed commit after the outage',
      async () => (await mode()) === 'during-outage',
      120_000,
    )
  })

  // last: it stops the git server for good
  it("a GitRepository whose URL stops answering after the push fails fast with the source's reason (exit 4, the commit stays pushed)", async () => {
    w.write(`namespaces/${DEMO}/base/settings.yaml`, settings('unreachable'))
    let stopped: Promise<void> | undefined
    const t0 = Date.now()
    const r = await deploy({
      timeoutMs: 120_000,
      rollbackOnFailure: false,
      onStep: (step) => {
        if (step.name === 'push' && step.status === 'ok') stopped = w.git.stop()
      },
    })
    const took = Date.now() - t0
    await stopped
    assert.ok(stopped, 'the git server was stopped after the push')
    assert.equal(r.exitCode, 4, `${r.outcome}: ${r.summary}`)
    assert.match(
      r.summary,
      /failed while Flux fetched it \(GitRepository\): GitRepository\/flux-system\/demo-src failed: /,
    )
    assert.doesNotMatch(r.summary, /did not become ready within/, 'a verdict, not a timeout')
    assert.ok(took < 90_000, `failed fast (${took} ms), not after the 120 s timeout`)
    assert.deepEqual(r.git.pushed, [await w.git$('rev-parse', 'HEAD')])
  })
})
