// Where schemas come from. The target cluster's `/openapi/v3` (its built-in kinds at its
// version and every CRD installed there: Flux, cert-manager, …), one document per
// group-version, each fetched only when the build uses it and cached on disk by the content
// hash the server puts in its URL. Offline: the OpenAPI v3 documents of the pinned Kubernetes
// version (api/openapi-spec/v3 in the k8s.io/kubernetes module, which `just setup` has in
// Go's module cache when it built the binaries) plus the pinned Flux CRDs, converted once into
// ${XDG_CACHE_HOME:-~/.cache}/nsops/schemas/.
import { execFile } from 'node:child_process'
import { ApiException } from '@kubernetes/client-node'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import fsp from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'
import YAML from 'yaml'
import { rest, servesGroupVersion } from '../kube/rest.ts'
import { NsopsError, errorMessage } from '../core/errors.ts'
import type { Kube } from '../kube/client.ts'
import { withFileLock } from '../core/lock.ts'
import { cacheDir } from '../core/paths.ts'
import { toolSpec, toolSpecs } from '../tools/versions.ts'
import { convertOpenApiDoc, crdDocs, type CrdLike, type SchemaDoc } from './convert.ts'
import { fluxCrdBundle } from '../flux/crds.ts'

const run = promisify(execFile)

export interface SchemaSource {
  /** for messages: "the cluster (context nsops-sim)", "Kubernetes v1.36.3 + Flux CRDs (offline)" */
  readonly description: string
  /** the group-version's converted document; undefined when the source has none */
  load(groupVersion: string): Promise<SchemaDoc | undefined>
}

function schemasDir(): string {
  return path.join(cacheDir(), 'schemas')
}

async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  await fsp.mkdir(path.dirname(file), { recursive: true })
  const tmp = `${file}.${process.pid}.tmp`
  await fsp.writeFile(tmp, JSON.stringify(value))
  await fsp.rename(tmp, file)
}

function readJson<T>(file: string): T | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T
  } catch {
    return undefined
  }
}

/** How long a served group-version may be missing from `/openapi/v3` before it counts as having no schema. */
const PUBLISH_WAIT_MS = 10_000

/** The cluster's own schemas: `/openapi/v3` lists a URL per group-version, with a content hash. */
export class ClusterSchemas implements SchemaSource {
  readonly description: string
  private index?: Promise<Record<string, string>>
  private readonly docs = new Map<string, Promise<SchemaDoc | undefined>>()

  constructor(private readonly kube: Kube) {
    this.description = `the cluster's OpenAPI (context ${kube.context})`
  }

  private paths(): Promise<Record<string, string>> {
    this.index ??= rest<{ paths?: Record<string, { serverRelativeURL?: string }> }>(this.kube, 'GET', '/openapi/v3', {
      timeoutMs: 10_000,
    }).then((r) => {
      const out: Record<string, string> = {}
      for (const [p, v] of Object.entries(r.paths ?? {})) {
        const gv = p === 'api/v1' ? 'v1' : p.startsWith('apis/') ? p.slice(5) : undefined
        if (gv && gv.includes('/') === p.startsWith('apis/') && v.serverRelativeURL) out[gv] = v.serverRelativeURL
      }
      return out
    })
    return this.index
  }

  load(groupVersion: string): Promise<SchemaDoc | undefined> {
    let doc = this.docs.get(groupVersion)
    if (!doc) {
      doc = this.fetch(groupVersion)
      this.docs.set(groupVersion, doc)
    }
    return doc
  }

  /**
   * The document's URL. A group-version the server serves but its index does not list yet is a
   * CRD Established a moment ago (dev-up and cluster-up --flux install Flux's, then validate):
   * the apiserver publishes its schema shortly after it serves it, so the index is read again
   * until it does (PUBLISH_WAIT_MS at most).
   */
  private async urlOf(groupVersion: string): Promise<string | undefined> {
    const url = (await this.paths())[groupVersion]
    if (url || !(await servesGroupVersion(this.kube, groupVersion))) return url
    const end = Date.now() + PUBLISH_WAIT_MS
    for (;;) {
      await new Promise((r) => setTimeout(r, 200))
      this.index = undefined
      const listed = (await this.paths())[groupVersion]
      if (listed || Date.now() > end) return listed
    }
  }

  private async fetch(groupVersion: string): Promise<SchemaDoc | undefined> {
    let url = await this.urlOf(groupVersion)
    // a document that changed since the index was made (a CRD of its group published
    // meanwhile) answers 301 with its new hash in Location: followed, as a browser would
    for (let hops = 0; url; hops++) {
      try {
        return await this.fetchUrl(groupVersion, url)
      } catch (err) {
        const moved = err instanceof ApiException && err.code === 301 ? err.headers?.location : undefined
        if (!moved || hops === 5) throw err
        const next = new URL(moved, 'https://apiserver.invalid')
        url = `${next.pathname}${next.search}`
      }
    }
    return undefined
  }

  private async fetchUrl(groupVersion: string, url: string): Promise<SchemaDoc | undefined> {
    // the URL carries the document's hash (?hash=…): the same URL is the same document
    const hashed = url.includes('hash=')
    const file = path.join(
      schemasDir(),
      'cluster',
      `${createHash('sha256').update(url).digest('hex').slice(0, 24)}.json`,
    )
    if (hashed) {
      const cached = readJson<SchemaDoc>(file)
      if (cached?.groupVersion === groupVersion) return cached
    }
    const [p, q] = url.split('?')
    const query = Object.fromEntries(new URLSearchParams(q ?? ''))
    const raw = await rest<{ components?: { schemas?: Record<string, unknown> } }>(this.kube, 'GET', p, {
      query,
      timeoutMs: 30_000,
    })
    const doc = convertOpenApiDoc(groupVersion, raw)
    if (hashed) await writeJsonAtomic(file, doc).catch(() => undefined) // a read-only cache only costs speed
    return doc
  }
}

interface OfflineIndex {
  description: string
  files: Record<string, string>
}

/** The pinned set, read from the schemas cache (built on first use). */
export class OfflineSchemas implements SchemaSource {
  private readonly docs = new Map<string, SchemaDoc | undefined>()
  constructor(
    readonly dir: string,
    private readonly index: OfflineIndex,
  ) {}

  get description(): string {
    return this.index.description
  }

  /**
   * Every group/version of the set and every group/version/Kind, as a cluster's discovery gives
   * them to helm (`.Capabilities.APIVersions.Has "policy/v1/PodDisruptionBudget"`); kept beside
   * the set after the first call.
   */
  async apiVersions(): Promise<string[]> {
    const file = path.join(this.dir, 'api-versions.json')
    const kept = readJson<string[]>(file)
    if (kept) return kept
    const out: string[] = []
    for (const gv of Object.keys(this.index.files)) {
      out.push(gv)
      for (const kind of Object.keys((await this.load(gv))?.kinds ?? {})) out.push(`${gv}/${kind}`)
    }
    await writeJsonAtomic(file, out)
    return out
  }

  async load(groupVersion: string): Promise<SchemaDoc | undefined> {
    if (!this.docs.has(groupVersion)) {
      const file = this.index.files[groupVersion]
      this.docs.set(groupVersion, file ? readJson<SchemaDoc>(path.join(this.dir, file)) : undefined)
    }
    return this.docs.get(groupVersion)
  }
}

function pinnedKubernetes(): { module: string; version: string } {
  const k = toolSpec('kubernetes')
  return { module: k.module, version: k.version }
}

function offlineKey(): string {
  const specs = toolSpecs()
  const k = pinnedKubernetes()
  const flux = ['source-controller-crds', 'kustomize-controller', 'helm-controller']
    .map((n) => (specs[n] ? `${n}@${specs[n].version}` : n))
    .join(',')
  return `kubernetes-${k.version}+flux-${createHash('sha256').update(flux).digest('hex').slice(0, 12)}`
}

/** The offline set's directory for the pinned versions (it may not exist yet). */
export function offlineDir(): string {
  return path.join(schemasDir(), 'offline', offlineKey())
}

/** The pinned offline set, building it into the cache the first time. */
export async function offlineSchemas(): Promise<OfflineSchemas> {
  const dir = offlineDir()
  const indexFile = path.join(dir, 'index.json')
  const cached = readJson<OfflineIndex>(indexFile)
  if (cached) return new OfflineSchemas(dir, cached)
  return withFileLock(`${dir}.lock`, async () => {
    const again = readJson<OfflineIndex>(indexFile)
    if (again) return new OfflineSchemas(dir, again)
    const index = await buildOffline(dir)
    return new OfflineSchemas(dir, index)
  })
}

/** api/openapi-spec/v3 of the pinned k8s.io/kubernetes module: from Go's module cache, or fetched by `go mod download`. */
async function kubernetesSpecDir(): Promise<string> {
  const k = pinnedKubernetes()
  const hint = `the schemas of Kubernetes ${k.version} come from Go's module cache: run \`just setup\` once (or \`go mod download ${k.module}@${k.version}\`) with network access, or validate against a cluster (drop --offline; \`just cluster-up\` starts one).`
  let out: string
  try {
    out = (
      await run('go', ['mod', 'download', '-json', `${k.module}@${k.version}`], {
        env: { ...process.env, GOTOOLCHAIN: 'local', GOFLAGS: '-mod=mod' },
        maxBuffer: 1 << 20,
        timeout: 15 * 60_000,
      })
    ).stdout
  } catch (err) {
    const stdout = (err as { stdout?: string }).stdout ?? ''
    const reported = /"Error":\s*"([^"]*)"/.exec(stdout)?.[1]
    const why =
      (err as NodeJS.ErrnoException).code === 'ENOENT'
        ? '`go` is not installed'
        : (reported ?? errorMessage(err).split('\n')[0])
    throw new NsopsError(`no offline schemas for Kubernetes ${k.version} yet, and they cannot be fetched (${why}).`, {
      hint,
      cause: err,
    })
  }
  const dir = path.join((JSON.parse(out) as { Dir: string }).Dir, 'api', 'openapi-spec', 'v3')
  if (!fs.existsSync(dir))
    throw new NsopsError(`${k.module}@${k.version} has no api/openapi-spec/v3, so there are no offline schemas.`, {
      hint,
    })
  return dir
}

/** `apis__apps__v1_openapi.json` → apps/v1; `api__v1_openapi.json` → v1; others (group lists) → undefined. */
export function groupVersionOfSpecFile(file: string): string | undefined {
  const m = /^(api|apis)__(.+)_openapi\.json$/.exec(file)
  if (!m) return undefined
  const parts = m[2].split('__')
  if (m[1] === 'api') return parts.length === 1 ? parts[0] : undefined
  return parts.length === 2 ? `${parts[0]}/${parts[1]}` : undefined
}

async function buildOffline(dir: string): Promise<OfflineIndex> {
  const k = pinnedKubernetes()
  const specDir = await kubernetesSpecDir()
  const bundle = await fluxCrdBundle()
  const tmp = `${dir}.tmp-${process.pid}`
  await fsp.rm(tmp, { recursive: true, force: true })
  await fsp.mkdir(tmp, { recursive: true })
  const files: Record<string, string> = {}
  let core: SchemaDoc | undefined
  try {
    for (const f of (await fsp.readdir(specDir)).sort()) {
      const gv = groupVersionOfSpecFile(f)
      if (!gv) continue
      const doc = convertOpenApiDoc(gv, JSON.parse(await fsp.readFile(path.join(specDir, f), 'utf8')))
      if (gv === 'v1') core = doc
      const name = `${gv.replace('/', '_')}.json`
      await fsp.writeFile(path.join(tmp, name), JSON.stringify(doc))
      files[gv] = name
    }
    const crds: CrdLike[] = []
    for (const c of bundle.crds) {
      for (const d of YAML.parseAllDocuments(await fsp.readFile(path.join(bundle.dir, c.file), 'utf8'))) {
        const o = d.toJS() as CrdLike & { kind?: string }
        if (o?.kind === 'CustomResourceDefinition') crds.push(o)
      }
    }
    for (const doc of crdDocs(crds, core?.components.schemas ?? {})) {
      const name = `${doc.groupVersion.replace('/', '_')}.json`
      await fsp.writeFile(path.join(tmp, name), JSON.stringify(doc))
      files[doc.groupVersion] = name
    }
    const index: OfflineIndex = {
      description: `the pinned schemas (Kubernetes ${k.version} and the Flux CRDs, offline)`,
      files,
    }
    await fsp.writeFile(path.join(tmp, 'index.json'), JSON.stringify(index))
    await fsp.rm(dir, { recursive: true, force: true })
    await fsp.rename(tmp, dir)
    return index
  } catch (err) {
    await fsp.rm(tmp, { recursive: true, force: true })
    throw err
  }
}
