// `existing`: a cluster someone else runs, reached through a kubeconfig context.
import os from 'node:os'
import { KubeConfig } from '@kubernetes/client-node'
import { NsopsError } from '../core/errors.ts'
import { loadKubeConfig } from '../kube/client.ts'
import type { ClusterInfo, ClusterProvider, ComponentStatus } from './provider.ts'

export class ExistingCluster implements ClusterProvider {
  readonly name = 'existing' as const
  readonly capabilities = { localGitOps: false }
  constructor(
    private readonly context?: string,
    private readonly kubeconfigFile?: string,
  ) {}

  private load(): KubeConfig {
    return loadKubeConfig({ context: this.context, kubeconfig: this.kubeconfigFile })
  }

  async available() {
    try {
      this.load()
      return { ok: true as const }
    } catch (err) {
      return { ok: false as const, reason: (err as Error).message }
    }
  }

  async ensure(): Promise<ClusterInfo> {
    const kc = this.load()
    return {
      provider: 'existing',
      context: kc.getCurrentContext(),
      kubeconfig: await this.kubeconfig(),
      server: kc.getCurrentCluster()?.server ?? '',
      reused: true,
    }
  }

  async describe(): Promise<ComponentStatus[]> {
    const kc = this.load()
    return [{ name: `context ${kc.getCurrentContext()}`, state: 'running', detail: kc.getCurrentCluster()?.server }]
  }

  async kubeconfig(): Promise<string> {
    // all of $KUBECONFIG's files, so a context defined in its second file is still found
    const file = this.kubeconfigFile ?? process.env.KUBECONFIG
    if (file) return file
    return `${os.homedir()}/.kube/config`
  }

  async stop(): Promise<void> {
    throw new NsopsError('nsops does not stop a cluster it did not start (provider `existing`).', {
      hint: 'Stop it with the tool that created it.',
    })
  }

  async logs(): Promise<Record<string, string>> {
    return {}
  }
}
