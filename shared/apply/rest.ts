// Raw JSON requests for objects of any kind. Not KubernetesObjectApi: its typed serializer
// drops every field the 1.4.0 models do not know (a typo, a field newer than the client, a
// CRD's schema), so what we applied and what we read back would not be what the user wrote.
// Errors are client-node ApiExceptions, so `isApiError` and `apiMessage` work on them.
import http from 'node:http'
import https from 'node:https'
import { ApiException } from '@kubernetes/client-node'
import type { Kube } from '../kube.ts'
import type { ManifestObject } from '../kustomize.ts'
import type { ObjectRef } from './refs.ts'

/** An object as the API server returns it: raw JSON, nothing dropped or retyped. */
export interface LiveObject {
  apiVersion: string
  kind: string
  metadata: {
    name: string
    namespace?: string
    uid?: string
    resourceVersion?: string
    generation?: number
    managedFields?: ManagedFieldsEntry[]
    labels?: Record<string, string>
    annotations?: Record<string, string>
    [field: string]: unknown
  }
  [field: string]: unknown
}

export interface ManagedFieldsEntry {
  manager?: string
  operation?: string
  apiVersion?: string
  subresource?: string
  fieldsType?: string
  fieldsV1?: Record<string, unknown>
}

export interface ApiResourceInfo {
  /** the plural used in URLs */
  name: string
  namespaced: boolean
  kind: string
}

interface ResourceList { resources: (ApiResourceInfo & { name: string })[] }

interface Connection {
  agent?: http.Agent
  discovery: Map<string, Promise<ResourceList | undefined>>
}

const connections = new WeakMap<Kube, Connection>()

function connectionOf(kube: Kube): Connection {
  let conn = connections.get(kube)
  if (!conn) connections.set(kube, conn = { discovery: new Map() })
  return conn
}

export interface RequestOptions {
  body?: unknown
  contentType?: string
  query?: Record<string, string | undefined>
  timeoutMs?: number
  /** the Accept header (default application/json), e.g. to ask for aggregated discovery */
  accept?: string
}

/** One request to the API server; a non-2xx answer rejects with an ApiException. */
export async function rest<T>(kube: Kube, method: string, path: string, opts: RequestOptions = {}): Promise<T> {
  const url = new URL(kube.server.replace(/\/$/, '') + path)
  for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) url.searchParams.set(k, v)
  const options: https.RequestOptions = { method, headers: { Accept: opts.accept ?? 'application/json' } }
  await kube.kc.applyToHTTPSOptions(options)
  const conn = connectionOf(kube)
  // client-node makes a fresh agent per call; one keep-alive agent per connection saves a
  // TLS handshake per request (a dev-loop apply makes dozens). Proxies keep their own agent.
  if (!kube.kc.getCurrentCluster()?.proxyUrl) {
    conn.agent ??= url.protocol === 'http:'
      ? new http.Agent({ keepAlive: true })
      : new https.Agent({
        keepAlive: true,
        ca: options.ca, cert: options.cert, key: options.key, pfx: options.pfx, passphrase: options.passphrase,
        rejectUnauthorized: options.rejectUnauthorized, servername: options.servername,
      })
    options.agent = conn.agent
  }
  const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body)
  if (payload !== undefined) {
    options.headers = { ...options.headers, 'Content-Type': opts.contentType ?? 'application/json', 'Content-Length': Buffer.byteLength(payload) }
  }
  const mod = url.protocol === 'http:' ? http : https
  return new Promise<T>((resolve, reject) => {
    const req = mod.request(url, options, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (d: Buffer) => chunks.push(d))
      res.on('error', reject)
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        let body: unknown = text
        try { body = text ? JSON.parse(text) : undefined } catch { /* not JSON: keep the text */ }
        const code = res.statusCode ?? 0
        if (code >= 200 && code < 300) resolve(body as T)
        else reject(new ApiException(code, `${method} ${path}: HTTP ${code}`, body, res.headers as Record<string, string>))
      })
    })
    req.setTimeout(opts.timeoutMs ?? 30_000, () => req.destroy(new Error(`${method} ${path}: no answer from ${kube.server} within ${opts.timeoutMs ?? 30_000} ms`)))
    req.on('error', reject)
    if (payload !== undefined) req.write(payload)
    req.end()
  })
}

function groupVersionPath(apiVersion: string): string {
  return apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`
}

async function fetchResourceList(kube: Kube, apiVersion: string): Promise<ResourceList | undefined> {
  try {
    return await rest<ResourceList>(kube, 'GET', groupVersionPath(apiVersion))
  } catch (err) {
    if (err instanceof ApiException && err.code === 404) return undefined
    throw err
  }
}

/**
 * The resource (plural, scope) serving apiVersion/kind, from discovery. Cached per
 * connection; a miss asks again, because a CRD applied a moment ago adds kinds.
 */
export async function resourceFor(kube: Kube, apiVersion: string, kind: string): Promise<ApiResourceInfo | undefined> {
  const { discovery } = connectionOf(kube)
  const find = (list: ResourceList | undefined) => list?.resources.find((r) => r.kind === kind && !r.name.includes('/'))
  const cached = discovery.get(apiVersion)
  if (cached) {
    const hit = find(await cached)
    if (hit) return hit
  }
  const fresh = fetchResourceList(kube, apiVersion)
  discovery.set(apiVersion, fresh)
  fresh.catch(() => discovery.delete(apiVersion))
  return find(await fresh)
}

export class UnknownKindError extends Error {
  constructor(readonly apiVersion: string, readonly kind: string) {
    super(`no kind ${kind} in ${apiVersion} is known to the API server; is its CustomResourceDefinition installed?`)
    this.name = 'UnknownKindError'
  }
}

/** The object's URL; throws UnknownKindError when discovery does not know its kind. */
export async function objectPath(kube: Kube, ref: ObjectRef): Promise<string> {
  const resource = await resourceFor(kube, ref.apiVersion, ref.kind)
  if (!resource) throw new UnknownKindError(ref.apiVersion, ref.kind)
  const ns = resource.namespaced ? `/namespaces/${encodeURIComponent(ref.namespace ?? 'default')}` : ''
  return `${groupVersionPath(ref.apiVersion)}${ns}/${resource.name}/${encodeURIComponent(ref.name)}`
}

/** The live object, or undefined when it does not exist. */
export async function getObject(kube: Kube, ref: ObjectRef): Promise<LiveObject | undefined> {
  try {
    return await rest<LiveObject>(kube, 'GET', await objectPath(kube, ref))
  } catch (err) {
    if (err instanceof ApiException && err.code === 404) return undefined
    throw err
  }
}

/** The field manager of every nsops apply unless a caller names another. */
export const DEFAULT_FIELD_MANAGER = 'nsops'

export interface ServerSideApplyOptions {
  fieldManager: string
  force: boolean
  dryRun: boolean
}

export async function serverSideApply(kube: Kube, obj: ManifestObject, ref: ObjectRef, opts: ServerSideApplyOptions): Promise<LiveObject> {
  return rest<LiveObject>(kube, 'PATCH', await objectPath(kube, ref), {
    body: obj,
    // JSON is YAML, and the apply content type takes YAML
    contentType: 'application/apply-patch+yaml',
    query: { fieldManager: opts.fieldManager, force: String(opts.force), dryRun: opts.dryRun ? 'All' : undefined },
  })
}

/** Deletes one object; `uid` makes sure it is still the object we looked at. False when it was gone. */
export async function deleteObject(kube: Kube, ref: ObjectRef, opts: { dryRun: boolean; uid?: string }): Promise<boolean> {
  try {
    await rest(kube, 'DELETE', await objectPath(kube, ref), {
      body: { kind: 'DeleteOptions', apiVersion: 'v1', propagationPolicy: 'Background', preconditions: opts.uid ? { uid: opts.uid } : undefined },
      query: { dryRun: opts.dryRun ? 'All' : undefined },
    })
    return true
  } catch (err) {
    if (err instanceof ApiException && err.code === 404) return false
    throw err
  }
}

/**
 * The object as it will be sent: a namespaced object without a namespace gets
 * `defaultNamespace`, a cluster-scoped one loses any namespace (as kubectl does). Undefined
 * when discovery does not know the kind (yet).
 */
export async function placeObject(kube: Kube, obj: ManifestObject, defaultNamespace: string): Promise<ManifestObject | undefined> {
  const resource = await resourceFor(kube, obj.apiVersion, obj.kind)
  if (!resource) return undefined
  const placed = structuredClone(obj)
  if (resource.namespaced) placed.metadata.namespace ||= defaultNamespace
  else delete placed.metadata.namespace
  return placed
}

/**
 * The live object and the server's dry-run answer computed from that same version of it.
 * Controllers write too (a Deployment's revision annotation, status), so when the object
 * moved between the read and the dry run we read again rather than show their change as ours.
 */
export async function dryRunAgainstLive(
  kube: Kube, obj: ManifestObject, ref: ObjectRef, opts: { fieldManager: string; force: boolean },
  /** the caller read the object a moment ago: the first attempt uses that read */
  read?: { live?: LiveObject },
): Promise<{ live?: LiveObject; after: LiveObject }> {
  for (let attempt = 1; ; attempt++) {
    const live = attempt === 1 && read ? read.live : await getObject(kube, ref)
    const after = await serverSideApply(kube, obj, ref, { ...opts, dryRun: true })
    const base = live?.metadata.resourceVersion
    if (!live || after.metadata.resourceVersion === base || attempt === 3) return { live, after }
  }
}
