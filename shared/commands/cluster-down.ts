// cluster-down: stop the local cluster's processes, keeping its state unless --purge.
import { parseCommand } from '../core/cli.ts'
import { spinner } from '../core/output.ts'
import { providerByName } from '../cluster/select.ts'
import { SimCluster } from '../cluster/sim/index.ts'
import { forgetTarget } from '../kube/target.ts'

const usage = `
Usage: just cluster-down [--purge] [--provider sim|kind|k3d|existing]

Stops every process the sim cluster started (or the named provider's cluster); its state
(etcd data, PKI) is kept for the next cluster-up.
  --purge   also delete its state
`

export async function clusterDown(argv: string[]): Promise<number> {
  const { values } = parseCommand(argv, {
    usage,
    options: { purge: { type: 'boolean' }, provider: { type: 'string' } },
  })
  const p = values.provider ? providerByName(values.provider) : new SimCluster()
  const s = spinner(`stopping the ${p.name} cluster`)
  await p.stop({ purge: values.purge })
  forgetTarget()
  s.succeed(
    values.purge
      ? `${p.name} cluster stopped and its state deleted`
      : `${p.name} cluster stopped (state kept; --purge deletes it)`,
  )
  return 0
}
