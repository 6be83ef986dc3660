// Validation before anything is committed, shared by `just validate` and deploy: the prod
// overlay builds, holds no plaintext Secret, every object passes strict schema validation
// (the cluster's OpenAPI with its CRDs, or the pinned offline set; shared/schema/), and — for
// objects whose namespace exists — the API server accepts it in a server-side dry run
// (admission, defaulting, CEL rules), applied as Flux's kustomize-controller would apply it.
import path from 'node:path'
import { ApiException } from '@kubernetes/client-node'
import { applyObjects, type ApplyResult } from '../apply/apply.ts'
import { mapLimit } from '../apply/order.ts'
import { refOf, refString, type ObjectRef } from '../kube/refs.ts'
import { getObject, objectPath, placeObject, rest } from '../kube/rest.ts'
import { NsopsError } from '../core/errors.ts'
import { apiMessage, type Kube } from '../kube/client.ts'
import type { ManifestObject } from '../kustomize/build.ts'
import { checkSchemas, type SchemaResult } from '../schema/index.ts'
import { sourceRoot, type NamespaceConfig } from '../config/namespace-config.ts'
import { buildProd, type ProdBuild, type ProdBuildOptions } from '../flux/build/index.ts'
import { findPlaintextSecrets, isSopsSecret, plaintextSecretsError } from './secrets.ts'

/** The field manager Flux applies with; dry runs and diffs use it so they show what Flux will do. */
export const FLUX_APPLY_MANAGER = 'kustomize-controller'

export interface Rejection {
  object: string
  message: string
}
export interface NotValidated {
  object: string
  reason: string
}

export interface ServerValidation {
  /** objects the API server accepted */
  accepted: number
  rejected: Rejection[]
  /** objects the dry run cannot speak for, and why */
  notValidated: NotValidated[]
}

/**
 * SOPS-encrypted Secrets go to the cluster only through Flux, which decrypts them: the API
 * server would reject their ENC[…] values and `sops` field, so they are left out of dry runs
 * and diffs (and said so).
 */
export function splitEncrypted(objects: ManifestObject[]): { plain: ManifestObject[]; encrypted: ManifestObject[] } {
  const encrypted = objects.filter((o) => isSopsSecret(o))
  return { plain: objects.filter((o) => !isSopsSecret(o)), encrypted }
}

export function encryptedNote(obj: ManifestObject, namespace: string): NotValidated {
  return {
    object: refString({ ...refOf(obj), namespace: obj.metadata.namespace ?? namespace }),
    reason: 'SOPS-encrypted: only Flux can decrypt it',
  }
}

/** `namespaces "x" not found` for an object whose Namespace the same set creates. */
export function waitsForNewNamespace(ref: ObjectRef, message: string, created: Set<string>): boolean {
  return ref.namespace !== undefined && created.has(ref.namespace) && /namespaces? "[^"]+" not found/.test(message)
}

/** Namespaces the set holds that the cluster does not have yet (a dry run cannot create them). */
export function newNamespaces(result: Pick<ApplyResult, 'created'>): Set<string> {
  return new Set(result.created.filter((r) => r.kind === 'Namespace' && r.apiVersion === 'v1').map((r) => r.name))
}

/**
 * Server-side dry run of the whole set; `namespace` is where objects without one go (the prod
 * namespace). One server-side apply per object with dryRun=All and fieldValidation=Strict, as
 * kustomize-controller applies it: validation needs no read of the live object (a diff does),
 * which halves the requests. A set with CRDs goes through applyObjects, which waits for a CRD
 * to be served before its objects.
 */
export async function serverDryRun(
  kube: Kube,
  objects: ManifestObject[],
  namespace: string,
  concurrency = DRY_RUN_CONCURRENCY,
): Promise<ServerValidation> {
  const { plain, encrypted } = splitEncrypted(objects)
  if (plain.some((o) => o.kind === 'CustomResourceDefinition'))
    return dryRunWithApply(kube, plain, encrypted, namespace)
  const rejected: Rejection[] = []
  const notValidated: NotValidated[] = encrypted.map((o) => encryptedNote(o, namespace))
  const fresh = new Set<string>()
  let accepted = 0
  const dryRun = async (obj: ManifestObject): Promise<void> => {
    // sent as it is and never changed: a copy of its metadata is enough
    const placed = await placeObject(kube, obj, namespace, 'metadata')
    if (!placed) {
      rejected.push({
        object: refString({ ...refOf(obj), namespace: obj.metadata.namespace ?? namespace }),
        message: `the cluster does not serve ${obj.apiVersion} ${obj.kind}`,
      })
      return
    }
    const ref = refOf(placed)
    if (ref.namespace && fresh.has(ref.namespace)) {
      notValidated.push({
        object: refString(ref),
        reason: `schema-checked only: its Namespace ${ref.namespace} is created by this deploy, so the dry run cannot place it`,
      })
      return
    }
    try {
      await rest(kube, 'PATCH', await objectPath(kube, ref), {
        body: placed,
        contentType: 'application/apply-patch+yaml',
        query: { fieldManager: FLUX_APPLY_MANAGER, force: 'true', dryRun: 'All', fieldValidation: 'Strict' },
        discardBody: true, // accepted is all it says
      })
      accepted++
    } catch (err) {
      if (!(err instanceof ApiException)) throw err
      rejected.push({ object: refString(ref), message: apiMessage(err) })
    }
  }
  // Namespaces first: one the cluster lacks cannot hold a dry-run object yet
  const namespaces = plain.filter((o) => o.kind === 'Namespace' && o.apiVersion === 'v1')
  await mapLimit(namespaces, DRY_RUN_CONCURRENCY, async (n) => {
    if (!(await getObject(kube, { apiVersion: 'v1', kind: 'Namespace', name: n.metadata.name })))
      fresh.add(n.metadata.name)
    await dryRun(n)
  })
  await mapLimit(
    plain.filter((o) => !namespaces.includes(o)),
    concurrency,
    dryRun,
  )
  return { accepted, rejected, notValidated }
}

// a dry run changes nothing, so it can be more parallel than an apply
const DRY_RUN_CONCURRENCY = 16

async function dryRunWithApply(
  kube: Kube,
  plain: ManifestObject[],
  encrypted: ManifestObject[],
  namespace: string,
): Promise<ServerValidation> {
  const result = await applyObjects(kube, plain, {
    dryRun: true,
    fieldManager: FLUX_APPLY_MANAGER,
    namespace,
    force: true,
    concurrency: DRY_RUN_CONCURRENCY,
  })
  const fresh = newNamespaces(result)
  const rejected: Rejection[] = []
  const notValidated: NotValidated[] = [
    ...encrypted.map((o) => encryptedNote(o, namespace)),
    ...result.skipped.map((s) => ({ object: refString(s.ref), reason: s.reason })),
  ]
  for (const f of result.failed) {
    if (waitsForNewNamespace(f.ref, f.message, fresh)) {
      notValidated.push({
        object: refString(f.ref),
        reason: `schema-checked only: its Namespace ${f.ref.namespace} is created by this deploy, so the dry run cannot place it`,
      })
    } else {
      rejected.push({ object: refString(f.ref), message: f.message })
    }
  }
  return {
    accepted: result.created.length + result.configured.length + result.unchanged.length,
    rejected,
    notValidated,
  }
}

export function rejectedError(v: ServerValidation, overlay: string, context: string): NsopsError {
  const lines = v.rejected.map((r) => `${r.object}: ${r.message}`)
  return new NsopsError(
    `the API server (context ${context}) rejects ${v.rejected.length === 1 ? 'an object' : `${v.rejected.length} objects`} of ${overlay} in a server-side dry run, so nothing was committed or pushed:\n  ${lines.join('\n  ')}`,
    {
      hint: `fix the manifests under ${overlay} (or the bases it uses), then run again; \`--dry-run\` repeats the check without committing.`,
    },
  )
}

export interface Validation {
  schema: SchemaResult
  /** the server-side dry run, when a cluster answers */
  server?: ServerValidation
  /** the context it ran in */
  context?: string
}

export interface BuildValidationOptions {
  /** the cluster to dry-run against and read schemas from; undefined: offline */
  kube?: Kube
  /** the built overlay (absolute) */
  overlayDir: string
  /** the namespace's folder (absolute): searched for the patch a bad field comes from */
  nsDir: string
  /** the clone: paths in messages are relative to it */
  repoDir: string
  /** where objects without a namespace go (the prod namespace) */
  namespace: string
}

/**
 * Schema validation of every object, then the server-side dry run on top when a cluster
 * answers. Throws an NsopsError (exit 1) naming each rejected field at file:line.
 */
export async function validateBuild(objects: ManifestObject[], opts: BuildValidationOptions): Promise<Validation> {
  // The dry run waits on the API server and the schema check on our CPU: both at once. A dry
  // run writes nothing, so starting it before the schemas have passed costs only its requests;
  // a schema error still wins (it names file and line).
  const dryRun = opts.kube ? serverDryRun(opts.kube, objects, opts.namespace) : undefined
  dryRun?.catch(() => {}) // awaited below, unless the schema check throws first
  const schema = await checkSchemas(objects, {
    kube: opts.kube,
    overlayDir: opts.overlayDir,
    searchDir: opts.nsDir,
    relativeTo: opts.repoDir,
  })
  if (!opts.kube || !dryRun) return { schema }
  const server = await dryRun
  if (server.rejected.length)
    throw rejectedError(
      server,
      path.relative(opts.repoDir, opts.overlayDir).split(path.sep).join('/'),
      opts.kube.context,
    )
  return { schema, server, context: opts.kube.context }
}

/**
 * `just validate` of one namespace, as `just validate` and `just ci validate` run it: what Flux
 * would build for prod (its HelmReleases rendered, with `helm`), refused when it holds a
 * plaintext Secret, then validateBuild of the built and the rendered objects.
 */
export async function validateProd(
  ns: NamespaceConfig,
  repoDir: string,
  opts: Pick<ProdBuildOptions, 'vars' | 'strict' | 'helm'> & { kube?: Kube } = {},
): Promise<{ built: ProdBuild; validation: Validation }> {
  const built = await buildProd(ns, repoDir, { reuse: true, vars: opts.vars, strict: opts.strict, helm: opts.helm })
  const rendered = built.releases.flatMap((r) => [...r.objects, ...r.hooks])
  const nsDir = path.relative(repoDir, sourceRoot(ns))
  const secrets = await findPlaintextSecrets(
    repoDir,
    nsDir,
    built.objects,
    ns.layout ? built.dir : ns.paths.overlays.prod,
  )
  if (secrets.length) throw plaintextSecretsError(secrets, nsDir)
  const validation = await validateBuild([...built.objects, ...rendered], {
    kube: opts.kube,
    overlayDir: built.dir,
    nsDir: ns.paths.root,
    repoDir,
    namespace: ns.namespaces.prod,
  })
  return { built, validation }
}

/** One line for people: what was checked against what. */
export function validationSummary(v: Validation): string {
  const schema = `${v.schema.checked === 1 ? 'the object passes' : `all ${v.schema.checked} objects pass`} strict schema validation against ${v.schema.source}${v.schema.fallback ? ` (${v.schema.fallback})` : ''}`
  if (!v.server) return `${schema}; no server-side dry run (offline)`
  const reasons = [...new Set(v.server.notValidated.map((n) => n.reason))]
  return `${schema}; the API server${v.context ? ` (${v.context})` : ''} accepts ${v.server.accepted === 1 ? 'the object' : `${v.server.accepted} objects`} in a dry run${v.server.notValidated.length ? ` (${v.server.notValidated.length} not dry-run: ${reasons.join('; ')})` : ''}`
}

/** `, 2 HelmReleases rendered: 9 objects` (nothing when there are none). */
export function releasesSummary(releases: { objects: unknown[]; hooks: unknown[] }[]): string {
  if (!releases.length) return ''
  const n = releases.reduce((a, r) => a + r.objects.length + r.hooks.length, 0)
  return `, ${releases.length === 1 ? '1 HelmRelease' : `${releases.length} HelmReleases`} rendered: ${n} objects`
}
