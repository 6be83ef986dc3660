// Where the cluster's image and chart registry is. A local cluster advertises it the way KEP-1755
// says (kind, k3d, Tilt and ctlptl read the same ConfigMap): `local-registry-hosting` in
// `kube-public`, whose `localRegistryHosting.v1` key holds YAML with `host` (where a developer's
// machine pushes), `hostFromContainerRuntime` (what a pod's image names), `hostFromClusterNetwork`
// (what in-cluster clients, like source-controller, pull from) and `help`.
// https://github.com/kubernetes/enhancements/tree/master/keps/sig-cluster-lifecycle/generic/1755-communicating-a-local-registry
import http from 'node:http'
import YAML from 'yaml'
import { PatchStrategy, setHeaderOptions, type V1ConfigMap } from '@kubernetes/client-node'
import { NsopsError } from '../core/errors.ts'
import { answersOk } from '../core/http-probe.ts'
import { isPlainHttpRegistry } from '../core/registry-host.ts'
import { isApiError, type Kube } from '../kube/client.ts'

export const REGISTRY_HOSTING = {
  namespace: 'kube-public',
  name: 'local-registry-hosting',
  key: 'localRegistryHosting.v1',
} as const

/** KEP-1755's LocalRegistryHostingV1, as the ConfigMap carries it. */
export interface LocalRegistryHosting {
  /** host[:port] a developer's machine pushes to */
  host: string
  /** host[:port] the container runtime pulls from: what image references in pod specs name */
  hostFromContainerRuntime?: string
  /** host[:port] a process inside the cluster (source-controller) reaches it at */
  hostFromClusterNetwork?: string
  /** where to read about it */
  help?: string
}

/** The ConfigMap that advertises a registry (what the sim applies at start). */
export function registryHostingConfigMap(hosting: LocalRegistryHosting): V1ConfigMap & { kind: string } {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: REGISTRY_HOSTING.name, namespace: REGISTRY_HOSTING.namespace },
    data: { [REGISTRY_HOSTING.key]: YAML.stringify(hosting) },
  }
}

/** The registry a ConfigMap advertises; undefined when it names none. Throws on YAML that is not a mapping. */
export function parseRegistryHosting(data: Record<string, string> | undefined): LocalRegistryHosting | undefined {
  const text = data?.[REGISTRY_HOSTING.key]
  if (!text) return undefined
  const doc = YAML.parse(text) as Partial<LocalRegistryHosting> | null
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc))
    throw new NsopsError(
      `ConfigMap ${REGISTRY_HOSTING.namespace}/${REGISTRY_HOSTING.name}: ${REGISTRY_HOSTING.key} is not a YAML mapping.`,
      { hint: 'KEP-1755 expects `host: "localhost:5001"` and friends there.' },
    )
  if (!doc.host) return undefined
  return {
    host: doc.host,
    hostFromContainerRuntime: doc.hostFromContainerRuntime,
    hostFromClusterNetwork: doc.hostFromClusterNetwork,
    help: doc.help,
  }
}

/** What the cluster advertises (KEP-1755), or undefined when it advertises no registry. */
export async function advertisedRegistry(kube: Kube): Promise<LocalRegistryHosting | undefined> {
  try {
    const cm = await kube.core.readNamespacedConfigMap({
      name: REGISTRY_HOSTING.name,
      namespace: REGISTRY_HOSTING.namespace,
    })
    return parseRegistryHosting(cm.data)
  } catch (err) {
    if (isApiError(err, 404) || isApiError(err, 403)) return undefined
    throw err
  }
}

export interface RegistryChoice {
  /** host[:port] to push to */
  host: string
  /** host[:port] image references in manifests name (KEP-1755 hostFromContainerRuntime, else host) */
  pullHost: string
  /** host[:port] in-cluster clients (source-controller) pull from */
  clusterHost: string
  /** plain HTTP (a loopback registry), not TLS */
  plainHttp: boolean
  /** where the choice came from, for messages */
  from: string
}

export function registryChoice(h: LocalRegistryHosting, from: string): RegistryChoice {
  return {
    host: h.host,
    pullHost: h.hostFromContainerRuntime ?? h.host,
    clusterHost: h.hostFromClusterNetwork ?? h.hostFromContainerRuntime ?? h.host,
    plainHttp: isPlainHttpRegistry(h.host),
    from,
  }
}

/**
 * The registry to push to: the one the cluster advertises (KEP-1755), else the one
 * namespace.ts configures, else NSOPS_REGISTRY. The sim advertises its own, so on sim the
 * first answer is the sim's registry.
 */
export async function chooseRegistry(opts: {
  kube?: Kube
  /** namespace.ts `registry` (host[:port]) and the file that says so */
  configured?: { host: string; file: string }
  env?: NodeJS.ProcessEnv
}): Promise<RegistryChoice> {
  if (opts.kube) {
    const advertised = await advertisedRegistry(opts.kube)
    if (advertised)
      return registryChoice(
        advertised,
        `advertised by context ${opts.kube.context} (ConfigMap ${REGISTRY_HOSTING.namespace}/${REGISTRY_HOSTING.name})`,
      )
  }
  if (opts.configured) return registryChoice({ host: opts.configured.host }, opts.configured.file)
  const env = (opts.env ?? process.env).NSOPS_REGISTRY
  if (env) return registryChoice({ host: env }, 'NSOPS_REGISTRY')
  throw new NsopsError('no image registry: the cluster advertises none and none is configured.', {
    hint:
      'On the sim cluster (`just cluster-up`) its own registry is advertised. Elsewhere set `registry: "host:port"` ' +
      `in namespace.ts or NSOPS_REGISTRY, or advertise one with the ConfigMap ${REGISTRY_HOSTING.namespace}/${REGISTRY_HOSTING.name} (KEP-1755).`,
  })
}

/** Resolves true once GET /v2/ answers 200 (the OCI distribution API's "I am a registry"). */
export function registryAnswers(host: string, timeoutMs = 1000): Promise<boolean> {
  const [hostname, port] = host.split(':')
  return answersOk((onResponse) =>
    http.get({ host: hostname, port: Number(port ?? 80), path: '/v2/', timeout: timeoutMs }, onResponse),
  )
}

/**
 * Where Flux reads the registry from: a ConfigMap of post-build substitution variables in
 * flux-system, named by the Kustomizations whose objects pull charts from it
 * (`postBuild.substituteFrom: [{ kind: ConfigMap, name: cluster-registry, optional: true }]`).
 * An OCIRepository then says `url: oci://${CHART_REGISTRY}/charts/NAME` and
 * `insecure: ${CHART_REGISTRY_INSECURE}`: one manifest for every cluster, the port of a local
 * registry never written into git.
 */
export const REGISTRY_VARS = { namespace: 'flux-system', name: 'cluster-registry' } as const

/** The variables for a registry: the host in-cluster clients (source-controller) reach, and whether it is plain HTTP. */
export function registryVars(registry: RegistryChoice): Record<string, string> {
  return { CHART_REGISTRY: registry.clusterHost, CHART_REGISTRY_INSECURE: String(registry.plainHttp) }
}

/** Writes REGISTRY_VARS for `registry` (server-side apply; flux-system is created when missing). */
export async function writeRegistryVars(kube: Kube, registry: RegistryChoice): Promise<void> {
  try {
    await kube.core.createNamespace({ body: { metadata: { name: REGISTRY_VARS.namespace } } })
  } catch (err) {
    if (!isApiError(err, 409)) throw err
  }
  await kube.core.patchNamespacedConfigMap(
    {
      name: REGISTRY_VARS.name,
      namespace: REGISTRY_VARS.namespace,
      fieldManager: 'nsops',
      force: true,
      body: {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: {
          name: REGISTRY_VARS.name,
          namespace: REGISTRY_VARS.namespace,
          annotations: { 'nsops.dev/from': `the registry ${registry.from} (KEP-1755)` },
        },
        data: registryVars(registry),
      },
    },
    setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply),
  )
}
