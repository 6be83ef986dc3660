// Which cluster to use: an allowed current context → kind/k3d when a Docker engine answers
// → the embedded sim cluster. NSOPS_PROVIDER=existing|kind|k3d|sim forces one.
import { NsopsError } from '../core/errors.ts'
import { isAllowedContext } from '../kube/guard.ts'
import { loadKubeConfig } from '../kube/client.ts'
import { DockerCluster } from './docker-cluster.ts'
import { ExistingCluster } from './existing.ts'
import type { ClusterProvider, ProviderName } from './provider.ts'
import { SimCluster, SIM_CONTEXT, type SimOptions } from './sim/index.ts'

export const PROVIDERS: ProviderName[] = ['existing', 'kind', 'k3d', 'sim']

export function providerByName(name: string, sim: SimOptions = {}): ClusterProvider {
  switch (name) {
    case 'existing':
      return new ExistingCluster()
    case 'kind':
      return new DockerCluster('kind')
    case 'k3d':
      return new DockerCluster('k3d')
    case 'sim':
      return new SimCluster(sim)
    default:
      throw new NsopsError(`unknown cluster provider "${name}".`, { hint: `Use one of: ${PROVIDERS.join(', ')}.` })
  }
}

function currentContext(): string | undefined {
  try {
    const kc = loadKubeConfig() // $KUBECONFIG's files merged as kubectl does, else ~/.kube/config
    const ctx = kc.getCurrentContext()
    return ctx === 'loaded-context' ? undefined : ctx
  } catch {
    return undefined
  }
}

export interface Choice {
  provider: ClusterProvider
  why: string
}

export async function chooseProvider(sim: SimOptions = {}): Promise<Choice> {
  const forced = process.env.NSOPS_PROVIDER
  if (forced) return { provider: providerByName(forced, sim), why: `NSOPS_PROVIDER=${forced}` }
  const ctx = currentContext()
  if (ctx && ctx !== SIM_CONTEXT && isAllowedContext(ctx)) {
    return { provider: new ExistingCluster(ctx), why: `the current context ${ctx} is allowed` }
  }
  for (const name of ['kind', 'k3d'] as const) {
    const p = new DockerCluster(name)
    if ((await p.available()).ok) return { provider: p, why: `${name} is installed and a Docker engine answers` }
  }
  return {
    provider: new SimCluster(sim),
    why: 'no allowed current context and no Docker engine: using the embedded sim cluster',
  }
}
