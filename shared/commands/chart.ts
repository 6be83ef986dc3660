// `just chart push PATH|TGZ`: a Helm chart into the cluster's OCI registry (the sim's own on
// 127.0.0.1, advertised with KEP-1755's ConfigMap), for HelmReleases whose chart comes from an
// OCIRepository. `just charts` (charts.ts) lists them.
import { parseCommand } from '../core/cli.ts'
import { NsopsError } from '../core/errors.ts'
import { c, log } from '../core/output.ts'
import { CHARTS_PREFIX, HELM_CHART_LAYER, pushChart } from '../images/charts.ts'
import { chooseRegistry, type RegistryChoice } from '../images/registry.ts'
import { connect } from '../kube/client.ts'
import { resolveTarget, targetOptions } from '../kube/target.ts'

const usage = `
Usage: just chart push PATH|TGZ [--kubeconfig FILE] [--context NAME]

Packages the chart folder PATH (its dependencies, e.g. a library subchart, built first) with
the pinned helm, or takes a packaged .tgz, and pushes it to the cluster's registry as
oci://HOST/${CHARTS_PREFIX}/NAME:VERSION; it prints the OCIRepository that reads it.
\`just charts\` lists the charts there.

The registry is the one the cluster advertises (KEP-1755 ConfigMap kube-public/
local-registry-hosting; the sim advertises its own), else NSOPS_REGISTRY.
`

/** The registry the cluster advertises (or NSOPS_REGISTRY), for chart and charts. */
export async function registry(values: { kubeconfig?: string; context?: string }): Promise<RegistryChoice> {
  let kube
  try {
    kube = connect(resolveTarget(values))
  } catch {
    kube = undefined // no cluster: NSOPS_REGISTRY may still name one
  }
  return chooseRegistry({ kube })
}

export async function chart(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(argv, { usage, options: { ...targetOptions }, allowPositionals: true })
  const [verb, source] = positionals
  if (verb !== 'push' || !source)
    throw new NsopsError(
      verb === 'push' ? 'chart push needs a chart folder or .tgz.' : `unknown chart verb "${verb ?? ''}".`,
      {
        hint: 'just chart push PATH|TGZ (just charts lists them).',
      },
    )
  const reg = await registry(values)
  const pushed = await pushChart(source, reg)
  log.ok(`pushed ${pushed.name} ${pushed.version} to ${pushed.url} (${pushed.digest})`)
  log.info(
    c.dim(
      [
        'read it from a HelmRelease through this OCIRepository (spec.chartRef: { kind: OCIRepository, name: ' +
          pushed.name +
          ' }):',
        `  url: ${pushed.clusterUrl}`,
        `  ref: { tag: ${pushed.version} }`,
        `  layerSelector: { mediaType: ${HELM_CHART_LAYER}, operation: copy }`,
        ...(reg.plainHttp ? ['  insecure: true   # the registry speaks plain HTTP on loopback'] : []),
      ].join('\n'),
    ),
  )
  return 0
}
