// The namespace's dashboardSections hook (namespace.ts): extra sections from a zx call (an
// app's API, a queue length). A hook is someone's script talking to something that may hang
// or fail, so it gets 5 s and its result is computed once per process run (--watch redraws
// reuse it instead of calling an app's API on every pod event); a failure, a timeout or a
// malformed result becomes one error row and never breaks the rest of the dashboard.
import { errorMessage } from '../core/errors.ts'
import type { Kube } from '../kube/client.ts'
import type { Environment, NamespaceConfig } from '../config/namespace-config.ts'
import { runHook } from '../tasks/run.ts'

export const SECTIONS_TIMEOUT_MS = 5000

export interface SectionRow {
  title: string
  rows: string[][]
  /** set when the hook failed, timed out or returned something that is not sections */
  error?: string
}

const cache = new Map<string, Promise<SectionRow[]>>()

export function hookSections(
  kube: Kube,
  ns: NamespaceConfig,
  env: Environment,
  forwards: Record<string, string>,
  timeoutMs = SECTIONS_TIMEOUT_MS,
): Promise<SectionRow[]> {
  const key = `${ns.name}\0${env}\0${kube.context}`
  let p = cache.get(key)
  if (!p) cache.set(key, (p = run(kube, ns, env, forwards, timeoutMs)))
  return p
}

const failed = (error: string): SectionRow[] => [{ title: 'dashboardSections', rows: [], error }]

async function run(
  kube: Kube,
  ns: NamespaceConfig,
  env: Environment,
  forwards: Record<string, string>,
  timeoutMs: number,
): Promise<SectionRow[]> {
  const ac = new AbortController()
  let timer: NodeJS.Timeout | undefined
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs)
  })
  try {
    const ran = runHook('dashboardSections', {}, { kube, ns, env, forwards, signal: ac.signal })
    const r = await Promise.race([ran, timedOut])
    if (r === 'timeout') {
      // stop its commands, and let it finish (it removes its pinned kubeconfig) before the dashboard exits
      ac.abort()
      await ran.catch(() => {})
      return failed(`the dashboardSections hook did not answer within ${timeoutMs / 1000} s`)
    }
    if (!r) return []
    if (!r.run.ok) {
      const last = r.run.lines.filter((l) => !l.startsWith('✖ ')).at(-1)
      return failed(`the dashboardSections hook failed (${r.run.error})${last ? `: ${last.trim()}` : ''}`)
    }
    return shape(r.value)
  } catch (err) {
    return failed(`the dashboardSections hook failed: ${errorMessage(err)}`)
  } finally {
    clearTimeout(timer)
  }
}

/** The hook's value as sections; its type is checked by tsc, but a namespace.ts may be plain JS or cast. */
function shape(value: unknown): SectionRow[] {
  if (!Array.isArray(value))
    return failed(
      `the dashboardSections hook returned ${value === undefined ? 'nothing' : typeof value}, not a list of { title, rows }`,
    )
  const out: SectionRow[] = []
  for (const s of value as unknown[]) {
    const sec = s as { title?: unknown; rows?: unknown }
    if (!sec || typeof sec.title !== 'string' || !Array.isArray(sec.rows))
      return failed('the dashboardSections hook returned an entry that is not { title: string, rows: string[][] }')
    out.push({
      title: sec.title,
      rows: sec.rows.map((row) => (Array.isArray(row) ? row : [row]).map((cell) => String(cell ?? ''))),
    })
  }
  return out
}
