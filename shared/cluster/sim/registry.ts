// The sim's OCI registry: CNCF distribution (`registry serve`) on 127.0.0.1, plain HTTP, its
// blobs under the sim's state dir (<sim>/registry/data) so they survive cluster-down/up, on a
// port it keeps across restarts (<sim>/registry/port.json) so image references and
// OCIRepository URLs naming it stay valid. Advertised to clients with KEP-1755's ConfigMap
// (shared/images/registry.ts reads it back).
//
// Plain HTTP, not TLS with the sim CA: every client treats a loopback registry as plain HTTP
// without being told (go-containerregistry's crane and ko, helm with --plain-http, containerd),
// and source-controller needs only `insecure: true` on the OCIRepository; TLS would mean
// handing the sim CA to each of them for a port no other machine can reach.
import fs from 'node:fs'
import path from 'node:path'
import { KubeConfig, PatchStrategy, type KubernetesObject } from '@kubernetes/client-node'
import { freePort, reclaimPort } from '../../core/ports.ts'
import { clientsFor } from '../../kube/client.ts'
import { registryAnswers, registryHostingConfigMap } from '../../images/registry.ts'

export const REGISTRY_COMPONENT = 'registry'

export interface RegistryProcess {
  name: typeof REGISTRY_COMPONENT
  command: string
  args: string[]
  env: NodeJS.ProcessEnv
  port: number
  host: string
}

/** The port the registry had before, when it is free again; else a new one (recorded). */
async function stablePort(dir: string): Promise<number> {
  const file = path.join(dir, 'port.json')
  let kept: number | undefined
  try {
    kept = (JSON.parse(fs.readFileSync(file, 'utf8')) as { port?: number }).port
  } catch {
    /* first start */
  }
  const port = (kept && (await reclaimPort(kept))) || (await freePort())
  fs.writeFileSync(file, JSON.stringify({ port }))
  return port
}

/** The registry's command line and config (written to <dir>/config.yml); `dir` is <sim>/registry. */
export async function registryProcess(binary: string, dir: string): Promise<RegistryProcess> {
  fs.mkdirSync(path.join(dir, 'data'), { recursive: true })
  const port = await stablePort(dir)
  const config = path.join(dir, 'config.yml')
  fs.writeFileSync(
    config,
    [
      '# written by nsops at each sim start (shared/cluster/sim/registry.ts)',
      'version: 0.1',
      'log:',
      '  level: info',
      '  formatter: text',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${JSON.stringify(path.join(dir, 'data'))}`,
      '  delete:',
      '    enabled: true',
      '  cache:',
      '    blobdescriptor: inmemory',
      'http:',
      `  addr: 127.0.0.1:${port}`,
      '',
    ].join('\n'),
  )
  return {
    name: REGISTRY_COMPONENT,
    command: binary,
    args: ['serve', config],
    // distribution v3 exports OpenTelemetry traces to localhost:4318 unless told not to
    env: { OTEL_TRACES_EXPORTER: 'none' },
    port,
    host: `127.0.0.1:${port}`,
  }
}

/** The KEP-1755 ConfigMap for the sim's registry: every host is the loopback one (everything runs on this machine). */
export async function advertiseRegistry(kubeconfig: string, host: string): Promise<void> {
  const kc = new KubeConfig()
  kc.loadFromFile(kubeconfig)
  const kube = clientsFor(kc, kubeconfig)
  const objects: KubernetesObject[] = [
    // the apiserver makes kube-public itself, moments after it is ready: applied here so the
    // ConfigMap never waits for it
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'kube-public' } },
    registryHostingConfigMap({
      host,
      hostFromContainerRuntime: host,
      hostFromClusterNetwork: host,
      help: 'README.md, section Images: the sim cluster registry, plain HTTP on 127.0.0.1',
    }),
  ]
  for (const obj of objects)
    await kube.objects.patch(obj, undefined, undefined, 'nsops-sim', true, PatchStrategy.ServerSideApply)
}

/** Resolves once the registry answers GET /v2/, or rejects with `dead()`'s error. */
export async function untilRegistryAnswers(
  host: string,
  dead: () => Error | undefined,
  timeoutMs = 30_000,
): Promise<void> {
  const until = Date.now() + timeoutMs
  for (;;) {
    if (await registryAnswers(host, 500)) return
    const err = dead()
    if (err) throw err
    if (Date.now() > until)
      throw new Error(`the sim's registry on ${host} did not answer GET /v2/ within ${timeoutMs / 1000} s`)
    await new Promise((r) => setTimeout(r, 50))
  }
}
