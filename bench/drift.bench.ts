// Drift of arr-stack (36 objects) and of a 400-object namespace against
// `flux diff kustomization NAME --path DIR` with the provisioned flux CLI, on the same sim
// cluster with Flux's own controllers, in the same run. Both do a build plus one server-side
// dry run per object; drift also reads managedFields, the inventory and lists the namespace
// for extras. Ours is measured as the library call and as a fresh process (node start-up
// included), bundled as the namespace scripts are: as a user runs it (the commit's build and
// the dry runs of unchanged objects kept from an earlier report, the bundle's V8 code cache
// made), and with each cache off in turn, so the figure of a first report after a new commit
// is there too.
import { benchApp } from './app-manifest.ts'
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { computeDrift } from '../shared/drift/compute.ts'
import { loadNamespace } from '../shared/config/namespaces.ts'
import { defineNamespace, namespacePaths, type NamespaceConfig } from '../shared/config/namespace-config.ts'
import { repoRoot } from '../shared/core/paths.ts'
import { toolPath } from '../shared/tools/provision.ts'
import { gitOpsWorld, type GitOpsWorld } from '../test/e2e/gitops-fixture.ts'
import { median, report } from './stats.ts'

const run = promisify(execFile)
const RUNS = 5

function bigNamespace(w: GitOpsWorld, apps: number): void {
  const dir = 'namespaces/big/overlays/prod'
  const docs: string[] = []
  for (let i = 0; i < apps; i++) {
    docs.push(benchApp(i))
  }
  w.write(`${dir}/apps.yaml`, `${docs.join('\n---\n')}\n`)
  w.write(`${dir}/namespace.yaml`, 'apiVersion: v1\nkind: Namespace\nmetadata: { name: big }\n')
  w.write(`${dir}/kustomization.yaml`, 'namespace: big\nresources: [namespace.yaml, apps.yaml]\n')
}

async function kustomization(w: GitOpsWorld, name: string): Promise<void> {
  await w.kube.custom.createNamespacedCustomObject({
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
        timeout: '5m',
        path: `./namespaces/${name}/overlays/prod`,
        prune: true,
        wait: false,
        targetNamespace: name,
        sourceRef: { kind: 'GitRepository', name: 'demo-src' },
      },
    },
  })
}

async function waitApplied(w: GitOpsWorld, name: string, sha: string): Promise<void> {
  const end = Date.now() + 180_000
  for (;;) {
    const k = (await w.kube.custom.getNamespacedCustomObject({
      group: 'kustomize.toolkit.fluxcd.io',
      version: 'v1',
      namespace: 'flux-system',
      plural: 'kustomizations',
      name,
    })) as { status?: { lastAppliedRevision?: string } }
    if (k.status?.lastAppliedRevision?.endsWith(sha)) return
    if (Date.now() > end) throw new Error(`Flux did not apply ${name} at ${sha}`)
    await new Promise((r) => setTimeout(r, 250))
  }
}

export default async function (): Promise<void> {
  const flux = await toolPath('flux')
  const w = await gitOpsWorld()
  const tmp = fs.mkdtempSync(path.join(w.work, '..', 'bench-drift-'))
  try {
    // arr-stack as shipped, in the fixture's repository, under a Kustomization of its own
    fs.cpSync(path.join(repoRoot, 'namespaces/arr-stack'), path.join(w.work, 'namespaces/arr-stack'), {
      recursive: true,
      filter: (f) => !f.endsWith('.ts'),
    })
    bigNamespace(w, 200)
    const sha = await w.commitAndPush('bench: arr-stack and a 400-object namespace')
    await kustomization(w, 'arr-stack')
    await kustomization(w, 'big')
    await Promise.all([waitApplied(w, 'arr-stack', sha), waitApplied(w, 'big', sha)])

    const shipped = await loadNamespace('arr-stack')
    const arr: NamespaceConfig = { ...shipped, paths: namespacePaths(path.join(w.work, 'namespaces/arr-stack')) }
    const big: NamespaceConfig = {
      ...defineNamespace({ name: 'big', description: '400 objects', namespaces: { dev: 'big-dev', prod: 'big' } }),
      paths: namespacePaths(path.join(w.work, 'namespaces/big')),
    }

    for (const ns of [arr, big]) {
      const script = path.join(tmp, `drift-${ns.name}.mts`) // .mts: an ES module outside any package.json
      fs.writeFileSync(
        script,
        `import { runMain } from ${JSON.stringify(path.join(repoRoot, 'shared/core/cli.ts'))}
import { defineNamespace, namespacePaths } from ${JSON.stringify(path.join(repoRoot, 'shared/config/namespace-config.ts'))}
import { drift } from ${JSON.stringify(path.join(repoRoot, 'shared/commands/drift.ts'))}
${ns.name === 'arr-stack' ? `import shipped from ${JSON.stringify(path.join(repoRoot, 'namespaces/arr-stack/namespace.ts'))}` : ''}
// as ./namespaces/<ns>/drift.ts: namespace.ts imported statically (bundled), its paths in the fixture's clone
const base = ${ns.name === 'arr-stack' ? 'shipped' : "defineNamespace({ name: 'big', description: 'x', namespaces: { dev: 'big-dev', prod: 'big' } })"}
runMain(() => drift({ ...base, paths: namespacePaths(${JSON.stringify(ns.paths.root)}) }, process.argv.slice(2)))
`,
      )
      const objects = (await computeDrift(w.kube, ns)).objects.length
      // through the launcher a namespace script's shebang runs (shared/bin/nsops-node: the pinned
      // node, its heap flag, the bundle), which bundles this entry as it does namespaces/*/*.ts
      const bundled = (env: Record<string, string> = {}) =>
        run(path.join(repoRoot, 'shared/bin/nsops-node'), [script, '--kubeconfig', w.kubeconfig, '-o', 'json'], {
          maxBuffer: 64 << 20,
          env: { ...process.env, NSOPS_BUNDLE: '1', ...env },
        })
      // the bundle and its code cache are made by a first run, as after any edit of nsops; the
      // dry runs are kept once the server's schemas and admission configuration have been seen
      // unchanged for 10 s (drift/dry-runs.ts), as between a user's reports: a run after that
      await bundled()
      await new Promise((r) => setTimeout(r, 10_500))
      await bundled()
      const variants: { label: string; env: Record<string, string>; times: number[] }[] = [
        { label: 'fresh process (-o json)', env: {}, times: [] },
        {
          label: '  the same, nothing cached: a commit not built before (NSOPS_DRIFT_CACHE=0)',
          env: { NSOPS_DRIFT_CACHE: '0' },
          times: [],
        },
        {
          label: '  the same, and no V8 code cache either (NSOPS_CODE_CACHE=0, ESM bundle)',
          env: { NSOPS_DRIFT_CACHE: '0', NSOPS_CODE_CACHE: '0' },
          times: [],
        },
        {
          label: '  the same, built by the kustomize CLI + YAML parse (NSOPS_KUSTOMIZE_JSON=0, before JSON builds)',
          env: { NSOPS_KUSTOMIZE_JSON: '0' },
          times: [],
        },
      ]
      await bundled({ NSOPS_CODE_CACHE: '0' }) // its ESM bundle, made outside the measured runs
      const lib: number[] = []
      const theirs: number[] = []
      for (let i = 0; i < RUNS; i++) {
        let t0 = performance.now()
        const r = await computeDrift(w.kube, ns)
        lib.push(performance.now() - t0)
        if (r.drifted)
          throw new Error(
            `${ns.name} drifted on a clean cluster: ${JSON.stringify(r.objects.filter((o) => o.class === 'modified').slice(0, 2))}`,
          )
        // through the same esbuild bundle the namespace scripts run as (shared/bin/run-bundled.mjs)
        for (const v of variants) {
          t0 = performance.now()
          await bundled(v.env)
          v.times.push(performance.now() - t0)
        }
        t0 = performance.now()
        try {
          await run(
            flux,
            [
              'diff',
              'kustomization',
              ns.name,
              '--path',
              ns.paths.overlays.prod,
              '--kubeconfig',
              w.kubeconfig,
              '--namespace',
              'flux-system',
            ],
            { maxBuffer: 64 << 20 },
          )
        } catch (err) {
          if ((err as { code?: number }).code !== 1) throw err // 1 = a diff, still a measured run
        }
        theirs.push(performance.now() - t0)
      }
      report(`baseline: flux diff kustomization ${ns.name} --path (${objects} objects)`, theirs)
      report(`drift ${ns.name}, library call`, lib, `${(median(theirs) / median(lib)).toFixed(1)}× flux diff`)
      for (const v of variants)
        report(
          v.label.startsWith(' ') ? v.label : `drift ${ns.name}, ${v.label}`,
          v.times,
          `${(median(theirs) / median(v.times)).toFixed(1)}× flux diff`,
        )
    }
  } finally {
    // the bundles run-bundled.mjs cached for our temp scripts (keyed by the entry's path)
    for (const ns of ['arr-stack', 'big']) {
      const key = createHash('sha256')
        .update(path.join(tmp, `drift-${ns}.mts`))
        .digest('hex')
        .slice(0, 16)
      for (const k of [key, `${key}-esm`]) {
        for (const ext of ['mjs', 'cjs', 'cache', 'json'])
          fs.rmSync(path.join(repoRoot, 'node_modules/.nsops/run', `${k}.${ext}`), { force: true })
      }
    }
    fs.rmSync(tmp, { recursive: true, force: true })
    await w.stop()
  }
}
