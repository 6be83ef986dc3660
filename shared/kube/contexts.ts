// Which kube contexts are local-only clusters. Kept free of imports: scripts ask this on
// their start-up path.

/** Contexts of clusters that only ever run on a developer's machine; `x-` means the prefix x-. */
export const LOCAL_CONTEXT_PREFIXES = [
  'nsops-sim',
  'kind-',
  'k3d-',
  'docker-desktop',
  'docker-for-desktop',
  'minikube',
  'rancher-desktop',
  'orbstack',
  'microk8s',
  'colima',
  'crc',
]

export function isLocalContext(context: string): boolean {
  // entries ending in '-' are prefixes (kind-dev); the others are exact context names
  return LOCAL_CONTEXT_PREFIXES.some((p) => (p.endsWith('-') ? context.startsWith(p) : context === p))
}
