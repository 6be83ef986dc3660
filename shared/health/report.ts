// The wait's outcome for people: one line when all is Current, otherwise each object that is
// not, with its status, why, and its pods grouped by reason.
import { duration } from '../core/output.ts'
import type { ObjectHealth, PodHealth } from './evaluate.ts'

export type Outcome = 'current' | 'failed' | 'timeout' | 'aborted'

const podsShownPerObject = 5

export function renderReport(outcome: Outcome, statuses: ObjectHealth[], elapsedMs: number): string {
  const n = statuses.length
  const objects = (k: number) => `${k} object${k === 1 ? '' : 's'}`
  if (outcome === 'current') return `all ${objects(n)} Current after ${duration(elapsedMs)}`
  const notCurrent = statuses.filter((s) => s.status !== 'Current')
  const headline = {
    failed: `${objects(notCurrent.filter((s) => s.status === 'Failed').length)} Failed after ${duration(elapsedMs)}`,
    timeout: `timed out after ${duration(elapsedMs)} waiting for ${notCurrent.length} of ${objects(n)}`,
    aborted: `interrupted after ${duration(elapsedMs)}; ${notCurrent.length} of ${objects(n)} not Current`,
  }[outcome]
  const lines = [`${headline}:`]
  for (const s of notCurrent) {
    lines.push(`  ${s.ref}: ${s.status}: ${s.message}`)
    // replicas usually fail for the same reason: one line per reason, not per pod
    const byWhy = new Map<string, PodHealth[]>()
    for (const p of s.pods ?? [])
      if (p.why) byWhy.set(`${p.status} ${p.why}`, [...(byWhy.get(`${p.status} ${p.why}`) ?? []), p])
    for (const group of byWhy.values()) {
      const [p] = group
      const who =
        group.length === 1
          ? `pod ${p.name} ${p.status} ${p.ready}${p.restarts ? ` (${p.restarts} restarts)` : ''}`
          : `${group.length} pods (${group
              .slice(0, podsShownPerObject)
              .map((g) => g.name)
              .join(', ')}${group.length > podsShownPerObject ? ', …' : ''}) ${p.status}`
      lines.push(`    ${who}: ${p.why}`)
    }
    if (s.pods && s.pods.length === 0 && s.status !== 'NotFound') lines.push('    no pods match its selector yet')
  }
  return lines.join('\n')
}
