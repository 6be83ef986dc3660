// A running dev loop announces itself twice: in .nsops/dev/<namespace>.json on this machine
// (who runs it, against which context, its port-forwards: the dashboard and dev-down read it)
// and in the cluster as a coordination.k8s.io Lease, so a second checkout or another machine
// working on the same cluster is refused too, naming the first. The file is claimed with an
// atomic link (two loops started at the same moment cannot both win); the Lease with create
// (409 for the loser) and renewed while the loop runs. A session `dev --ci` keeps on purpose
// stays as `kept` until `just dev-down` or the next loop of the namespace takes it over.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { CoordinationV1Api, V1MicroTime, type V1Lease } from '@kubernetes/client-node'
import { NsopsError, errorMessage } from '../core/errors.ts'
import { isApiError, type Kube } from '../kube/client.ts'
import { pidAlive } from '../core/lock.ts'
import { stateDir } from '../core/paths.ts'

export interface ForwardInfo {
  app: string
  local: number
  remote: number
  url: string
  status: string
  pod?: string
  error?: string
}

export interface DevSession {
  namespace: string
  kubernetesNamespace: string
  pid: number
  host: string
  user: string
  context: string
  startedAt: string
  lastApply?: string
  forwards: ForwardInfo[]
  /** left running by `dev --ci` after its process ended */
  kept?: boolean
}

const dir = () => path.join(stateDir(), 'dev')
const file = (ns: string) => path.join(dir(), `${ns}.json`)

function readFile(ns: string): DevSession | undefined {
  try {
    return JSON.parse(fs.readFileSync(file(ns), 'utf8')) as DevSession
  } catch {
    return undefined
  }
}

function alive(s: DevSession): boolean {
  return s.host === os.hostname() && pidAlive(s.pid)
}

/** The namespace's session when its loop runs (or was kept by `dev --ci`). */
export function readSession(ns: string): DevSession | undefined {
  const s = readFile(ns)
  return s && (alive(s) || s.kept) ? s : undefined
}

export function liveSessions(): DevSession[] {
  let names: string[] = []
  try {
    names = fs
      .readdirSync(dir())
      .filter((f) => f.endsWith('.json'))
      .map((f) => f.slice(0, -5))
  } catch {
    return []
  }
  return names.map(readSession).filter((s): s is DevSession => Boolean(s))
}

function refusal(
  other: Pick<DevSession, 'namespace' | 'pid' | 'user' | 'host' | 'startedAt'>,
  where: string,
): NsopsError {
  return new NsopsError(
    `a dev loop for ${other.namespace} is already running ${where} (${other.user}@${other.host}, pid ${other.pid}, since ${other.startedAt}).`,
    {
      hint: `Use that one, or stop it first (Ctrl-C in its terminal, \`kill ${other.pid}\` on ${other.host}, or \`just dev-down\` there).`,
    },
  )
}

/** Claims the namespace for this process; refuses while another live dev loop holds it. */
export function claimSession(s: Omit<DevSession, 'pid' | 'host' | 'user' | 'startedAt' | 'forwards'>): DevSession {
  const session: DevSession = {
    ...s,
    pid: process.pid,
    host: os.hostname(),
    user: os.userInfo().username,
    startedAt: new Date().toISOString(),
    forwards: [],
  }
  fs.mkdirSync(dir(), { recursive: true })
  const tmp = `${file(s.namespace)}.${process.pid}.claim`
  fs.writeFileSync(tmp, JSON.stringify(session, null, 2))
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        fs.linkSync(tmp, file(s.namespace)) // atomic: fails with EEXIST when someone holds it
        return session
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 5) throw err
      }
      const other = readFile(s.namespace)
      if (other && alive(other) && other.pid !== process.pid) throw refusal(other, 'on this machine')
      // dead or kept: move it aside atomically; of two claimers only one rename succeeds
      try {
        fs.renameSync(file(s.namespace), `${file(s.namespace)}.${process.pid}.old`)
      } catch {
        /* someone else did */
      }
      fs.rmSync(`${file(s.namespace)}.${process.pid}.old`, { force: true })
    }
  } finally {
    fs.rmSync(tmp, { force: true })
  }
}

export function writeSession(s: DevSession): void {
  fs.mkdirSync(dir(), { recursive: true })
  const tmp = `${file(s.namespace)}.${process.pid}`
  fs.writeFileSync(tmp, JSON.stringify(s, null, 2))
  fs.renameSync(tmp, file(s.namespace))
}

export function releaseSession(ns: string): void {
  const s = readFile(ns)
  if (!s || s.pid === process.pid || !(alive(s) || s.kept)) fs.rmSync(file(ns), { force: true })
}

// ---- the Lease in the cluster ----

const LEASE_NAMESPACE = 'default'
const LEASE_SECONDS = 60
const HOLDER = 'nsops.dev/holder'
export const leaseName = (ns: string) => `nsops-dev-${ns}`

interface LeaseHolder {
  user: string
  host: string
  pid: number
  startedAt: string
  namespace: string
  kept?: boolean
}

function expired(lease: V1Lease): boolean {
  const renew = lease.spec?.renewTime ? new Date(lease.spec.renewTime as unknown as string).getTime() : NaN
  return Number.isNaN(renew) || renew + (lease.spec?.leaseDurationSeconds ?? LEASE_SECONDS) * 1000 < Date.now()
}

/**
 * Holds the namespace's Lease for this session; refuses when another session's Lease is
 * live (another checkout, another machine). Renewed every 20 s until released.
 */
export async function holdLease(
  kube: Kube,
  session: DevSession,
): Promise<{ release(opts?: { keep?: boolean }): Promise<void> }> {
  const api = kube.kc.makeApiClient(CoordinationV1Api)
  const name = leaseName(session.namespace)
  const holder: LeaseHolder = {
    user: session.user,
    host: session.host,
    pid: session.pid,
    startedAt: session.startedAt,
    namespace: session.namespace,
  }
  const identity = `${holder.user}@${holder.host}/${holder.pid}`
  const body = (rv?: string, kept = false): V1Lease => ({
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: {
      name,
      namespace: LEASE_NAMESPACE,
      ...(rv ? { resourceVersion: rv } : {}),
      annotations: { [HOLDER]: JSON.stringify({ ...holder, ...(kept ? { kept } : {}) }) },
    },
    spec: { holderIdentity: identity, leaseDurationSeconds: LEASE_SECONDS, renewTime: new V1MicroTime() },
  })
  let rv: string | undefined
  try {
    rv = (await api.createNamespacedLease({ namespace: LEASE_NAMESPACE, body: body() })).metadata?.resourceVersion
  } catch (err) {
    if (!isApiError(err, 409)) throw err
    const current = await api.readNamespacedLease({ name, namespace: LEASE_NAMESPACE })
    let other: LeaseHolder | undefined
    try {
      other = JSON.parse(current.metadata?.annotations?.[HOLDER] ?? '') as LeaseHolder
    } catch {
      /* a Lease someone else made */
    }
    const ours = current.spec?.holderIdentity === identity
    const deadHere = other !== undefined && other.host === os.hostname() && !pidAlive(other.pid)
    if (!ours && !expired(current) && !deadHere && !other?.kept) {
      throw refusal(
        other ?? {
          namespace: session.namespace,
          pid: 0,
          user: 'unknown',
          host: current.spec?.holderIdentity ?? 'unknown',
          startedAt: '?',
        },
        `against this cluster (Lease ${LEASE_NAMESPACE}/${name})`,
      )
    }
    // expired, dead or kept: take it over, guarded by the resourceVersion we read
    rv = (
      await api.replaceNamespacedLease({
        name,
        namespace: LEASE_NAMESPACE,
        body: body(current.metadata?.resourceVersion),
      })
    ).metadata?.resourceVersion
  }
  const renew = setInterval(
    () => {
      api.replaceNamespacedLease({ name, namespace: LEASE_NAMESPACE, body: body(rv) }).then(
        (l) => {
          rv = l.metadata?.resourceVersion
        },
        () => {},
      )
    },
    (LEASE_SECONDS / 3) * 1000,
  )
  renew.unref()
  return {
    async release(opts = {}) {
      clearInterval(renew)
      try {
        if (opts.keep) await api.replaceNamespacedLease({ name, namespace: LEASE_NAMESPACE, body: body(rv, true) })
        else
          await api.deleteNamespacedLease({
            name,
            namespace: LEASE_NAMESPACE,
            body: { preconditions: { resourceVersion: rv } },
          })
      } catch (err) {
        if (!isApiError(err, 404) && !isApiError(err, 409))
          throw new NsopsError(`could not release the dev Lease ${LEASE_NAMESPACE}/${name}: ${errorMessage(err)}`)
      }
    },
  }
}

/** Ends a kept session's Lease (`just dev-down`). */
export async function dropLease(kube: Kube, ns: string): Promise<void> {
  const api = kube.kc.makeApiClient(CoordinationV1Api)
  try {
    await api.deleteNamespacedLease({ name: leaseName(ns), namespace: LEASE_NAMESPACE })
  } catch (err) {
    if (!isApiError(err, 404)) throw err
  }
}
