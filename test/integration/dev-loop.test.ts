// The dev loop against the real sim cluster and the real Flux CRDs: Flux suspended with our
// marker while it runs, file edits re-applied, objects that left the overlay pruned, a
// broken file reported (file:line) without losing the loop, everything restored on stop.
// No kustomize-controller runs here, so "suspended" is checked on the object itself.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { scaffoldFiles } from '../../shared/commands/new-namespace.ts'
import { DevLoop } from '../../shared/dev/loop.ts'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { TankaLoop } from '../../shared/dev/tanka-loop.ts'
import type { TaskContext } from '../../shared/config/task-types.ts'
import { installFluxCrds, SUSPENDED_BY } from '../../shared/flux/index.ts'
import { isApiError } from '../../shared/kube/client.ts'
import { loadNamespace } from '../../shared/config/namespaces.ts'
import { repoRoot } from '../../shared/core/paths.ts'
import { loadEnvironment } from '../../shared/tanka/environments.ts'
import { testCluster } from '../harness.ts'
import { until } from '../until.ts'
import { privateStateDir } from '../state-dir.ts'

const run = promisify(execFile)

describe('dev loop', () => {
  const name = `devloop-${process.pid}`
  const dir = path.join(repoRoot, 'namespaces', name)
  const devNs = `${name}-dev`
  const state = privateStateDir('nsops-devloop-state-')
  const stateDir = state.dir

  before(async () => {
    state.enter()
    for (const [rel, text] of Object.entries(scaffoldFiles(name))) {
      fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true })
      fs.writeFileSync(path.join(dir, rel), text, {
        mode: rel.endsWith('.ts') && rel !== 'namespace.ts' ? 0o755 : 0o644,
      })
    }
    const { kube } = await testCluster()
    await installFluxCrds(kube)
    await kube.core.createNamespace({ body: { metadata: { name: 'flux-system' } } }).catch(() => {})
    await kube.custom.createNamespacedCustomObject({
      group: 'kustomize.toolkit.fluxcd.io',
      version: 'v1',
      namespace: 'flux-system',
      plural: 'kustomizations',
      body: {
        apiVersion: 'kustomize.toolkit.fluxcd.io/v1',
        kind: 'Kustomization',
        metadata: { name },
        spec: {
          interval: '10m',
          path: `./namespaces/${name}/overlays/prod`,
          prune: true,
          targetNamespace: name,
          sourceRef: { kind: 'GitRepository', name: 'nsops' },
        },
      },
    })
  })
  after(async () => {
    fs.rmSync(dir, { recursive: true, force: true })
    state.leave()
    const { kube } = await testCluster()
    await kube.core.deleteNamespace({ name: devNs }).catch(() => {})
  })

  const ks = async () => {
    const { kube } = await testCluster()
    return kube.custom.getNamespacedCustomObject({
      group: 'kustomize.toolkit.fluxcd.io',
      version: 'v1',
      namespace: 'flux-system',
      plural: 'kustomizations',
      name,
    }) as Promise<{
      spec: { suspend?: boolean }
      metadata: { annotations?: Record<string, string> }
    }>
  }

  it('holds nothing in Flux when the dev objects overlap nothing its Kustomization manages (flux.hold auto)', async () => {
    const { kube } = await testCluster()
    const loop = new DevLoop(kube, await loadNamespace(name), { forwards: false })
    try {
      await loop.start()
      assert.match(
        loop.status.flux,
        new RegExp(
          `holds nothing: the dev objects \\(in ${devNs}\\) overlap nothing Kustomization/flux-system/${name} manages`,
        ),
      )
      assert.notEqual((await ks()).spec.suspend, true)
    } finally {
      await loop.stop()
    }
  })

  it('keeps following health after everything was Current: a pod template no node can take shows at once', async () => {
    const { kube } = await testCluster()
    const loop = new DevLoop(kube, await loadNamespace(name), { forwards: false })
    const web = () => loop.status.resources.find((r) => r.kind === 'Deployment' && r.name === 'web')
    try {
      await loop.start()
      await until('web Current', async () => web()?.status === 'Current', 60_000)
      // by hand, as `kubectl patch` does it (its field manager): the exit still deletes web, since
      // kubectl is a person's edit, not another tool that owns the object too
      await kube.apps.patchNamespacedDeployment({
        name: 'web',
        namespace: devNs,
        fieldManager: 'kubectl-patch',
        body: [{ op: 'add', path: '/spec/template/spec/nodeSelector', value: { 'nsops.dev/no-such-node': 'true' } }],
      })
      await until('web no longer Current in the view', async () => web()?.status !== 'Current', 10_000)
      // and Failed once kstatus' window for an unschedulable pod has passed
      await until('web Failed', async () => web()?.status === 'Failed', 60_000)
    } finally {
      await loop.stop()
    }
  })

  it('suspends Flux (flux.hold kustomization), follows file edits, prunes, survives a broken file and restores everything on stop', async () => {
    const { kube } = await testCluster()
    const ns = await loadNamespace(name)
    const loop = new DevLoop(kube, ns, { forwards: false, hold: { policy: 'kustomization' } })
    let notes: string[] = []
    try {
      await loop.start()
      // Flux: suspended, with our marker
      const held = await ks()
      assert.equal(held.spec.suspend, true)
      assert.equal(JSON.parse(held.metadata.annotations![SUSPENDED_BY]).pid, process.pid)
      // a second dev.ts for the same namespace is refused while this one runs
      const second = await run(path.join(dir, 'dev.ts'), ['--ci', '--kubeconfig', (await testCluster()).kubeconfig], {
        env: { ...process.env, NSOPS_STATE_DIR: stateDir, CI: '1' },
      }).then(
        () => ({ code: 0, stderr: '' }),
        (e: { code: number; stderr: string }) => e,
      )
      assert.equal(second.code, 1)
      assert.match(second.stderr, /a dev loop for devloop-\d+ is already running on this machine \(\S+@\S+, pid \d+/)
      await kube.apps.readNamespacedDeployment({ name: 'web', namespace: devNs })

      // an edit is applied
      const svcFile = path.join(dir, 'base/web/service.yaml')
      const svc = fs.readFileSync(svcFile, 'utf8')
      fs.writeFileSync(svcFile, svc.replace('  labels:', '  annotations: { edited: "yes" }\n  labels:'))
      await until(
        'the edit in the API',
        async () =>
          (await kube.core.readNamespacedService({ name: 'web', namespace: devNs })).metadata?.annotations?.edited ===
          'yes',
      )

      // an editor's atomic save, here sed -i itself (a temp file renamed over the old one, as vim
      // and JetBrains also save), three times: node's recursive fs.watch lost the file after
      // the first; and the save is named by the file saved, not by sed's temp file
      const annotation = async () =>
        (await kube.core.readNamespacedService({ name: 'web', namespace: devNs })).metadata?.annotations?.saved
      fs.writeFileSync(svcFile, svc.replace('  labels:', '  annotations: { saved: "0" }\n  labels:'))
      await until('the plain save in the API', async () => (await annotation()) === '0', 15_000)
      for (const n of [1, 2, 3]) {
        await run('sed', ['-i', `s/saved: "${n - 1}"/saved: "${n}"/`, svcFile])
        await until(`sed -i save ${n} in the API`, async () => (await annotation()) === String(n), 15_000)
        assert.equal(loop.status.lastApply?.trigger, `changed ${path.join('base', 'web', 'service.yaml')}`)
      }

      // a new object appears, and is pruned once it leaves the overlay
      const kfile = path.join(dir, 'base/web/kustomization.yaml')
      const kbase = fs.readFileSync(kfile, 'utf8')
      fs.writeFileSync(
        path.join(dir, 'base/web/extra.yaml'),
        'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: extra }\ndata: { a: "1" }\n',
      )
      fs.writeFileSync(kfile, kbase.replace('pvc.yaml]', 'pvc.yaml, extra.yaml]'))
      await until('extra ConfigMap created', async () =>
        Boolean(await kube.core.readNamespacedConfigMap({ name: 'extra', namespace: devNs })),
      )
      fs.writeFileSync(kfile, kbase)
      await until('extra ConfigMap pruned', async () => {
        try {
          await kube.core.readNamespacedConfigMap({ name: 'extra', namespace: devNs })
          return false
        } catch (err) {
          return isApiError(err, 404)
        }
      })

      // a broken file is reported with file:line; the loop keeps running and recovers
      fs.writeFileSync(svcFile, 'apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  labels: [oops\n')
      await until(
        'the error in the status',
        async () => loop.status.phase === 'error' && /service\.yaml:\d+/.test(loop.status.error ?? ''),
      )
      fs.writeFileSync(svcFile, svc)
      await until('recovered', async () => loop.status.phase === 'watching')
    } finally {
      notes = await loop.stop()
    }
    assert.ok(
      notes.some((n) => /deleted \d+ dev-only/.test(n)),
      notes.join('\n'),
    )
    const after = await ks()
    assert.equal(after.spec.suspend, false)
    assert.equal(after.metadata.annotations?.[SUSPENDED_BY], undefined)
    await assert.rejects(
      kube.apps.readNamespacedDeployment({ name: 'web', namespace: devNs }),
      'dev-only Deployment deleted',
    )
    const pvc = await kube.core.readNamespacedPersistentVolumeClaim({ name: 'web-data', namespace: devNs })
    assert.equal(pvc.metadata?.name, 'web-data', 'PVCs are kept: nothing is lost')
  })

  it('runs typed zx tasks and hooks: on apply, on save, by hand; a failing beforeApply applies nothing', async () => {
    const { kube } = await testCluster()
    const marks = path.join(stateDir, `marks-${Date.now()}`)
    const lines = (f: string) => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8').trim().split('\n') : [])
    let failBefore = false
    const ns = {
      ...(await loadNamespace(name)),
      tasks: {
        applied: {
          on: 'apply' as const,
          run: async ({ $, namespace }: TaskContext) => {
            await $`sh -c ${`echo "apply ${namespace} $(pwd)" >> ${marks}.apply`}`
          },
        },
        saved: {
          on: 'save' as const,
          run: async ({ $ }: TaskContext) => {
            await $`sh -c ${`echo save >> ${marks}.save`}`
          },
        },
        broken: {
          run: async ({ $ }: TaskContext) => {
            await $`sh -c ${'echo going down >&2; exit 3'}`
          },
        },
      },
      hooks: {
        beforeApply: async ({ $ }: TaskContext) => {
          await $`sh -c ${`echo before >> ${marks}.before`}`
          // it regenerates a file in the watched folder, as a template hook does: that write
          // must not trigger another apply (which would run the hook again, forever)
          await $`sh -c ${`date +%s%N > base/web/generated.txt`}`
          if (failBefore) await $`false`
        },
      },
    }
    const loop = new DevLoop(kube, ns, { forwards: false })
    const taskState = (n: string) => loop.status.tasks?.find((t) => t.name === n)?.state
    try {
      await loop.start()
      await until('the apply task ran', async () => taskState('applied') === 'ok')
      // $ ran in the namespace folder, for the dev namespace
      assert.deepEqual(lines(`${marks}.apply`), [`apply ${devNs} ${dir}`])
      assert.deepEqual(lines(`${marks}.save`), [], 'no save yet')
      assert.deepEqual(lines(`${marks}.before`), ['before'])

      const svcFile = path.join(dir, 'base/web/service.yaml')
      const svc = fs.readFileSync(svcFile, 'utf8')
      fs.writeFileSync(svcFile, svc.replace('  labels:', '  annotations: { saved: "1" }\n  labels:'))
      await until('the save task ran', async () => lines(`${marks}.save`).length === 1 && taskState('saved') === 'ok')
      await until('the apply task ran again', async () => lines(`${marks}.apply`).length === 2)

      // by hand (the key in the view, the page's button): a failure says how it failed
      assert.equal(await loop.runTask('broken'), false)
      const broken = loop.status.tasks?.find((t) => t.name === 'broken')
      assert.equal(broken?.state, 'failed')
      assert.match(broken?.error ?? '', /exited with code 3/)
      assert.match(fs.readFileSync(path.join(stateDir, 'tasks', name, 'broken.log'), 'utf8'), /going down/)

      assert.deepEqual(lines(`${marks}.before`), ['before', 'before'], "the hook's own write triggered no apply")

      // a failing beforeApply: the change is not applied, the error names the hook
      failBefore = true
      fs.writeFileSync(svcFile, svc.replace('  labels:', '  annotations: { saved: "2" }\n  labels:'))
      await until(
        'the hook failure in the status',
        async () =>
          loop.status.phase === 'error' && /the beforeApply hook of devloop-\d+ failed/.test(loop.status.error ?? ''),
      )
      assert.equal(
        (await kube.core.readNamespacedService({ name: 'web', namespace: devNs })).metadata?.annotations?.saved,
        '1',
        'nothing was applied',
      )
      failBefore = false
      fs.writeFileSync(svcFile, svc)
      await until('recovered', async () => loop.status.phase === 'watching')
    } finally {
      await loop.stop()
    }
  })

  it('renders and applies a Tanka environment and re-applies after a one-line jsonnet change', async () => {
    const { kube } = await testCluster()
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-tk-dev-'))
    const envDir = path.join(root, 'environments', 'dev')
    fs.mkdirSync(envDir, { recursive: true })
    fs.mkdirSync(path.join(root, 'lib'))
    fs.writeFileSync(path.join(root, 'jsonnetfile.json'), '{"version": 1, "dependencies": []}\n')
    fs.writeFileSync(
      path.join(envDir, 'spec.json'),
      JSON.stringify({
        apiVersion: 'tanka.dev/v1alpha1',
        kind: 'Environment',
        metadata: { name: 'environments/dev' },
        spec: { namespace: devNs },
      }),
    )
    const main = (v: string) =>
      `{\n  cm: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'tk-settings' }, data: { level: '${v}' } },\n}\n`
    fs.writeFileSync(path.join(envDir, 'main.jsonnet'), main('info'))
    await kube.core.createNamespace({ body: { metadata: { name: devNs } } }).catch(() => {})
    const loop = new TankaLoop(kube, loadEnvironment('dev', root))
    try {
      await loop.start()
      assert.equal(
        (await kube.core.readNamespacedConfigMap({ name: 'tk-settings', namespace: devNs })).data?.level,
        'info',
      )
      fs.writeFileSync(path.join(envDir, 'main.jsonnet'), main('debug'))
      await until(
        're-rendered',
        async () =>
          (await kube.core.readNamespacedConfigMap({ name: 'tk-settings', namespace: devNs })).data?.level === 'debug',
      )
    } finally {
      await loop.stop()
      fs.rmSync(root, { recursive: true, force: true })
    }
  })
})
