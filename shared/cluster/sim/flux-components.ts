// The names of the Flux components a sim runs, apart from controllers.ts so that checking
// them costs no load of the Kubernetes client.

/** Every Flux component a sim runs; a cluster started before one joined the list gets it on the next ensure. */
export const fluxComponentNames = ['kustomize-controller', 'source-controller', 'helm-controller', 'git-server']
