// What makes a directory a kustomization. Its own module: build.ts and build-cache.ts both
// need it, and build.ts uses the cache, so either importing it from the other was a cycle.

/** The names kustomize looks for in a directory, in its order. */
export const KUSTOMIZATION_FILES: readonly string[] = ['kustomization.yaml', 'kustomization.yml', 'Kustomization']

/** The kustomization fields that load other kustomizations or files by location. */
export const LOADING_FIELDS: readonly string[] = [
  'resources',
  'bases',
  'components',
  'crds',
  'configurations',
  'generators',
  'transformers',
  'validators',
]
