// Renders an environment to its ordered Kubernetes objects, two ways with one result:
// `tk show` when tk can be had, else the project's renderer followed by tk's processing.
import { VersionApi } from '@kubernetes/client-node'
import { NsopsError } from '../core/errors.ts'
import type { Kube } from '../kube/client.ts'
import { toolPath } from '../tools/provision.ts'
import type { TankaEnvironment } from './environments.ts'
import { processOutput, type TankaObject } from './process.ts'
import { evaluateEnvironment } from './renderer.ts'
import { findTk, showWithTk } from './tk.ts'

export type Engine = 'tk' | 'renderer'

export interface RenderOptions {
  /** `auto` (default): tk when found, else the renderer */
  engine?: Engine | 'auto'
  /** override the binaries (tests, benchmarks) */
  tk?: string
  renderer?: string
  helm?: string
  /**
   * The cluster the objects are for: charts render for its Kubernetes version (Tanka's
   * `kubeVersion` helm option, for calls that set none), so `kubeVersion` constraints and
   * `.Capabilities.KubeVersion` see that cluster rather than helm's built-in default.
   */
  kube?: Kube
  /** the same as a version string (e.g. v1.36.3); wins over `kube` */
  kubeVersion?: string
}

export interface Rendered {
  env: TankaEnvironment
  objects: TankaObject[]
  engine: Engine
  elapsedMs: number
}

export async function renderEnvironment(env: TankaEnvironment, opts: RenderOptions = {}): Promise<Rendered> {
  const started = performance.now()
  const helm = opts.helm ?? (await toolPath('helm'))
  const tk = opts.engine === 'renderer' ? undefined : (opts.tk ?? findTk())
  if (opts.engine === 'tk' && !tk) {
    throw new NsopsError('tk is not installed (not on PATH, not in the tool cache).', {
      hint: "Install Grafana Tanka (https://tanka.dev/install), or leave out --engine tk to use nsops' own renderer.",
    })
  }
  if (tk) {
    const objects = await showWithTk(env, tk, helm)
    return { env, objects, engine: 'tk', elapsedMs: performance.now() - started }
  }
  const kubeVersion = opts.kubeVersion ?? (opts.kube ? await clusterVersion(opts.kube) : undefined)
  const raw = await evaluateEnvironment(env, { renderer: opts.renderer, helm, kubeVersion })
  return { env, objects: processOutput(raw, env), engine: 'renderer', elapsedMs: performance.now() - started }
}

const versions = new WeakMap<Kube, Promise<string>>()

/** The cluster's gitVersion (GET /version), asked once per connection: a dev loop renders often. */
export function clusterVersion(kube: Kube): Promise<string> {
  let v = versions.get(kube)
  if (!v) {
    v = kube.kc
      .makeApiClient(VersionApi)
      .getCode()
      .then((info) => info.gitVersion)
    v.catch(() => versions.delete(kube))
    versions.set(kube, v)
  }
  return v
}
