// Cluster access: one place that loads a kubeconfig, picks the context and makes clients,
// with errors that name the context and server when something is wrong.
import {
  ApiException,
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  KubernetesObjectApi,
  type KubernetesObject,
} from '@kubernetes/client-node'
import { NsopsError, errorMessage } from '../core/errors.ts'
import { anyKubeconfigExists, loadMergedKubeConfig } from './kubeconfig.ts'
import { rest } from './rest.ts'

export interface KubeTarget {
  /**
   * kubeconfig file, or several in $KUBECONFIG's form (`a:b`, merged as kubectl merges them);
   * default: $KUBECONFIG, else ~/.kube/config
   */
  kubeconfig?: string
  /** context name; default: the kubeconfig's current context */
  context?: string
}

export interface Kube {
  kc: KubeConfig
  context: string
  server: string
  kubeconfigPath?: string
  core: CoreV1Api
  apps: AppsV1Api
  custom: CustomObjectsApi
  objects: KubernetesObjectApi
}

export function loadKubeConfig(target: KubeTarget = {}): KubeConfig {
  let kc = new KubeConfig()
  const env = process.env.KUBECONFIG
  if (target.kubeconfig) {
    if (!anyKubeconfigExists(target.kubeconfig)) {
      throw new NsopsError(`kubeconfig ${target.kubeconfig} does not exist.`, {
        hint: 'Start the local cluster with `just cluster-up`, or point KUBECONFIG at your cluster.',
      })
    }
    kc = loadMergedKubeConfig(target.kubeconfig)
  } else if (env) {
    if (!anyKubeconfigExists(env)) {
      throw new NsopsError(`KUBECONFIG names no file that exists (${env}).`, {
        hint: "Point KUBECONFIG at your cluster's kubeconfig, or unset it and run `just cluster-up` for the local sim cluster.",
      })
    }
    kc = loadMergedKubeConfig(env)
  } else {
    kc.loadFromDefault()
    // loadFromDefault() does not throw without a kubeconfig: it invents `loaded-context`.
    if (kc.getCurrentContext() === 'loaded-context' && kc.getCurrentCluster()?.server === 'http://localhost:8080') {
      throw new NsopsError('no kubeconfig found (KUBECONFIG is unset and ~/.kube/config is missing).', {
        hint: "Run `just cluster-up` for the local sim cluster, or set KUBECONFIG to your cluster's kubeconfig.",
      })
    }
  }
  if (target.context) {
    if (!kc.getContexts().some((c) => c.name === target.context)) {
      throw new NsopsError(`context ${target.context} is not in the kubeconfig.`, {
        hint: `Known contexts: ${
          kc
            .getContexts()
            .map((c) => c.name)
            .join(', ') || '(none)'
        }.`,
      })
    }
    kc.setCurrentContext(target.context)
  }
  return kc
}

export function clientsFor(kc: KubeConfig, kubeconfigPath?: string): Kube {
  return {
    kc,
    context: kc.getCurrentContext(),
    server: kc.getCurrentCluster()?.server ?? '(unknown server)',
    kubeconfigPath,
    core: kc.makeApiClient(CoreV1Api),
    apps: kc.makeApiClient(AppsV1Api),
    custom: kc.makeApiClient(CustomObjectsApi),
    objects: KubernetesObjectApi.makeApiClient(kc),
  }
}

export function connect(target: KubeTarget = {}): Kube {
  return clientsFor(loadKubeConfig(target), target.kubeconfig ?? process.env.KUBECONFIG)
}

/** Fails with the context and server named when the API does not answer within timeoutMs. */
export async function ensureReachable(kube: Kube, timeoutMs = 5000): Promise<string> {
  let timer: NodeJS.Timeout | undefined
  try {
    // over the connection the command's other requests share (rest.ts), not one of its own
    const v = await Promise.race([
      rest<{ gitVersion: string }>(kube, 'GET', '/version', { timeoutMs }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs)
      }),
    ])
    return v.gitVersion
  } catch (err) {
    throw new NsopsError(
      `the cluster does not answer: context ${kube.context}, server ${kube.server} (${errorMessage(err)}).`,
      {
        hint:
          'Is it running? For the local cluster run `just cluster-up`; otherwise check your VPN and `kubectl --context ' +
          `${kube.context} get nodes\`.`,
      },
    )
  } finally {
    clearTimeout(timer)
  }
}

export function isApiError(err: unknown, code?: number): err is ApiException<unknown> {
  return err instanceof ApiException && (code === undefined || err.code === code)
}

/** The API's own message from an ApiException body, or the error's message. */
export function apiMessage(err: unknown): string {
  if (err instanceof ApiException) {
    try {
      const body = typeof err.body === 'string' ? JSON.parse(err.body) : err.body
      if (body?.message) return String(body.message)
    } catch {
      /* not JSON */
    }
    return `HTTP ${err.code}`
  }
  return errorMessage(err)
}

export function ref(obj: KubernetesObject): string {
  const ns = obj.metadata?.namespace ? `${obj.metadata.namespace}/` : ''
  return `${obj.kind}/${ns}${obj.metadata?.name}`
}

export type { KubernetesObject }
