// Kubeconfig files merged as kubectl merges them: $KUBECONFIG may list several files (`:` on
// Linux and macOS, `;` on Windows). kubectl reads them in order; for a cluster, user or context
// name the FIRST file that defines it wins, current-context comes from the first file that sets
// one, and a listed file that does not exist is skipped
// (https://kubernetes.io/docs/concepts/configuration/organize-cluster-access-kubeconfig/#merging-kubeconfig-files).
// Hand-written because @kubernetes/client-node's loadFromDefault() does not: it throws on a
// missing file and on a name two files share, and lets the last current-context win.
import fs from 'node:fs'
import path from 'node:path'
import { KubeConfig } from '@kubernetes/client-node'

/** The files of a kubeconfig list ($KUBECONFIG's form), in order, empty entries dropped. */
export function kubeconfigPaths(list: string | undefined): string[] {
  return (list ?? '').split(path.delimiter).filter(Boolean)
}

/** A list names something kubectl would read: at least one of its files exists. */
export function anyKubeconfigExists(list: string | undefined): boolean {
  return kubeconfigPaths(list).some((f) => fs.existsSync(f))
}

/** The merged config of the files in `list` (missing ones skipped), as kubectl would see it. */
export function loadMergedKubeConfig(list: string): KubeConfig {
  const merged = { clusters: [], users: [], contexts: [], currentContext: '' } as Pick<
    KubeConfig,
    'clusters' | 'users' | 'contexts' | 'currentContext'
  >
  for (const file of kubeconfigPaths(list)) {
    if (!fs.existsSync(file)) continue
    const one = new KubeConfig()
    one.loadFromFile(file) // relative certificate and key paths resolved against this file's folder
    const add = <T extends { name: string }>(into: T[], from: T[]) => {
      for (const x of from) if (!into.some((y) => y.name === x.name)) into.push(x)
    }
    add(merged.clusters, one.clusters)
    add(merged.users, one.users)
    add(merged.contexts, one.contexts)
    if (!merged.currentContext && one.currentContext) merged.currentContext = one.currentContext
  }
  const kc = new KubeConfig()
  kc.loadFromOptions(merged)
  return kc
}
