// What Flux builds, for a 60-Kustomization repository in the home-ops shape (a copy of
// test/fixtures/home-ops grown to 60 apps in 6 namespaces, each app a ks.yaml with a
// component, postBuild.substitute and dependsOn, substituted from the root's cluster-settings):
// - full: nsops renders the whole Flux tree (roots, then every app) through flux-build, in a
//   fresh process (bundled, as the CLI runs; and through tsx) and in a warm one (the library);
// - changed-only: one app's file changed → the Kustomizations that build it, re-rendered in a
//   warm process (the tree's roots kept: what `ci diff` and the dev loop pay per change);
// against the Flux team's own offline renderer in the same run, `flux build kustomization NAME
// --path … --kustomization-file … --dry-run` (pinned flux CLI), one per Kustomization.
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { repoRoot } from '../shared/core/paths.ts'
import { toolPath } from '../shared/tools/provision.ts'
import { FluxTree, buildFluxKustomization, stopFluxBuild } from '../shared/flux/build/index.ts'
import { median, report } from './stats.ts'
import { growHomeOps } from '../test/home-ops-grown.ts'

const run = promisify(execFile)

async function renderAll(dir: string): Promise<number> {
  const t0 = performance.now()
  const tree = await FluxTree.load(dir)
  let objects = 0
  for (const b of await Promise.all(tree.all().map((n) => tree.build(n)))) objects += b.objects.length
  if (tree.nodes.size !== 62) throw new Error(`expected 62 Kustomizations, found ${tree.nodes.size}`)
  if (!objects) throw new Error('nothing built')
  return performance.now() - t0
}

export default async function fluxBuildBench(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-flux-bench-'))
  try {
    const { apps } = growHomeOps(dir)
    const flux = await toolPath('flux')
    await toolPath('flux-build')
    const ksFile = (a: { ns: string; name: string }) => `./kubernetes/apps/${a.ns}/${a.name}/ks.yaml`
    const fluxBuild = (name: string, p: string, file: string) =>
      run(flux, ['build', 'kustomization', name, '--path', p, '--kustomization-file', file, '--dry-run'], {
        cwd: dir,
        maxBuffer: 64 << 20,
        env: { ...process.env, KUBECONFIG: '/nonexistent' },
      })

    // the baseline: flux build per Kustomization (60 apps + the two roots), one after the other
    const baseline: number[] = []
    const baselineOne: number[] = []
    for (let r = 0; r < 3; r++) {
      const t0 = performance.now()
      await fluxBuild('cluster-vars', './kubernetes/flux/vars', './kubernetes/flux/cluster/ks.yaml')
      await fluxBuild('cluster-apps', './kubernetes/apps', './kubernetes/flux/cluster/ks.yaml')
      for (const a of apps) {
        const t1 = performance.now()
        await fluxBuild(a.name, `./kubernetes/apps/${a.ns}/${a.name}/app`, ksFile(a))
        baselineOne.push(performance.now() - t1)
      }
      baseline.push(performance.now() - t0)
    }

    // nsops, fresh process each time: `just render` takes one namespace, so the whole tree is
    // the library in a new node process, run as the nsops CLI and the namespace scripts run
    // (shared/bin/run-bundled.mjs: one esbuild bundle with its V8 code cache, made by a first
    // run as after any edit of nsops); and through tsx, as the figures before round 3's
    // speed-up were taken (every module through tsx's loader, @kubernetes/client-node included)
    const script = `import { FluxTree } from ${JSON.stringify(path.join(repoRoot, 'shared/flux/build/index.ts'))}
async function main(): Promise<void> {
  const tree = await FluxTree.load(${JSON.stringify(dir)})
  await Promise.all(tree.all().map((n) => tree.build(n)))
  process.exit(0)
}
main().catch((err: unknown) => {
  console.error(err)
  process.exit(1)
})
`
    const scriptFile = path.join(dir, 'render.mts') // .mts: an ES module outside any package.json
    fs.writeFileSync(scriptFile, script)
    const node = path.join(repoRoot, 'node_modules/.bin/node')
    const bundled = () => run(node, [path.join(repoRoot, 'shared/bin/run-bundled.mjs'), scriptFile], { cwd: repoRoot })
    await bundled()
    const fresh: number[] = []
    const freshTsx: number[] = []
    for (let r = 0; r < 5; r++) {
      let t0 = performance.now()
      await bundled()
      fresh.push(performance.now() - t0)
      t0 = performance.now()
      await run(node, ['--import', 'tsx', scriptFile], { cwd: repoRoot })
      freshTsx.push(performance.now() - t0)
    }
    // warm (the library in this process, flux-build already running)
    await renderAll(dir)
    const warm: number[] = []
    for (let r = 0; r < 5; r++) warm.push(await renderAll(dir))

    // changed-only: one app's deployment changes; its Kustomization is re-rendered
    const tree = await FluxTree.load(dir)
    const target = apps[17]
    const file = path.join(dir, 'kubernetes/apps', target.ns, target.name, 'app/deployment.yaml')
    const changed: number[] = []
    for (let r = 0; r < 10; r++) {
      fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace(/image: (\S+):1\.0\.\d+/, `image: $1:1.0.${r + 1}`))
      const t0 = performance.now()
      const rel = path.relative(dir, file)
      const hit = tree
        .all()
        .filter((n) => rel.startsWith(`${(n.kustomization.spec.path ?? '.').replace(/^\.\//, '')}/`))
        .filter((n) => n.children.length === 0)
      for (const n of hit) await buildFluxKustomization(n.kustomization, dir)
      changed.push(performance.now() - t0)
    }

    report('flux build ks ×62 (flux CLI 2.9.5, one after the other)', baseline)
    report('flux build ks, one app', baselineOne)
    report(
      'nsops: the whole tree, fresh process (bundled)',
      fresh,
      `${(median(baseline) / median(fresh)).toFixed(1)}× the flux CLI`,
    )
    report(
      '  the same through tsx (no bundle)',
      freshTsx,
      `${(median(baseline) / median(freshTsx)).toFixed(1)}× the flux CLI`,
    )
    report('nsops: the whole tree, warm', warm, `${(median(baseline) / median(warm)).toFixed(1)}× the flux CLI`)
    report(
      'nsops: one changed app re-rendered (warm)',
      changed,
      `target ≤ 500 ms; flux CLI for that one app: ${median(baselineOne).toFixed(0)} ms`,
    )
  } finally {
    stopFluxBuild()
    fs.rmSync(dir, { recursive: true, force: true })
  }
}
