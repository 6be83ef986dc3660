// `just pin-checksums [TOOL…]`: fill the sha256 pins of k8s/versions.yaml for every platform
// (linux/darwin × amd64/arm64) from the checksum file each project publishes beside its
// release, or, for a project that publishes none, from the download itself (trust on first
// use: the pin then holds that artifact still for everyone after). Renovate runs it after a
// version bump (renovate.json, postUpgradeTasks); comments and layout of the file are kept.
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import YAML from 'yaml'
import { parseCommand } from '../core/cli.ts'
import { errorMessage, NsopsError } from '../core/errors.ts'
import { c, log } from '../core/output.ts'
import { PLATFORMS, expectedSha256, releaseArtifacts, type Platform } from '../tools/download.ts'
import { versionsFile, type ToolSpec } from '../tools/versions.ts'

const usage = `
Usage: just pin-checksums [TOOL...] [--file FILE]

Writes the sha256 of each tool's release artifact for linux/darwin × amd64/arm64 into
k8s/versions.yaml (under the tool's sha256:), read from the checksum file the project
publishes (checksums:), else computed from the download. Without TOOL: every tool with a
release. An artifact that is not published for a platform (HTTP 404) is left empty and named.

  --file FILE      the versions file (default k8s/versions.yaml)
`

async function download(url: string): Promise<Buffer> {
  const res = await fetch(url, { signal: AbortSignal.timeout(120_000), redirect: 'follow' })
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`)
  return Buffer.from(await res.arrayBuffer())
}

async function sha256For(spec: ToolSpec, p: Platform, a: ReturnType<typeof releaseArtifacts>[number]) {
  if (spec.checksums) return (await expectedSha256({ ...spec, sha256: {} }, p, a)).sha256
  return createHash('sha256')
    .update(await download(a.url))
    .digest('hex')
}

export async function pinChecksums(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(argv, {
    usage,
    allowPositionals: true,
    options: { file: { type: 'string' } },
  })
  const names = positionals as string[]
  const file = path.resolve(values.file ?? versionsFile)
  const doc = YAML.parseDocument(fs.readFileSync(file, 'utf8'))
  const raw = doc.toJS() as Record<string, Omit<ToolSpec, 'name'>>
  const specs = Object.entries(raw)
    .map(([name, s]) => ({ ...s, name, binaries: s.binaries ?? [] }) as ToolSpec)
    .filter((s) => s.release && (names.length === 0 || names.includes(s.name)))
  const unknown = names.filter((t) => !specs.some((s) => s.name === t))
  if (unknown.length)
    throw new NsopsError(`no tool with a release named ${unknown.join(', ')} in ${file}.`, {
      hint: `tools with a release: ${Object.keys(raw)
        .filter((k) => raw[k].release)
        .join(', ')}`,
    })
  let pinned = 0
  let missing = 0
  for (const spec of specs) {
    for (const p of PLATFORMS) {
      for (const a of releaseArtifacts(spec, p)) {
        try {
          const sha = await sha256For(spec, p, a)
          doc.setIn([spec.name, 'sha256', a.pinKey], sha)
          pinned++
          log.ok(`${spec.name} ${a.pinKey.padEnd(26)} ${c.dim(sha)}`)
        } catch (err) {
          missing++
          log.warn(`${spec.name} ${a.pinKey}: left empty (${errorMessage(err)})`)
        }
      }
    }
  }
  fs.writeFileSync(file, doc.toString({ lineWidth: 0 }))
  log.info(
    `${pinned} sha256 pinned in ${path.relative(process.cwd(), file) || file}${missing ? `, ${missing} left empty` : ''}`,
  )
  return missing > 0 && pinned === 0 ? 1 : 0
}
