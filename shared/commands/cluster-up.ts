// cluster-up: start the local cluster, or find it running.
import { parseCommand } from '../core/cli.ts'
import { c, duration, log, spinner } from '../core/output.ts'
import type { ClusterProvider } from '../cluster/provider.ts'
import { chooseProvider, providerByName } from '../cluster/select.ts'
import { SimCluster } from '../cluster/sim/index.ts'
import { rememberTarget } from '../kube/target.ts'

const usage = `
Usage: just cluster-up [--provider sim|kind|k3d|existing] [--flux]

Starts the local cluster, or finds it running (idempotent). Without --provider: an allowed
current context, else kind/k3d when a Docker engine answers, else the embedded sim cluster
(etcd + kube-apiserver + controllers + kwok, no Docker). Its kubeconfig is
.nsops/sim/kubeconfig, context nsops-sim. Later commands talk to the cluster it chose.
  --flux    also run Flux on it: the real source-controller, kustomize-controller and
            helm-controller, and a local git server whose URL survives cluster-down / cluster-up
The sim also runs an OCI registry on 127.0.0.1 (plain HTTP), which tools find through the
ConfigMap kube-public/local-registry-hosting (KEP-1755).
`

async function provider(name: string | undefined, onProgress?: (m: string) => void): Promise<ClusterProvider> {
  if (name) return providerByName(name, { onProgress })
  const choice = await chooseProvider({ onProgress })
  log.info(c.dim(`provider: ${choice.provider.name} (${choice.why})`))
  return choice.provider
}

export async function clusterUp(argv: string[]): Promise<number> {
  const { values } = parseCommand(argv, { usage, options: { provider: { type: 'string' }, flux: { type: 'boolean' } } })
  const started = Date.now()
  const s = spinner('starting the cluster')
  const p = await provider(values.provider, (m) => s.text(`cluster: ${m}`))
  try {
    const info = await p.ensure({ flux: values.flux })
    rememberTarget({ kubeconfig: info.kubeconfig, context: info.context }) // later scripts talk to this cluster
    s.succeed(
      `${info.reused ? 'cluster already running' : `cluster started in ${duration(Date.now() - started)}`}: context ${info.context}, ${info.server}`,
    )
    log.info(`  kubeconfig: ${info.kubeconfig}\n  try: kubectl --kubeconfig ${info.kubeconfig} get nodes`)
    const registry = p instanceof SimCluster ? p.registryHost() : undefined
    if (registry) log.info(`  registry: ${registry} (plain HTTP; try: crane catalog ${registry})`)
    return 0
  } catch (err) {
    s.fail('the cluster did not start')
    throw err
  }
}
