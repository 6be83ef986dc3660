// `just build NS [IMAGE]`: build a namespace's images (namespace.ts `images:`) and push them to
// the cluster's registry, without a dev loop; prints each reference by digest.
import { parseCommand } from '../core/cli.ts'
import type { NamespaceConfig } from '../config/namespace-config.ts'
import { NsopsError } from '../core/errors.ts'
import { c, duration, log } from '../core/output.ts'
import { resolveTarget, targetOptions } from '../kube/target.ts'

const usage = (ns: string) => `
Usage: just build ${ns} [IMAGE] [--registry HOST[:PORT]] [--tag TAG] [--quiet]

Builds IMAGE (default: every image in namespaces/${ns}/namespace.ts \`images:\`) with its
builder (ko, binary, dockerfile or custom) and pushes it to the registry: the one the cluster
advertises (the kube-public/local-registry-hosting ConfigMap, KEP-1755; the sim's own), else
\`registry\` in namespace.ts, else NSOPS_REGISTRY. Prints <registry>/${ns}/<image>@sha256:…
per image; exit 1 when a build fails, with its output.

  --registry HOST  push here instead (no cluster asked)
  --tag TAG        the tag the push moves (default dev)
  --quiet          only the references, one per line (no build output)
  --kubeconfig FILE  --context NAME   which cluster's registry (default: the one \`just cluster-up\` chose)
`

export async function build(ns: NamespaceConfig, argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(argv, {
    usage: usage(ns.name),
    allowPositionals: true,
    options: { registry: { type: 'string' }, tag: { type: 'string' }, quiet: { type: 'boolean' }, ...targetOptions },
  })
  const names = positionals.length ? positionals : Object.keys(ns.images)
  if (!Object.keys(ns.images).length)
    throw new NsopsError(`${ns.name} has no images.`, {
      hint: `add them under \`images\` in namespaces/${ns.name}/namespace.ts (README, "Images").`,
    })
  for (const n of names)
    if (!ns.images[n])
      throw new NsopsError(`${ns.name} has no image ${n}.`, {
        hint: `its images: ${Object.keys(ns.images).join(', ')}.`,
      })
  const { chooseRegistry } = await import('../images/registry.ts')
  let kube
  if (!values.registry) {
    const { connect } = await import('../kube/client.ts')
    kube = connect(resolveTarget(values))
  }
  const registry = await chooseRegistry({
    kube,
    configured: values.registry
      ? { host: values.registry, file: '--registry' }
      : ns.registry
        ? { host: ns.registry, file: `namespaces/${ns.name}/namespace.ts` }
        : undefined,
  })
  if (!values.quiet) log.info(c.dim(`registry ${registry.host} (${registry.from})`))
  const { buildImage, ImageBuildError } = await import('../images/build.ts')
  const ac = new AbortController()
  process.once('SIGINT', () => ac.abort())
  let failed = 0
  for (const name of names) {
    if (!values.quiet) log.info(c.bold(`building ${name}`))
    try {
      const built = await buildImage(ns.images[name], {
        namespace: ns.name,
        root: ns.paths.root,
        registry,
        tag: values.tag,
        signal: ac.signal,
        onLine: values.quiet ? undefined : (l) => log.info(`${c.dim(`[${name}]`)} ${l}`),
      })
      const size = built.size === undefined ? '' : `, ${(built.size / 1e6).toFixed(1)} MB`
      const host = built.hostMs === undefined ? '' : `, host build ${duration(built.hostMs)}`
      if (values.quiet) process.stdout.write(`${built.ref}\n`)
      else log.ok(`${name}: ${built.ref} (${built.builder}, ${duration(built.ms)}${host}${size})`)
    } catch (err) {
      if (!(err instanceof ImageBuildError)) throw err
      failed++
      if (values.quiet) for (const l of err.log.slice(-30)) log.info(`${c.dim(`[${name}]`)} ${l}`)
      log.fail(err.message)
      if (err.hint) log.info(c.dim(`hint: ${err.hint}`))
    }
  }
  return failed ? 1 : 0
}
