// Whether the images a set of manifests names exist in their registries (konflate's "images
// missing from their registry"): deploy asks before it pushes manifests that a cluster could
// never pull. Each reference is resolved with the pinned crane (go-containerregistry: the same
// auth, plain HTTP on loopback and Docker Hub defaults as ko and containerd), so a tag counts
// as present exactly when a runtime could resolve it.
import type { ManifestObject } from '../kustomize/build.ts'
import { crane } from './crane.ts'

export interface ImageUse {
  /** the reference as the manifests write it */
  ref: string
  /** the objects whose containers name it: Kind namespace/name */
  objects: string[]
}

export type ImagePresence = ImageUse &
  (
    | { state: 'present'; digest: string }
    /** the registry answered: no such tag, digest or repository */
    | { state: 'missing'; reason: string }
    /** the registry did not answer, or refused to say (no network, no credentials) */
    | { state: 'unchecked'; reason: string }
  )

const containerLists = new Set(['containers', 'initContainers', 'ephemeralContainers'])

/** Every image reference the objects' containers name, with who names it, in first-seen order. */
export function imageUses(objects: ManifestObject[]): ImageUse[] {
  const uses = new Map<string, Set<string>>()
  for (const o of objects) {
    const who = `${o.kind} ${o.metadata.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata.name}`
    const walk = (node: unknown): void => {
      if (Array.isArray(node)) return node.forEach(walk)
      if (node === null || typeof node !== 'object') return
      for (const [k, v] of Object.entries(node)) {
        if (containerLists.has(k) && Array.isArray(v))
          for (const c of v as { image?: unknown }[])
            if (typeof c?.image === 'string' && c.image) {
              const set = uses.get(c.image) ?? new Set<string>()
              uses.set(c.image, set.add(who))
            }
        walk(v)
      }
    }
    walk(o)
  }
  return [...uses].map(([ref, objects]) => ({ ref, objects: [...objects] }))
}

// go-containerregistry's transport errors carry the registry's error code (OCI distribution
// spec) or the HTTP status; these say "the registry answered, and it has no such thing"
const MISSING = /MANIFEST_UNKNOWN|NAME_UNKNOWN|manifest unknown|unexpected status code 404/i

/** The last line crane printed that explains itself, without its log prefix. */
function craneReason(message: string): string {
  const lines = message
    .replace(/^crane digest failed: /, '')
    .split('\n')
    .map((l) => l.replace(/^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d /, '').replace(/^Error: /, ''))
    .filter(Boolean)
  return (lines.at(-1) ?? message).trim()
}

/** Resolves each reference in its registry (a few at a time); never throws. */
export async function checkImagesPresent(
  uses: ImageUse[],
  opts: { concurrency?: number; timeoutMs?: number } = {},
): Promise<ImagePresence[]> {
  const out: ImagePresence[] = new Array(uses.length)
  let next = 0
  const worker = async () => {
    while (next < uses.length) {
      const i = next++
      const use = uses[i]
      try {
        const digest = (await crane(['digest', use.ref], { timeoutMs: opts.timeoutMs ?? 20_000 })).stdout.trim()
        out[i] = { ...use, state: 'present', digest }
      } catch (err) {
        const reason = craneReason(err instanceof Error ? err.message : String(err))
        out[i] = { ...use, state: MISSING.test(reason) ? 'missing' : 'unchecked', reason }
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(opts.concurrency ?? 6, uses.length) }, worker))
  return out
}

/** host[:port] a reference is pulled from (Docker Hub for a bare name), for messages. */
export function registryOf(ref: string): string {
  const first = ref.split('/')[0]
  return ref.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost')
    ? first
    : 'docker.io'
}
