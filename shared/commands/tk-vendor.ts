// tk-vendor: the Helm charts pinned in the Tanka project's chartfile.yaml, checked and unpacked.
import path from 'node:path'
import { parseCommand } from '../core/cli.ts'
import { ExitCode } from '../core/errors.ts'
import { log, spinner } from '../core/output.ts'
import { shown } from '../tanka/environments.ts'
import { tankaRoot } from '../tanka/command-line.ts'

const usage = `
Usage: just tk-vendor [--root DIR]

Vendors the Helm charts pinned in <root>/chartfile.yaml (Tanka's format) into its chart
directory (default charts/): each archive is checked against the sha256 in its repository's
index.yaml before it is unpacked; from an oci:// repository it is pulled with the pinned helm,
which checks it against the chart's manifest. Idempotent: charts that match the lock are not fetched.
  --root DIR         the Tanka project (default: tanka/, or $NSOPS_TANKA_ROOT)
`

export async function tkVendor(argv: string[]): Promise<number> {
  const { values } = parseCommand(argv, { usage, options: { root: { type: 'string' } } })
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
