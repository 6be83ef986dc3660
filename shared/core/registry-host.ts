// How a registry host is spoken to, shared by everything that reaches an OCI registry (images,
// charts vendored from oci:// repositories).

/**
 * Whether a registry is spoken to over plain HTTP: loopback and `.localhost` names, as
 * go-containerregistry (crane, ko), containerd and Docker all treat them without being told.
 */
export function isPlainHttpRegistry(host: string): boolean {
  const name = host.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1')
  return name === 'localhost' || name.endsWith('.localhost') || /^127\.\d+\.\d+\.\d+$/.test(name) || name === '::1'
}
