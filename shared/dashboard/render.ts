// The dashboard model as text: header, apps by group, pods, PVCs, events, quick commands.
// Pure: model in, string out, so --watch can redraw a whole frame in one write.
import { c, healthMark, table } from '../core/output.ts'
import type { AppImage, DashboardModel } from './collect.ts'
import { graphLines } from '../flux/graph.ts'
import { stringify } from 'yaml'

const statusMark = healthMark

function podColour(status: string, healthy: boolean): string {
  if (healthy) return status === 'Completed' ? c.gray(status) : c.green(status)
  if (status === 'Terminating') return c.magenta(status)
  if (
    status === 'Pending' ||
    (status.startsWith('Init:') && !/Err|BackOff/.test(status)) ||
    status === 'ContainerCreating'
  )
    return c.yellow(status)
  return c.red(status)
}

/**
 * What an app runs, short: `logdemo@sha256:0123456789ab` per container (its image's last path
 * segment and digest), or the tag when nothing names a digest; two digests while a rollout is
 * under way.
 */
export function imagesText(images: AppImage[] | undefined): string {
  return (images ?? [])
    .map((i) => {
      const name = i.image.split('@')[0].split('/').at(-1) ?? i.image
      if (!i.digests.length) return name
      return `${name.replace(/:[^:]*$/, '')}@${i.digests.map((d) => d.slice(0, 19)).join(',')}`
    })
    .join(' ')
}

/**
 * `selectedRelease`: the HelmRelease (`namespace/name`) --watch's keys act on, marked ▶;
 * `valuesLines`: how many lines of a release's values to show (default 20; --watch shows none).
 */
export function renderDashboard(
  m: DashboardModel,
  opts: { selectedRelease?: string; valuesLines?: number } = {},
): string {
  const out: string[] = []
  const head = (t: string) => out.push('', c.bold().cyan(t))
  out.push(
    c.bold(`${m.namespace.config} · ${m.namespace.name} (${m.namespace.env})`) +
      c.dim(`   context ${m.context} · ${m.server}`),
  )
  if (!m.namespace.exists) out.push(c.red(`  namespace ${m.namespace.name} does not exist yet`))
  out.push(
    m.healthy
      ? c.green('  healthy')
      : c.red(`  ${m.problems.length} problem${m.problems.length === 1 ? '' : 's'}: `) +
          (m.healthy ? '' : m.problems.slice(0, 3).join('; ')),
  )
  if (m.devLoop)
    out.push(
      c.dim(
        `  dev loop ${m.devLoop.kept ? 'kept by dev --ci (`just dev-down` ends it)' : 'running'} (pid ${m.devLoop.pid}, since ${m.devLoop.startedAt}${m.devLoop.lastApply ? `, last apply ${m.devLoop.lastApply}` : ''})`,
      ),
    )

  head('FLUX')
  if (m.flux.objects.length === 0) out.push(c.dim(`  ${m.flux.note ?? 'no Flux objects for this namespace'}`))
  else {
    out.push(
      table(
        m.flux.objects.map((f) => [
          `${f.kind}/${f.name}`,
          f.suspended
            ? c.yellow(`suspended${f.suspendedBy ? ` ${f.suspendedBy}` : ''}`)
            : f.ready === 'True'
              ? c.green('Ready')
              : c.red(`Ready=${f.ready}`),
          f.lastAppliedRevision ? `applied ${f.lastAppliedRevision}` : c.dim('nothing applied yet'),
          f.inSyncWithHead === undefined
            ? ''
            : f.inSyncWithHead
              ? c.green('= git HEAD')
              : c.yellow(`≠ git HEAD ${f.gitHead?.slice(0, 7)}`),
          c.dim(f.message ?? ''),
        ]),
      ),
    )
  }
  for (const s of m.flux.stale) out.push(c.yellow(`  ⚠ stale suspension: ${s} — run \`just dev-down\` to resume it`))

  for (const r of m.flux.releases ?? []) {
    head(`${opts.selectedRelease === `${r.namespace}/${r.name}` ? '▶ ' : ''}HELMRELEASE ${r.namespace}/${r.name}`)
    const state = r.suspended
      ? c.yellow(`suspended ${r.suspendedBy?.text ?? ''}`.trim())
      : r.ready === 'True'
        ? c.green('Ready')
        : c.red(`Ready=${r.ready}${r.reason ? ` ${r.reason}` : ''}`)
    out.push(
      `  ${c.bold(r.chartVersion)} r${r.revision}  ${state}${r.lastAction ? `  last ${r.lastAction} ${r.lastResult === 'failed' ? c.red('failed') : r.lastResult === 'succeeded' ? c.green('succeeded') : (r.lastResult ?? '')}` : ''}`,
    )
    if (r.source)
      out.push(
        c.dim(
          `  from ${r.source.kind}/${r.source.name}${r.source.url ? ` ${r.source.url}` : ''}${r.source.ref ? ` (${r.source.ref})` : ''}${r.source.missing ? ' — not found' : ''}`,
        ),
      )
    if (r.ready !== 'True' && r.message) out.push(c.dim(`  ${r.message.slice(0, 200)}`))
    if (r.history.length)
      out.push(
        table(
          r.history.map((h) => [
            `r${h.revision}`,
            h.chart,
            h.status === 'deployed' ? c.green(h.status) : h.status === 'failed' ? c.red(h.status) : c.dim(h.status),
            c.dim(h.lastDeployed ?? ''),
          ]),
        ),
      )
    const values = stringify(r.values.effective, { lineWidth: 0 }).trimEnd()
    const lines = values === '{}' ? [] : values.split('\n')
    out.push(
      c.dim(
        `  values in effect${r.values.from.length ? ` (${r.values.from.map((f) => (f.kind === 'spec.values' ? 'spec.values' : `${f.kind}/${f.name}${f.note ? ` ${f.note}` : ''}`)).join(' + ')})` : ''}${lines.length ? ':' : ': none'}`,
      ),
    )
    const shown = opts.valuesLines ?? 20
    for (const l of lines.slice(0, shown)) out.push(`    ${l}`)
    if (lines.length > shown)
      out.push(c.dim(`    … ${lines.length - shown} ${shown ? 'more ' : ''}lines (--json and --web show them all)`))
  }

  if (m.flux.tree?.nodes.length) {
    head('FLUX TREE')
    const mark = (n: { status: string }) => statusMark[n.status as keyof typeof statusMark]?.(n.status) ?? n.status
    for (const l of graphLines(m.flux.tree, mark)) out.push(`  ${l}`)
  }

  for (const g of m.groups) {
    head(g.title.toUpperCase())
    out.push(
      table(
        g.apps.map((a) => [
          a.name,
          statusMark[a.status](a.status),
          a.ready,
          a.restarts ? c.yellow(`${a.restarts} restarts`) : c.dim('0 restarts'),
          c.dim(imagesText(a.images)),
          a.localUrl ? c.cyan(a.localUrl) : (a.ingressUrl ?? ''),
          c.dim(a.address ?? ''),
          a.status === 'Current' ? '' : c.dim(a.message),
        ]),
      ),
    )
  }

  head('PODS')
  if (m.pods.length === 0) out.push(c.dim('  none'))
  else
    out.push(
      table([
        [c.dim('NAME'), c.dim('READY'), c.dim('STATUS'), c.dim('RESTARTS'), c.dim('AGE'), c.dim('IP')],
        ...m.pods.map((p) => [p.name, p.ready, podColour(p.status, p.healthy), String(p.restarts), p.age, p.ip ?? '']),
      ]),
    )

  head('STORAGE')
  const bound = m.pvcs.filter((p) => p.status === 'Bound').length
  if (m.pvcs.length === 0) out.push(c.dim('  no PVCs'))
  else {
    out.push(`  ${bound}/${m.pvcs.length} bound`)
    out.push(
      table(
        m.pvcs.map((p) => [
          p.name,
          p.status === 'Bound' ? c.green('● Bound') : c.yellow(`○ ${p.status}`),
          p.capacity ?? p.requested ?? '',
          p.accessModes.join(','),
          p.storageClass ?? c.dim('(default)'),
        ]),
      ),
    )
  }

  head('RECENT WARNINGS')
  if (m.events.length === 0) out.push(c.dim('  none'))
  else
    out.push(
      table(
        m.events.map((e) => [
          e.age,
          e.object,
          c.yellow(e.reason),
          e.count > 1 ? `×${e.count}` : '',
          e.message.slice(0, 120),
        ]),
      ),
    )

  for (const s of m.sections ?? []) {
    head(s.title.toUpperCase())
    if (s.error) out.push(c.red(`  ✖ ${s.error}`))
    else if (s.rows.length === 0) out.push(c.dim('  none'))
    else out.push(table(s.rows))
  }

  if (m.drift) {
    const d = m.drift
    head(`DRIFT (${d.namespace} vs git ${d.baseline})`)
    const n = d.counts
    out.push(
      `  ${d.drifted ? c.yellow('drifted') : c.green('in sync')}: ${n.modified} modified, ${n.missing} missing, ${n['gone-from-git']} gone from git, ${n.extra} extra, ${n.skipped} skipped, ${n['in-sync']} in sync ${c.dim(`(${d.tookMs} ms)`)}`,
    )
    for (const s of d.suspensions) out.push(c.yellow(`  ⏸ ${s}`))
    for (const i of d.items) out.push(`  ${i}`)
    if (d.drifted) out.push(c.dim(`  details: just drift ${m.namespace.config}`))
  }

  head('QUICK COMMANDS')
  for (const q of m.quickCommands) out.push(`  ${q.title.padEnd(28)} ${c.dim(q.command)}`)
  out.push(`  ${'Dev loop'.padEnd(28)} ${c.dim(`./namespaces/${m.namespace.config}/dev.ts`)}`)
  out.push(`  ${'Deploy'.padEnd(28)} ${c.dim(`just deploy ${m.namespace.config}`)}`)
  return out.join('\n')
}
