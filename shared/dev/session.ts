// A running dev loop announces itself in .nsops/dev/<namespace>.json: who runs it, against
// which context, and its port-forwards. A second dev.ts for the same namespace is refused
// while the owner lives; the dashboard shows the forward URLs; dev-down finds the loops.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { NsopsError } from '../errors.ts'
import { pidAlive } from '../lock.ts'
import { stateDir } from '../paths.ts'

export interface ForwardInfo { app: string; local: number; remote: number; url: string; status: string; pod?: string; error?: string }

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
}

const dir = () => path.join(stateDir(), 'dev')
const file = (ns: string) => path.join(dir(), `${ns}.json`)

export function readSession(ns: string): DevSession | undefined {
  try {
    const s = JSON.parse(fs.readFileSync(file(ns), 'utf8')) as DevSession
    return s.host === os.hostname() && pidAlive(s.pid) ? s : undefined
  } catch { return undefined }
}

export function liveSessions(): DevSession[] {
  let names: string[] = []
  try { names = fs.readdirSync(dir()).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)) } catch { return [] }
  return names.map(readSession).filter((s): s is DevSession => Boolean(s))
}

/** Claims the namespace for this process; refuses while another live dev loop holds it. */
export function claimSession(s: Omit<DevSession, 'pid' | 'host' | 'user' | 'startedAt' | 'forwards'>): DevSession {
  const other = readSession(s.namespace)
  if (other && other.pid !== process.pid) {
    throw new NsopsError(`a dev loop for ${s.namespace} is already running (pid ${other.pid}, started ${other.startedAt}).`, {
      hint: `Use that one, or stop it first (Ctrl-C in its terminal, or \`kill ${other.pid}\`, or \`just dev-down\`).`,
    })
  }
  const session: DevSession = { ...s, pid: process.pid, host: os.hostname(), user: os.userInfo().username, startedAt: new Date().toISOString(), forwards: [] }
  writeSession(session)
  return session
}

export function writeSession(s: DevSession): void {
  fs.mkdirSync(dir(), { recursive: true })
  const tmp = `${file(s.namespace)}.${process.pid}`
  fs.writeFileSync(tmp, JSON.stringify(s, null, 2))
  fs.renameSync(tmp, file(s.namespace))
}

export function releaseSession(ns: string): void {
  const s = readSession(ns)
  if (!s || s.pid === process.pid) fs.rmSync(file(ns), { force: true })
}
