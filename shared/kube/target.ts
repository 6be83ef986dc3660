// Which cluster a script talks to: --kubeconfig/--context flags → the cluster that
// `just cluster-up` / `just dev-up` last chose (.nsops/target.json) → the default kubeconfig.
import fs from 'node:fs'
import path from 'node:path'
import type { KubeTarget } from './client.ts'
import { stateDir } from '../core/paths.ts'

export interface Target extends KubeTarget {
  /** where the choice came from, for headers and error messages */
  source: string
}

const targetFile = () => path.join(stateDir(), 'target.json')

export function rememberTarget(t: KubeTarget): void {
  fs.mkdirSync(stateDir(), { recursive: true })
  fs.writeFileSync(targetFile(), JSON.stringify(t, null, 2))
}

export function forgetTarget(): void {
  fs.rmSync(targetFile(), { force: true })
}

export function resolveTarget(flags: { kubeconfig?: string; context?: string } = {}): Target {
  if (flags.kubeconfig || flags.context) return { ...flags, source: 'flags' }
  if (process.env.NSOPS_KUBECONFIG) return { kubeconfig: process.env.NSOPS_KUBECONFIG, source: 'NSOPS_KUBECONFIG' }
  try {
    const t = JSON.parse(fs.readFileSync(targetFile(), 'utf8')) as KubeTarget
    if (t.kubeconfig && fs.existsSync(t.kubeconfig))
      return { ...t, source: `${path.relative(process.cwd(), targetFile())} (set by cluster-up)` }
  } catch {
    /* none remembered */
  }
  return { source: 'default kubeconfig' }
}

/** Flags every cluster-facing script accepts. */
export const targetOptions = {
  kubeconfig: { type: 'string' },
  context: { type: 'string' },
} as const
