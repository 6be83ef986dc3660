// Base images: a reference from any registry the user can reach, `scratch` (no base), or one
// on this machine — `oci:PATH` (an OCI image layout) or `tarball:PATH` (`docker save` /
// `crane pull` output) — for offline work. A local base is pushed once into the registry the
// images go to (under nsops-base/, keyed by the file's path, size and mtime), since crane and
// ko build on top of a base they can pull.
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { NsopsError } from '../core/errors.ts'
import { crane } from './crane.ts'

const pushed = new Map<string, Promise<string>>()

export interface BaseOptions {
  /** where a relative PATH is read from (the namespace folder) */
  root: string
  /** host[:port] of the registry the image goes to */
  host: string
  /** os/arch */
  platform: string
  onLine: (line: string) => void
}

/** What `base` means for crane: a pullable reference, or undefined for scratch. */
export async function resolveImageBase(base: string | undefined, opts: BaseOptions): Promise<string | undefined> {
  if (base === undefined || base === 'scratch') return undefined
  const local = /^(oci|tarball):(.+)$/.exec(base)
  if (!local) return base
  const file = path.resolve(opts.root, local[2])
  let st: fs.Stats
  try {
    st = fs.statSync(file)
  } catch {
    throw new NsopsError(`base image ${base}: ${file} does not exist.`, {
      hint:
        local[1] === 'oci'
          ? 'Make an OCI layout with `crane pull --format oci IMAGE DIR` while online.'
          : 'Make a tarball with `crane pull IMAGE FILE` (or `docker save`) while online.',
    })
  }
  const key = createHash('sha256').update(`${file}\0${st.size}\0${st.mtimeMs}`).digest('hex').slice(0, 16)
  const slug =
    path
      .basename(file)
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-+|-+$/g, '') || 'base'
  const ref = `${opts.host}/nsops-base/${slug}:${key}`
  return memo(ref, async () => {
    opts.onLine(`pushing the local base ${base} to ${ref}`)
    await crane(['push', file, ref])
    return ref
  })
}

/**
 * An empty image for `platform` in the registry, for builders that need a base they can pull
 * (ko has no `scratch`): one empty layer, the platform set.
 */
export async function scratchBase(opts: BaseOptions): Promise<string> {
  const ref = `${opts.host}/nsops-base/scratch:${opts.platform.replace(/[^a-z0-9]+/gi, '-')}`
  return memo(ref, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-scratch-'))
    try {
      const empty = path.join(dir, 'empty.tar')
      fs.writeFileSync(empty, Buffer.alloc(1024)) // an empty tar: two zero blocks
      await crane(['append', '--oci-empty-base', '--new_layer', empty, '--new_tag', ref])
      await crane(['mutate', ref, '--set-platform', opts.platform, '--tag', ref])
      return ref
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
}

/** Once per process, and not at all when the registry has it already. */
function memo(ref: string, make: () => Promise<string>): Promise<string> {
  let p = pushed.get(ref)
  if (!p) {
    p = crane(['digest', ref]).then(
      () => ref,
      () => make(),
    )
    pushed.set(ref, p)
    p.catch(() => pushed.delete(ref))
  }
  return p
}
