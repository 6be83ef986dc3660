// Developing a namespace in place (namespace.ts `layout.dev.inPlace: true`), as the seed homelab
// did with Tilt: the working tree's build goes into prod's namespace itself, every object Flux
// also applies is held one by one (`kustomize.toolkit.fluxcd.io/reconcile: disabled`) — the
// HelmRelease too, so kustomize-controller leaves it and helm-controller upgrades prod's release
// to the working tree's values — and on every exit the holds go and Flux puts prod's spec back
// (helm-controller upgrades the release back to prod's values). Through the user's door, in a
// copy of this repository with a sim of its own and the real source-, kustomize- and
// helm-controller: `npx just dev-up` bootstraps Flux, then `npx just dev monitoring --ci` and
// `npx just dev-down` (the --ci end), then `npx just dev monitoring` stopped by Ctrl-C and by
// closing the terminal (tmux), and by a SIGTERM to its process group off a terminal.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { conditionOf, fluxKinds, type FluxObject } from '../../shared/flux/kinds.ts'
import { HELD_BY, RECONCILE_ANNOTATION, requestReconcile } from '../../shared/flux/index.ts'
import { isApiError, type Kube } from '../../shared/kube/client.ts'
import { simRepo, type SimRepo } from '../sim-repo-fixture.ts'
import { Terminal, tmuxAvailable } from '../tty.ts'
import { until } from '../until.ts'

const NS = 'namespaces/monitoring/namespace.ts'
const HELMRELEASE = 'namespaces/monitoring/base/grafana/helmrelease.yaml'
const APP = 'namespaces/monitoring/apps/grafana/app/kustomization.yaml'

type History = { version: number; status: string }[]

describe(
  'a namespace developed in place (layout.dev.inPlace): the HelmRelease held, prod upgraded back on exit',
  { skip: !tmuxAvailable() && 'tmux is not installed (.ci/run installs it)' },
  () => {
    let repo: SimRepo
    let kube: Kube
    const file = (f: string) => path.join(repo.work, f)

    before(() => {
      repo = simRepo()
    })
    after(() => repo?.close())

    const just = (args: string[], timeout = 600_000) => repo.just(args, timeout)
    const hr = () =>
      kube.custom.getNamespacedCustomObject({
        ...fluxKinds.HelmRelease,
        namespace: 'monitoring',
        name: 'grafana',
      }) as Promise<FluxObject>
    const revision = async () => ((await hr()).status?.history as History | undefined)?.[0]?.version ?? 0
    const settled = (o: FluxObject) =>
      conditionOf(o, 'Ready')?.status === 'True' && o.status?.observedGeneration === o.metadata.generation
    const logLevel = async () =>
      (
        await kube.apps.readNamespacedDeployment({ namespace: 'monitoring', name: 'grafana' })
      ).spec?.template.spec?.containers[0].env?.find((e) => e.name === 'GF_LOG_LEVEL')?.value
    const hrLogLevel = (o: FluxObject) =>
      (
        (
          o.spec?.values as {
            controllers?: { grafana?: { containers?: { grafana?: { env?: Record<string, string> } } } }
          }
        )?.controllers?.grafana?.containers?.grafana?.env ?? {}
      ).GF_LOG_LEVEL
    const scratchExists = () =>
      kube.core.readNamespacedConfigMap({ namespace: 'monitoring', name: 'inplace-scratch' }).then(
        () => true,
        (e) => (isApiError(e, 404) ? false : Promise.reject(e)),
      )

    /** Prod's spec back: no hold, helm-controller upgraded the release past `devRevision` to prod's values. */
    const prodBack = async (devRevision: number) => {
      const o = await until(
        "prod's grafana released again and upgraded back by helm-controller",
        async () => {
          const x = await hr()
          return !x.metadata.annotations?.[RECONCILE_ANNOTATION] &&
            hrLogLevel(x) === undefined &&
            settled(x) &&
            (await revision()) > devRevision
            ? x
            : undefined
        },
        // kustomize-controller waits for monitoring-prometheus (dependsOn) and for health
        // (wait: true); on a loaded machine (load 35 on 2 cores) that took more than 3 min
        420_000,
      )
      assert.equal(o.metadata.annotations?.[HELD_BY], undefined, 'our marker is gone')
      assert.equal((o.status?.history as History)[0].status, 'deployed')
      await until('the Deployment with prod’s env again', async () => (await logLevel()) === undefined, 60_000)
      assert.equal(await scratchExists(), false, 'the dev-only ConfigMap is deleted')
      const pvc = await kube.core.readNamespacedPersistentVolumeClaim({ namespace: 'monitoring', name: 'grafana-data' })
      assert.equal(pvc.metadata?.deletionTimestamp, undefined, "prod's PVC is untouched")
    }

    /** The working tree: in place, a values change, and a ConfigMap prod does not have. */
    const developInPlace = () => {
      const ns = fs.readFileSync(file(NS), 'utf8')
      fs.writeFileSync(
        file(NS),
        ns
          .replace("namespaces: { dev: 'monitoring-dev', prod: 'monitoring' },", "namespaces: { prod: 'monitoring' },")
          .replace(
            "    root: 'namespaces/monitoring',\n",
            "    root: 'namespaces/monitoring',\n    dev: { inPlace: true },\n",
          ),
      )
      assert.match(fs.readFileSync(file(NS), 'utf8'), /inPlace: true/)
      const hrYaml = fs.readFileSync(file(HELMRELEASE), 'utf8')
      fs.writeFileSync(
        file(HELMRELEASE),
        hrYaml.replace(
          '              GF_ANALYTICS_CHECK_FOR_UPDATES: "false"\n',
          '              GF_ANALYTICS_CHECK_FOR_UPDATES: "false"\n              GF_LOG_LEVEL: debug\n',
        ),
      )
      fs.writeFileSync(
        path.join(path.dirname(file(APP)), 'scratch.yaml'),
        'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: inplace-scratch }\ndata: { from: working-tree }\n',
      )
      fs.writeFileSync(
        file(APP),
        fs.readFileSync(file(APP), 'utf8').replace('  - domain.yaml\n', '  - domain.yaml\n  - scratch.yaml\n'),
      )
    }

    let prodRevision = 0

    it('bootstraps Flux on the sim; Flux installs prod’s grafana HelmRelease', async () => {
      // as committed (monitoring-dev, not in place): dev-up pushes HEAD to the sim's git server,
      // publishes the chart and points Flux at it
      const up = await just(['dev-up', 'monitoring', '--ci', '--down', '--no-ui', '--timeout', '8m'], 900_000)
      assert.equal(up.code, 0, up.out)
      kube = repo.kube()
      const prod = await until(
        "prod's grafana installed by Flux",
        async () => {
          const o = await hr().catch(() => undefined)
          return o && settled(o) && (o.status?.history as unknown[] | undefined)?.length ? o : undefined
        },
        480_000,
      )
      prodRevision = (prod.status?.history as History)[0].version
      assert.equal(hrLogLevel(prod), undefined)
      // kustomize-controller's inventory lists the HelmRelease: the finder sees it as Flux's
      await until(
        'monitoring-grafana applied with an inventory',
        async () => {
          const ks = (await kube.custom.getNamespacedCustomObject({
            ...fluxKinds.Kustomization,
            namespace: 'flux-system',
            name: 'monitoring-grafana',
          })) as FluxObject
          return JSON.stringify(ks.status?.inventory ?? {}).includes(
            'monitoring_grafana_helm.toolkit.fluxcd.io_HelmRelease',
          )
        },
        60_000,
      )
    })

    it('dev --ci develops it in place: the HelmRelease held, prod’s release upgraded to the working tree’s values; dev-down puts prod back', async () => {
      assert.ok(kube, 'bootstrapped')
      developInPlace()
      const ci = await just(['dev', 'monitoring', '--ci', '--timeout', '8m'], 900_000)
      assert.equal(ci.code, 0, ci.out)
      assert.match(
        ci.out,
        /monitoring: developed in place: prod's namespace itself, what Flux also applies held until the loop ends, in monitoring/,
      )
      assert.match(
        ci.out,
        /Flux holds \d+ objects \([^)]*\): one by one \(kustomize\.toolkit\.fluxcd\.io\/reconcile: disabled/,
      )
      // helm-controller may start another reconcile of the held release right after the verdict
      // (CI saw "Fulfilling prerequisites" at once): wait for it to settle, not a single read
      let last: FluxObject | undefined
      const held = await until(
        "prod's HelmRelease settled on the working tree's spec",
        async () => {
          last = await hr()
          return settled(last) ? last : undefined
        },
        300_000,
      ).catch((err: Error) => {
        throw new Error(`${err.message}; last status: ${JSON.stringify(last?.status)}`, { cause: err })
      })
      assert.equal(held.metadata.annotations?.[RECONCILE_ANNOTATION], 'disabled', 'the HelmRelease is held')
      assert.ok(held.metadata.annotations?.[HELD_BY])
      assert.equal(hrLogLevel(held), 'debug', "the working tree's values on prod's HelmRelease")
      const devRevision = await revision()
      assert.ok(
        devRevision > prodRevision,
        `helm-controller upgraded prod's release (${prodRevision} → ${devRevision})`,
      )
      assert.equal(await logLevel(), 'debug', "the Deployment helm-controller made has the working tree's env")
      assert.equal(await scratchExists(), true)
      const ks = (await kube.custom.getNamespacedCustomObject({
        ...fluxKinds.Kustomization,
        namespace: 'flux-system',
        name: 'monitoring-grafana',
      })) as FluxObject
      assert.notEqual(ks.spec?.suspend, true, 'the Kustomization itself keeps running')
      // kustomize-controller reconciles meanwhile: the held HelmRelease keeps the dev spec
      const handled = async () =>
        (
          (await kube.custom.getNamespacedCustomObject({
            ...fluxKinds.Kustomization,
            namespace: 'flux-system',
            name: 'monitoring-grafana',
          })) as FluxObject
        ).status?.lastHandledReconcileAt
      const before = await handled()
      await requestReconcile(kube, { kind: 'Kustomization', namespace: 'flux-system', name: 'monitoring-grafana' })
      await until('the reconcile to be handled', async () => (await handled()) !== before, 60_000)
      assert.equal(hrLogLevel(await hr()), 'debug', 'still the dev values after a Flux reconcile')

      const status = await just(['dev-status'], 120_000)
      assert.equal(status.code, 0, status.out)
      assert.match(status.out, /monitoring[^\n]*developed in place/)

      const down = await just(['dev-down', '--keep-cluster'])
      assert.equal(down.code, 0, down.out)
      assert.match(down.out, /released Flux's hold on \d+ objects/)
      await prodBack(devRevision)
    })

    /** Until prod's release runs the working tree's values (the loop's apply, helm-controller's upgrade); its revision. */
    const upgradedToDev = async () => {
      let devRevision = 0
      await until(
        "prod's release upgraded to the working tree's values",
        async () => {
          const o = await hr()
          devRevision = await revision()
          return (
            o.metadata.annotations?.[RECONCILE_ANNOTATION] === 'disabled' &&
            hrLogLevel(o) === 'debug' &&
            settled(o) &&
            (await logLevel()) === 'debug'
          )
        },
        300_000,
      )
      return devRevision
    }
    const sessionGone = () =>
      until('the dev loop to end', async () => !fs.existsSync(path.join(repo.state, 'dev', 'monitoring.json')), 180_000)

    it('dev in a terminal, Ctrl-C: released, and helm-controller upgrades prod’s release back', async () => {
      assert.ok(kube, 'bootstrapped')
      const t = await Terminal.open(['npx', 'just', 'dev', 'monitoring', '--no-ui', '--no-forwards'], {
        cwd: repo.work,
        env: repo.env,
      })
      let devRevision = 0
      try {
        await t.waitFor(/developed in place/, 120_000)
        devRevision = await upgradedToDev()
        assert.ok(devRevision > prodRevision)
        await t.waitFor(new RegExp(`nsops-app@0\\.1\\.0 r${devRevision} upgrade succeeded`), 60_000)
        await t.press('C-c')
        const code = await t.waitExit(180_000).catch(async (err: Error) => {
          throw new Error(`${err.message}; the screen:\n${await t.screen()}`, { cause: err })
        })
        assert.equal(code, 130)
        assert.match(await t.screen(), /released Flux's hold on \d+ objects/)
      } finally {
        await t.close()
      }
      await prodBack(devRevision)
    })

    it('closing the terminal (SIGHUP): released, prod’s release upgraded back', async () => {
      assert.ok(kube, 'bootstrapped')
      const t = await Terminal.open(['npx', 'just', 'dev', 'monitoring', '--no-ui', '--no-forwards'], {
        cwd: repo.work,
        env: repo.env,
      })
      let devRevision = 0
      try {
        await t.waitFor(/developed in place/, 120_000)
        devRevision = await upgradedToDev()
        await t.hangUp()
        await sessionGone()
      } finally {
        await t.close()
      }
      await prodBack(devRevision)
    })

    it('SIGTERM (off a terminal): released, prod’s release upgraded back', async () => {
      assert.ok(kube, 'bootstrapped')
      const child = spawn('npx', ['just', 'dev', 'monitoring', '--no-ui', '--no-forwards'], {
        cwd: repo.work,
        env: { ...repo.env, CI: '1', NO_COLOR: '1' },
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true, // its own process group, as a service manager's job
      })
      let out = ''
      child.stdout.on('data', (b) => (out += b))
      child.stderr.on('data', (b) => (out += b))
      // 'close': every holder of its output has ended — the dev process below npx and just too
      let ended = false
      const closed = new Promise<void>((resolve) =>
        child.on('close', () => {
          ended = true
          resolve()
        }),
      )
      let devRevision = 0
      try {
        await until('the loop to say it develops in place', async () => out.includes('developed in place'), 120_000)
        devRevision = await upgradedToDev()
        process.kill(-child.pid!, 'SIGTERM')
        // the group's signal reaches npx, just and the dev loop at once, as a service manager's stop does
        let timer: NodeJS.Timeout | undefined
        await Promise.race([
          closed,
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error(`the dev loop did not exit within 180 s:\n${out}`)), 180_000)
          }),
        ]).finally(() => clearTimeout(timer))
        assert.match(out, /released Flux's hold on \d+ objects/)
      } finally {
        if (!ended) process.kill(-child.pid!, 'SIGKILL')
      }
      await prodBack(devRevision)
    })
  },
)
