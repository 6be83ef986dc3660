// tk-* commands: Tanka's workflow over tanka/ (vendor, show, diff, apply, export, fmt,
// validate) with `tk` when it is installed and nsops' own renderer when it is not.
import fs from 'node:fs'
import path from 'node:path'
import { parseCommand, parseDuration } from '../core/cli.ts'
import { ExitCode, NsopsError } from '../core/errors.ts'
import { c, duration, log, setJsonMode, spinner } from '../core/output.ts'
import type { ApplyResult } from '../apply/apply.ts'
import type { Kube } from '../kube/client.ts'
import { defaultTankaRoot, loadEnvironment, shown, type TankaEnvironment } from '../tanka/environments.ts'
import { exportEnvironment, toYamlStream } from '../tanka/export.ts'
import { renderEnvironment, type Engine, type Rendered } from '../tanka/render.ts'
import { formatJsonnet } from '../tanka/renderer.ts'
import { resolveTarget, targetOptions } from '../kube/target.ts'

/** tk's exit status when `tk diff` finds changes. */
export const EXIT_DIFF = 16

const common = `
  --root DIR         the Tanka project (default: tanka/, or $NSOPS_TANKA_ROOT)
  --engine NAME      tk, renderer, or auto (default: tk when installed, else nsops' renderer)`
const cluster = `
  --kubeconfig FILE  --context NAME   which cluster (default: the one \`just cluster-up\` chose)`

const rootOptions = { root: { type: 'string' }, engine: { type: 'string' } } as const

function tankaRoot(flag: string | undefined): string {
  const root = path.resolve(flag ?? process.env.NSOPS_TANKA_ROOT ?? defaultTankaRoot)
  if (!fs.existsSync(root))
    throw new NsopsError(`the Tanka project ${root} does not exist.`, {
      hint: 'Pass --root DIR, the directory with jsonnetfile.json, lib/ and environments/.',
    })
  return root
}

function engineOf(flag: string | undefined): Engine | 'auto' {
  const e = flag ?? 'auto'
  if (e !== 'auto' && e !== 'tk' && e !== 'renderer')
    throw new NsopsError(`--engine ${e} is not one of tk, renderer, auto.`)
  return e
}

/** The one positional ENV every environment command takes; an unknown one lists the known. */
function environmentArg(positionals: string[], root: string, usage: string): TankaEnvironment {
  const [name] = positionals
  if (!name) throw new NsopsError('name an environment (e.g. local).', { hint: `Usage:\n${usage.trim()}` })
  return loadEnvironment(name, root)
}

/** With `kube`, charts render for that cluster's Kubernetes version. */
async function render(env: TankaEnvironment, engine: Engine | 'auto', kube?: Kube): Promise<Rendered> {
  const s = spinner(`rendering ${env.name}`)
  try {
    const r = await renderEnvironment(env, { engine, kube })
    s.succeed(
      `rendered ${env.name}: ${r.objects.length} objects with ${r.engine === 'tk' ? 'tk' : "nsops' renderer"} in ${duration(r.elapsedMs)}`,
    )
    return r
  } catch (err) {
    s.fail(`rendering ${env.name} failed`)
    throw err
  }
}

async function reachableCluster(values: { kubeconfig?: string; context?: string }): Promise<Kube> {
  const { connect, ensureReachable } = await import('../kube/client.ts')
  const kube = connect(resolveTarget(values))
  await ensureReachable(kube)
  return kube
}

const vendorUsage = `
Usage: just tk-vendor [--root DIR]

Vendors the Helm charts pinned in <root>/chartfile.yaml (Tanka's format) into its chart
directory (default charts/): each archive is checked against the sha256 in its repository's
index.yaml before it is unpacked. Idempotent: charts that match the lock are not fetched.
  --root DIR         the Tanka project (default: tanka/, or $NSOPS_TANKA_ROOT)
`

export async function tkVendor(argv: string[]): Promise<number> {
  const { values } = parseCommand(argv, { usage: vendorUsage, options: { root: { type: 'string' } } })
  const { vendorCharts, vendorSummaryLines } = await import('../helm/vendor.ts')
  const chartfile = path.join(tankaRoot(values.root), 'chartfile.yaml')
  const s = spinner(`vendoring the charts of ${shown(chartfile)}`)
  try {
    const summary = await vendorCharts({
      chartfile,
      onProgress: (e) => {
        if (e.step === 'download') s.text(`fetching ${e.chart} ${e.version}`)
        else if (e.step === 'index') s.text(`reading ${e.url}`)
        else if (e.step === 'warning') log.warn(e.message)
      },
    })
    s.succeed(
      summary.fetched.length
        ? `vendored ${summary.fetched.length} chart(s) into ${shown(summary.dest)}`
        : `charts in ${shown(summary.dest)} are up to date`,
    )
    for (const line of vendorSummaryLines(summary)) log.info(`  ${line}`)
    return ExitCode.ok
  } catch (err) {
    s.fail('vendoring failed; charts already in place were left as they were')
    throw err
  }
}

const showUsage = `
Usage: just tk-show ENV [--json] [--root DIR] [--engine NAME]

Renders the environment (tanka/environments/ENV) and prints its Kubernetes objects as
\`tk show\` does: one YAML stream, namespaces defaulted from spec.json, in apply order.
  --json             a JSON array instead of YAML${common}
`

export async function tkShow(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(argv, {
    usage: showUsage,
    allowPositionals: true,
    options: { json: { type: 'boolean' }, ...rootOptions },
  })
  if (values.json) setJsonMode(true)
  const env = environmentArg(positionals, tankaRoot(values.root), showUsage)
  const { objects } = await render(env, engineOf(values.engine))
  process.stdout.write(values.json ? `${JSON.stringify(objects, null, 2)}\n` : toYamlStream(objects))
  return ExitCode.ok
}

const diffUsage = `
Usage: just tk-diff ENV [--with-prune] [--exit-zero] [--json] [--root DIR] [--engine NAME]

What applying the environment would change, as the API server answers a server-side dry run
(defaults filled in, Secret values masked). Exits ${EXIT_DIFF} when there are changes (as \`tk diff\`),
0 when there are none, 1 when the server rejects an object.
  --with-prune       also show what \`tk-apply --prune\` would delete
  --exit-zero        exit 0 even when there are changes
  --json             the diff as data${common}${cluster}
`

export async function tkDiff(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(argv, {
    usage: diffUsage,
    allowPositionals: true,
    options: {
      'with-prune': { type: 'boolean' },
      'exit-zero': { type: 'boolean' },
      json: { type: 'boolean' },
      ...rootOptions,
      ...targetOptions,
    },
  })
  if (values.json) setJsonMode(true)
  const env = environmentArg(positionals, tankaRoot(values.root), diffUsage)
  const kube = await reachableCluster(values)
  const { objects } = await render(env, engineOf(values.engine), kube)
  const { diffEnvironment } = await import('../tanka/apply.ts')
  const { renderDiff } = await import('../apply/diff.ts')
  const result = await diffEnvironment(kube, env, objects, { withPrune: values['with-prune'] })
  process.stdout.write(values.json ? `${JSON.stringify(result, null, 2)}\n` : `${renderDiff(result)}\n`)
  if (result.objects.some((d) => d.error)) return ExitCode.usage
  const changes = result.objects.some((d) => d.action !== 'unchanged')
  return changes && !values['exit-zero'] ? EXIT_DIFF : ExitCode.ok
}

const applyUsage = `
Usage: just tk-apply ENV [--dry-run] [--prune] [--timeout 5m] [--root DIR] [--engine NAME]

Applies the environment with server-side apply (field manager \`tanka\`, as \`tk apply
--server-side\`), Namespaces and CRDs first, then waits until every object is healthy
(kstatus). Only local contexts (kind-*, k3d-*, nsops-sim, ...) and allow-listed ones are
changed. Exits 0 when healthy, 1 when an object is rejected (the rest is applied), 3 when
something is not healthy by the timeout.
  --dry-run          server-side dry run: validated, nothing persisted
  --prune            delete objects an earlier tk-apply of ENV created that it no longer renders
  --timeout DUR      how long to wait for health (default 5m; 0 skips the wait)${common}${cluster}
`

export async function tkApply(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(argv, {
    usage: applyUsage,
    allowPositionals: true,
    options: {
      'dry-run': { type: 'boolean' },
      prune: { type: 'boolean' },
      timeout: { type: 'string' },
      ...rootOptions,
      ...targetOptions,
    },
  })
  const env = environmentArg(positionals, tankaRoot(values.root), applyUsage)
  const timeoutMs =
    values.timeout !== undefined ? parseDuration(values.timeout, '--timeout', { allowZero: true }) : 300_000
  const kube = await reachableCluster(values)
  const { guardContext } = await import('../kube/guard.ts')
  // refuse before spending time on a render the guard would throw away
  if (!values['dry-run']) guardContext(kube.context, kube.server, `apply the Tanka environment ${env.name}`)
  const { objects } = await render(env, engineOf(values.engine), kube)
  const { applyEnvironment } = await import('../tanka/apply.ts')
  const { refString } = await import('../kube/refs.ts')
  const dryRun = values['dry-run'] ?? false
  const appliedLine = (a: ApplyResult) =>
    `${dryRun ? 'dry run: ' : ''}${a.created.length} created, ${a.configured.length} configured, ${a.unchanged.length} unchanged` +
    `${a.pruned.length ? `, ${a.pruned.length} pruned` : ''}${a.failed.length ? `, ${a.failed.length} rejected` : ''}`
  const s = spinner(`${dryRun ? 'dry-running' : 'applying'} ${objects.length} objects to ${kube.context}`)
  let lastShown = ''
  const { applied, health } = await applyEnvironment(kube, env, objects, {
    dryRun,
    prune: values.prune,
    timeoutMs: dryRun ? 0 : timeoutMs,
    onHealth: (_changed, all) => {
      const line = `waiting for health: ${all.filter((h) => h.status === 'Current').length}/${all.length} current`
      if (line !== lastShown) s.text((lastShown = line))
    },
  }).catch((err: unknown) => {
    s.fail('apply failed')
    throw err
  })
  s.succeed(appliedLine(applied))
  for (const f of applied.failed) log.fail(`${refString(f.ref)}: ${f.message}`)
  for (const r of applied.retained) log.info(c.dim(`  kept ${refString(r.ref)}: ${r.reason}`))
  if (health) {
    if (health.ok) log.ok(`${env.name} is healthy (${duration(health.elapsedMs)})`)
    else
      log.fail(`${env.name} is not healthy (${health.outcome} after ${duration(health.elapsedMs)}):\n${health.report}`)
  }
  if (applied.failed.length) return ExitCode.usage
  return health && !health.ok ? ExitCode.unhealthy : ExitCode.ok
}

const exportUsage = `
Usage: just tk-export ENV DIR [--merge] [--root DIR] [--engine NAME]

Writes each object of the environment to DIR/<apiVersion>.<kind>-<name>.yaml and a
manifest.json that maps the files to the environment, as \`tk export\`. DIR must be empty
or new (--merge adds to it; no file is ever overwritten).${common}
`

export async function tkExport(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(argv, {
    usage: exportUsage,
    allowPositionals: true,
    options: { merge: { type: 'boolean' }, ...rootOptions },
  })
  const env = environmentArg(positionals, tankaRoot(values.root), exportUsage)
  const dir = positionals[1]
  if (!dir) throw new NsopsError('name the directory to export into.', { hint: `Usage:\n${exportUsage.trim()}` })
  const { objects } = await render(env, engineOf(values.engine))
  const result = await exportEnvironment(env, objects, dir, { merge: values.merge })
  log.ok(`exported ${result.files.length} objects of ${env.name} to ${shown(path.resolve(dir))}`)
  return ExitCode.ok
}

const fmtUsage = `
Usage: just tk-fmt [--test] [PATH...] [--root DIR]

Formats the Jsonnet (.jsonnet, .libsonnet) of the Tanka project, or of PATHs, in jsonnetfmt's
style as \`tk fmt\` does (vendor/ and hidden files are left alone).
  --test             change nothing; list the files that are not formatted and exit 1 if any
  --root DIR         the Tanka project (default: tanka/, or $NSOPS_TANKA_ROOT)
`

export async function tkFmt(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(argv, {
    usage: fmtUsage,
    allowPositionals: true,
    options: { test: { type: 'boolean' }, root: { type: 'string' } },
  })
  const paths = positionals.length ? positionals.map((p) => path.resolve(p)) : [tankaRoot(values.root)]
  for (const p of paths) if (!fs.existsSync(p)) throw new NsopsError(`${p} does not exist.`)
  const { changed } = await formatJsonnet(paths, { test: values.test })
  if (values.test) {
    if (changed.length === 0) {
      log.ok('all Jsonnet is formatted')
      return ExitCode.ok
    }
    log.fail(`${changed.length} file(s) are not formatted:`)
    for (const f of changed) process.stdout.write(`${shown(f)}\n`)
    log.info(c.dim('  run `just tk-fmt` to format them'))
    return ExitCode.usage
  }
  for (const f of changed) log.info(`formatted ${shown(f)}`)
  if (changed.length === 0) log.ok('all Jsonnet was formatted already')
  return ExitCode.ok
}

const validateUsage = `
Usage: just tk-validate [--no-cluster] [--json] [--root DIR] [--engine NAME]

What raibid-ci's CI does for its Tanka project: the Jsonnet is formatted (tk fmt --test),
every environment renders, holds the kinds <root>/validate.yaml requires, and, when a
cluster answers, passes a server-side dry run. Exits 1 when any check fails.
  --no-cluster       skip the dry run even when a cluster answers
  --json             the report as data${common}${cluster}
`

export async function tkValidate(argv: string[]): Promise<number> {
  const { values } = parseCommand(argv, {
    usage: validateUsage,
    options: { 'no-cluster': { type: 'boolean' }, json: { type: 'boolean' }, ...rootOptions, ...targetOptions },
  })
  if (values.json) setJsonMode(true)
  const root = tankaRoot(values.root)
  let kube: Kube | undefined
  let noDryRun: string | undefined
  if (values['no-cluster']) noDryRun = '--no-cluster'
  else {
    try {
      kube = await reachableCluster(values)
    } catch (err) {
      noDryRun = err instanceof NsopsError ? err.message : String(err)
    }
  }
  const { validateTanka } = await import('../tanka/validate.ts')
  const s = spinner('validating the Tanka project')
  const report = await validateTanka({
    root,
    kube,
    noDryRun,
    engine: engineOf(values.engine),
    onProgress: (m) => s.text(m),
  }).catch((err: unknown) => {
    s.fail('validation could not run')
    throw err
  })
  s.stop()
  if (values.json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`)
    return report.ok ? ExitCode.ok : ExitCode.usage
  }
  const mark = (ok: boolean) => (ok ? c.green('✔') : c.red('✖'))
  log.info(
    `${mark(report.unformatted.length === 0)} formatting${report.unformatted.length ? `: not formatted: ${report.unformatted.join(', ')} (run \`just tk-fmt\`)` : ''}`,
  )
  for (const e of report.environments) {
    if (e.renderError) {
      log.info(`${mark(false)} ${e.env}: ${e.renderError}`)
      continue
    }
    const problems = [
      e.missingKinds.length ? `missing kinds: ${e.missingKinds.join(', ')}` : '',
      e.tooFew ?? '',
      ...e.rejected.map((r) => `rejected ${r}`),
    ].filter(Boolean)
    const dry = e.dryRun ? ', dry run passed' : ''
    log.info(
      `${mark(problems.length === 0)} ${e.env}: ${e.objects} objects (${Object.keys(e.kinds).length} kinds) via ${e.engine}${problems.length ? '' : dry}`,
    )
    for (const p of problems) log.info(`    ${p}`)
  }
  if (report.noDryRun) log.info(c.dim(`  no server-side dry run: ${report.noDryRun}`))
  return report.ok ? ExitCode.ok : ExitCode.usage
}
