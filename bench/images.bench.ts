// Images (issue 27): a save of logdemo's main.go → the Deployment's pod template has the new
// digest (seen by a watch), with `dev observability` running as a user runs it (`npx just dev`,
// in a copy of this repo, on a sim of the bench's own), for the `binary` builder and for `ko`
// in the same run; and a sync-only save (static/) → the file in the simulated container.
// The dev loop's own figures per build (its log line: total, and the host compile's share for
// `binary`) give nsops' share: total − host compile. `dockerfile` is measured only when one of
// its builders is present here (buildah, podman, buildctl with buildkitd, docker with an engine).
import { spawn, execFileSync, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { KubeConfig, Watch } from '@kubernetes/client-node'
import { containerRoot } from '../shared/cluster/sim/container-logs.ts'
import { toolPath } from '../shared/tools/provision.ts'
import { ciRepo } from '../test/ci-fixture.ts'
import { withBenchCluster } from './cluster.ts'
import { median, report } from './stats.ts'

const SAVES = 8
const SYNCS = 10
const DEV_NS = 'observability-dev'
const MAIN = 'namespaces/observability/src/logdemo/main.go'
const NS_FILE = 'namespaces/observability/namespace.ts'

/** Resolves when `test` holds for the text seen so far, or rejects after timeoutMs. */
function waitText(get: () => string, test: (s: string) => boolean, what: string, timeoutMs = 180_000): Promise<void> {
  const start = Date.now()
  return new Promise((resolve, reject) => {
    const tick = () => {
      if (test(get())) return resolve()
      if (Date.now() - start > timeoutMs)
        return reject(new Error(`timed out waiting for ${what}:\n${get().slice(-3000)}`))
      setTimeout(tick, 20)
    }
    tick()
  })
}

function builderPresent(): string | undefined {
  for (const b of ['buildah', 'podman', 'buildctl']) {
    try {
      execFileSync('sh', ['-c', `command -v ${b}`], { stdio: 'ignore' })
      return b
    } catch {
      /* not here */
    }
  }
  try {
    execFileSync('docker', ['version', '--format', '{{.Server.Version}}'], { stdio: 'ignore', timeout: 5000 })
    return 'docker'
  } catch {
    return undefined
  }
}

export default async function imagesBench(): Promise<void> {
  await withBenchCluster(async (_kube, kubeconfig, sim) => {
    const repo = ciRepo()
    const state = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-bench-images-state-'))
    const env = {
      ...process.env,
      KUBECONFIG: kubeconfig,
      NSOPS_PROVIDER: 'existing',
      NSOPS_STATE_DIR: state,
      CI: '1',
      NO_COLOR: '1',
    }
    // every pod-template image of logdemo as a watch sees it, with when
    const seen: { at: number; image: string }[] = []
    const kc = new KubeConfig()
    kc.loadFromFile(kubeconfig)
    const watch = await new Watch(kc).watch(
      `/apis/apps/v1/namespaces/${DEV_NS}/deployments`,
      { fieldSelector: 'metadata.name=logdemo' },
      (_type, obj: { spec?: { template?: { spec?: { containers?: { image?: string }[] } } } }) => {
        const image = obj.spec?.template?.spec?.containers?.[0]?.image
        if (image && image !== seen.at(-1)?.image) seen.push({ at: performance.now(), image })
      },
      () => {},
    )
    let dev: ChildProcess | undefined
    let out = ''
    const startDev = async () => {
      out = ''
      dev = spawn('npx', ['just', 'dev', 'observability', '--no-ui', '--no-forwards'], {
        cwd: repo.work,
        env,
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      dev.stdout!.on('data', (b) => (out += b))
      dev.stderr!.on('data', (b) => (out += b))
      await waitText(
        () => out,
        (s) => /image logdemo ✓/.test(s) && /watching for saves/.test(s),
        'the first build and apply',
      )
      await waitText(
        () => seen.at(-1)?.image ?? '',
        (s) => s.includes('@sha256:'),
        'the first digest applied',
      )
    }
    const stopDev = async () => {
      if (!dev || dev.exitCode !== null) return
      process.kill(-dev.pid!, 'SIGINT')
      await new Promise((r) => dev!.once('exit', r))
    }
    const source = fs.readFileSync(path.join(repo.work, MAIN), 'utf8')
    const save = (n: string) =>
      fs.writeFileSync(path.join(repo.work, MAIN), source.replace('hello from logdemo', `hello from save ${n}`))

    /** SAVES saves of main.go (after one warm-up): save → new digest in the pod template; the loop's own build figures. */
    const saves = async (label: string) => {
      const totals: number[] = []
      const builds: number[] = []
      const hosts: number[] = []
      for (let i = 0; i <= SAVES; i++) {
        const before = seen.length
        const logBefore = out.length
        const t0 = performance.now()
        save(`${label} ${i} ${Date.now()}`)
        await waitText(
          () => `${seen.length} digests seen; the loop's output:\n${out.slice(logBefore)}`,
          () => seen.length > before,
          `a new digest after save ${i} (${label})`,
          120_000,
        )
        const dt = seen.at(-1)!.at - t0
        await waitText(
          () => out.slice(logBefore),
          (s) => /image logdemo ✓ .* ms/.test(s),
          'the build line',
          30_000,
        )
        const line = /image logdemo ✓ (.*)/.exec(out.slice(logBefore))![1]
        const ms = Number(/ (\d+) ms/.exec(line)?.[1])
        const host = /host build (\d+) ms/.exec(line)?.[1]
        if (i === 0) continue // the first save warms the build cache for this source's shape
        totals.push(dt)
        builds.push(ms)
        if (host) hosts.push(Number(host))
      }
      report(`${label}: save → new digest in the pod template`, totals)
      report(`${label}: build + push (the loop's figure)`, builds)
      if (hosts.length) {
        report(`${label}: of it the host compile (go build)`, hosts)
        const share = totals.map((t, i) => t - hosts[i])
        report(`${label}: nsops' share (save → template − host compile)`, share)
      }
      return median(totals)
    }

    try {
      // binary: the shipped configuration
      await startDev()
      const binary = await saves('binary')

      // sync-only saves: static/note.txt → the file in the simulated container's folder
      const pods = JSON.parse(
        execFileSync(
          await toolPath('kubectl'),
          [
            '--kubeconfig',
            kubeconfig,
            '-n',
            DEV_NS,
            'get',
            'pods',
            '-l',
            'app.kubernetes.io/name=logdemo',
            '-o',
            'json',
          ],
          { encoding: 'utf8' },
        ),
      ) as {
        items: {
          metadata: { name: string; uid: string; deletionTimestamp?: string }
          spec: { containers: { image: string }[] }
        }[]
      }
      const syncMs: number[] = []
      for (let i = 0; i <= SYNCS; i++) {
        const mark = `note ${i} ${Date.now()}`
        const targets = pods.items
          // the pods of the last rollout (the previous one's may still be going)
          .filter((p) => !p.metadata.deletionTimestamp && p.spec.containers[0].image === seen.at(-1)!.image)
          .map((p) =>
            path.join(
              containerRoot(path.join(sim.dir, 'pods'), {
                namespace: DEV_NS,
                pod: p.metadata.name,
                uid: p.metadata.uid,
                container: 'logdemo',
              }),
              'srv/static/note.txt',
            ),
          )
        const t0 = performance.now()
        fs.writeFileSync(path.join(repo.work, 'namespaces/observability/src/logdemo/static/note.txt'), `${mark}\n`)
        await waitText(
          () => targets.map((f) => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : '')).join('|'),
          (s) => s.length > 0 && s.split('|').every((x) => x.includes(mark)),
          `the synced file (${targets.join(', ')})`,
          30_000,
        )
        if (i > 0) syncMs.push(performance.now() - t0)
      }
      report('sync-only save → file in the container', syncMs, 'target p50 ≤ 300 ms')
      await stopDev()

      // ko: the same app, built by ko instead (same run, same cluster, same build cache)
      const nsFile = path.join(repo.work, NS_FILE)
      const cfg = fs.readFileSync(nsFile, 'utf8')
      const koCfg = cfg.replace(
        /build: \{\n\s+kind: 'binary',[\s\S]*?entrypoint: \['\/logdemo'\],\n\s+\},/,
        "build: { kind: 'ko' },",
      )
      if (koCfg === cfg) throw new Error(`bench: could not switch ${NS_FILE} to ko`)
      fs.writeFileSync(nsFile, koCfg)
      await startDev()
      const ko = await saves('ko')
      await stopDev()

      const builder = builderPresent()
      console.log(
        builder
          ? `dockerfile: ${builder} is present, but no Dockerfile variant of logdemo is benched yet`
          : 'dockerfile: not measured — no buildah, podman, buildctl or docker engine on this machine (the docker CLI without a daemon does not count)',
      )
      console.log(
        `binary vs ko, save → new digest p50: ${(binary / 1000).toFixed(2)} s vs ${(ko / 1000).toFixed(2)} s (${(ko / binary).toFixed(2)}×); targets ≤ 2 s and ≤ 3 s`,
      )
    } finally {
      await stopDev().catch(() => {})
      watch.abort()
      fs.rmSync(repo.root, { recursive: true, force: true })
      fs.rmSync(state, { recursive: true, force: true })
    }
  })
}
