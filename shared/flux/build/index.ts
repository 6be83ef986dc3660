// What Flux builds: one Flux Kustomization as kustomize-controller builds it (kustomization.ts,
// through flux-build, the controller's own code), the tree of a repository's Kustomizations
// (tree.ts), and where substituteFrom is read when connected (cluster-vars.ts). HelmReleases
// in a build are leaves: a LeafRenderer for the kind renders them (FluxBuildOptions.leaves).
export {
  buildFluxKustomization,
  substituteLike,
  ksName,
  KUSTOMIZATION_API,
  type FluxBuild,
  type FluxBuildOptions,
  type FluxKustomization,
  type FluxKustomizationSpec,
  type LeafContext,
  type LeafRenderer,
  type SubstituteReference,
  type VarsLookup,
} from './kustomization.ts'
export {
  FluxTree,
  fluxKustomizationsIn,
  isHelmRelease,
  repositoryRoots,
  type FluxNode,
  type FluxTreeOptions,
} from './tree.ts'
export { clusterVars } from './cluster-vars.ts'
export { touchedKustomizations, type Touched } from './changes.ts'
export {
  helmReleaseRenderer,
  locateRendered,
  releaseNameOf,
  renderHelmRelease,
  renderedOrigin,
  shortenReleaseName,
  type HelmRenderOptions,
  type RenderedRelease,
} from './helm-release.ts'
export { helmTarget, FLUX_API_VERSIONS } from './helm-target.ts'
export { stopFluxBuild, warmFluxBuild } from './server.ts'
export {
  buildProd,
  devSubstitution,
  fluxTreeOf,
  forgetFluxTrees,
  kustomizationsOf,
  strictInCluster,
  strictInRepo,
  type ProdBuild,
  type ProdBuildOptions,
  type ProdPart,
  type ProdScope,
} from './namespace.ts'
