// Raw JSON requests for objects of any kind. Not KubernetesObjectApi: its typed serializer
// drops every field the 1.4.0 models do not know (a typo, a field newer than the client, a
// CRD's schema), so what we applied and what we read back would not be what the user wrote.
// Errors are client-node ApiExceptions, so `isApiError` and `apiMessage` work on them.
import http from 'node:http'
import http2 from 'node:http2'
import diagnostics from 'node:diagnostics_channel'
import https from 'node:https'
import tls from 'node:tls'
import { ApiException } from '@kubernetes/client-node'
import { NsopsError } from '../core/errors.ts'
import { untilAborted } from '../core/signals.ts'
import type { Kube } from './client.ts'
import type { ManifestObject } from './refs.ts'
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

interface ResourceList {
  resources: (ApiResourceInfo & { name: string })[]
}

/** an HTTP/2 session; false: use HTTP/1.1 for this request; 'silent': the server took the connection and never finished the handshake */
type H2Session = http2.ClientHttp2Session | false | 'silent'

interface Connection {
  /** HTTP/1.1 keep-alive agent: for plain http, proxies, and servers that do not speak h2 */
  agent?: http.Agent
  /** the HTTP/2 session; undefined until the first TLS request, false once the server refused h2 */
  h2?: Promise<H2Session>
  /** HTTP/2 sessions opened, and what the last request went over (transportOf) */
  sessions: number
  last?: 'h2' | 'http/1.1'
  discovery: Map<string, Promise<ResourceList | undefined>>
  /** the last aggregated discovery asked (aggregatedDiscovery): resourceFor waits for it rather than asking per group-version */
  aggregated?: Promise<AggregatedDiscovery | undefined>
  /** TLS and auth options, for credentials that do not change during a run (authOptions) */
  auth?: https.RequestOptions
}

const connections = new WeakMap<Kube, Connection>()

function connectionOf(kube: Kube): Connection {
  // a client bounded by a deadline (withDeadline) shares the connection of the one it came from
  const key = kube.base ?? kube
  let conn = connections.get(key)
  if (!conn) connections.set(key, (conn = { sessions: 0, discovery: new Map() }))
  return conn
}

/**
 * How long a request may wait for its answer unless its caller says otherwise: here silence
 * for that long (connecting included), in client-node's clients (client.ts) the whole request.
 */
export const REQUEST_TIMEOUT_MS = 30_000
/**
 * A request started at or after its client's deadline still gets this long: the few that only
 * report (a summary's status line) answer when the server does, and end soon when it does not.
 */
export const AFTER_DEADLINE_MS = 3_000

/**
 * How long a request may take in all: `ms`, cut to what is left of the client's deadline
 * (withDeadline in client.ts), never below AFTER_DEADLINE_MS.
 */
export function requestBound(kube: Kube, ms = REQUEST_TIMEOUT_MS): number {
  if (kube.deadline === undefined) return ms
  return Math.min(ms, Math.max(kube.deadline - Date.now(), AFTER_DEADLINE_MS))
}

/**
 * The API server did not answer a request in time (stopped, overloaded, a network that drops
 * packets): as opposed to an answer that refused it (ApiException). `what` is the request. An
 * NsopsError: wherever it ends a command, it says what to check.
 */
export class NoAnswer extends NsopsError {
  constructor(
    readonly what: string,
    readonly server: string,
    readonly ms: number,
  ) {
    super(`${what}: no answer from ${server} within ${ms < 1000 ? `${ms} ms` : `${Math.round(ms / 1000)} s`}`, {
      hint: "the cluster's API server stopped answering: check it (`kubectl get --raw /readyz`; the local cluster: `just cluster-status`), then run again.",
    })
  }
}

/** The NoAnswer an error is, or was caused by (an NsopsError wrapping it). */
export function noAnswerIn(err: unknown): NoAnswer | undefined {
  for (let e = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++)
    if (e instanceof NoAnswer) return e
  return undefined
}

export interface RequestOptions {
  body?: unknown
  contentType?: string
  query?: Record<string, string | undefined>
  timeoutMs?: number
  /** the Accept header (default application/json), e.g. to ask for aggregated discovery */
  accept?: string
  /**
   * a 2xx answer's body is not wanted (resolves undefined): not decoded or parsed, which is
   * most of a request's own CPU for a dry run that only asks "accepted?". An error keeps its body.
   */
  discardBody?: boolean
}

interface Answer {
  status: number
  headers: Record<string, string>
  /** the body's bytes, decoded only when someone reads them */
  body: Buffer
}

/** One request to the API server; a non-2xx answer rejects with an ApiException. */
/** What the `nsops:kube-request` diagnostics channel carries: every request rest() sends (tests count them). */
export interface KubeRequest {
  method: string
  /** path and query */
  url: string
}
const requests = diagnostics.channel('nsops:kube-request')

export async function rest<T>(kube: Kube, method: string, path: string, opts: RequestOptions = {}): Promise<T> {
  const url = new URL(kube.server.replace(/\/$/, '') + path)
  for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) url.searchParams.set(k, v)
  if (requests.hasSubscribers) requests.publish({ method, url: url.pathname + url.search } satisfies KubeRequest)
  const conn = connectionOf(kube)
  const auth = await authOptions(kube, conn)
  const options: https.RequestOptions = {
    ...auth,
    method,
    headers: { ...(auth.headers as Record<string, string>), Accept: opts.accept ?? 'application/json' },
  }
  const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body)
  if (payload !== undefined) {
    options.headers = {
      ...options.headers,
      'Content-Type': opts.contentType ?? 'application/json',
      'Content-Length': Buffer.byteLength(payload),
    }
  }
  // silence for timeoutMs ends a request, connecting included: a server that stopped
  // answering (SIGSTOP, a dead VPN) would hold a TLS handshake or a stream open for ever
  const timeoutMs = opts.timeoutMs ?? REQUEST_TIMEOUT_MS
  const what = `${method} ${path}`
  const bound = new AbortController()
  // a client bounded by a deadline (withDeadline in client.ts): the whole request ends by it
  let timer: NodeJS.Timeout | undefined
  if (kube.deadline !== undefined) {
    const totalMs = requestBound(kube, Number.POSITIVE_INFINITY)
    timer = setTimeout(() => bound.abort(new NoAnswer(what, url.origin, totalMs)), totalMs)
  }
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        return await send<T>(kube, conn, url, options, payload, timeoutMs, what, bound.signal, opts.discardBody)
      } catch (err) {
        const waitMs = retryAfterMs(err)
        if (waitMs === undefined || attempt === TOO_MANY_TRIES) throw err
        await untilAborted(new Promise((r) => setTimeout(r, waitMs)), bound.signal)
      }
    }
  } finally {
    clearTimeout(timer)
  }
}

/** Tries of a request the server answers 429 (it has not acted on it), as client-go's. */
const TOO_MANY_TRIES = 5

/**
 * How long to wait before sending again a request the server turned away with 429 and a
 * Retry-After (at most 5 s): its requests in flight are at their limit, or a CRD's storage is
 * still being made ("storage is (re)initializing", a list right after Flux installs its CRDs).
 * client-go waits and retries the same way. Undefined for any other answer.
 */
function retryAfterMs(err: unknown): number | undefined {
  if (!(err instanceof ApiException) || err.code !== 429) return undefined
  const header = (err.headers as Record<string, string | string[] | undefined>)['retry-after']
  const seconds = Number(Array.isArray(header) ? header[0] : header)
  return Number.isFinite(seconds) && seconds >= 0 ? Math.min(seconds, 5) * 1000 : undefined
}

async function send<T>(
  kube: Kube,
  conn: Connection,
  url: URL,
  options: https.RequestOptions,
  payload: string | undefined,
  timeoutMs: number,
  what: string,
  signal: AbortSignal,
  discardBody?: boolean,
): Promise<T> {
  const proxied = Boolean(kube.kc.getCurrentCluster()?.proxyUrl)
  let answer: Answer | undefined
  // HTTP/2 as kubectl and Flux speak it: every request of a run multiplexed on one TLS
  // connection, so a drift or a dry run of dozens of objects pays one handshake, not one per
  // request in flight. HTTP/1.1 when the server does not offer h2 (or through a proxy).
  if (url.protocol === 'https:' && !proxied && process.env.NSOPS_HTTP2 !== '0') {
    for (let attempt = 1; !answer; attempt++) {
      const session = await untilAborted(h2Session(conn, url, options, timeoutMs), signal)
      // a server that is there and does not answer: HTTP/1.1 would wait as long again
      if (session === 'silent') throw new NoAnswer(what, url.origin, timeoutMs)
      if (!session) break
      try {
        answer = await h2Request(session, url, options, payload, timeoutMs, what, signal)
      } catch (err) {
        // a stream the server never took (the session closing, GOAWAY, REFUSED_STREAM) is
        // safe to send again on a new session; anything else is the request's own failure
        if (!(err instanceof NotSent) || attempt === 2) throw err instanceof NotSent ? err.original : err
        // that session is done with; another request may have opened the next one already
        if (conn.h2 && (await conn.h2) === session) conn.h2 = undefined
      }
    }
  }
  if (answer) conn.last = 'h2'
  else {
    answer = await h1Request(conn, url, options, payload, timeoutMs, what, kube.server, proxied, signal)
    conn.last = 'http/1.1'
  }
  if (discardBody && answer.status >= 200 && answer.status < 300) return undefined as T
  const text = answer.body.toString('utf8')
  let body: unknown = text
  try {
    body = text ? JSON.parse(text) : undefined
  } catch {
    /* not JSON: keep the text */
  }
  if (answer.status >= 200 && answer.status < 300) return body as T
  throw new ApiException(answer.status, `${what}: HTTP ${answer.status}`, body, answer.headers)
}

/**
 * The TLS and auth options of a request. Certificates and a static token are the same for
 * every request of a run: applied once per connection (client-node reads each file and makes
 * an https.Agent every time it is asked). A user whose credentials come from an exec plugin or
 * an auth provider (tokens that expire, a token file re-read) is asked per request.
 */
async function authOptions(kube: Kube, conn: Connection): Promise<https.RequestOptions> {
  const user = kube.kc.getCurrentUser()
  const fixed = !user?.exec && !user?.authProvider
  if (fixed && conn.auth) return conn.auth
  const options: https.RequestOptions = { headers: {} }
  await kube.kc.applyToHTTPSOptions(options)
  if (fixed) conn.auth = options
  return options
}

/** What this connection's requests went over: the protocol of the last one, and how many HTTP/2 sessions were opened. */
export function transportOf(kube: Kube): { protocol?: 'h2' | 'http/1.1'; sessions: number } {
  const conn = connectionOf(kube)
  return { protocol: conn.last, sessions: conn.sessions }
}

/** A request that never reached the server: it may be sent again. */
class NotSent extends Error {
  constructor(readonly original: unknown) {
    super(String(original))
  }
}

function tlsOptions(
  options: https.RequestOptions,
): tls.SecureContextOptions & { rejectUnauthorized?: boolean; servername?: string } {
  return {
    ca: options.ca,
    cert: options.cert,
    key: options.key,
    pfx: options.pfx,
    passphrase: options.passphrase,
    rejectUnauthorized: options.rejectUnauthorized,
    servername: options.servername,
  }
}

function h2Session(conn: Connection, url: URL, options: https.RequestOptions, connectMs: number): Promise<H2Session> {
  if (conn.h2) return conn.h2
  const opening = new Promise<H2Session>((resolve) => {
    const session = http2.connect(url.origin, { ...tlsOptions(options), ALPNProtocols: ['h2'] })
    conn.sessions++
    let settled = false
    const forget = () => {
      if (conn.h2 === opening) conn.h2 = undefined
    }
    // a server that accepts the TCP connection and never finishes the handshake (a stopped
    // process: the kernel still accepts) would hold every later request of the run on this
    // promise; given up, the next request opens a new session
    let silent = false
    const connecting = setTimeout(() => {
      silent = true
      session.destroy(new Error(`no TLS handshake with ${url.origin} within ${connectMs} ms`))
    }, connectMs)
    session.once('close', () => clearTimeout(connecting))
    session.once('connect', () => {
      clearTimeout(connecting)
      settled = true
      // the server chose another protocol: HTTP/1.1 for the rest of the run
      if (session.alpnProtocol !== 'h2') {
        session.destroy()
        resolve(false)
        return
      }
      if (!streams.get(session)) session.unref()
      resolve(session)
    })
    session.on('error', (err: NodeJS.ErrnoException) => {
      forget()
      if (settled) return
      settled = true
      if (silent) return resolve('silent')
      // TLS refused h2 (a server or proxy that speaks only HTTP/1.1): HTTP/1.1 from now on.
      // No connection at all (the server down, restarting): this request goes over HTTP/1.1
      // and reports why; the next one tries h2 again.
      if (
        err.code === 'ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL' ||
        (session.alpnProtocol !== undefined && session.alpnProtocol !== 'h2')
      )
        conn.h2 = Promise.resolve(false)
      resolve(false)
    })
    session.once('close', forget)
    session.once('goaway', forget)
  })
  conn.h2 = opening
  return opening
}

/**
 * Streams open per session. A session with none is unref'd, so an idle connection never keeps
 * a script from exiting; one with a request in flight is ref'd, so the process waits for it.
 */
const streams = new WeakMap<http2.ClientHttp2Session, number>()

// hop-by-hop headers HTTP/2 forbids
const H1_ONLY = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'host', 'proxy-connection'])

function h2Request(
  session: http2.ClientHttp2Session,
  url: URL,
  options: https.RequestOptions,
  payload: string | undefined,
  timeoutMs: number,
  what: string,
  signal: AbortSignal,
): Promise<Answer> {
  const headers: http2.OutgoingHttpHeaders = { ':method': options.method, ':path': url.pathname + url.search }
  for (const [k, v] of Object.entries(options.headers ?? {}))
    if (v !== undefined && !H1_ONLY.has(k.toLowerCase())) headers[k.toLowerCase()] = v as string
  return new Promise<Answer>((resolve, reject) => {
    let stream: http2.ClientHttp2Stream
    try {
      stream = session.request(headers, { endStream: payload === undefined })
    } catch (err) {
      reject(new NotSent(err))
      return
    }
    const open = (streams.get(session) ?? 0) + 1
    streams.set(session, open)
    if (open === 1) session.ref()
    let responded = false
    let status = 0
    let resHeaders: Record<string, string> = {}
    const chunks: Buffer[] = []
    stream.on('response', (h) => {
      responded = true
      status = Number(h[':status'])
      resHeaders = Object.fromEntries(
        Object.entries(h)
          .filter(([k]) => !k.startsWith(':'))
          .map(([k, v]) => [k, String(v)]),
      )
    })
    stream.on('data', (d: Buffer) => chunks.push(d))
    // idle for timeoutMs, or the client's deadline passed (rest): cancelled
    const cancel = () => stream.close(http2.constants.NGHTTP2_CANCEL)
    stream.setTimeout(timeoutMs, cancel)
    signal.addEventListener('abort', cancel, { once: true })
    let settled = false
    const done = (fn: () => void) => {
      if (settled) return
      settled = true
      signal.removeEventListener('abort', cancel)
      const left = (streams.get(session) ?? 1) - 1
      streams.set(session, left)
      if (left === 0 && !session.destroyed) session.unref()
      fn()
    }
    stream.on('end', () => {
      // a stream cancelled before any answer ends too: 'close' says why (not an "HTTP 0" answer)
      if (!responded) return
      done(() => resolve({ status, headers: resHeaders, body: Buffer.concat(chunks) }))
    })
    stream.on('error', (err) => done(() => reject(!responded && refused(err, stream) ? new NotSent(err) : err)))
    stream.on('close', () =>
      done(() => {
        if (stream.rstCode === http2.constants.NGHTTP2_CANCEL)
          reject(signal.aborted ? signal.reason : new NoAnswer(what, url.origin, timeoutMs))
        else if (!responded && stream.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM)
          reject(new NotSent(new Error(`${what}: stream refused`)))
        else reject(new Error(`${what}: the connection closed before the answer was complete`))
      }),
    )
    if (payload !== undefined) stream.end(payload)
  })
}

function refused(err: unknown, stream: http2.ClientHttp2Stream): boolean {
  const code = (err as { code?: string }).code
  // only what the server promises it never processed: a request that may have been (a POST)
  // is not sent twice
  return (
    stream.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM ||
    code === 'ERR_HTTP2_GOAWAY_SESSION' ||
    code === 'ERR_HTTP2_INVALID_SESSION'
  )
}

function h1Request(
  conn: Connection,
  url: URL,
  options: https.RequestOptions,
  payload: string | undefined,
  timeoutMs: number,
  what: string,
  server: string,
  proxied: boolean,
  signal: AbortSignal,
): Promise<Answer> {
  // client-node makes a fresh agent per call; one keep-alive agent per connection saves a
  // TLS handshake per request, and one secure context saves parsing the certificates per
  // socket. Proxies keep their own agent.
  if (!proxied) {
    const tlsOpts = tlsOptions(options)
    conn.agent ??=
      url.protocol === 'http:'
        ? new http.Agent({ keepAlive: true })
        : new https.Agent({ keepAlive: true, ...tlsOpts, secureContext: tls.createSecureContext(tlsOpts) })
    options.agent = conn.agent
  }
  const mod = url.protocol === 'http:' ? http : https
  return new Promise<Answer>((resolve, reject) => {
    const req = mod.request(url, { ...options, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (d: Buffer) => chunks.push(d))
      res.on('error', (err) => reject(signal.aborted ? signal.reason : err))
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers as Record<string, string>,
          body: Buffer.concat(chunks),
        }),
      )
    })
    // idle for timeoutMs (connecting included: the `timeout` option), or the client's deadline passed (rest)
    const giveUp = () => req.destroy(signal.aborted ? signal.reason : new NoAnswer(what, server, timeoutMs))
    req.setTimeout(timeoutMs, giveUp)
    if (signal.aborted) giveUp()
    signal.addEventListener('abort', giveUp, { once: true })
    req.once('close', () => signal.removeEventListener('abort', giveUp))
    req.on('error', reject)
    if (payload !== undefined) req.write(payload)
    req.end()
  })
}

/** The URL path of a group-version: `/api/v1`, `/apis/apps/v1`. */
export function groupVersionPath(apiVersion: string): string {
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

// Aggregated discovery (GA in Kubernetes 1.30): every group-version's resources in two answers
// (/api, /apis) instead of one request per group-version.
const AGGREGATED = 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json'

/** A list's Accept for its objects' metadata only (PartialObjectMetadataList): a fraction of the server's work. */
export const METADATA_LIST = 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1'

interface DiscoveryList {
  kind?: string
  items?: {
    metadata?: { name?: string }
    versions?: {
      version: string
      resources?: { resource: string; scope?: string; verbs?: string[]; responseKind?: { kind?: string } }[]
    }[]
  }[]
}

/** Every group-version the server serves, in its order of preference within each group. */
export interface AggregatedDiscovery {
  groups: {
    /** the group's versions, preferred first */
    versions: {
      apiVersion: string
      resources: (ApiResourceInfo & { verbs?: string[] })[]
    }[]
  }[]
}

/**
 * The server's aggregated discovery, asked afresh (or, with `reuse`, the answer this
 * connection asked for last, when there is one); undefined from a server (or a proxy) that
 * does not serve it. Every group-version it lists also answers resourceFor, so a command that
 * asks for it (drift's listing of a namespace) needs no per-group requests after.
 */
export function aggregatedDiscovery(
  kube: Kube,
  opts: { reuse?: boolean } = {},
): Promise<AggregatedDiscovery | undefined> {
  const conn = connectionOf(kube)
  if (opts.reuse && conn.aggregated) return conn.aggregated
  conn.aggregated = (async () => {
    const [core, groups] = await Promise.all([
      rest<DiscoveryList>(kube, 'GET', '/api', { accept: AGGREGATED }),
      rest<DiscoveryList>(kube, 'GET', '/apis', { accept: AGGREGATED }),
    ])
    if (core?.kind !== 'APIGroupDiscoveryList' || groups?.kind !== 'APIGroupDiscoveryList') return undefined
    const out: AggregatedDiscovery = { groups: [] }
    for (const g of [...(core.items ?? []), ...(groups.items ?? [])]) {
      const versions = (g.versions ?? []).map((v) => ({
        apiVersion: g.metadata?.name ? `${g.metadata.name}/${v.version}` : v.version,
        resources: (v.resources ?? []).flatMap((r) =>
          r.responseKind?.kind
            ? [{ name: r.resource, namespaced: r.scope === 'Namespaced', kind: r.responseKind.kind, verbs: r.verbs }]
            : [],
        ),
      }))
      out.groups.push({ versions })
      for (const v of versions)
        if (!conn.discovery.has(v.apiVersion)) conn.discovery.set(v.apiVersion, Promise.resolve(v))
    }
    return out
  })().catch(() => undefined)
  return conn.aggregated
}

/**
 * apiVersion's resource list as this connection knows it (aggregated discovery on its way
 * answers too), asked of the server when it knows none, and whether it was known before.
 */
async function knownResources(kube: Kube, apiVersion: string): Promise<{ list?: ResourceList; cached: boolean }> {
  const conn = connectionOf(kube)
  if (conn.aggregated && !conn.discovery.has(apiVersion)) await conn.aggregated
  const cached = conn.discovery.get(apiVersion)
  if (cached) return { list: await cached, cached: true }
  return { list: await freshResources(kube, apiVersion), cached: false }
}

/** apiVersion's resource list asked of the server again, and kept for the connection. */
function freshResources(kube: Kube, apiVersion: string): Promise<ResourceList | undefined> {
  const { discovery } = connectionOf(kube)
  const fresh = fetchResourceList(kube, apiVersion)
  discovery.set(apiVersion, fresh)
  fresh.catch(() => discovery.delete(apiVersion))
  return fresh
}

/**
 * The resource (plural, scope) serving apiVersion/kind, from discovery. Cached per
 * connection; a miss asks again, because a CRD applied a moment ago adds kinds.
 */
export async function resourceFor(kube: Kube, apiVersion: string, kind: string): Promise<ApiResourceInfo | undefined> {
  const find = (list: ResourceList | undefined) => list?.resources.find((r) => r.kind === kind && !r.name.includes('/'))
  const known = await knownResources(kube, apiVersion)
  const hit = find(known.list)
  return hit || !known.cached ? hit : find(await freshResources(kube, apiVersion))
}

/** Whether the API server serves apiVersion: discovery, cached as resourceFor's; a miss asks again. */
export async function servesGroupVersion(kube: Kube, apiVersion: string): Promise<boolean> {
  const known = await knownResources(kube, apiVersion)
  if (known.list || !known.cached) return known.list !== undefined
  return (await freshResources(kube, apiVersion)) !== undefined
}

export class UnknownKindError extends Error {
  constructor(
    readonly apiVersion: string,
    readonly kind: string,
  ) {
    super(`no kind ${kind} in ${apiVersion} is known to the API server; is its CustomResourceDefinition installed?`)
    this.name = 'UnknownKindError'
  }
}

/**
 * The URL of a resource's objects: in namespace when the resource is namespaced and one is
 * given, else across the cluster (or cluster-scoped).
 */
export function resourcePath(
  apiVersion: string,
  resource: { name: string; namespaced: boolean },
  namespace?: string,
): string {
  const ns = resource.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : ''
  return `${groupVersionPath(apiVersion)}${ns}/${resource.name}`
}

/** The object's URL; throws UnknownKindError when discovery does not know its kind. */
export async function objectPath(kube: Kube, ref: ObjectRef): Promise<string> {
  const resource = await resourceFor(kube, ref.apiVersion, ref.kind)
  if (!resource) throw new UnknownKindError(ref.apiVersion, ref.kind)
  return `${resourcePath(ref.apiVersion, resource, ref.namespace ?? 'default')}/${encodeURIComponent(ref.name)}`
}

/**
 * The objects of apiVersion/kind (in namespace, when the kind is namespaced and one is given;
 * else across the cluster), over this command's connection, as one list. Throws
 * UnknownKindError when discovery does not know the kind.
 */
export async function listObjects(
  kube: Kube,
  apiVersion: string,
  kind: string,
  opts: { namespace?: string; labelSelector?: string } = {},
): Promise<LiveObject[]> {
  const resource = await resourceFor(kube, apiVersion, kind)
  if (!resource) throw new UnknownKindError(apiVersion, kind)
  const list = await rest<{ items?: LiveObject[] }>(kube, 'GET', resourcePath(apiVersion, resource, opts.namespace), {
    query: { labelSelector: opts.labelSelector },
  })
  return list.items ?? []
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

export async function serverSideApply(
  kube: Kube,
  obj: ManifestObject,
  ref: ObjectRef,
  opts: ServerSideApplyOptions,
): Promise<LiveObject> {
  return rest<LiveObject>(kube, 'PATCH', await objectPath(kube, ref), {
    body: obj,
    // JSON is YAML, and the apply content type takes YAML
    contentType: 'application/apply-patch+yaml',
    query: { fieldManager: opts.fieldManager, force: String(opts.force), dryRun: opts.dryRun ? 'All' : undefined },
  })
}

/** Deletes one object; `uid` makes sure it is still the object we looked at. False when it was gone. */
export async function deleteObject(
  kube: Kube,
  ref: ObjectRef,
  opts: { dryRun: boolean; uid?: string },
): Promise<boolean> {
  try {
    await rest(kube, 'DELETE', await objectPath(kube, ref), {
      body: {
        kind: 'DeleteOptions',
        apiVersion: 'v1',
        propagationPolicy: 'Background',
        preconditions: opts.uid ? { uid: opts.uid } : undefined,
      },
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
export async function placeObject(
  kube: Kube,
  obj: ManifestObject,
  defaultNamespace: string,
  /** `metadata`: a copy of the object and its metadata only, for a caller that only sends it (a dry run) */
  copy: 'deep' | 'metadata' = 'deep',
): Promise<ManifestObject | undefined> {
  const resource = await resourceFor(kube, obj.apiVersion, obj.kind)
  if (!resource) return undefined
  const placed = copy === 'deep' ? structuredClone(obj) : { ...obj, metadata: { ...obj.metadata } }
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
  kube: Kube,
  obj: ManifestObject,
  ref: ObjectRef,
  opts: { fieldManager: string; force: boolean },
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
