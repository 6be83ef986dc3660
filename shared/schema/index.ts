// Strict schema validation of a build (what `just validate` and deploy share): the target
// cluster's OpenAPI v3 when one answers, the pinned offline set otherwise (or with --offline),
// errors placed at the file and line they come from.
import path from 'node:path'
import { NsopsError, errorMessage } from '../core/errors.ts'
import type { Kube } from '../kube/client.ts'
import type { ManifestObject } from '../kustomize/build.ts'
import { locateFindings } from './origin.ts'
import { locateRendered } from '../flux/build/helm-release.ts'
import { ClusterSchemas, offlineSchemas, type SchemaSource } from './sources.ts'
import { fieldPath, SchemaValidator, type SchemaCheck, type SchemaFinding } from './validate.ts'

export { ClusterSchemas, OfflineSchemas, offlineSchemas, offlineDir, type SchemaSource } from './sources.ts'
export { SchemaValidator, fieldPath, type SchemaCheck, type SchemaFinding, type UnknownKind } from './validate.ts'
export { locateFindings } from './origin.ts'
export { renderTarget } from './render-target.ts'

export interface SchemaOptions {
  /** the cluster whose OpenAPI to use; undefined: the pinned offline set */
  kube?: Kube
  /** the overlay that was built (for file:line) */
  overlayDir: string
  /** where its files live, searched for patches (the namespace's folder) */
  searchDir: string
  /** paths in messages are relative to this (the clone) */
  relativeTo: string
}

export interface SchemaResult extends SchemaCheck {
  /** why the cluster's schemas were not used, when it answered but they could not be read */
  fallback?: string
}

/** Checks every object; throws an NsopsError listing each error at file:line, and each kind no schema knows. */
export async function checkSchemas(objects: ManifestObject[], opts: SchemaOptions): Promise<SchemaResult> {
  let source: SchemaSource = opts.kube ? new ClusterSchemas(opts.kube) : await offlineSchemas()
  let result: SchemaCheck
  let fallback: string | undefined
  try {
    result = await new SchemaValidator(source).check(objects)
  } catch (err) {
    if (!opts.kube || err instanceof NsopsError) throw err
    // a cluster that answers but serves no /openapi/v3 (older than 1.27, or a proxy in between)
    fallback = `the cluster's OpenAPI could not be read (${errorMessage(err).split('\n')[0]})`
    source = await offlineSchemas()
    result = await new SchemaValidator(source).check(objects)
  }
  if (result.findings.length || result.unknownKinds.length) {
    // objects a HelmRelease rendered are placed at the HelmRelease (its values), the rest at their files
    const written = result.findings.filter((f) => !locateRendered(f))
    await locateFindings(written, opts.overlayDir, opts.searchDir)
    throw schemaError(result, opts)
  }
  return { ...result, ...(fallback ? { fallback } : {}) }
}

export function findingLine(f: SchemaFinding, relativeTo: string): string {
  const where = f.file
    ? `${path.relative(relativeTo, f.file).split(path.sep).join('/')}${f.line ? `:${f.line}` : ''}: `
    : ''
  return `${where}${f.ref}: ${fieldPath(f.path)}: ${f.message}${f.note ? ` (${f.note})` : ''}`
}

export function schemaError(r: SchemaCheck, opts: Pick<SchemaOptions, 'overlayDir' | 'relativeTo'>): NsopsError {
  const overlay = path.relative(opts.relativeTo, opts.overlayDir).split(path.sep).join('/') || '.'
  const lines = r.findings.map((f) => findingLine(f, opts.relativeTo))
  for (const u of r.unknownKinds) {
    lines.push(
      `kind ${u.kind} (${u.apiVersion}) has no schema: neither ${r.source} nor a CRD in the build defines it; used by ${u.objects.join(', ')}`,
    )
  }
  const count = r.findings.length + r.unknownKinds.length
  return new NsopsError(
    `${overlay} fails strict schema validation against ${r.source} (${count === 1 ? '1 error' : `${count} errors`}), so nothing was committed or pushed:\n  ${lines.join('\n  ')}`,
    {
      hint:
        r.unknownKinds.length && !r.findings.length
          ? 'fix the apiVersion/kind, or install the CRD that defines it (or add it to the build); offline, only the Kubernetes kinds and the Flux CRDs are known: validate against the cluster instead.'
          : 'fix the fields named above (an unknown field is usually a typo or a wrong indentation), then run again; `just validate` repeats the check.',
    },
  )
}
