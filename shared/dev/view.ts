// The dev loop's live view: one block per namespace (resources with health, last apply,
// forward URLs, Flux hold). On a TTY the whole frame is redrawn in place; elsewhere each
// apply and each problem is one log line, so CI logs stay readable.
import type { Status } from '../health/kstatus.ts'
import { c, interactive, log, table } from '../output.ts'
import type { Loop, DevStatus } from './loop.ts'

const mark: Record<Status, string> = {
  Current: '✓', InProgress: '…', Failed: '✗', Terminating: '↓', NotFound: '✗', Unknown: '?',
}
const colour = (s: Status) => (s === 'Current' ? c.green : s === 'InProgress' || s === 'Unknown' ? c.yellow : c.red)

export function renderDevStatus(all: DevStatus[], header: string): string {
  const out = [c.bold(header)]
  for (const s of all) {
    const la = s.lastApply
    out.push('', `${c.bold().cyan(s.namespace)} → ${s.target}  ${c.dim(s.phase)}` +
      (la ? c.dim(`  last apply ${la.at.slice(11, 19)} (${la.trigger}; ${la.created} created, ${la.configured} changed, ${la.pruned} pruned, ${la.ms} ms)`) : ''))
    out.push(c.dim(`  flux: ${s.flux}`))
    if (s.error) out.push(c.red(`  error: ${s.error}`))
    for (const f of la?.failed ?? []) out.push(c.red(`  rejected: ${f}`))
    const rows = s.resources.filter((r) => r.kind !== 'ConfigMap' && r.kind !== 'ServiceAccount')
    if (rows.length) out.push(table(rows.map((r) => [`${r.kind}/${r.name}`, colour(r.status)(`${mark[r.status]} ${r.status}`), r.status === 'Current' ? '' : c.dim(r.message)])))
    const fw = s.forwards.map((f) => `${f.app} ${f.status === 'active' ? c.cyan(f.url) : c.yellow(`${f.url} (${f.status}${f.error ? `: ${f.error}` : ''})`)}`)
    if (fw.length) out.push(`  forwards: ${fw.join('  ')}`)
  }
  return out.join('\n')
}

/** Draws the view for these loops until stop() is called. */
export function attachView(loops: Loop[], header: string): { stop(): void } {
  if (!interactive()) {
    for (const l of loops) {
      l.on('applied', (a) => log.info(`${l.name}: applied (${a.trigger}): ${a.created} created, ${a.configured} changed, ${a.unchanged} unchanged, ${a.pruned} pruned in ${a.ms} ms${a.failed.length ? `; rejected: ${a.failed.join('; ')}` : ''}`))
      let lastError: string | undefined
      l.on('status', (s: DevStatus) => { if (s.error && s.error !== lastError) log.warn(`${l.name}: ${s.error}`); lastError = s.error })
    }
    return { stop() {} }
  }
  const out = process.stderr
  let timer: NodeJS.Timeout | undefined
  const draw = () => {
    const frame = renderDevStatus(loops.map((l) => l.status), header).split('\n').map((x) => `${x}\x1b[K`).join('\n')
    out.write(`\x1b[H${frame}\n${c.dim('Ctrl-C stops the loop, deletes dev-only objects and resumes Flux')}\x1b[K\x1b[J`)
  }
  const schedule = () => { if (!timer) timer = setTimeout(() => { timer = undefined; draw() }, 100) }
  out.write('\x1b[?1049h\x1b[?25l')
  for (const l of loops) l.on('status', schedule)
  draw()
  return {
    stop() {
      clearTimeout(timer)
      for (const l of loops) l.off('status', schedule)
      out.write('\x1b[?25h\x1b[?1049l')
    },
  }
}
