// Which cluster a script talks to, as kubectl, flux and helm decide it, with nsops' memory of
// the local cluster in between: --kubeconfig (with --context) → $KUBECONFIG (all its files,
// merged as kubectl merges them) → the cluster that `just cluster-up` / `just dev-up` last
// chose (.nsops/target.json) → ~/.kube/config. --context alone picks a context of whichever
// kubeconfig that order gives. A $KUBECONFIG whose files all are missing counts as unset
// (kubectl skips missing files too), so a stale export does not hide the local cluster.
// Whatever wins, every write still passes the context guard (guard.ts).
import fs from 'node:fs'
import path from 'node:path'
import type { KubeTarget } from './client.ts'
import { stateDir } from '../core/paths.ts'
import { anyKubeconfigExists } from './kubeconfig.ts'

export interface ResolvedTarget extends KubeTarget {
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

export function resolveTarget(flags: { kubeconfig?: string; context?: string } = {}): ResolvedTarget {
  const context = flags.context
  const also = context ? ' with --context' : ''
  if (flags.kubeconfig) return { kubeconfig: flags.kubeconfig, context, source: `--kubeconfig${also}` }
  // the test suite's way to pin a cluster whatever the environment says
  if (process.env.NSOPS_KUBECONFIG)
    return { kubeconfig: process.env.NSOPS_KUBECONFIG, context, source: `NSOPS_KUBECONFIG${also}` }
  if (anyKubeconfigExists(process.env.KUBECONFIG)) return { context, source: `$KUBECONFIG${also}` }
  try {
    const t = JSON.parse(fs.readFileSync(targetFile(), 'utf8')) as KubeTarget
    if (t.kubeconfig && anyKubeconfigExists(t.kubeconfig))
      return {
        kubeconfig: t.kubeconfig,
        context: context ?? t.context,
        source: `${path.relative(process.cwd(), targetFile())} (set by cluster-up)${also}`,
      }
  } catch {
    /* none remembered */
  }
  return { context, source: `default kubeconfig${also}` }
}

/** Flags every cluster-facing script accepts. */
export const targetOptions = {
  kubeconfig: { type: 'string' },
  context: { type: 'string' },
} as const
