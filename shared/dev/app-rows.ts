// The dev loop's status as rows, one per app: the model every view renders (the terminal view,
// the web page, --output-snapshot). It lives beside the loop's status, not in a renderer.
import type { HealthStatus } from '../core/output.ts'
import { releaseLine } from '../health/flux-controllers.ts'
import type { ObjectHealth } from '../health/wait.ts'
import type { DevStatus } from './loop.ts'

const severity: HealthStatus[] = ['Current', 'Unknown', 'InProgress', 'Terminating', 'NotFound', 'Failed']
export const worst = (all: HealthStatus[]): HealthStatus =>
  all.reduce((w, s) => (severity.indexOf(s) > severity.indexOf(w) ? s : w), 'Current' as HealthStatus)

export interface DevAppRow {
  app: string
  status: HealthStatus
  /** why it is not Current (the worst object's kstatus message) */
  message?: string
  ready: string
  restarts: number
  /** the forward's URL when it answers; else the URL with its state and why (never a bare URL) */
  forward?: string
  /** the forward's state (portforward's ForwardStatus): only `active` answers */
  forwardStatus?: string
  /** the app's HelmRelease: chart@version, revision, last action and result */
  release?: string
}

/** Objects by app (named `<app>` or `<app>-…`); the rest apart. Shared by every view. */
export function appRows(s: DevStatus): { apps: DevAppRow[]; other: ObjectHealth[] } {
  const names = [...(s.apps ?? [])].sort((a, b) => b.length - a.length) // longest first: `radarr-exporter` before `radarr`
  const byApp = new Map<string, ObjectHealth[]>((s.apps ?? []).map((a) => [a, []]))
  const other: ObjectHealth[] = []
  for (const r of s.resources) {
    const app = names.find((a) => r.name === a || r.name.startsWith(`${a}-`))
    if (app) byApp.get(app)!.push(r)
    else other.push(r)
  }
  const apps = [...byApp.entries()].map(([app, objs]): DevAppRow => {
    const status = objs.length ? worst(objs.map((o) => o.status)) : 'Unknown'
    const bad = objs.find((o) => o.status === status && status !== 'Current')
    const pods = objs.flatMap((o) => o.pods ?? [])
    const ready = pods.filter((p) => {
      const [a, b] = p.ready.split('/')
      return a === b && Number(b) > 0
    }).length
    const fw = s.forwards.find((f) => f.app === app)
    const hr = objs.find((o) => o.kind === 'HelmRelease' && o.release)
    return {
      app,
      status,
      ...(hr ? { release: releaseLine(hr.release!) } : {}),
      ...(bad
        ? { message: `${bad.kind}/${bad.name}: ${bad.message}` }
        : objs.length
          ? {}
          : { message: 'nothing applied for it yet' }),
      ready: `${ready}/${pods.length}`,
      restarts: pods.reduce((n, p) => n + p.restarts, 0),
      ...(fw
        ? {
            forward: fw.status === 'active' ? fw.url : `${fw.url} (${fw.status}${fw.error ? `: ${fw.error}` : ''})`,
            forwardStatus: fw.status,
          }
        : {}),
    }
  })
  return { apps, other }
}
