// A running dev loop announces itself twice: in .nsops/dev/<namespace>.json on this machine
// (who runs it, against which context, its port-forwards: the dashboard and dev-down read it)
// and in the cluster as a coordination.k8s.io Lease, so a second checkout or another machine
// working on the same cluster is refused too, naming the first. The file is claimed under a
// lock directory (two loops started at the same moment cannot both win); the Lease with create
// (409 for the loser) and renewed while the loop runs. A session `dev --ci` keeps on purpose
// stays as `kept` until `just dev-down` or the next loop of the namespace takes it over.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { CoordinationV1Api, V1MicroTime, type V1Lease } from '@kubernetes/client-node'
import { NsopsError, errorMessage } from '../core/errors.ts'
import { isApiError, type Kube } from '../kube/client.ts'
import { pidAlive, withFileLockSync } from '../core/lock.ts'
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
  /** developed in place (layout.dev.inPlace): the loop works in prod's namespace */
  inPlace?: boolean
  /** why the exit left objects for `just dev-down` to finish (overlays/prod did not build) */
  unfinished?: string
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

/**
 * Whether `s.pid` is still the process that wrote the session, not a later one that got the
 * same pid after the loop died (kill -9, a reboot): a process that started after the session
 * did cannot be its loop. `ps -o etime=` (elapsed time, [[dd-]hh:]mm:ss) works on Linux and
 * macOS alike; where ps cannot tell, the pid is not trusted.
 */
export function sessionProcess(s: DevSession): boolean {
  if (!alive(s)) return false
  let etime: string
  try {
    etime = execFileSync('ps', ['-o', 'etime=', '-p', String(s.pid)], { encoding: 'utf8' }).trim()
  } catch {
    return false
  }
  const m = /^(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+)$/.exec(etime)
  if (!m) return false
  const [d, h, min, sec] = [m[1], m[2], m[3], m[4]].map((x) => Number(x ?? 0))
  const startedAt = Date.now() - (((d * 24 + h) * 60 + min) * 60 + sec) * 1000
  // etime counts whole seconds: a second of slack, and one for the clock moving meanwhile
  return startedAt <= new Date(s.startedAt).getTime() + 2000
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
  // Reading who holds the namespace and writing ours is one step under a lock, so two loops
  // started at the same moment cannot both find the file free (or dead) and both write it.
  // An earlier version linked atomically and removed a dead holder's file only when it was
  // still the inode it had read: on ext4 a late claimer's file could reuse that inode, and a
  // live claim was removed — two loops won.
  return withFileLockSync(`${file(s.namespace)}.lock`, () => {
    const other = readFile(s.namespace)
    if (other && alive(other) && other.pid !== process.pid) throw refusal(other, 'on this machine')
    writeSession(session)
    return session
  })
}

export function writeSession(s: DevSession): void {
  fs.mkdirSync(dir(), { recursive: true })
  const tmp = `${file(s.namespace)}.${process.pid}`
  fs.writeFileSync(tmp, JSON.stringify(s, null, 2))
  fs.renameSync(tmp, file(s.namespace))
}

export function releaseSession(ns: string): void {
  if (!fs.existsSync(dir())) return
  // under the claim's lock: a dead holder's file read here may be replaced by a new loop's
  // claim before the removal, which must not remove that one
  withFileLockSync(`${file(ns)}.lock`, () => {
    const s = readFile(ns)
    if (!s || s.pid === process.pid || !(alive(s) || s.kept)) fs.rmSync(file(ns), { force: true })
  })
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
 * live (another checkout, another machine). Renewed every 20 s until released; a renew the
 * apiserver refuses (409: someone replaced it; 404: deleted) marks it lost for good.
 */
export interface LeaseHandle {
  /**
   * Renews now (the dev loop does before every apply, so a machine waking from sleep writes
   * nothing before it knows): why the Lease is lost, or undefined while it is this loop's.
   */
  renew(): Promise<string | undefined>
  /** why the Lease is lost, once it is */
  lost(): string | undefined
  onLost(fn: (why: string) => void): void
  release(opts?: { keep?: boolean }): Promise<void>
}

export async function holdLease(kube: Kube, session: DevSession): Promise<LeaseHandle> {
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
  // Lost: someone else holds the Lease now (this machine slept longer than the Lease, and
  // another loop took the namespace over) or it is gone. From then on this loop must write
  // nothing: both would apply and prune with the same field manager and inventory.
  let lost: string | undefined
  const lose = async (why: 404 | 409) => {
    if (lost) return lost
    let now = 'nobody (the Lease was deleted)'
    if (why === 409) {
      try {
        const current = await api.readNamespacedLease({ name, namespace: LEASE_NAMESPACE })
        now = describeHolder(current)
      } catch (err) {
        if (!isApiError(err, 404)) now = 'someone else (the Lease could not be read)'
      }
    }
    lost = `the Lease ${LEASE_NAMESPACE}/${name} is now held by ${now}, so this loop stopped applying and pruning`
    for (const fn of onLost) fn(lost)
    return lost
  }
  const onLost: ((why: string) => void)[] = []
  // one renew at a time: two with the same resourceVersion would make the second a 409
  let inFlight: Promise<string | undefined> | undefined
  const renewOnce = (): Promise<string | undefined> => {
    inFlight ??= renewNow().finally(() => {
      inFlight = undefined
    })
    return inFlight
  }
  const renewNow = async (): Promise<string | undefined> => {
    if (lost) return lost
    try {
      rv = (await api.replaceNamespacedLease({ name, namespace: LEASE_NAMESPACE, body: body(rv) })).metadata
        ?.resourceVersion
    } catch (err) {
      if (isApiError(err, 409)) return lose(409)
      if (isApiError(err, 404)) return lose(404)
      // the cluster did not answer: the next renew (or the next apply's check) tries again
    }
    return lost
  }
  const renew = setInterval(() => void renewOnce(), (LEASE_SECONDS / 3) * 1000)
  renew.unref()
  return {
    renew: renewOnce,
    lost: () => lost,
    onLost(fn) {
      onLost.push(fn)
    },
    async release(opts = {}) {
      clearInterval(renew)
      await inFlight
      if (lost) return // someone else's now: nothing of it is ours to change
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

/** Who holds a Lease, for people: `ann@laptop, pid 4242, since …`. */
function describeHolder(lease: V1Lease): string {
  try {
    const h = JSON.parse(lease.metadata?.annotations?.[HOLDER] ?? '') as LeaseHolder
    return `${h.user}@${h.host} (pid ${h.pid}, since ${h.startedAt})`
  } catch {
    return lease.spec?.holderIdentity ?? 'someone else'
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
