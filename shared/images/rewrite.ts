// Rewrites image references in what the dev loop applies — never in the files on disk — with
// kustomize's `images:` semantics: a container whose image *name* (the reference without its
// tag or digest) equals an image's key gets `newName@digest`. `image: hello`, `hello:dev` and
// `hello@sha256:…` all become `<registry>/<ns>/hello@sha256:<the build's digest>`.
import type { ManifestObject } from '../kustomize/build.ts'

/** `registry:5000/a/b:tag@sha256:…` → `registry:5000/a/b`. */
export function imageName(ref: string): string {
  const noDigest = ref.split('@')[0]
  const colon = noDigest.lastIndexOf(':')
  return colon > noDigest.lastIndexOf('/') ? noDigest.slice(0, colon) : noDigest
}

const containerLists = new Set(['containers', 'initContainers', 'ephemeralContainers'])

/**
 * The objects with every matching container image replaced (copies; the input is untouched),
 * and how many references changed. `images`: key → the reference by digest.
 */
export function rewriteImages(
  objects: ManifestObject[],
  images: ReadonlyMap<string, string>,
): { objects: ManifestObject[]; rewritten: number } {
  if (images.size === 0) return { objects, rewritten: 0 }
  let rewritten = 0
  const walk = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(walk)
    if (node === null || typeof node !== 'object') return node
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(node)) {
      if (containerLists.has(k) && Array.isArray(v)) {
        out[k] = v.map((c: unknown) => {
          if (c === null || typeof c !== 'object') return c
          const container = c as { image?: unknown }
          const to = typeof container.image === 'string' ? images.get(imageName(container.image)) : undefined
          if (!to) return walk(c)
          rewritten++
          return { ...(walk(c) as object), image: to }
        })
      } else out[k] = walk(v)
    }
    return out
  }
  const result = objects.map((o) => {
    const before = rewritten
    const copy = walk(o) as ManifestObject
    return rewritten === before ? o : copy
  })
  return { objects: result, rewritten }
}

/** Which images an object's containers name (by key), for "what does this app run". */
export function imagesIn(objects: ManifestObject[], keys: Iterable<string>): Set<string> {
  const want = new Set(keys)
  const found = new Set<string>()
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(walk)
    if (node === null || typeof node !== 'object') return
    for (const [k, v] of Object.entries(node)) {
      if (containerLists.has(k) && Array.isArray(v))
        for (const c of v as { image?: unknown }[])
          if (typeof c?.image === 'string' && want.has(imageName(c.image))) found.add(imageName(c.image))
      walk(v)
    }
  }
  objects.forEach(walk)
  return found
}
