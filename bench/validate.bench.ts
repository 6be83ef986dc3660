// Validate = kustomize build + strict schema validation (the cluster's OpenAPI) + server-side
// dry run of every object, for a 40-object and a 400-object overlay, against
// `kubectl kustomize DIR | kubectl apply --dry-run=server -f -` on the same cluster in the same
// run (target ≥ 3×). Offline: build + strict schemas (the pinned set) against
// `kustomize build | kubeconform -strict` with the very same schemas exported in its layout
// (kubeconform v0.8.0 is built from its Go module for the bench only; target: at least as
// fast). Ours is measured as the library call (what `just validate` and deploy run): with the
// build kept from the run before (build cache: nothing under the overlay changed since), and
// built afresh (NSOPS_BUILD_CACHE=0: the first validate after an edit); node's start-up is
// measured by bench/startup.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { validateBuild } from '../shared/deploy/validate.ts'
import { buildKustomization, type ManifestObject } from '../shared/kustomize/build.ts'
import { cacheDir } from '../shared/core/paths.ts'
import { checkSchemas, offlineSchemas, type OfflineSchemas } from '../shared/schema/index.ts'
import { toolPath } from '../shared/tools/provision.ts'
import { withBenchCluster } from './cluster.ts'
import { median, report } from './stats.ts'
import { benchApp } from './app-manifest.ts'

function overlay(objects: number): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `nsops-bench-kz-${objects}-`))
  const base = path.join(dir, 'base')
  fs.mkdirSync(base)
  const resources: string[] = []
  for (let i = 0; i < objects / 2; i++) {
    fs.writeFileSync(path.join(base, `app-${i}.yaml`), `${benchApp(i)}\n`)
    resources.push(`app-${i}.yaml`)
  }
  fs.writeFileSync(
    path.join(base, 'kustomization.yaml'),
    `resources:\n${resources.map((r) => `  - ${r}`).join('\n')}\n`,
  )
  const ov = path.join(dir, 'overlay')
  fs.mkdirSync(ov)
  fs.writeFileSync(
    path.join(ov, 'kustomization.yaml'),
    'namespace: default\nlabels:\n  - pairs: { env: bench }\nresources:\n  - ../base\n',
  )
  // a checkout made a while ago: a build right after its files were written is not kept
  const past = new Date(Date.now() - 60_000)
  for (const e of fs.readdirSync(dir, { recursive: true, withFileTypes: true }))
    fs.utimesSync(path.join(e.parentPath, e.name), past, past)
  fs.utimesSync(dir, past, past)
  return ov
}

/** kubeconform v0.8.0 from its module (bench only), or undefined when it cannot be built here. */
function kubeconform(): string | undefined {
  const bin = path.join(cacheDir(), 'bench-tools', 'kubeconform')
  if (fs.existsSync(bin)) return bin
  try {
    execFileSync('go', ['install', 'github.com/yannh/kubeconform/cmd/kubeconform@v0.8.0'], {
      env: { ...process.env, GOBIN: path.dirname(bin), GOTOOLCHAIN: 'local' },
      stdio: 'ignore',
      timeout: 600_000,
    })
    return bin
  } catch {
    return undefined
  }
}

/** Our converted schemas for the kinds in `objects`, one self-contained file per kind, named for kubeconform's template. */
async function exportSchemas(objects: ManifestObject[], source: OfflineSchemas, dir: string): Promise<string> {
  fs.mkdirSync(dir, { recursive: true })
  for (const key of new Set(objects.map((o) => `${o.apiVersion} ${o.kind}`))) {
    const [apiVersion, kind] = key.split(' ')
    const doc = await source.load(apiVersion)
    const name = doc?.kinds[kind]
    if (!doc || !name) continue
    // kubeconform's .Group is the part before the slash, the version itself for v1
    const parts = apiVersion.split('/')
    fs.writeFileSync(
      path.join(dir, `${kind.toLowerCase()}_${parts[0]}_${parts[parts.length - 1]}.json`),
      JSON.stringify({ ...doc.components.schemas[name], components: doc.components }),
    )
  }
  return `${dir}/{{ .ResourceKind }}_{{ .Group }}_{{ .ResourceAPIVersion }}.json`
}

export default async function (): Promise<void> {
  const kubectl = await toolPath('kubectl')
  const kustomize = await toolPath('kustomize')
  const kc = kubeconform()
  await withBenchCluster(async (kube, kubeconfig) => {
    for (const n of [40, 400]) {
      const dir = overlay(n)
      const root = path.dirname(dir)
      const opts = { overlayDir: dir, nsDir: root, repoDir: root, namespace: 'default' }
      const ours: number[] = []
      const cold: number[] = []
      const theirs: number[] = []
      const offline: number[] = []
      const offlineKept: number[] = []
      const kcTimes: number[] = []
      const offlineYaml: number[] = []
      for (let i = 0; i < 5; i++) {
        if (i === 0) await buildKustomization(dir, { reuse: true }) // the run before: keeps the build
        let t0 = performance.now()
        const objects = await buildKustomization(dir, { reuse: true })
        const v = await validateBuild(objects, { ...opts, kube })
        if (v.server?.rejected.length) throw new Error(v.server.rejected[0].message)
        ours.push(performance.now() - t0)
        process.env.NSOPS_BUILD_CACHE = '0'
        try {
          t0 = performance.now()
          await validateBuild(await buildKustomization(dir, { reuse: true }), { ...opts, kube })
          cold.push(performance.now() - t0)
        } finally {
          delete process.env.NSOPS_BUILD_CACHE
        }
        t0 = performance.now()
        execFileSync('sh', [
          '-c',
          `"${kubectl}" kustomize "${dir}" | "${kubectl}" --kubeconfig "${kubeconfig}" apply --dry-run=server -f - >/dev/null`,
        ])
        theirs.push(performance.now() - t0)
        t0 = performance.now()
        await checkSchemas(await buildKustomization(dir), { overlayDir: dir, searchDir: root, relativeTo: root })
        offline.push(performance.now() - t0)
        t0 = performance.now()
        await checkSchemas(await buildKustomization(dir, { reuse: true }), {
          overlayDir: dir,
          searchDir: root,
          relativeTo: root,
        })
        offlineKept.push(performance.now() - t0)
        // the same with builds as before JSON answers: the kustomize CLI, its YAML parsed
        process.env.NSOPS_KUSTOMIZE_JSON = '0'
        try {
          t0 = performance.now()
          await checkSchemas(await buildKustomization(dir), { overlayDir: dir, searchDir: root, relativeTo: root })
          offlineYaml.push(performance.now() - t0)
        } finally {
          delete process.env.NSOPS_KUSTOMIZE_JSON
        }
      }
      if (kc) {
        const objects = await buildKustomization(dir)
        const location = await exportSchemas(objects, await offlineSchemas(), path.join(root, 'kubeconform-schemas'))
        for (let i = 0; i < 5; i++) {
          const t0 = performance.now()
          execFileSync('sh', [
            '-c',
            `"${kustomize}" build "${dir}" | "${kc}" -strict -summary -schema-location '${location}' >/dev/null`,
          ])
          kcTimes.push(performance.now() - t0)
        }
      }
      report(`baseline: kubectl kustomize | kubectl apply --dry-run=server (${n} objects)`, theirs)
      report(
        `build + strict schemas (cluster OpenAPI) + server dry-run, nsops library (${n} objects)`,
        ours,
        `${(median(theirs) / median(ours)).toFixed(1)}× kubectl`,
      )
      report(
        `  the same, built afresh: nothing kept (NSOPS_BUILD_CACHE=0, the first validate after an edit) (${n} objects)`,
        cold,
        `${(median(theirs) / median(cold)).toFixed(1)}× kubectl`,
      )
      if (kcTimes.length)
        report(`baseline: kustomize build | kubeconform -strict, same schemas (${n} objects)`, kcTimes)
      report(
        `build + strict schemas offline (pinned set), built afresh, nsops library (${n} objects)`,
        offline,
        kcTimes.length
          ? `${(median(kcTimes) / median(offline)).toFixed(1)}× kubeconform`
          : 'kubeconform could not be built here',
      )
      report(
        `  the same with the build kept from the run before (\`just validate --offline\` run again) (${n} objects)`,
        offlineKept,
        kcTimes.length ? `${(median(kcTimes) / median(offlineKept)).toFixed(1)}× kubeconform` : '',
      )
      report(
        `  the same, built by the kustomize CLI + YAML parse (NSOPS_KUSTOMIZE_JSON=0, before JSON builds) (${n} objects)`,
        offlineYaml,
        `${(median(offlineYaml) / median(offline)).toFixed(1)}× slower than JSON builds${kcTimes.length ? `, ${(median(kcTimes) / median(offlineYaml)).toFixed(1)}× kubeconform` : ''}`,
      )
      fs.rmSync(root, { recursive: true, force: true })
    }
  })
}
