// cluster-down: stop the local cluster's processes, keeping its state unless --purge.
import { parseCommand } from '../core/cli.ts'
import { spinner } from '../core/output.ts'
import { providerByName } from '../cluster/select.ts'
import { SimCluster } from '../cluster/sim/index.ts'
import { forgetTarget } from '../kube/target.ts'
import { confirm } from '../deploy/confirm.ts'

const usage = `
Usage: just cluster-down [--purge] [--provider sim|kind|k3d|existing] [--yes]

Stops every process the sim cluster started (or the named provider's cluster); its state
(etcd data, PKI) is kept for the next cluster-up.
  --purge   also delete its state (asks first)
  --yes     answer the question: scripts and CI, where there is no terminal to ask on
kind and k3d have no "stopped but kept": their cluster-down deletes the cluster, so it asks too.
`

export async function clusterDown(argv: string[]): Promise<number> {
  const { values } = parseCommand(argv, {
    usage,
    options: { purge: { type: 'boolean' }, provider: { type: 'string' }, yes: { type: 'boolean', short: 'y' } },
  })
  const p = values.provider ? providerByName(values.provider) : new SimCluster()
  // what cannot be had back is asked for first, as `just cluster-purge` does
  const deletes =
    p.name === 'kind' || p.name === 'k3d'
      ? `Delete the ${p.name} cluster (everything in it, and the registry nsops made for it)?`
      : values.purge
        ? "Delete the sim cluster's state (etcd data, PKI, its git server and registry)? The next cluster-up starts from scratch."
        : undefined
  if (deletes) {
    const yes = await confirm(deletes, {
      yes: values.yes,
      what: `deleting the ${p.name} cluster${p.name === 'sim' ? "'s state" : ''}`,
      refusal: {
        undone: 'nothing was stopped or deleted',
        hint: 'pass --yes to confirm without a prompt (scripts, CI).',
      },
    })
    if (!yes) {
      console.error('not confirmed: nothing was stopped or deleted')
      return 1
    }
  }
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
