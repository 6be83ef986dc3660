// Cluster access: one place that loads a kubeconfig, picks the context and makes clients,
// with errors that name the context and server when something is wrong.
import {
  ApiException,
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  IsomorphicFetchHttpLibrary,
  KubeConfig,
  KubernetesObjectApi,
  ResponseContext,
  ServerConfiguration,
  createConfiguration,
  wrapHttpLibrary,
  type Configuration,
  type KubernetesObject,
} from '@kubernetes/client-node'
import { NsopsError, errorMessage } from '../core/errors.ts'
import { anyKubeconfigExists, loadMergedKubeConfig } from './kubeconfig.ts'
import { NoAnswer, requestBound, rest } from './rest.ts'

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
  /**
   * When set (epoch ms, withDeadline), no request of this client outlives it by more than
   * AFTER_DEADLINE_MS; without it each request has REQUEST_TIMEOUT_MS (kube/rest.ts).
   */
  deadline?: number
  /** the client a deadline-bound one was made from: they share one connection (rest.ts) */
  base?: Kube
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
  return withClients({
    kc,
    context: kc.getCurrentContext(),
    server: kc.getCurrentCluster()?.server ?? '(unknown server)',
    kubeconfigPath,
  })
}

/**
 * The same cluster and connection, with every request (here and in rest.ts) ending by `at`
 * (epoch ms): a deploy's wait covers the requests it makes, so an API server that stops
 * answering ends it at its --timeout, not when the server answers again. A request started
 * after `at` still gets AFTER_DEADLINE_MS.
 */
export function withDeadline(kube: Kube, at: number): Kube {
  const base = kube.base ?? kube
  return withClients({
    kc: base.kc,
    context: base.context,
    server: base.server,
    kubeconfigPath: base.kubeconfigPath,
    deadline: at,
    base,
  })
}

type Clients = 'core' | 'apps' | 'custom' | 'objects'

function withClients(k: Omit<Kube, Clients>): Kube {
  const kube = k as Kube
  kube.core = apiClient(kube, CoreV1Api)
  kube.apps = apiClient(kube, AppsV1Api)
  kube.custom = apiClient(kube, CustomObjectsApi)
  kube.objects = apiClient(kube, ObjectApi).inContextNamespace(kube.kc)
  return kube
}

// what KubernetesObjectApi.makeApiClient does after making the client (the method is protected)
class ObjectApi extends KubernetesObjectApi {
  inContextNamespace(kc: KubeConfig): this {
    this.setDefaultNamespace(kc)
    return this
  }
}

/**
 * A client-node API client of `kube` (kc.makeApiClient's, with its requests bounded): client-node
 * sets no timeout, so a request to a server that stopped answering would wait for ever.
 */
export function apiClient<T>(kube: Pick<Kube, 'kc' | 'server' | 'deadline'>, api: new (config: Configuration) => T): T {
  const cluster = kube.kc.getCurrentCluster()
  if (!cluster) throw new Error('No active cluster!')
  return new api(
    createConfiguration({
      baseServer: new ServerConfiguration(cluster.server, {}),
      authMethods: { default: kube.kc },
      httpApi: boundedFetch(kube as Kube),
    }),
  )
}

/** client-node's fetch, each request (its answer's body included) ending within requestBound as a NoAnswer. */
function boundedFetch(kube: Kube) {
  const fetch = new IsomorphicFetchHttpLibrary()
  return wrapHttpLibrary({
    async send(req) {
      const ms = requestBound(kube)
      const timeout = AbortSignal.timeout(ms)
      const own = req.getSignal()
      req.setSignal(own ? AbortSignal.any([own, timeout]) : timeout)
      const what = `${req.getHttpMethod()} ${new URL(req.getUrl()).pathname}`
      const noAnswer = (err: unknown): never => {
        throw timeout.aborted && !own?.aborted ? new NoAnswer(what, kube.server, ms) : err
      }
      const res = await fetch.send(req).toPromise().catch(noAnswer)
      return new ResponseContext(res.httpStatusCode, res.headers, {
        text: () => res.body.text().catch(noAnswer),
        binary: () => res.body.binary().catch(noAnswer),
      })
    },
  })
}

export function connect(target: KubeTarget = {}): Kube {
  return clientsFor(loadKubeConfig(target), target.kubeconfig ?? process.env.KUBECONFIG)
}

/** Fails with the context and server named when the API does not answer within timeoutMs. */
export async function ensureReachable(kube: Kube, timeoutMs = 5000): Promise<string> {
  try {
    // over the connection the command's other requests share (rest.ts), not one of its own;
    // rest ends the request, connecting included, within timeoutMs
    const v = await rest<{ gitVersion: string }>(kube, 'GET', '/version', { timeoutMs })
    return v.gitVersion
  } catch (err) {
    throw new NsopsError(
      `the cluster does not answer: context ${kube.context}, server ${kube.server} (${errorMessage(err)}).`,
      {
        hint:
          'Is it running? For the local cluster run `just cluster-up`; otherwise check your VPN and `kubectl --context ' +
          `${kube.context} get nodes\`.`,
        cause: err,
      },
    )
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
export { NoAnswer, noAnswerIn } from './rest.ts'
