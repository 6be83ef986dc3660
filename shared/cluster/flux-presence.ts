// Which Flux controllers run on a cluster, for the health watch (shared/health/flux-controllers.ts):
// on the sim they are local processes the sim supervises (its state file says which, and
// whether each is alive); on any other cluster they are Deployments (flux install and the Flux
// Operator name them source-controller, helm-controller, …), running when one replica is ready.
import fs from 'node:fs'
import path from 'node:path'
import type { FluxControllerCheck } from '../health/flux-controllers.ts'
import type { Kube } from '../kube/client.ts'
import { stateDir } from '../core/paths.ts'
import { isRunning, type ComponentRecord } from './sim/processes.ts'

const FLUX_CONTROLLERS = [
  'source-controller',
  'kustomize-controller',
  'helm-controller',
  'notification-controller',
  'image-reflector-controller',
  'image-automation-controller',
]

interface SimStateFile {
  apiserverPort: number
  components: ComponentRecord[]
}

/** The sim whose API server `kube` talks to, by its state file (beside the kubeconfig, or the default one). */
function simStateFor(kube: Kube): SimStateFile | undefined {
  const port = /^https:\/\/127\.0\.0\.1:(\d+)\/?$/.exec(kube.server)?.[1]
  if (!port) return undefined
  const dirs = [kube.kubeconfigPath && path.dirname(kube.kubeconfigPath), path.join(stateDir(), 'sim')]
  for (const dir of dirs.filter(Boolean) as string[]) {
    try {
      const state = JSON.parse(fs.readFileSync(path.join(dir, 'state.json'), 'utf8')) as SimStateFile
      if (String(state.apiserverPort) === port) return state
    } catch {
      /* not a sim's directory */
    }
  }
  return undefined
}

/** Asks `kube`'s cluster which Flux controllers run (undefined when it cannot be told). */
export function fluxControllerCheck(kube: Kube): FluxControllerCheck {
  return async () => {
    const sim = simStateFor(kube)
    if (sim)
      return new Set(sim.components.filter((c) => FLUX_CONTROLLERS.includes(c.name) && isRunning(c)).map((c) => c.name))
    try {
      const list = await kube.apps.listDeploymentForAllNamespaces()
      const running = new Set<string>()
      for (const d of list.items) {
        const name = d.metadata?.labels?.['app.kubernetes.io/component'] ?? d.metadata?.name ?? ''
        const controller = FLUX_CONTROLLERS.find((c) => c === name || c === d.metadata?.name)
        if (controller && (d.status?.readyReplicas ?? 0) > 0) running.add(controller)
      }
      return running
    } catch {
      return undefined // not allowed to list Deployments cluster-wide: claim nothing
    }
  }
}
