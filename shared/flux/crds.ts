// The Flux CRDs at the pinned versions, installed with server-side apply. The YAML comes
// from the controllers' Go modules (config/crd/bases) and is cached once per version set in
// cacheDir()/flux-crds/<versions>/, so only the first run needs `go`. The HelmRelease CRD is
// helm-controller's own (the pinned module, the same one the sim's helm-controller is built
// from), so controller and CRD always agree.
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import fsp from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'
import {
  ApiextensionsV1Api,
  PatchStrategy,
  setHeaderOptions,
  type V1CustomResourceDefinition,
} from '@kubernetes/client-node'
import YAML from 'yaml'
import { NsopsError, errorMessage } from '../core/errors.ts'
import { computeStatus, type KubeObject } from '../health/kstatus.ts'
import { apiMessage, isApiError, type Kube } from '../kube/client.ts'
import { withFileLock } from '../core/lock.ts'
import { spinner } from '../core/output.ts'
import { cacheDir } from '../core/paths.ts'
import { toolSpec, toolSpecs } from '../tools/versions.ts'
import { watchOne } from './watch.ts'

const run = promisify(execFile)

/** Marks CRDs nsops installed; the value is the bundle's content hash. */
export const CRD_LABEL = 'nsops.dev/flux-crds'
const FIELD_MANAGER = 'nsops'

interface ModuleRef {
  module: string
  version: string
}

function pinned(name: string): ModuleRef {
  const spec = toolSpecs()[name]
  if (spec) return { module: spec.module, version: spec.version }
  return toolSpec(name) // throws naming the versions file
}

export interface FluxCrdBundle {
  /** cache directory holding one YAML file per CRD */
  dir: string
  /** content hash of every CRD file (the CRD_LABEL value) */
  hash: string
  crds: { file: string; name: string; version: string }[]
}

interface Manifest extends Omit<FluxCrdBundle, 'dir'> {
  sources: string[]
}

function sources(): { source: ModuleRef; kustomize: ModuleRef; helm: ModuleRef } {
  return {
    source: pinned('source-controller-crds'),
    kustomize: pinned('kustomize-controller'),
    helm: pinned('helm-controller'),
  }
}

/** The CRD YAML for the pinned versions, from the cache or (first time) from the Go modules. */
export async function fluxCrdBundle(): Promise<FluxCrdBundle> {
  const s = sources()
  const key = [s.source, s.kustomize, s.helm].map((m) => `${path.basename(m.module)}@${m.version}`).join('_')
  const root = path.join(cacheDir(), 'flux-crds')
  const dir = path.join(root, key)
  const cached = readManifest(dir)
  if (cached) return { ...cached, dir }
  return withFileLock(path.join(root, `.${key}.lock`), async () => {
    const again = readManifest(dir)
    if (again) return { ...again, dir }
    await buildBundle(dir, s)
    const made = readManifest(dir)
    if (!made)
      throw new NsopsError(`the Flux CRD cache ${dir} was written but cannot be read.`, {
        hint: `remove ${dir} and run again (\`just setup\` rebuilds it); check the disk has space and the folder is writable.`,
      })
    return { ...made, dir }
  })
}

function readManifest(dir: string): Manifest | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as Manifest
  } catch {
    return undefined
  }
}

function goEnv(): NodeJS.ProcessEnv {
  // never let go fetch a newer toolchain behind our back
  return { ...process.env, GOTOOLCHAIN: 'local' }
}

async function goModDir(m: ModuleRef): Promise<string> {
  let out: string
  try {
    out = (
      await run('go', ['mod', 'download', '-json', `${m.module}@${m.version}`], { env: goEnv(), maxBuffer: 1 << 20 })
    ).stdout
  } catch (err) {
    const stdout = (err as { stdout?: string }).stdout ?? ''
    const reported = /"Error":\s*"([^"]*)"/.exec(stdout)?.[1]
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new NsopsError('the Flux CRDs are not cached yet and `go` is not installed to fetch them.', {
        hint: `Install Go 1.26 or newer (https://go.dev/dl/) and run again; the CRDs are then cached in ${path.join(cacheDir(), 'flux-crds')}.`,
      })
    }
    throw new NsopsError(`cannot download ${m.module}@${m.version}: ${reported ?? errorMessage(err)}.`, {
      hint: 'Check the Go module proxy (`go env GOPROXY`) and your network, then run again.',
      cause: err,
    })
  }
  return (JSON.parse(out) as { Dir: string }).Dir
}

async function buildBundle(dir: string, s: ReturnType<typeof sources>): Promise<void> {
  const sp = spinner('fetching the Flux CRDs from their Go modules (first run only)')
  const tmp = `${dir}.tmp-${process.pid}`
  await fsp.rm(tmp, { recursive: true, force: true })
  await fsp.mkdir(tmp, { recursive: true })
  try {
    for (const m of [s.source, s.kustomize, s.helm]) {
      const bases = path.join(await goModDir(m), 'config', 'crd', 'bases')
      for (const f of await fsp.readdir(bases))
        if (f.endsWith('.yaml')) await fsp.copyFile(path.join(bases, f), path.join(tmp, f))
    }
    const crds: Manifest['crds'] = []
    const hash = createHash('sha256')
    for (const file of (await fsp.readdir(tmp)).filter((f) => f.endsWith('.yaml')).sort()) {
      const text = await fsp.readFile(path.join(tmp, file), 'utf8')
      hash.update(file).update('\0').update(text)
      const crd = parseCrd(text, file)
      const storage = crd.spec.versions.find((v) => v.storage) ?? crd.spec.versions[0]
      crds.push({ file, name: crd.metadata!.name!, version: storage.name })
    }
    const manifest: Manifest = {
      hash: hash.digest('hex').slice(0, 16),
      crds,
      sources: [s.source, s.kustomize, s.helm].map((m) => `${m.module}@${m.version}`),
    }
    await fsp.writeFile(path.join(tmp, 'manifest.json'), JSON.stringify(manifest, null, 2))
    await fsp.rm(dir, { recursive: true, force: true })
    await fsp.rename(tmp, dir)
    sp.succeed(`cached ${crds.length} Flux CRDs in ${dir}`)
  } catch (err) {
    sp.fail('fetching the Flux CRDs failed')
    await fsp.rm(tmp, { recursive: true, force: true })
    throw err
  }
}

function parseCrd(text: string, file: string): V1CustomResourceDefinition {
  const docs = YAML.parseAllDocuments(text)
    .map((d) => d.toJS() as V1CustomResourceDefinition)
    .filter((d) => d?.kind === 'CustomResourceDefinition')
  if (docs.length !== 1)
    throw new NsopsError(`${file}: expected one CustomResourceDefinition, found ${docs.length}.`, {
      hint: `the Flux CRD bundle is built from the pinned modules in k8s/versions.yaml: remove the cached bundle in ${path.join(cacheDir(), 'flux-crds')} and run again.`,
    })
  return docs[0]
}

export interface FluxCrdInstall {
  /** CRDs written by this call */
  applied: string[]
  /** CRDs already installed by nsops at these versions */
  unchanged: string[]
  /** CRDs installed by someone else (e.g. `flux install`): left alone */
  foreign: string[]
  /** whether helmreleases.helm.toolkit.fluxcd.io is (now) in the cluster */
  helmRelease: boolean
  warnings: string[]
  elapsedMs: number
}

const established = (crd: unknown) => computeStatus(crd as KubeObject).status === 'Current'

/**
 * Installs the pinned Flux CRDs and waits until each is Established. Idempotent: when the
 * cluster already has them at these versions it costs one list call. CRDs installed by
 * something else (a real Flux install) are left alone and reported as `foreign`.
 */
export async function installFluxCrds(kube: Kube, opts: { timeoutMs?: number } = {}): Promise<FluxCrdInstall> {
  const started = Date.now()
  const bundle = await fluxCrdBundle()
  const api = kube.kc.makeApiClient(ApiextensionsV1Api)
  const result: FluxCrdInstall = {
    applied: [],
    unchanged: [],
    foreign: [],
    helmRelease: false,
    warnings: [],
    elapsedMs: 0,
  }

  let ours: V1CustomResourceDefinition[]
  try {
    ours = (await api.listCustomResourceDefinition({ labelSelector: `${CRD_LABEL}=${bundle.hash}` })).items
  } catch (err) {
    throw crdFailure('listing CRDs', kube, err)
  }
  const current = new Set(ours.filter(established).map((c) => c.metadata!.name!))
  const todo = bundle.crds.filter((c) => !current.has(c.name))
  result.unchanged.push(...bundle.crds.filter((c) => current.has(c.name)).map((c) => c.name))

  const pending: string[] = []
  await Promise.all(
    todo.map(async (c) => {
      const existing = await readCrd(api, kube, c.name)
      if (existing && !existing.metadata?.labels?.[CRD_LABEL]) {
        result.foreign.push(c.name)
        const serves = existing.spec.versions.some((v) => v.name === c.version && v.served)
        if (!serves)
          result.warnings.push(
            `${c.name} was installed by something else and does not serve ${c.version}, which nsops uses; upgrade Flux.`,
          )
        return
      }
      const crd = parseCrd(await fsp.readFile(path.join(bundle.dir, c.file), 'utf8'), c.file)
      crd.metadata = { ...crd.metadata, labels: { ...crd.metadata?.labels, [CRD_LABEL]: bundle.hash } }
      let applied: V1CustomResourceDefinition
      try {
        // the raw object goes through as JSON: the typed KubernetesObjectApi would drop the
        // x-kubernetes-* schema keys it cannot map to its model
        applied = await api.patchCustomResourceDefinition(
          { name: c.name, body: crd, fieldManager: FIELD_MANAGER, force: true },
          setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply),
        )
      } catch (err) {
        throw crdFailure(`applying CRD ${c.name}`, kube, err)
      }
      result.applied.push(c.name)
      if (!established(applied)) pending.push(c.name)
    }),
  )

  await waitEstablished(kube, pending, opts.timeoutMs ?? 30_000)
  const names = new Set([...result.applied, ...result.unchanged, ...result.foreign])
  result.helmRelease = names.has('helmreleases.helm.toolkit.fluxcd.io')
  for (const list of [result.applied, result.unchanged, result.foreign]) list.sort()
  result.elapsedMs = Date.now() - started
  return result
}

async function readCrd(api: ApiextensionsV1Api, kube: Kube, name: string): Promise<V1CustomResourceDefinition | null> {
  try {
    return await api.readCustomResourceDefinition({ name })
  } catch (err) {
    if (isApiError(err, 404)) return null
    throw crdFailure(`reading CRD ${name}`, kube, err)
  }
}

async function waitEstablished(kube: Kube, names: string[], timeoutMs: number): Promise<void> {
  if (names.length === 0) return
  const ac = new AbortController()
  const timer = setTimeout(() => ac.abort(new Error('timeout')), timeoutMs)
  const last = new Map<string, string>()
  const done = new Set<string>()
  try {
    await Promise.all(
      names.map((name) =>
        watchOne(
          kube,
          { path: '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', name, signal: ac.signal },
          (obj) => {
            const st = computeStatus(obj)
            last.set(name, st.message)
            if (st.status === 'Failed')
              throw new NsopsError(`CRD ${name} was not accepted: ${st.message}.`, {
                hint: 'Another CRD may already claim its names; check `kubectl get crd`.',
              })
            if (st.status !== 'Current') return undefined
            done.add(name)
            return true
          },
        ),
      ),
    )
  } catch (err) {
    if (err instanceof NsopsError) throw err
    const waiting = names.filter((n) => !done.has(n))
    throw new NsopsError(
      `the Flux CRDs did not become Established within ${timeoutMs} ms (${waiting.map((n) => `${n}: ${last.get(n) ?? 'no status'}`).join('; ')}).`,
      {
        hint: 'Is kube-apiserver healthy? Check `kubectl get crd` and the API server log.',
        cause: err,
      },
    )
  } finally {
    clearTimeout(timer)
    ac.abort()
  }
}

function crdFailure(what: string, kube: Kube, err: unknown): NsopsError {
  return new NsopsError(`${what} failed (context ${kube.context}, server ${kube.server}): ${apiMessage(err)}.`, {
    hint: isApiError(err, 403)
      ? 'Installing CRDs needs cluster-admin rights; on a shared cluster install Flux with `flux install` instead.'
      : 'Check that the cluster answers (`kubectl get ns`), then run again.',
    cause: err,
  })
}
