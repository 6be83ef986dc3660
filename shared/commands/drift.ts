// drift.ts for any namespace: live vs git, read-only, exit codes like `flux diff`
// (0 in sync, 1 drift, 2 error — usage errors included, so a script never reads a typo as drift).
import { parseCommand } from '../core/cli.ts'
import { NsopsError, errorMessage, isNsopsError } from '../core/errors.ts'
import type { NamespaceConfig } from '../config/namespace-config.ts'
import { setJsonMode } from '../core/output.ts'
import { resolveTarget, targetOptions } from '../kube/target.ts'
import { trace } from '../core/trace.ts'
import { checkScriptFolder } from '../config/namespaces.ts'

export const DRIFT_EXIT = { inSync: 0, drift: 1, error: 2 } as const

const usage = (ns: string) => `
Usage: ./namespaces/${ns}/drift.ts [--baseline applied|HEAD|REV|worktree] [--strict] [--all] [-o json]
       just drift ${ns}

What in the live ${ns} namespace differs from git, and who changed it, without changing
anything. Git is what the managing Flux Kustomization builds (or overlays/prod when no
Kustomization manages the namespace), compared through a server-side dry run with
kustomize-controller's field manager: server defaults never show. Each changed field names
the manager and time that set its live value. Secret values are never shown (hashes).

Classes: modified live · missing live · in the inventory but gone from git · extra in the
namespace · skipped (ssa: Ignore/IfNotPresent, reconcile: disabled, ignored) · in sync.

  --baseline B       applied: the revision Flux last applied (default under Flux)
                     HEAD, a branch or a SHA: that commit (default when not under Flux: HEAD)
                     worktree: the files as they are, uncommitted edits included
  --strict           extra objects count as drift too (exit 1)
  --all              list the objects in sync as well
  --json, -o json    print the report (schema nsops.drift/v1, see docs/drift-json.md)
  --kubeconfig FILE  --context NAME   which cluster (default: $KUBECONFIG, else the one \`just cluster-up\` chose)

Exit: 0 in sync · 1 drift · 2 error.
`

/** Any failure as exit 2 (flux diff: >1 is an error), keeping message and hint. */
export function asDriftError(err: unknown): NsopsError {
  if (isNsopsError(err))
    return err.exitCode === DRIFT_EXIT.error
      ? err
      : new NsopsError(err.message, { hint: err.hint, exitCode: DRIFT_EXIT.error, cause: err })
  return new NsopsError(errorMessage(err), {
    hint: 'run again with --debug for the full trace, and report it if it looks like a bug.',
    exitCode: DRIFT_EXIT.error,
    cause: err,
  })
}

export async function drift(ns: NamespaceConfig, argv: string[]): Promise<number> {
  checkScriptFolder(ns)
  trace('drift: modules loaded')
  try {
    const { values } = parseCommand(argv, {
      usage: usage(ns.name),
      options: {
        baseline: { type: 'string' },
        strict: { type: 'boolean' },
        all: { type: 'boolean' },
        json: { type: 'boolean' },
        ...targetOptions,
      },
    })
    if (values.baseline !== undefined && values.baseline.trim() === '')
      throw new NsopsError('--baseline needs a value.', { hint: 'applied, HEAD, a SHA or worktree.' })
    if (values.json) setJsonMode(true)
    const { connect, ensureReachable } = await import('../kube/client.ts')
    const { computeDrift } = await import('../drift/compute.ts')
    const kube = connect(resolveTarget(values))
    const reachable = ensureReachable(kube) // in parallel with the reads; its error names context and server
    const [report] = await Promise.all([
      computeDrift(kube, ns, { baseline: values.baseline, strict: values.strict }).catch(async (err) => {
        await reachable
        throw err
      }),
      reachable,
    ])
    if (values.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`)
    else {
      const { renderDrift } = await import('../drift/render.ts')
      process.stdout.write(`${renderDrift(report, { showInSync: values.all })}\n`)
    }
    return report.drifted ? DRIFT_EXIT.drift : DRIFT_EXIT.inSync
  } catch (err) {
    throw asDriftError(err)
  }
}
