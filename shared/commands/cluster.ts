// cluster-up / cluster-down / cluster-status: the local cluster's lifecycle.
import { c, log, spinner, table, duration } from '../core/output.ts'
import { chooseProvider, providerByName } from '../cluster/select.ts'
import { SimCluster } from '../cluster/sim/index.ts'
import type { ClusterProvider } from '../cluster/provider.ts'
import { parseCommand } from '../core/cli.ts'
import { forgetTarget, rememberTarget } from '../kube/target.ts'

const usage = `
Usage: just cluster-up [--provider sim|kind|k3d|existing] [--flux]
       just cluster-down [--purge]
       just cluster-status

cluster-up      start the local cluster, or find it running (idempotent). Without --provider:
                an allowed current context, else kind/k3d when a Docker engine answers, else
                the embedded sim cluster (etcd + kube-apiserver + controllers + kwok, no Docker).
                Its kubeconfig is .nsops/sim/kubeconfig, context nsops-sim. --flux also runs
                Flux on it: the real source-controller and kustomize-controller, and a local
                git server whose URL survives cluster-down / cluster-up.
cluster-down    stop every process the sim cluster started; its state (etcd data, PKI) is kept
                for the next cluster-up unless --purge.
cluster-status  each component: running, stopped, or dead with the end of its log.
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
    return 0
  } catch (err) {
    s.fail('the cluster did not start')
    throw err
  }
}

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
