// `nsops --version` / `just version`: nsops' own version, the Node running it, and every tool
// version pinned in k8s/versions.yaml — what a bug report needs, in one paste.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { repoRoot } from '../core/paths.ts'
import { toolSpecs, versionsFile } from '../tools/versions.ts'

function gitCommit(): string | undefined {
  try {
    return execFileSync('git', ['-C', repoRoot, 'rev-parse', '--short', 'HEAD'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim()
  } catch {
    return undefined // not a git checkout (an unpacked tarball): the version alone says enough
  }
}

export function versionText(): string {
  const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string }
  const commit = gitCommit()
  const lines = [
    `nsops ${pkg.version}${commit ? ` (${commit})` : ''}`,
    `node ${process.version} (${process.execPath})`,
    `pinned tools (${path.relative(process.cwd(), versionsFile) || versionsFile}):`,
  ]
  const specs = Object.values(toolSpecs())
  const width = Math.max(...specs.map((s) => s.name.length))
  for (const s of specs) lines.push(`  ${s.name.padEnd(width)}  ${s.version}`)
  return `${lines.join('\n')}\n`
}

export async function version(): Promise<number> {
  process.stdout.write(versionText())
  return 0
}
