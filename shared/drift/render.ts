// The drift report for people: where git comes from, the suspension context, then one block
// per class with each changed field, git → live, and who set the live value when.
// Pure: report in, text out.
import { refString } from '../kube/refs.ts'
import { c } from '../core/output.ts'
import type { Json } from './fields.ts'
import type { FieldSetter } from './managers.ts'
import type { DriftClass, DriftObject, DriftReport } from './types.ts'

const TITLES: Record<DriftClass, string> = {
  modified: 'MODIFIED LIVE',
  missing: 'MISSING LIVE',
  'gone-from-git': 'IN THE INVENTORY, GONE FROM GIT',
  extra: 'EXTRA IN THE NAMESPACE',
  skipped: 'SKIPPED',
  'in-sync': 'IN SYNC',
}

/** `12:04` today, `2026-05-03 12:04` otherwise (local time, as a terminal reader expects). */
export function shortTime(iso: string | undefined, now = new Date()): string {
  if (!iso) return ''
  const d = new Date(iso)
  if (Number.isNaN(d.getTime())) return iso
  const pad = (n: number) => String(n).padStart(2, '0')
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`
  return d.toDateString() === now.toDateString()
    ? hm
    : `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${hm}`
}

function value(v: Json | undefined): string {
  if (v === undefined) return c.dim('(absent)')
  const s = typeof v === 'string' ? v : JSON.stringify(v)
  return s.length > 80 ? `${s.slice(0, 77)}…` : s
}

export function setterText(s: FieldSetter[]): string {
  if (s.length === 0) return ''
  const first = s[0]
  const how = first.subresource ? ` (${first.subresource})` : first.operation === 'Apply' ? ' (apply)' : ''
  const more =
    s.length > 1
      ? ` +${s
          .slice(1)
          .map((x) => x.manager)
          .join(', ')}`
      : ''
  return `set by ${first.manager}${how}${first.time ? ` at ${shortTime(first.time)}` : ''}${more}`
}

function objectBlock(o: DriftObject): string[] {
  const name = c.bold(refString(o.ref)) + (o.helmRelease ? c.dim(` (HelmRelease ${o.helmRelease})`) : '')
  const out: string[] = []
  switch (o.class) {
    case 'modified': {
      out.push(
        `  ${c.yellow('~')} ${name}${o.secretKeys?.length ? c.dim(`  Secret keys changed: ${o.secretKeys.join(', ')} (values shown as hashes)`) : ''}`,
      )
      for (const ch of o.changes ?? [])
        out.push(
          `      ${ch.path}: ${value(ch.git)} → ${c.yellow(value(ch.live))}${ch.setBy.length ? c.dim(`   ${setterText(ch.setBy)}`) : ''}`,
        )
      if (o.dryRunError)
        out.push(
          c.dim(`      (the server refused the dry run: ${o.dryRunError}; these compare the manifest with live)`),
        )
      break
    }
    case 'missing':
      out.push(`  ${c.red('-')} ${name}${c.dim('  in git, not live: Flux creates it')}`)
      break
    case 'gone-from-git':
      out.push(
        `  ${c.magenta('×')} ${name}${c.dim(`  ${o.reason ?? ''}`)}${o.pruneDisabled ? c.yellow('  [prune: disabled]') : ''}`,
      )
      break
    case 'extra':
      out.push(`  ${c.cyan('+')} ${name}${c.dim(`  ${o.reason ?? ''}`)}`)
      break
    case 'skipped':
      out.push(`  ${c.dim('·')} ${name}${c.dim(`  ${o.reason ?? ''}`)}`)
      break
    case 'in-sync':
      out.push(`  ${c.green('=')} ${name}`)
      break
  }
  if (o.context) out.push(c.dim(`      ⏸ ${o.context}`))
  for (const w of o.warnings ?? []) out.push(`      ${c.red('⚠')} ${c.red(w)}`)
  return out
}

export function summaryText(r: DriftReport): string {
  const n = r.counts
  return `${n.modified} modified, ${n.missing} missing, ${n['gone-from-git']} gone from git, ${n.extra} extra, ${n.skipped} skipped, ${n['in-sync']} in sync`
}

export function renderDrift(r: DriftReport, opts: { showInSync?: boolean } = {}): string {
  const out: string[] = []
  const b = r.source.baseline
  const rev =
    b.kind === 'worktree'
      ? 'the working tree'
      : b.kind === 'applied'
        ? `${b.revision ?? b.sha} (last applied by Flux${b.from === 'artifact' ? ', from the source artifact' : ''})`
        : `${b.requested} = ${b.sha?.slice(0, 12)}`
  const against = r.source.kustomization
    ? `Kustomization/${r.source.kustomization.namespace}/${r.source.kustomization.name}${r.source.kustomization.root ? ' (root)' : ''}`
    : 'overlays/prod (not under Flux)'
  out.push(
    c.bold(`${r.namespace.config} · drift of namespace ${r.namespace.name}`) +
      c.dim(`   context ${r.context} · ${r.server}`),
  )
  const also = r.source.also ?? []
  out.push(
    c.dim(
      also.length
        ? `  git: ${r.source.path} at ${rev}, as ${against} applies it, and the folders of ${also.map((k) => `Kustomization/${k}`).join(', ')}, as each applies them`
        : `  git: ${r.source.path} at ${rev}, as ${against} applies it`,
    ),
  )
  for (const h of r.source.helmReleases ?? [])
    out.push(
      c.dim(
        h.baseline === 'rendered'
          ? `  HelmRelease ${h.namespace}/${h.name}: its objects against chart ${h.chart} rendered for it as git has it (live: Helm release ${h.release} r${h.revision}, ${h.status})`
          : `  HelmRelease ${h.namespace}/${h.name}: its objects against its live Helm release ${h.release} r${h.revision} (${h.status}), as helm-controller installed it`,
      ),
    )
  for (const s of r.suspensions)
    out.push(
      c.yellow(`  ⏸ ${s.kustomization} suspended ${s.since ? `since ${shortTime(s.since)} ` : ''}${s.by}: ${s.note}`),
    )
  for (const w of r.warnings) out.push(c.yellow(`  ⚠ ${w}`))
  for (const cls of ['modified', 'missing', 'gone-from-git', 'extra', 'skipped'] as const) {
    const objs = r.objects.filter((o) => o.class === cls)
    if (objs.length === 0) continue
    out.push('', c.bold().cyan(`${TITLES[cls]} (${objs.length})`))
    for (const o of objs) out.push(...objectBlock(o))
  }
  if (opts.showInSync) {
    const objs = r.objects.filter((o) => o.class === 'in-sync')
    if (objs.length) out.push('', c.bold().cyan(`${TITLES['in-sync']} (${objs.length})`), ...objs.flatMap(objectBlock))
  }
  for (const n of r.notChecked) out.push(c.dim(`  ${n.object}: not checked (${n.reason})`))
  out.push('', `${summaryText(r)} → ${r.drifted ? c.yellow('drift (exit 1)') : c.green('in sync (exit 0)')}`)
  return out.join('\n')
}
