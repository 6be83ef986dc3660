// HelmReleases (issue 25): the shipped one, monitoring's grafana (a HelmRelease of the repo's
// own chart, namespaces/monitoring/charts/nsops-app), on a sim of its own with the real
// source-, kustomize- and helm-controller, in a copy of this repository that dev-up's bootstrap
// pushed to the sim's git server.
//   - dev loop: a save of grafana's dev values → the upgraded Deployment seen by a watch;
//     baseline in the same run: a save of a plain manifest (prometheus' Deployment) → seen.
//   - deploy: commit → HelmRelease Ready at the pushed revision (helm-controller upgraded it);
//     baseline in the same run: a deploy of a change no HelmRelease carries (an annotation on
//     prometheus' Service) → healthy.
import fs from 'node:fs'
import path from 'node:path'
import { Writable } from 'node:stream'
import { pathToFileURL } from 'node:url'
import { KubeConfig, Watch } from '@kubernetes/client-node'
import { SimCluster } from '../shared/cluster/sim/index.ts'
import { bootstrapLocalGitOps } from '../shared/cluster/sim/local-remote.ts'
import { namespacePaths, type NamespaceConfig } from '../shared/config/namespace-config.ts'
import { DevLoop } from '../shared/dev/loop.ts'
import { runDeploy } from '../shared/deploy/run.ts'
import { conditionOf, fluxKinds, type FluxObject } from '../shared/flux/kinds.ts'
import { clientsFor } from '../shared/kube/client.ts'
import { ciRepo } from '../test/ci-fixture.ts'
import { git } from '../test/git-fixture.ts'
import { timeEdits } from './edits.ts'
import { median, report } from './stats.ts'

const sink = () =>
  new Writable({
    write(_c, _e, cb) {
      cb()
    },
  })
const quiet = { info() {}, step() {}, ok() {}, warn() {}, fail() {} }

export default async function (): Promise<void> {
  const repo = ciRepo()
  const sim = new SimCluster({ dir: path.join(repo.root, 'sim') })
  try {
    const info = await sim.ensure({ flux: true })
    const kc = new KubeConfig()
    kc.loadFromFile(info.kubeconfig)
    const kube = clientsFor(kc, info.kubeconfig)
    await bootstrapLocalGitOps(kube, info.kubeconfig, repo.work)
    git(repo.work, 'branch', '-q', '-u', 'nsops-local/change')
    const mod = (await import(pathToFileURL(path.join(repo.work, 'namespaces/monitoring/namespace.ts')).href)) as {
      default: NamespaceConfig
    }
    const ns: NamespaceConfig = { ...mod.default, paths: namespacePaths(path.join(repo.work, 'namespaces/monitoring')) }
    const hr = async (namespace: string) =>
      (await kube.custom
        .getNamespacedCustomObject({ ...fluxKinds.HelmRelease, namespace, name: 'grafana' })
        .catch(() => undefined)) as FluxObject | undefined
    const until = async (what: string, ok: () => Promise<boolean>, ms = 300_000) => {
      const end = Date.now() + ms
      while (!(await ok())) {
        if (Date.now() > end) throw new Error(`bench: ${what} did not happen within ${ms / 1000} s`)
        await new Promise((r) => setTimeout(r, 100))
      }
    }
    await until(
      "prod's grafana installed by Flux",
      async () => conditionOf(await hr('monitoring'), 'Ready')?.status === 'True',
    )

    // ---- dev loop: values save → upgraded Deployment; plain manifest save → Deployment ----
    const values = path.join(ns.paths.overlays.dev, 'grafana-values.yaml')
    const valuesText = fs.readFileSync(values, 'utf8')
    const prom = path.join(ns.paths.base, 'prometheus', 'deployment.yaml')
    const promText = fs.readFileSync(prom, 'utf8')
    const loop = new DevLoop(kube, ns, { forwards: false })
    let viaRelease: number[] = []
    let plain: number[] = []
    let applied: number[] = []
    try {
      await loop.start()
      await until(
        "dev's grafana installed",
        async () => conditionOf(await hr(ns.namespaces.dev), 'Ready')?.status === 'True',
      )
      const envMark = (obj: unknown) =>
        (
          obj as { spec?: { template?: { spec?: { containers?: { env?: { name: string; value?: string }[] }[] } } } }
        ).spec?.template?.spec?.containers?.[0]?.env?.find((e) => e.name === 'BENCH_MARK')?.value
      // the same saves seen at the HelmRelease (the dev loop's apply) and at the Deployment
      // (helm-controller's upgrade): where the time goes
      const hrWatch = timeEditsAlso(
        kube,
        `/apis/helm.toolkit.fluxcd.io/v2/namespaces/${ns.namespaces.dev}/helmreleases`,
        'grafana',
        (obj) =>
          (
            obj as {
              spec?: {
                values?: { controllers?: { grafana?: { containers?: { grafana?: { env?: Record<string, string> } } } } }
              }
            }
          ).spec?.values?.controllers?.grafana?.containers?.grafana?.env?.BENCH_MARK,
      )
      viaRelease = await timeEdits(kube, {
        n: 10,
        watch: {
          path: `/apis/apps/v1/namespaces/${ns.namespaces.dev}/deployments`,
          query: { fieldSelector: 'metadata.name=grafana' },
        },
        onSave: hrWatch.saved,
        markOf: envMark,
        save: (mark) =>
          fs.writeFileSync(
            values,
            valuesText.replace(
              '          grafana:\n',
              `          grafana:\n            env:\n              BENCH_MARK: "${mark}"\n`,
            ),
          ),
      })
      applied = hrWatch.stop()
      plain = await timeEdits(kube, {
        n: 10,
        watch: {
          path: `/apis/apps/v1/namespaces/${ns.namespaces.dev}/deployments`,
          query: { fieldSelector: 'metadata.name=prometheus' },
        },
        markOf: (obj) =>
          (obj as { metadata?: { annotations?: Record<string, string> } }).metadata?.annotations?.['nsops.dev/bench'],
        save: (mark) =>
          fs.writeFileSync(
            prom,
            promText.replace(/^metadata:\n/m, `metadata:\n  annotations:\n    nsops.dev/bench: "${mark}"\n`),
          ),
      })
    } finally {
      await loop.stop()
      fs.writeFileSync(values, valuesText)
      fs.writeFileSync(prom, promText)
    }
    report('dev loop: values save → upgraded Deployment seen', viaRelease, 'through helm-controller')
    report('  of which save → HelmRelease applied (seen)', applied)
    report(
      '  baseline: plain manifest save → Deployment seen',
      plain,
      `the release adds ${(median(viaRelease) - median(plain)).toFixed(0)} ms`,
    )

    // ---- deploy: commit → HelmRelease Ready at the pushed revision ----
    const deploy = async () => {
      const r = await runDeploy({
        ns,
        repoDir: repo.work,
        yes: true,
        target: { kubeconfig: info.kubeconfig },
        timeoutMs: 240_000,
        log: quiet,
        out: sink(),
        prompt: sink(),
      })
      if (r.exitCode !== 0) throw new Error(`bench deploy: ${r.outcome}: ${r.summary}`)
      // from the commit to the end of the reconcile step (Flux applied it, helm-controller
      // released it, everything healthy)
      return r.steps
        .filter((s) => ['commit', 'charts', 'push', 'reconcile'].includes(s.name))
        .reduce((n, s) => n + s.elapsedMs, 0)
    }
    const release = path.join(ns.paths.base, 'grafana', 'helmrelease.yaml')
    const releaseText = fs.readFileSync(release, 'utf8')
    const svc = path.join(ns.paths.base, 'prometheus', 'service.yaml')
    const svcText = fs.readFileSync(svc, 'utf8')
    const withRelease: number[] = []
    const without: number[] = []
    for (let i = 0; i < 4; i++) {
      fs.writeFileSync(
        release,
        releaseText.replace(
          'GF_ANALYTICS_CHECK_FOR_UPDATES: "false"\n',
          `GF_ANALYTICS_CHECK_FOR_UPDATES: "false"\n              BENCH_DEPLOY: "${i}"\n`,
        ),
      )
      withRelease.push(await deploy())
      fs.writeFileSync(
        svc,
        svcText.replace(/^metadata:\n/m, `metadata:\n  annotations:\n    nsops.dev/bench: "${i}"\n`),
      )
      without.push(await deploy())
    }
    report('deploy: commit → HelmRelease Ready at the pushed revision', withRelease, 'values change, upgrade')
    report(
      '  baseline: commit → healthy, no release changed',
      without,
      `the release adds ${(median(withRelease) - median(without)).toFixed(0)} ms`,
    )
  } finally {
    await sim.stop({ purge: true })
    fs.rmSync(repo.root, { recursive: true, force: true })
  }
}

/** A second watch over the same saves: when each mark reached `name` at `apiPath` (ms after its save). */
function timeEditsAlso(
  kube: Parameters<typeof timeEdits>[0],
  apiPath: string,
  name: string,
  markOf: (obj: unknown) => string | undefined,
): { saved: (mark: string, at: number) => void; stop: () => number[] } {
  const savedAt = new Map<string, number>()
  const seen = new Map<string, number>()
  const ac = new Watch(kube.kc).watch(
    apiPath,
    { fieldSelector: `metadata.name=${name}` },
    (_t, obj) => {
      const mark = markOf(obj)
      if (mark !== undefined && !seen.has(mark)) seen.set(mark, performance.now())
    },
    () => {},
  )
  return {
    saved: (mark, at) => savedAt.set(mark, at),
    stop: () => {
      void ac.then((c) => c.abort())
      return [...savedAt].filter(([m]) => seen.has(m)).map(([m, t]) => seen.get(m)! - t)
    },
  }
}
