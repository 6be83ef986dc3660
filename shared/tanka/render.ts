// Renders an environment to its ordered Kubernetes objects, two ways with one result:
// `tk show` when tk can be had, else the project's renderer followed by tk's processing.
import { NsopsError } from '../errors.ts'
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
      hint: 'Install Grafana Tanka (https://tanka.dev/install), or leave out --engine tk to use nsops\' own renderer.',
    })
  }
  if (tk) {
    const objects = await showWithTk(env, tk, helm)
    return { env, objects, engine: 'tk', elapsedMs: performance.now() - started }
  }
  const raw = await evaluateEnvironment(env, { renderer: opts.renderer, helm })
  return { env, objects: processOutput(raw, env), engine: 'renderer', elapsedMs: performance.now() - started }
}
