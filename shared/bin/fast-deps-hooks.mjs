// Resolve hook for fast-deps.mjs: `@kubernetes/client-node` → the pre-built bundle.
let bundleUrl
export function initialize(data) {
  bundleUrl = data.url
}
export async function resolve(specifier, context, next) {
  if (specifier === '@kubernetes/client-node') return { url: bundleUrl, format: 'module', shortCircuit: true }
  return next(specifier, context)
}
