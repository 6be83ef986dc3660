// Official release downloads, each checked by sha256 before it is used. The release URL is a
// template in k8s/versions.yaml filled for this machine's platform (linux or darwin, amd64 or
// arm64); the sha256 it must have comes from, in order:
//   1. a pin in versions.yaml (`sha256: { linux/amd64: … }`, per binary for tools whose
//      release is one file per binary: `linux/amd64/kubectl`), written by a person or by
//      `just pin-checksums` after Renovate bumps a version;
//   2. the checksum file the project publishes beside the release (`checksums:` template:
//      a bare hash as dl.k8s.io serves, or `sha256sum` lines as goreleaser's checksums.txt).
// With neither, the download is refused (nsops then builds the tool from its Go module): an
// artifact nobody vouches for is not run.
import { createHash } from 'node:crypto'
import fsp from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import * as tar from 'tar'
import { NsopsError } from '../core/errors.ts'
import type { ToolSpec } from './versions.ts'

const run = promisify(execFile)

export type OsName = 'linux' | 'darwin'
export type ArchName = 'amd64' | 'arm64'
export interface Platform {
  os: OsName
  arch: ArchName
}
export const PLATFORMS: Platform[] = [
  { os: 'linux', arch: 'amd64' },
  { os: 'linux', arch: 'arm64' },
  { os: 'darwin', arch: 'amd64' },
  { os: 'darwin', arch: 'arm64' },
]

/** This machine as release names spell it (Go's GOOS/GOARCH). */
export function currentPlatform(): Platform {
  return {
    os: process.platform === 'darwin' ? 'darwin' : 'linux',
    arch: os.arch() === 'arm64' ? 'arm64' : 'amd64',
  }
}

export interface Artifact {
  /** the executable it provides (for an archive: the first of the tool's binaries) */
  binary: string
  url: string
  /** the key of its pin under `sha256:` in versions.yaml */
  pinKey: string
}

/**
 * A template filled for a platform: {version} (v1.2.3), {number} (1.2.3), {os} (linux,
 * darwin), {Os} (Linux, Darwin), {arch} (amd64, arm64), {xarch} (x86_64, arm64: goreleaser's
 * uname spelling), {binary}, {artifact} (the release file's name, in a checksums template).
 */
export function fillTemplate(
  template: string,
  spec: ToolSpec,
  p: Platform,
  extra: Record<string, string> = {},
): string {
  const values: Record<string, string> = {
    version: spec.version,
    number: spec.version.replace(/^v/, ''),
    os: p.os,
    Os: p.os === 'darwin' ? 'Darwin' : 'Linux',
    arch: p.arch,
    xarch: p.arch === 'amd64' ? 'x86_64' : 'arm64',
    ...extra,
  }
  return template.replace(/\{(\w+)\}/g, (whole, key: string) => values[key] ?? whole)
}

function releaseTemplate(spec: ToolSpec, p: Platform): string | undefined {
  if (!spec.release) return undefined
  return typeof spec.release === 'string' ? spec.release : spec.release[p.os]
}

/** What to download for a platform: one file per binary ({binary} in the URL) or one archive. */
export function releaseArtifacts(spec: ToolSpec, p: Platform): Artifact[] {
  const template = releaseTemplate(spec, p)
  if (!template) return []
  const platform = `${p.os}/${p.arch}`
  if (template.includes('{binary}'))
    return spec.binaries.map((b) => ({
      binary: b,
      url: fillTemplate(template, spec, p, { binary: b }),
      pinKey: `${platform}/${b}`,
    }))
  return [{ binary: spec.binaries[0], url: fillTemplate(template, spec, p), pinKey: platform }]
}

/**
 * The sha256 for `artifactName` in a checksum file's text: a file holding only a hash (as
 * dl.k8s.io's `<file>.sha256`), or `sha256sum` lines (`<hash>  <name>`, `*name` in binary mode).
 */
export function parseChecksums(text: string, artifactName: string): string | undefined {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
  if (lines.length === 1 && /^[0-9a-f]{64}$/i.test(lines[0])) return lines[0].toLowerCase()
  for (const line of lines) {
    const m = /^([0-9a-f]{64})\s+\*?(?:\.\/)?(\S+)$/i.exec(line)
    if (m && path.basename(m[2]) === artifactName) return m[1].toLowerCase()
  }
  return undefined
}

async function fetchBuffer(url: string): Promise<Buffer> {
  const res = await fetch(url, { signal: AbortSignal.timeout(60_000), redirect: 'follow' })
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`)
  return Buffer.from(await res.arrayBuffer())
}

/** The sha256 the artifact must have, and who says so; an NsopsError when nobody does. */
export async function expectedSha256(
  spec: ToolSpec,
  p: Platform,
  a: Artifact,
): Promise<{ sha256: string; from: string }> {
  const pinned = spec.sha256?.[a.pinKey]
  if (pinned) return { sha256: pinned.toLowerCase(), from: `k8s/versions.yaml (${spec.name}.sha256.${a.pinKey})` }
  const artifactName = decodeURIComponent(path.basename(new URL(a.url).pathname))
  if (spec.checksums) {
    const url = fillTemplate(spec.checksums, spec, p, { binary: a.binary, artifact: artifactName })
    const sha256 = parseChecksums((await fetchBuffer(url)).toString('utf8'), artifactName)
    if (sha256) return { sha256, from: url }
    throw new NsopsError(`${url} lists no sha256 for ${artifactName}.`, {
      hint: `pin it in k8s/versions.yaml under ${spec.name}.sha256.${a.pinKey}, or let nsops build ${spec.name} from its module.`,
    })
  }
  throw new NsopsError(
    `no sha256 for ${artifactName}: k8s/versions.yaml pins none under ${spec.name}.sha256.${a.pinKey} and names no checksums file.`,
    { hint: 'nsops downloads only what a checksum vouches for; `just pin-checksums` fills the pins.' },
  )
}

/** Downloads the artifact and checks it; throws on any difference, before anything is written. */
export async function fetchVerified(spec: ToolSpec, p: Platform, a: Artifact): Promise<Buffer> {
  const want = await expectedSha256(spec, p, a)
  const body = await fetchBuffer(a.url)
  const got = createHash('sha256').update(body).digest('hex')
  if (got !== want.sha256)
    throw new NsopsError(`sha256 mismatch for ${a.url}: got ${got}, want ${want.sha256} (from ${want.from}).`, {
      hint: 'the download is not what was published (or pinned); nothing was installed. Check the pin, or your network path.',
    })
  return body
}

/** Installs a verified artifact's binaries into `dest` (an archive unpacked, a bare binary as is). */
export async function installArtifact(spec: ToolSpec, a: Artifact, body: Buffer, dest: string): Promise<void> {
  await fsp.mkdir(dest, { recursive: true })
  const name = new URL(a.url).pathname
  if (!/\.(tar\.gz|tgz|zip)$/.test(name)) {
    const tmp = path.join(dest, `.${a.binary}.${process.pid}`)
    await fsp.writeFile(tmp, body, { mode: 0o755 })
    await fsp.rename(tmp, path.join(dest, a.binary))
    return
  }
  const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'nsops-dl-'))
  try {
    if (name.endsWith('.zip')) {
      // etcd's darwin releases are zip files; macOS ships unzip
      await fsp.writeFile(path.join(tmp, 'a.zip'), body)
      await run('unzip', ['-q', '-o', path.join(tmp, 'a.zip'), '-d', path.join(tmp, 'x')])
    } else {
      await fsp.mkdir(path.join(tmp, 'x'))
      await pipeline(Readable.from(body), tar.x({ cwd: path.join(tmp, 'x') }))
    }
    for (const b of spec.binaries) {
      const found = await findFile(path.join(tmp, 'x'), b)
      if (!found) throw new Error(`${a.url} holds no ${b}`)
      const to = path.join(dest, b)
      await fsp.copyFile(found, `${to}.${process.pid}`)
      await fsp.chmod(`${to}.${process.pid}`, 0o755)
      await fsp.rename(`${to}.${process.pid}`, to)
    }
  } finally {
    await fsp.rm(tmp, { recursive: true, force: true })
  }
}

async function findFile(dir: string, name: string): Promise<string | undefined> {
  for (const e of await fsp.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name)
    if (e.isFile() && e.name === name) return p
    if (e.isDirectory()) {
      const f = await findFile(p, name)
      if (f) return f
    }
  }
  return undefined
}
