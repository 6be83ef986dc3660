// RFC 6901 JSON pointers, as drift ignore rules and kustomize-controller's ignore paths write them.
export function parsePointer(p: string): string[] {
  if (p === '' || p === '/') return []
  if (!p.startsWith('/')) throw new Error(`${JSON.stringify(p)} is not a JSON pointer (it must start with "/")`)
  return p
    .slice(1)
    .split('/')
    .map((t) => t.replaceAll('~1', '/').replaceAll('~0', '~'))
}
