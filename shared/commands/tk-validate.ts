// tk-validate: what raibid-ci's CI checks of its Tanka project: formatted, renders, dry-runs.
import { parseCommand } from '../core/cli.ts'
import { ExitCode, NsopsError } from '../core/errors.ts'
import { c, log, setJsonMode, spinner } from '../core/output.ts'
import type { Kube } from '../kube/client.ts'
import { targetOptions } from '../kube/target.ts'
import {
  clusterHelp,
  engineOf,
  reachableCluster,
  rootAndEngineHelp,
  rootOptions,
  tankaRoot,
} from '../tanka/command-line.ts'

const usage = `
Usage: just tk-validate [--no-cluster] [--json] [--root DIR] [--engine NAME]

What raibid-ci's CI does for its Tanka project: the Jsonnet is formatted (tk fmt --test),
every environment renders, holds the kinds <root>/validate.yaml requires, and, when a
cluster answers, passes a server-side dry run. Exits 1 when any check fails.
  --no-cluster       skip the dry run even when a cluster answers
  --json             the report as data${rootAndEngineHelp}${clusterHelp}
`

export async function tkValidate(argv: string[]): Promise<number> {
  const { values } = parseCommand(argv, {
    usage,
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
