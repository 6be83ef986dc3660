// `just setup`: provision every pinned tool now (the first run builds from Go modules).
import { c, log } from '../core/output.ts'
import { parseCommand } from '../core/cli.ts'
import { toolPaths } from '../tools/provision.ts'
import { toolSpecs } from '../tools/versions.ts'

const usage = `
Usage: just setup [--only kubectl,helm,...]

Finds or provisions every binary pinned in k8s/versions.yaml: a matching one on PATH, else the
cache (~/.cache/nsops/tools), else the official download, else a build from its Go module.
A cold build on 2 cores takes about 11 minutes; after that this takes well under a second.
Without --only it also caches the schemas \`just validate --offline\` checks against (the pinned
Kubernetes version's OpenAPI and the Flux CRDs, from their Go modules).
`

export async function setup(argv: string[]): Promise<number> {
  const { values } = parseCommand(argv, { usage, options: { only: { type: 'string' } } })
  const all = Object.values(toolSpecs()).flatMap((s) => s.binaries)
  const wanted = values.only ? values.only.split(',').map((s) => s.trim()) : all
  const paths = await toolPaths(wanted)
  for (const [b, p] of Object.entries(paths)) log.info(`${c.green('✔')} ${b.padEnd(24)} ${c.dim(p)}`)
  if (!values.only) {
    // offline validation needs them on a machine that never reaches a cluster
    const { offlineSchemas } = await import('../schema/index.ts')
    const schemas = await offlineSchemas()
    log.info(`${c.green('✔')} ${'schemas (offline)'.padEnd(24)} ${c.dim(schemas.dir)}`)
  }
  return 0
}
