// The context guard, like Tilt's allow_k8s_contexts: nsops changes a cluster only when its
// context is a known local one or is on the repo's allow-list. Anything else might be
// production and is refused before a single object is sent.
import fs from 'node:fs'
import path from 'node:path'
import YAML from 'yaml'
import { NsopsError } from '../core/errors.ts'
import { repoRoot } from '../core/paths.ts'

export { LOCAL_CONTEXT_PREFIXES, isLocalContext } from './contexts.ts'
import { isLocalContext } from './contexts.ts'

export const allowListFile = path.join(repoRoot, 'k8s', 'allowed-contexts.yaml')

export function allowedContexts(file = allowListFile): string[] {
  const fromEnv = (process.env.NSOPS_ALLOW_CONTEXTS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
  if (!fs.existsSync(file)) return fromEnv
  const doc = YAML.parse(fs.readFileSync(file, 'utf8')) as { contexts?: unknown } | null
  const list = Array.isArray(doc?.contexts) ? doc!.contexts.map(String) : []
  return [...list, ...fromEnv]
}

export function isAllowedContext(context: string, allowList = allowedContexts()): boolean {
  return isLocalContext(context) || allowList.includes(context)
}

/** Throws unless nsops may change this context; `what` says what was about to happen. */
export function guardContext(context: string, server: string, what: string, allowList = allowedContexts()): void {
  if (isAllowedContext(context, allowList)) return
  throw new NsopsError(
    `Stop! Context "${context}" (${server}) might be production, so nsops will not ${what} there. ` +
      'Only local clusters (kind-*, k3d-*, nsops-sim, docker-desktop, minikube, rancher-desktop, orbstack) and ' +
      'contexts on the allow-list are used for development.',
    {
      hint:
        `If "${context}" is a development cluster, add it to ${path.relative(process.cwd(), allowListFile) || allowListFile} ` +
        `under \`contexts:\` (or set NSOPS_ALLOW_CONTEXTS=${context}). Otherwise switch context: kubectl config use-context <local-context>.`,
    },
  )
}
