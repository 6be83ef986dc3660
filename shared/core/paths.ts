// Where things live: the repo, the per-user tool cache and the repo-local state directory.
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

// NSOPS_REPO_ROOT: set by shared/bin/run-bundled.mjs, where this module lives in a bundle
export const repoRoot =
  process.env.NSOPS_REPO_ROOT || path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')

/** Tool binaries and Go build trees, shared by every checkout: `${XDG_CACHE_HOME:-~/.cache}/nsops`. */
export function cacheDir(): string {
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache')
  return path.join(base, 'nsops')
}

/** Runtime state of this checkout (sim cluster, dev sessions): `<repo>/.nsops`, gitignored. */
export function stateDir(): string {
  return process.env.NSOPS_STATE_DIR || path.join(repoRoot, '.nsops')
}

/** `node` arguments that run one of our TypeScript files as its own process (a cluster component). */
export function tsNodeArgs(file: string, ...args: string[]): string[] {
  return [
    '--import',
    `file://${path.join(repoRoot, 'node_modules/tsx/dist/esm/index.mjs')}`,
    '--import',
    `file://${path.join(repoRoot, 'shared/bin/fast-deps.mjs')}`,
    path.join(repoRoot, file),
    ...args,
  ]
}

/**
 * A path inside the repo as Flux writes one (a Kustomization's spec.path, a file beside it):
 * forward slashes, no leading `./` or `/`, no trailing `/`; the repo's root is ''. Two
 * spellings of one place compare equal.
 */
export function repoPath(p: string): string {
  const n = path.posix
    .normalize(p.split(path.sep).join('/'))
    .replace(/^\.?\/+/, '')
    .replace(/\/+$/, '')
  return n === '.' ? '' : n
}
