// `just validate [NS...]`: what deploy checks before it commits, for one or every namespace:
// what Flux applies to it builds (its Flux Kustomization(s) as kustomize-controller builds
// them, post-build substitution included; overlays/prod when no Kustomization applies it), no plaintext Secret, every object passes strict schema validation
// (the cluster's OpenAPI with its CRDs; offline, the pinned Kubernetes version and the Flux
// CRDs), and objects whose namespace exists pass a server-side dry run. Nothing is changed.
import { parseCommand } from '../core/cli.ts'
import { errorMessage, ExitCode, isNsopsError } from '../core/errors.ts'
import { c, log } from '../core/output.ts'
import { repoRoot } from '../core/paths.ts'
import { resolveTarget, targetOptions } from '../kube/target.ts'

const usage = `
Usage: just validate [NS...] [--offline]

Validates what Flux applies to each namespace (default: all) the way \`just deploy\` does before
it commits: the build of its Flux Kustomization(s) as kustomize-controller makes it
(spec.path with components, patches, images, targetNamespace, then postBuild substitution;
overlays/prod for a namespace no Kustomization applies), plaintext Secret check (SOPS-encrypt Secrets), strict schema
validation of every object (unknown or mistyped fields are errors, as with
\`kubectl --validate=strict\`; a kind no schema knows is an error too), reported at the file and
line they come from, and a server-side dry run of the objects whose namespace exists.

Schemas come from the cluster when one answers (its OpenAPI v3, with every CRD installed
there); otherwise, or with --offline, from the pinned Kubernetes version plus the Flux CRDs,
cached under \${XDG_CACHE_HOME:-~/.cache}/nsops/schemas.

  --offline          no cluster: pinned schemas, no dry run
  --kubeconfig FILE  --context NAME   which cluster (default: $KUBECONFIG, else the one \`just cluster-up\` chose)

Exit codes: 0 every namespace is valid · 1 at least one is not (each error is listed).
`

export async function validate(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(argv, {
    usage,
    options: { offline: { type: 'boolean' }, ...targetOptions },
    allowPositionals: true,
  })
  const { loadNamespaces } = await import('../config/namespaces.ts')
  const configs = await loadNamespaces(positionals)
  const { clusterVars, strictInCluster } = await import('../flux/build/index.ts')
  const { renderTarget } = await import('../schema/index.ts')
  const { releasesSummary, validateProd, validationSummary } = await import('../deploy/validate.ts')
  let kube: import('../kube/client.ts').Kube | undefined
  if (!values.offline) {
    const { connect, ensureReachable } = await import('../kube/client.ts')
    try {
      kube = connect(resolveTarget(values))
      await ensureReachable(kube, 3000)
    } catch (err) {
      log.warn(
        `no cluster answers (${errorMessage(err).split('\n')[0]}): validating offline against the pinned schemas, no server-side dry run`,
      )
      kube = undefined
    }
  }
  // connected: substituteFrom is read from the cluster (as the controller reads it), and strict
  // substitution is what the cluster's kustomize-controller runs with
  const strict = kube ? await strictInCluster(kube).catch(() => undefined) : undefined
  const vars = kube ? clusterVars(kube) : undefined
  // HelmReleases rendered for the target (the cluster's version and APIs, else the pinned ones)
  const helm = { ...(await renderTarget(kube)), warn: (m: string) => log.warn(m) }
  let failed = 0
  for (const ns of configs) {
    try {
      const { built, validation: v } = await validateProd(ns, repoRoot, { kube, vars, strict, helm })
      const objects = built.objects
      log.ok(
        `${ns.name}: ${built.label} builds (${objects.length} objects${releasesSummary(built.releases)}); ${validationSummary(v)}`,
      )
    } catch (err) {
      failed++
      log.fail(`${ns.name}: ${errorMessage(err)}`)
      if (isNsopsError(err) && err.hint && configs.length === 1) log.info(`hint: ${err.hint}`)
    }
  }
  if (failed) log.info(c.red(`${failed} of ${configs.length} namespace(s) failed validation`))
  return failed ? ExitCode.usage : ExitCode.ok
}
