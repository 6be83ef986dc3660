// Images as a user meets them, in a copy of this repo against the sim (its real registry):
// `npx just build observability` pushes the shipped logdemo app and crane reads it back;
// `dev observability` in a terminal builds on start, rolls a save of main.go out by digest,
// syncs a static file into the running container (read back through kubectl exec), shows a
// syntax error's compiler output while the previous digest keeps running; `dev --ci`
// fails on a build error with its output.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { after, before, describe, it } from 'node:test'
import type { DashboardModel } from '../../shared/dashboard/collect.ts'
import { imageDigest } from '../../shared/images/crane.ts'
import { toolPath } from '../../shared/tools/provision.ts'
import { advertisedRegistry } from '../../shared/images/registry.ts'
import { ciRepo, type CiRepo } from '../ci-fixture.ts'
import { testCluster, type TestCluster } from '../harness.ts'
import { imageFiles } from '../image-fixture.ts'
import { Terminal, tmuxAvailable } from '../tty.ts'
import { until } from '../until.ts'

const run = promisify(execFile)
const MAIN = 'namespaces/observability/src/logdemo/main.go'

describe('images: build, push, roll out by digest', () => {
  let cluster: TestCluster
  let repo: CiRepo
  let host: string
  let env: Record<string, string>
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-images-state-'))

  before(async () => {
    cluster = await testCluster()
    host = (await advertisedRegistry(cluster.kube))!.host
    repo = ciRepo()
    env = {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? os.homedir(),
      TERM: 'xterm-256color',
      USER: os.userInfo().username,
      KUBECONFIG: cluster.kubeconfig,
      NSOPS_PROVIDER: 'existing',
      NSOPS_STATE_DIR: stateDir,
      ...(process.env.XDG_CACHE_HOME ? { XDG_CACHE_HOME: process.env.XDG_CACHE_HOME } : {}),
      ...(process.env.GOCACHE ? { GOCACHE: process.env.GOCACHE } : {}),
    }
  })
  after(() => {
    if (repo) fs.rmSync(repo.root, { recursive: true, force: true })
    fs.rmSync(stateDir, { recursive: true, force: true })
  })

  const edit = (from: string | RegExp, to: string) => {
    const file = path.join(repo.work, MAIN)
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace(from, to))
  }
  const running = async () =>
    (await cluster.kube.apps.readNamespacedDeployment({ name: 'logdemo', namespace: 'observability-dev' })).spec
      ?.template.spec?.containers[0].image

  it('npx just build observability pushes logdemo by digest, and the registry serves the binary', async () => {
    const { stdout, stderr } = await run('npx', ['just', 'build', 'observability', '--quiet'], {
      cwd: repo.work,
      env,
    })
    const ref = stdout.trim()
    assert.match(ref, new RegExp(`^${host}/observability/logdemo@sha256:[0-9a-f]{64}$`), stderr)
    assert.equal(`${host}/observability/logdemo@${await imageDigest(`${host}/observability/logdemo:dev`)}`, ref)
    const files = await imageFiles(ref, repo.root)
    assert.match(files.logdemo, /hello from logdemo/)
    // the same source builds the same image: nothing would roll out
    const again = (await run('npx', ['just', 'build', 'observability', '--quiet'], { cwd: repo.work, env })).stdout
    assert.equal(again.trim(), ref)
  })

  it('dev --ci fails on a build error with the compiler output and applies nothing', async () => {
    edit('const greeting = "hello from logdemo"', 'const greeting = "hello from logdemo" +')
    try {
      const r = await run('npx', ['just', 'dev', 'observability', '--ci', '--down'], { cwd: repo.work, env }).then(
        () => ({ code: 0, stderr: '' }),
        (e: { code: number; stderr: string }) => e,
      )
      assert.equal(r.code, 1)
      assert.match(r.stderr, /image logdemo did not build/)
      assert.match(r.stderr, /main\.go:\d+:\d+: syntax error/)
      const deps = await cluster.kube.apps.listNamespacedDeployment({ namespace: 'observability-dev' }).catch(() => ({
        items: [],
      }))
      assert.equal(deps.items.length, 0, 'nothing applied')
    } finally {
      edit('const greeting = "hello from logdemo" +', 'const greeting = "hello from logdemo"')
    }
  })

  it(
    'dev observability in a terminal: a save rolls out a new digest; a static file is synced into the container with no rebuild; a syntax error shows its output and the old digest keeps running',
    { skip: !tmuxAvailable() && 'tmux is not installed (.ci/run installs it)' },
    async (t) => {
      const term = await Terminal.open(['npx', 'just', 'dev', 'observability', '--no-forwards', '--no-ui'], {
        cwd: repo.work,
        env,
      })
      try {
        await term.waitFor(/image logdemo ✓ binary/, 180_000)
        await term.waitFor(/observability-dev {2}watching/, 60_000) // saves from now on are seen
        const first = await until('the Deployment runs logdemo by digest', async () => {
          const img = await running()
          return img?.includes('@sha256:') ? img : undefined
        })
        assert.match(first, new RegExp(`^${host}/observability/logdemo@sha256:`))
        // the dashboard says which digest logdemo runs: --json and the text view
        const digest = first.split('@')[1]
        const dash = JSON.parse(
          (await run('npx', ['just', 'dashboard', 'observability', '--env', 'dev', '--json'], { cwd: repo.work, env }))
            .stdout,
        ) as DashboardModel
        const row = dash.groups.flatMap((g) => g.apps).find((a) => a.name === 'logdemo')
        assert.deepEqual(row?.images, [{ container: 'logdemo', image: first, digests: [digest] }])
        const text = (
          await run('npx', ['just', 'dashboard', 'observability', '--env', 'dev'], {
            cwd: repo.work,
            env: { ...env, NO_COLOR: '1' },
          }).catch((e: { stdout: string }) => e)
        ) // exit 1 while loki's PVC is unbound is fine here
        .stdout
        assert.match(text, new RegExp(`logdemo .*logdemo@${digest.slice(0, 19)}`))

        const saved = Date.now()
        edit('hello from logdemo', 'hello from a save')
        const second = await until(
          'a new digest in the pod template',
          async () => {
            const img = await running()
            return img && img !== first ? img : undefined
          },
          120_000,
        )
        t.diagnostic(`save → new digest in the Deployment's pod template: ${Date.now() - saved} ms`)
        assert.equal(second.split('@')[1], await imageDigest(`${host}/observability/logdemo:dev`))
        assert.match((await imageFiles(second, repo.root)).logdemo, /hello from a save/)

        // live sync: a file under static/ goes into the running container, no rebuild; on the
        // sim `kubectl exec` runs in the container's own folder (kwok Exec), read back through it
        const pod = (
          await cluster.kube.core.listNamespacedPod({
            namespace: 'observability-dev',
            labelSelector: 'app.kubernetes.io/name=logdemo',
          })
        ).items.find((p) => !p.metadata?.deletionTimestamp && p.spec?.containers[0].image === second)!
        const mark = `synced-${Date.now()}`
        const synced = Date.now()
        fs.writeFileSync(path.join(repo.work, 'namespaces/observability/src/logdemo/static/note.txt'), `${mark}\n`)
        const kubectl = await toolPath('kubectl')
        const read = await until(
          'the synced file in the container',
          async () => {
            const { stdout } = await run(kubectl, [
              '--kubeconfig',
              cluster.kubeconfig,
              '-n',
              'observability-dev',
              'exec',
              pod.metadata!.name!,
              '-c',
              'logdemo',
              '--',
              'sh',
              '-c',
              'cat "$NSOPS_CONTAINER_ROOT/srv/static/note.txt"',
            ])
            return stdout.includes(mark) ? stdout : undefined
          },
          60_000,
        )
        t.diagnostic(`sync-only save → file in the container: ${Date.now() - synced} ms`)
        assert.equal(read.trim(), mark)
        await term.waitFor(/image logdemo ✓ synced 1 file\(s\) into 1 pod\(s\)/, 30_000)
        assert.equal(await running(), second, 'a sync rebuilds nothing and rolls nothing out')
        // a good build's log: b opens it (the push by digest at its end), b again steps past
        // the only image back to the status
        await term.press('b')
        const okLog = await term.waitFor(/build log · logdemo ✓/, 10_000)
        assert.match(okLog, new RegExp(`pushed ${host}/observability/logdemo@${second.split('@')[1]}`))
        await term.press('b')
        await term.waitFor(/b build log · /, 10_000)

        edit('const greeting = "hello from a save"', 'const greeting = "hello from a save" +')
        const screen = await term.waitFor(/image logdemo ✗ image logdemo did not build/, 120_000)
        assert.match(screen, /syntax error/)
        assert.match(screen, /still runs sha256:/)
        assert.equal(await running(), second, 'the last good digest keeps running')
        // the `b` key opens the last build's output (here the failed one), `s` goes back
        await term.press('b')
        const buildLog = await term.waitFor(/build log · logdemo ✗/, 10_000)
        assert.match(buildLog, /\$ go build/)
        assert.match(buildLog, /main\.go:\d+:\d+: syntax error/)
        assert.match(buildLog, /b next image · s status/)
        await term.press('s')
        await term.waitFor(/observability-dev {2}watching[\s\S]*image logdemo ✗/, 10_000)
        await term.press('C-c')
        assert.equal(await term.waitExit(), 130)
      } catch (err) {
        t.diagnostic(`the terminal:\n${await term.screen()}`)
        throw err
      } finally {
        await term.close()
      }
    },
  )
})
