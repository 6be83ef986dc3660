// Offline render + validate of a namespace of 10 HelmReleases (the app-template-shaped test
// chart, each app with its own values, in the home-ops shape: one Flux Kustomization applying
// the HelmReleases): what `just validate --offline` does for it — the Flux build, each release
// rendered (chart from the cache by digest, values schema checked without the network), every
// object through the strict schema check — against doing it by hand in the same run: per
// release, `helm template` (with --skip-schema-validation: the chart's schema $refs the
// internet, on which helm fails offline) and the same schema check (shared/schema, one call per
// release). nsops is measured with the render cache cold (every release through helm) and warm
// (a second validate of an unchanged namespace: no helm process at all).
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { parseAllDocuments } from 'yaml'
import { repoRoot } from '../shared/core/paths.ts'
import { buildProd, forgetFluxTrees, stopFluxBuild } from '../shared/flux/build/index.ts'
import { chartsCacheDir, pullChart } from '../shared/helm/pull.ts'
import type { ManifestObject } from '../shared/kube/refs.ts'
import { checkSchemas, renderTarget } from '../shared/schema/index.ts'
import { toolPath } from '../shared/tools/provision.ts'
import { toolSpec } from '../shared/tools/versions.ts'
import { median, report } from './stats.ts'

const run = promisify(execFile)
const APPS = 10
const NS = 'media'

function values(i: number): Record<string, unknown> {
  return {
    controllers: {
      main: {
        replicas: 1 + (i % 3),
        containers: {
          app: { image: { repository: `ghcr.io/home-operations/app${i}`, tag: `1.${i}.0` }, env: { TZ: 'Etc/UTC' } },
        },
      },
    },
    service: { main: { controller: 'main', ports: { http: { port: 8000 + i } } } },
    persistence: { config: { enabled: true, size: `${i + 1}Gi` } },
  }
}

/** A repository with one Flux Kustomization applying 10 HelmReleases of the in-repo chart. */
function makeRepo(dir: string): void {
  fs.cpSync(path.join(repoRoot, 'test/fixtures/charts/app-template-like'), path.join(dir, 'charts/app-template-like'), {
    recursive: true,
  })
  const apps = path.join(dir, 'kubernetes/apps', NS)
  fs.mkdirSync(path.join(dir, 'kubernetes/flux'), { recursive: true })
  fs.mkdirSync(apps, { recursive: true })
  fs.writeFileSync(
    path.join(dir, 'kubernetes/flux/apps.yaml'),
    `apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: { name: ${NS}, namespace: flux-system }
spec:
  interval: 10m
  path: ./kubernetes/apps/${NS}
  prune: true
  targetNamespace: ${NS}
  sourceRef: { kind: GitRepository, name: flux-system }
`,
  )
  const files: string[] = []
  for (let i = 0; i < APPS; i++) {
    const file = `app${i}.yaml`
    files.push(file)
    fs.writeFileSync(
      path.join(apps, file),
      JSON.stringify({
        apiVersion: 'helm.toolkit.fluxcd.io/v2',
        kind: 'HelmRelease',
        metadata: { name: `app${i}` },
        spec: {
          interval: '1h',
          chart: {
            spec: {
              chart: './charts/app-template-like',
              sourceRef: { kind: 'GitRepository', name: 'flux-system', namespace: 'flux-system' },
            },
          },
          values: values(i),
        },
      }),
    )
  }
  fs.writeFileSync(
    path.join(apps, 'kustomization.yaml'),
    `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - namespace.yaml\n${files.map((f) => `  - ${f}`).join('\n')}\n`,
  )
  fs.writeFileSync(path.join(apps, 'namespace.yaml'), `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${NS}\n`)
}

export default async function helmRenderBench(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-helm-bench-'))
  const saved = process.env.NSOPS_CHARTS_CACHE
  process.env.NSOPS_CHARTS_CACHE = path.join(dir, 'cache')
  try {
    const repo = path.join(dir, 'repo')
    makeRepo(repo)
    const helm = await toolPath('helm')
    const target = await renderTarget()
    const scope = {
      name: NS,
      namespaces: { prod: NS },
      paths: { root: path.join(repo, 'namespaces', NS), overlays: { prod: path.join(repo, 'namespaces', NS, 'prod') } },
    }
    const schemaOpts = { overlayDir: path.join(repo, 'kubernetes/apps', NS), searchDir: repo, relativeTo: repo }

    /** nsops: what validate --offline does for the namespace. */
    const nsops = async (): Promise<number> => {
      forgetFluxTrees()
      const t0 = performance.now()
      const built = await buildProd(scope, repo, { helm: { ...target, warn: () => {} } })
      const rendered = built.releases.flatMap((r) => [...r.objects, ...r.hooks])
      if (built.releases.length !== APPS) throw new Error(`rendered ${built.releases.length} releases`)
      await checkSchemas([...built.objects, ...rendered], schemaOpts)
      return performance.now() - t0
    }

    // by hand: the chart package (pulled once, as a user would have it), then per release
    // helm template + the same schema check
    const chart = await pullChart({ type: 'dir', path: path.join(repo, 'charts/app-template-like') }, 'bench')
    const byHand = async (): Promise<number> => {
      const t0 = performance.now()
      for (let i = 0; i < APPS; i++) {
        const valuesFile = path.join(dir, `values-${i}.json`)
        fs.writeFileSync(valuesFile, JSON.stringify(values(i)))
        const { stdout } = await run(
          helm,
          [
            'template',
            `app${i}`,
            chart.file,
            '--namespace',
            NS,
            '--values',
            valuesFile,
            '--kube-version',
            toolSpec('kubernetes').version,
            '--skip-schema-validation',
          ],
          { maxBuffer: 64 << 20 },
        )
        const objects = parseAllDocuments(stdout)
          .map((d) => d.toJS() as ManifestObject | null)
          .filter((o): o is ManifestObject => !!o)
          .map((o) => ({ ...o, metadata: { ...o.metadata, namespace: o.metadata.namespace ?? NS } }))
        await checkSchemas(objects, schemaOpts)
      }
      return performance.now() - t0
    }

    // warm-ups: the schema validators compiled (both sides share them), flux-build started
    await byHand()
    await nsops()
    const hand: number[] = []
    const cold: number[] = []
    const warm: number[] = []
    for (let r = 0; r < 5; r++) {
      hand.push(await byHand())
      // cold: the render cache emptied (charts stay cached by digest: offline either way)
      fs.rmSync(path.join(chartsCacheDir(), 'rendered'), { recursive: true, force: true })
      cold.push(await nsops())
      warm.push(await nsops())
    }
    report(`by hand: helm template + schema check ×${APPS}`, hand)
    report(`nsops: render + validate, render cache cold`, cold, `${(median(hand) / median(cold)).toFixed(1)}× by hand`)
    report(
      `nsops: render + validate, unchanged (cache warm)`,
      warm,
      `${(median(hand) / median(warm)).toFixed(1)}× by hand (target ≥ 2×)`,
    )
  } finally {
    stopFluxBuild()
    if (saved === undefined) delete process.env.NSOPS_CHARTS_CACHE
    else process.env.NSOPS_CHARTS_CACHE = saved
    fs.rmSync(dir, { recursive: true, force: true })
  }
}
