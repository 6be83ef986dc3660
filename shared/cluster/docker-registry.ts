// The local registry of a kind or k3d cluster, wired as their docs describe, so images and
// charts pushed from this machine are what the cluster pulls, and the cluster advertises it
// (KEP-1755 `kube-public/local-registry-hosting`, which shared/images/registry.ts reads).
//   kind: https://kind.sigs.k8s.io/docs/user/local-registry/ — a `registry:2` container next to
//         the cluster, containerd's `config_path` (k8s/kind.yaml) plus a hosts.toml per node, the
//         container on the `kind` network, and the ConfigMap written by us.
//   k3d:  https://k3d.io/stable/usage/registries/ — `registries.create` in the cluster config;
//         k3d writes the KEP-1755 ConfigMap itself (its v4 changelog; ctlptl leaves it to k3d).
// Not run against a real kind/k3d here (no Docker engine on the machine that built it): the
// command sequence is what test/unit/docker-registry.test.ts checks, with stand-in executables.
import { execFile } from 'node:child_process'
import fsp from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'
import YAML from 'yaml'
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node'
import { NsopsError } from '../core/errors.ts'
import { repoRoot, stateDir } from '../core/paths.ts'
import { freePort } from '../core/ports.ts'
import { connect } from '../kube/client.ts'
import { registryHostingConfigMap, type LocalRegistryHosting } from '../images/registry.ts'
import type { V1ConfigMap } from '@kubernetes/client-node'

const run = promisify(execFile)

/** The label on a registry container nsops started: only those are removed with the cluster. */
export const OWNED_LABEL = 'nsops.dev/registry=owned'
export const KIND_REGISTRY = 'kind-registry'
/** k3d prefixes the name in the config with `k3d-` for the container. */
export const K3D_REGISTRY = 'nsops-registry'

export interface LocalRegistry {
  container: string
  /** host port on 127.0.0.1 */
  port: number
  /** nsops started it (so stopping the cluster removes it) */
  owned: boolean
  /** it was there before this cluster-up */
  reused: boolean
}

/** The container's host port and whether nsops labelled it; undefined when there is no such container. */
async function inspect(container: string): Promise<{ port: number; owned: boolean; running: boolean } | undefined> {
  try {
    const { stdout } = await run('docker', ['inspect', '--format', '{{json .}}', container])
    const c = JSON.parse(stdout.trim()) as {
      State?: { Running?: boolean }
      Config?: { Labels?: Record<string, string> | null }
      HostConfig?: { PortBindings?: Record<string, { HostPort?: string }[] | null> }
    }
    const [k, v] = OWNED_LABEL.split('=')
    return {
      port: Number(c.HostConfig?.PortBindings?.['5000/tcp']?.[0]?.HostPort ?? 0),
      owned: c.Config?.Labels?.[k] === v,
      running: c.State?.Running === true,
    }
  } catch {
    return undefined
  }
}

/** kind, before `kind create cluster`: the `kind-registry` container, reused when it exists. */
export async function ensureKindRegistry(): Promise<LocalRegistry> {
  const found = await inspect(KIND_REGISTRY)
  if (found) {
    if (!found.running) await run('docker', ['start', KIND_REGISTRY])
    return { container: KIND_REGISTRY, port: found.port, owned: found.owned, reused: true }
  }
  const port = await freePort()
  const args = [
    'run',
    '-d',
    '--restart=always',
    '-p',
    `127.0.0.1:${port}:5000`,
    '--network',
    'bridge',
    '--name',
    KIND_REGISTRY,
    '--label',
    OWNED_LABEL,
    'registry:2',
  ]
  try {
    await run('docker', args)
  } catch (err) {
    throw new NsopsError(
      `kind's registry (k8s/kind.yaml names it): \`docker ${args.join(' ')}\` failed: ${(err as { stderr?: string }).stderr?.trim() || String(err)}.`,
      {
        hint: 'kind needs this registry for images (https://kind.sigs.k8s.io/docs/user/local-registry/): check that Docker can pull registry:2 and bind 127.0.0.1, or use the sim provider.',
      },
    )
  }
  return { container: KIND_REGISTRY, port, owned: true, reused: false }
}

/** What kind's cluster advertises: push to localhost:<port>, nodes and pods reach the container by name. */
export function kindHosting(port: number): LocalRegistryHosting {
  return {
    host: `localhost:${port}`,
    hostFromContainerRuntime: `${KIND_REGISTRY}:5000`,
    hostFromClusterNetwork: `${KIND_REGISTRY}:5000`,
    help: 'https://kind.sigs.k8s.io/docs/user/local-registry/',
  }
}

/** kind, after `kind create cluster`: hosts.toml on each node, the container on the kind network, the ConfigMap. */
export async function wireKindRegistry(
  clusterName: string,
  reg: LocalRegistry,
  kubeconfig: string,
  apply: ApplyConfigMap = applyConfigMap,
): Promise<void> {
  const dir = `/etc/containerd/certs.d/localhost:${reg.port}`
  const toml = `[host."http://${KIND_REGISTRY}:5000"]`
  const { stdout } = await run('kind', ['get', 'nodes', '--name', clusterName])
  for (const node of stdout.split('\n').filter(Boolean))
    await run('docker', [
      'exec',
      node,
      'sh',
      '-c',
      `mkdir -p '${dir}' && printf '%s\\n' '${toml}' > '${dir}/hosts.toml'`,
    ])
  const { stdout: nets } = await run('docker', [
    'inspect',
    '--format',
    '{{json .NetworkSettings.Networks.kind}}',
    reg.container,
  ])
  if (nets.trim() === 'null') await run('docker', ['network', 'connect', 'kind', reg.container])
  await apply(kubeconfig, registryHostingConfigMap(kindHosting(reg.port)))
}

export type ApplyConfigMap = (kubeconfig: string, cm: V1ConfigMap) => Promise<void>

/** Server-side apply of a ConfigMap (kind's docs do it with `kubectl apply`). */
export const applyConfigMap: ApplyConfigMap = async (kubeconfig, cm) => {
  await connect({ kubeconfig }).core.patchNamespacedConfigMap(
    { name: cm.metadata!.name!, namespace: cm.metadata!.namespace!, fieldManager: 'nsops', force: true, body: cm },
    setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply),
  )
}

/**
 * k3d, before `k3d cluster create`: the cluster config (k8s/k3d.yaml) with a registry —
 * `registries.create` when none is there, `registries.use` of the one there. k3d's config cannot
 * label what it creates, so ownership is kept in the state dir.
 */
export async function k3dConfigWithRegistry(): Promise<{ file: string; registry: LocalRegistry }> {
  const container = `k3d-${K3D_REGISTRY}`
  const doc = YAML.parse(await fsp.readFile(path.join(repoRoot, 'k8s/k3d.yaml'), 'utf8')) as Record<string, unknown>
  const found = await inspect(container)
  let registry: LocalRegistry
  if (found) {
    registry = { container, port: found.port, owned: await ownsK3dRegistry(), reused: true }
    doc.registries = { use: [`${container}:${found.port}`] }
  } else {
    const port = await freePort()
    registry = { container, port, owned: true, reused: false }
    doc.registries = { create: { name: K3D_REGISTRY, host: '127.0.0.1', hostPort: String(port) } }
  }
  const file = path.join(stateDir(), 'k3d', 'k3d.yaml')
  await fsp.mkdir(path.dirname(file), { recursive: true })
  await fsp.writeFile(file, YAML.stringify(doc))
  if (registry.owned) await fsp.writeFile(ownedMarker(), container)
  return { file, registry }
}

const ownedMarker = () => path.join(stateDir(), 'k3d', 'registry-owned')

async function ownsK3dRegistry(): Promise<boolean> {
  return fsp.access(ownedMarker()).then(
    () => true,
    () => false,
  )
}

/** After the cluster is deleted: the registry goes too, only when nsops started it. */
export async function removeOwnedRegistry(tool: 'kind' | 'k3d'): Promise<void> {
  if (tool === 'kind') {
    if ((await inspect(KIND_REGISTRY))?.owned) await run('docker', ['rm', '-f', KIND_REGISTRY])
    return
  }
  if (!(await ownsK3dRegistry())) return
  if (await inspect(`k3d-${K3D_REGISTRY}`)) await run('k3d', ['registry', 'delete', `k3d-${K3D_REGISTRY}`])
  await fsp.rm(ownedMarker(), { force: true })
}
