// What makes a directory a kustomization. Its own module: build.ts and build-cache.ts both
// need it, and build.ts uses the cache, so either importing it from the other was a cycle.

/** The names kustomize looks for in a directory, in its order. */
export const KUSTOMIZATION_FILES: readonly string[] = ['kustomization.yaml', 'kustomization.yml', 'Kustomization']
