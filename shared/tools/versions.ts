// The pinned tool versions from k8s/versions.yaml, typed.
import { createHash } from 'node:crypto'
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import YAML from 'yaml'
import { cacheDir, repoRoot } from '../core/paths.ts'

export interface ToolSpec {
  name: string
  version: string
  /** the executables this tool provides */
  binaries: string[]
  /**
   * official release URL template (download.ts: {version} {number} {os} {Os} {arch} {xarch}
   * {binary}); a map by OS when the platforms differ in more than names (etcd: zip on darwin)
   */
  release?: string | Partial<Record<'linux' | 'darwin', string>>
  /** the checksum file published beside the release (same placeholders, and {artifact}) */
  checksums?: string
  /**
   * pinned sha256 per platform (`linux/amd64`), per binary when the release is one file per binary.
   * Empty for every tool today (checked 2026-12-06). What stands in, by download.ts's order:
   * the checksum file the project publishes beside the release (`checksums`: kubernetes, etcd,
   * kustomize, helm, flux, actionlint), fetched with the artifact over TLS; for a tool with
   * neither (kwok, jsonnet) and every tool without a release (the controllers, registry, crane,
   * ko, our own Go programs) no download at all but a build from the Go module, whose sources
   * `go` checks against go.sum and the checksum database (GOSUMDB, sum.golang.org by default).
   * The local tool cache cannot fill a pin: every binary in it was built here (its
   * `.provenance` stamp says `build <key>`, not `release <url>`), so its sha256 is of this
   * machine's build, not of the release artifact the pin is for. `just pin-checksums` fills
   * the pins from the projects' checksum files on a machine with internet.
   */
  sha256?: Record<string, string | null | undefined>
  /** Go module (or package path for `go install`) to build from */
  module: string
}

export const versionsFile = path.join(repoRoot, 'k8s', 'versions.yaml')

let loaded: Record<string, ToolSpec> | undefined

/**
 * versions.yaml parsed, kept as JSON beside the tools under the hash of its text: parsing
 * YAML costs a fresh process ~20 ms (a cold parser), more than drift's own work on a kept
 * build; JSON.parse of the same is well under a millisecond.
 */
function parsedVersions(): Record<string, Omit<ToolSpec, 'name'>> {
  const text = readFileSync(versionsFile, 'utf8')
  const hash = createHash('sha256').update(text).digest('hex').slice(0, 16)
  const file = path.join(cacheDir(), 'tools', `versions-${hash}.json`)
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, Omit<ToolSpec, 'name'>>
  } catch {
    /* not parsed since it changed */
  }
  const raw = YAML.parse(text) as Record<string, Omit<ToolSpec, 'name'>>
  try {
    mkdirSync(path.dirname(file), { recursive: true })
    const tmp = `${file}.${process.pid}.tmp`
    writeFileSync(tmp, JSON.stringify(raw))
    renameSync(tmp, file)
  } catch {
    /* a read-only cache only costs the parse */
  }
  return raw
}

export function toolSpecs(): Record<string, ToolSpec> {
  if (loaded) return loaded
  const raw = parsedVersions()
  loaded = Object.fromEntries(
    Object.entries(raw).map(([name, s]) => [name, { ...s, name, binaries: s.binaries ?? [] }]),
  )
  return loaded
}

export function toolSpec(name: string): ToolSpec {
  const spec = toolSpecs()[name]
  if (!spec) throw new Error(`no tool named ${name} in ${versionsFile}`)
  return spec
}

/** The tool that provides a given executable (kubectl → kubernetes). */
export function toolForBinary(binary: string): ToolSpec {
  const spec = Object.values(toolSpecs()).find((s) => s.binaries.includes(binary))
  if (!spec) throw new Error(`no tool in ${versionsFile} provides ${binary}`)
  return spec
}
