// cluster-status: each component of the local cluster, running, stopped or dead.
import { parseCommand } from '../core/cli.ts'
import { c, log, table } from '../core/output.ts'
import { providerByName } from '../cluster/select.ts'
import { SimCluster } from '../cluster/sim/index.ts'

const usage = `
Usage: just cluster-status [--provider sim|kind|k3d|existing]

Each component of the sim cluster (or the named provider's): running, stopped, or dead with
the end of its log. Exits 1 when a component is dead.
`

export async function clusterStatus(argv: string[]): Promise<number> {
  const { values } = parseCommand(argv, { usage, options: { provider: { type: 'string' } } })
  const p = values.provider ? providerByName(values.provider) : new SimCluster()
  const comps = await p.describe()
  if (comps.length === 0) {
    log.info(`${p.name} cluster: not started (just cluster-up)`)
    return 0
  }
  const mark = { running: c.green('● running'), stopped: c.dim('○ stopped'), dead: c.red('✖ dead') }
  log.info(`${p.name} cluster:`)
  log.info(table(comps.map((x) => [x.name, mark[x.state], x.pid ? `pid ${x.pid}` : '', x.detail ?? ''])))
  for (const dead of comps.filter((x) => x.state === 'dead'))
    log.info(`\n${c.red(dead.name)} log tail:\n${dead.logTail}`)
  return comps.some((x) => x.state === 'dead') ? 1 : 0
}
