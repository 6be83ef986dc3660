// `just charts`: the Helm charts in the cluster's OCI registry and their versions (what
// `just chart push` put there).
import { parseCommand } from '../core/cli.ts'
import { log, table } from '../core/output.ts'
import { CHARTS_PREFIX, listCharts } from '../images/charts.ts'
import { targetOptions } from '../kube/target.ts'
import { registry } from './chart.ts'

const usage = `
Usage: just charts [--kubeconfig FILE] [--context NAME]

Lists the charts in the cluster's registry (oci://HOST/${CHARTS_PREFIX}) and their versions.
The registry is the one the cluster advertises (KEP-1755 ConfigMap kube-public/
local-registry-hosting; the sim advertises its own), else NSOPS_REGISTRY.
`

export async function charts(argv: string[]): Promise<number> {
  const { values } = parseCommand(argv, { usage, options: { ...targetOptions } })
  const reg = await registry(values)
  const list = await listCharts(reg)
  if (!list.length) {
    log.info(`no charts in ${reg.host}/${CHARTS_PREFIX} yet (just chart push PATH puts one there)`)
    return 0
  }
  log.info(`charts in oci://${reg.host}/${CHARTS_PREFIX} (${reg.from}):`)
  log.info(table(list.map((ch) => [ch.name, ch.versions.join(', ')])))
  return 0
}
