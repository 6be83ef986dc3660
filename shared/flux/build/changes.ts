// Which Flux Kustomizations a set of changed files can change, as flux-local's changed-only
// mode asks it: a Kustomization is touched when a file its build reads changed (its spec.path,
// its components, and the files their kustomization.yaml files name, tree.inputsOf), when the
// file it is written in changed, when what its parent applies for it may have changed, or when
// a substituteFrom ConfigMap/Secret comes from a touched build. Nothing is built for the
// question beyond what loading the tree built; `just ci diff` then renders only these.
import path from 'node:path'
import type { FluxNode, FluxTree } from './tree.ts'

export interface Touched {
  /** `namespace/name` of every touched Kustomization */
  ids: Set<string>
  /** for each, why (`kubernetes/apps/default/sonarr/app/deployment.yaml changed`) */
  why: Map<string, string>
}

/** The Kustomizations of `tree` that `files` (relative to the repository) can change. */
export async function touchedKustomizations(tree: FluxTree, files: string[]): Promise<Touched> {
  const changed = new Set(files.map((f) => path.resolve(tree.repoDir, f)))
  const ids = new Set<string>()
  const why = new Map<string, string>()
  const rel = (f: string) => path.relative(tree.repoDir, f).split(path.sep).join('/')
  const touch = (n: FluxNode, reason: string, withChildren: 'all' | 'defined' | 'none', hits: string[] = []) => {
    if (!ids.has(n.id)) {
      ids.add(n.id)
      why.set(n.id, reason)
    }
    if (withChildren === 'none') return
    for (const c of n.children) {
      // a change to a child's own ks.yaml changes that child only; anything else the parent
      // builds (a patch, its kustomization.yaml, substituted values) may change every child
      const untouched = withChildren === 'defined' && !(c.file && hits.includes(path.resolve(tree.repoDir, c.file)))
      if (untouched) continue
      if (!ids.has(c.id)) touch(c, `${n.id} applies it and changed`, 'all')
    }
  }
  for (const n of tree.all()) {
    const i = tree.inputsOf(n)
    const hits = [...i.files].filter((f) => changed.has(f))
    // what cannot be listed (a remote base, helmCharts): any change under its spec.path counts
    if (i.open) {
      const dir = path.resolve(tree.repoDir, n.kustomization.spec?.path ?? '.')
      const under = [...changed].find((f) => f.startsWith(`${dir}${path.sep}`))
      if (under) touch(n, `${rel(under)} changed (under its spec.path; not every file it reads could be listed)`, 'all')
    }
    const definedIn = n.file ? path.resolve(tree.repoDir, n.file) : undefined
    if (definedIn && changed.has(definedIn)) touch(n, `${n.file} changed`, 'all')
    if (!hits.length) continue
    const childFiles = new Set(n.children.flatMap((c) => (c.file ? [path.resolve(tree.repoDir, c.file)] : [])))
    const onlyChildren = hits.every((f) => childFiles.has(f))
    touch(
      n,
      `${rel(hits[0])} changed${hits.length > 1 ? ` (and ${hits.length - 1} more)` : ''}`,
      onlyChildren ? 'defined' : 'all',
      hits,
    )
  }
  // substituteFrom a ConfigMap or Secret a touched build makes: touched too (to a fixed point)
  for (let grew = true; grew;) {
    grew = false
    for (const n of tree.all()) {
      if (ids.has(n.id)) continue
      const namespace = n.kustomization.metadata.namespace ?? 'flux-system'
      for (const r of n.kustomization.spec?.postBuild?.substituteFrom ?? []) {
        const maker = await tree.makerOf({ kind: r.kind, namespace, name: r.name })
        if (maker && ids.has(maker.id)) {
          touch(n, `its substituteFrom ${r.kind} ${r.name} comes from ${maker.id}, which changed`, 'all')
          grew = true
          break
        }
      }
    }
  }
  return { ids, why }
}
