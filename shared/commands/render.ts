// `just render NS`: what Flux would apply to a namespace, substituted, on stdout (for piping):
// the namespace's Flux Kustomization(s) built as kustomize-controller builds them. NS is a
// namespace of namespaces/ or any Kubernetes namespace the repository's Flux tree applies
// (a home-ops repository without namespace.ts files). Nothing is changed.
import fs from 'node:fs'
import path from 'node:path'
import YAML from 'yaml'
import { parseCommand } from '../core/cli.ts'
import { ExitCode, NsopsError } from '../core/errors.ts'
import { repoRoot } from '../core/paths.ts'
import { resolveTarget, targetOptions } from '../kube/target.ts'

const usage = `
Usage: just render NS [--kustomization NAME] [-o yaml|json] [--online]

Prints what Flux would apply to namespace NS, substituted: the build of each Flux
Kustomization that applies NS (spec.path, components, patches, images, namePrefix/nameSuffix,
targetNamespace, commonMetadata, then postBuild substitution), as kustomize-controller builds
it; overlays/prod for a namespace no Kustomization applies. YAML documents on stdout, for
piping (\`just render media | kubeconform\`); messages go to stderr.

NS is a folder of namespaces/, or a Kubernetes namespace the repository's Flux tree applies.

  --kustomization NAME  only this Flux Kustomization (namespace/name or name), whatever it applies
  -o yaml|json          output format (default yaml; json is one array)
  --online              read postBuild.substituteFrom from the cluster (default: the repository's builds)
  --kubeconfig FILE  --context NAME   which cluster for --online

Exit codes: 0 printed · 1 the build failed (the error names the Kustomization and the variable).
`

export async function render(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(argv, {
    usage,
    options: {
      kustomization: { type: 'string' },
      output: { type: 'string', short: 'o' },
      online: { type: 'boolean' },
      ...targetOptions,
    },
    allowPositionals: true,
  })
  const format = values.output ?? 'yaml'
  if (format !== 'yaml' && format !== 'json')
    throw new NsopsError(`-o ${format}: render prints yaml or json.`, { hint: 'Use -o yaml (the default) or -o json.' })
  const [name] = positionals
  if (!name && !values.kustomization)
    throw new NsopsError('name a namespace (or --kustomization NAME).', { hint: `Usage:\n${usage}` })
  const { buildProd, clusterVars, fluxTreeOf, strictInCluster } = await import('../flux/build/index.ts')
  let vars
  let strict: boolean | undefined
  if (values.online) {
    const { connect } = await import('../kube/client.ts')
    const kube = connect(resolveTarget(values))
    vars = clusterVars(kube)
    strict = await strictInCluster(kube)
  }
  let objects
  if (values.kustomization) {
    const tree = await fluxTreeOf(repoRoot, { vars, strict })
    const want = values.kustomization.includes('/') ? values.kustomization : `flux-system/${values.kustomization}`
    const node =
      tree.nodes.get(want) ??
      [...tree.nodes.values()].find((n) => n.kustomization.metadata.name === values.kustomization)
    if (!node) {
      throw new NsopsError(`no Flux Kustomization ${values.kustomization} in this repository's Flux tree.`, {
        hint: `Known: ${[...tree.nodes.keys()].join(', ') || 'none'}.`,
      })
    }
    objects = (await tree.build(node)).objects
  } else {
    const { knownNamespaces, loadNamespace } = await import('../config/namespaces.ts')
    const scope = knownNamespaces().includes(name)
      ? await loadNamespace(name)
      : {
          // a Kubernetes namespace of the Flux tree, with no folder of its own under namespaces/
          name,
          namespaces: { prod: name },
          paths: {
            root: path.join(repoRoot, 'namespaces', name),
            overlays: { prod: path.join(repoRoot, 'namespaces', name, 'overlays', 'prod') },
          },
        }
    if (!knownNamespaces().includes(name) && !fs.existsSync(scope.paths.overlays.prod)) {
      const tree = await fluxTreeOf(repoRoot, { vars, strict })
      if (!(await tree.forNamespace(name)).length)
        throw new NsopsError(
          `no namespace ${name}: neither namespaces/${name}/ nor a Flux Kustomization that applies it.`,
          {
            hint: `Known namespaces: ${knownNamespaces().join(', ') || 'none'}; Flux Kustomizations: ${[...tree.nodes.keys()].join(', ') || 'none'}.`,
          },
        )
    }
    objects = (await buildProd(scope, repoRoot, { vars, strict })).objects
  }
  if (format === 'json') process.stdout.write(`${JSON.stringify(objects, null, 2)}\n`)
  else process.stdout.write(objects.map((o) => YAML.stringify(o, { lineWidth: 0 })).join('---\n'))
  return ExitCode.ok
}
