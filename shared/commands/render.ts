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
Usage: just render NS [--kustomization NAME] [-o yaml|json] [--online] [--no-helm] [--offline-charts]

Prints what Flux would apply to namespace NS, substituted: the build of each Flux
Kustomization that applies NS (spec.path, components, patches, images, namePrefix/nameSuffix,
targetNamespace, commonMetadata, then postBuild substitution), as kustomize-controller builds
it; overlays/prod for a namespace no Kustomization applies. YAML documents on stdout, for
piping (\`just render media | kubeconform\`); messages go to stderr.

Each HelmRelease is rendered too, as helm-controller would install it (its chart pulled from
its OCIRepository, HelmRepository or this repository, cached by digest; values and valuesFrom,
postRenderers, the CRD policy): its objects follow the build's, labelled
helm.toolkit.fluxcd.io/name|namespace. Hooks are not printed (helm runs them around an install).

NS is a folder of namespaces/, or a Kubernetes namespace the repository's Flux tree applies.

  --kustomization NAME  only this Flux Kustomization (namespace/name or name), whatever it applies
  -o yaml|json          output format (default yaml; json is one array)
  --online              read postBuild.substituteFrom from the cluster (default: the repository's builds)
  --no-helm             leave HelmReleases unrendered
  --offline-charts      charts from the cache only (no request to any chart source)
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
      'no-helm': { type: 'boolean' },
      'offline-charts': { type: 'boolean' },
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
  const { renderTarget } = await import('../schema/index.ts')
  const { log } = await import('../core/output.ts')
  let vars
  let strict: boolean | undefined
  let kube
  if (values.online) {
    const { connect } = await import('../kube/client.ts')
    kube = connect(resolveTarget(values))
    vars = clusterVars(kube)
    strict = await strictInCluster(kube)
  }
  const helm = values['no-helm']
    ? undefined
    : { ...(await renderTarget(kube)), offline: values['offline-charts'], warn: (m: string) => log.warn(m) }
  let objects
  let rendered: import('../kube/refs.ts').ManifestObject[] = []
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
    if (helm) rendered = (await tree.renderReleases(node, helm)).flatMap((r) => r.objects)
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
    const built = await buildProd(scope, repoRoot, { vars, strict, helm })
    objects = built.objects
    rendered = built.releases.flatMap((r) => r.objects)
  }
  objects = [...objects, ...rendered]
  if (format === 'json') process.stdout.write(`${JSON.stringify(objects, null, 2)}\n`)
  else process.stdout.write(objects.map((o) => YAML.stringify(o, { lineWidth: 0 })).join('---\n'))
  return ExitCode.ok
}
