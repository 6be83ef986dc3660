// What the tk-* commands share: the --root/--engine flags and their help lines, the one
// positional ENV, a render behind a spinner, and the cluster they diff or apply against.
import fs from 'node:fs'
import path from 'node:path'
import type { ParseArgsConfig } from 'node:util'
import { parseCommand } from '../core/cli.ts'
import { NsopsError } from '../core/errors.ts'
import { duration, setJsonMode, spinner } from '../core/output.ts'
import { connect, ensureReachable, type Kube } from '../kube/client.ts'
import { resolveTarget } from '../kube/target.ts'
import { defaultTankaRoot, loadEnvironment, type TankaEnvironment } from './environments.ts'
import { renderEnvironment, type Engine, type Rendered } from './render.ts'

/** tk's exit status when `tk diff` finds changes. */
export const EXIT_DIFF = 16

/** Help lines for --root and --engine. */
export const rootAndEngineHelp = `
  --root DIR         the Tanka project (default: tanka/, or $NSOPS_TANKA_ROOT)
  --engine NAME      tk, renderer, or auto (default: tk when installed, else nsops' renderer)`
/** Help line for --kubeconfig and --context. */
export const clusterHelp = `
  --kubeconfig FILE  --context NAME   which cluster (default: $KUBECONFIG, else the one \`just cluster-up\` chose)`

export const rootOptions = { root: { type: 'string' }, engine: { type: 'string' } } as const

export function tankaRoot(flag: string | undefined): string {
  const root = path.resolve(flag ?? process.env.NSOPS_TANKA_ROOT ?? defaultTankaRoot)
  if (!fs.existsSync(root))
    throw new NsopsError(`the Tanka project ${root} does not exist.`, {
      hint: 'Pass --root DIR, the directory with jsonnetfile.json, lib/ and environments/.',
    })
  return root
}

export function engineOf(flag: string | undefined): Engine | 'auto' {
  const e = flag ?? 'auto'
  if (e !== 'auto' && e !== 'tk' && e !== 'renderer')
    throw new NsopsError(`--engine ${e} is not one of tk, renderer, auto.`)
  return e
}

/** The one positional ENV every environment command takes; an unknown one lists the known. */
function environmentArg(positionals: string[], root: string, usage: string): TankaEnvironment {
  const [name] = positionals
  if (!name) throw new NsopsError('name an environment (e.g. local).', { hint: `Usage:\n${usage.trim()}` })
  return loadEnvironment(name, root)
}

/**
 * How a tk-* command that takes ENV starts: its own flags plus --root and --engine parsed,
 * --json (or -o json) honoured, and the environment loaded (an unknown one lists the known).
 */
export function parseEnvironmentCommand<O extends NonNullable<ParseArgsConfig['options']>>(
  argv: string[],
  usage: string,
  options: O,
) {
  const parsed = parseCommand(argv, { usage, allowPositionals: true, options: { ...options, ...rootOptions } })
  const values = parsed.values as { json?: boolean; root?: string }
  if (values.json) setJsonMode(true)
  const env = environmentArg(parsed.positionals, tankaRoot(values.root), usage)
  return { ...parsed, env }
}

/** Renders behind a spinner; with `kube`, charts render for that cluster's Kubernetes version. */
export async function renderShown(env: TankaEnvironment, engine: Engine | 'auto', kube?: Kube): Promise<Rendered> {
  const s = spinner(`rendering ${env.name}`)
  try {
    const r = await renderEnvironment(env, { engine, kube })
    s.succeed(
      `rendered ${env.name}: ${r.objects.length} objects with ${r.engine === 'tk' ? 'tk' : "nsops' renderer"} in ${duration(r.elapsedMs)}`,
    )
    return r
  } catch (err) {
    s.fail(`rendering ${env.name} failed`)
    throw err
  }
}

/** The cluster the flags (or `just cluster-up`) name, checked to answer. */
export async function reachableCluster(values: { kubeconfig?: string; context?: string }): Promise<Kube> {
  const kube = connect(resolveTarget(values))
  await ensureReachable(kube)
  return kube
}
