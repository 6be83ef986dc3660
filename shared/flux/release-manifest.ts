// What a HelmRelease's live Helm release installed: helm-controller keeps each release the way
// Helm does, in a Secret `sh.helm.release.v1.<release>.v<revision>` of the storage namespace
// (label owner=helm), its `release` key a base64 of the gzipped JSON release with its rendered
// `manifest` (templates only: hooks and crds/ are kept apart). Drift compares the live objects
// with it until the offline render (a LeafRenderer in flux/build) can stand in.
import { gunzipSync } from 'node:zlib'
import { parseAllDocuments } from 'yaml'
import { isApiError, type Kube } from '../kube/client.ts'
import { rest } from '../kube/rest.ts'
import type { ManifestObject } from '../kube/refs.ts'
import type { FluxObject } from './kinds.ts'

export interface ReleaseManifest {
  /** Helm's release name and the namespace it installs into */
  release: string
  namespace: string
  storageNamespace: string
  revision: number
  /** deployed, failed, superseded… as Helm stored it */
  status: string
  /** the objects of the manifest, each with its namespace (the release's when the template set none) */
  objects: ManifestObject[]
}

interface History {
  name?: string
  namespace?: string
  version?: number
  status?: string
}

/** The Helm release secret's name for a release and revision. */
export const releaseSecretName = (release: string, revision: number) => `sh.helm.release.v1.${release}.v${revision}`

/**
 * The manifest of the HelmRelease's current Helm release (its newest history entry), or a
 * reason it cannot be had (never released; the Secret gone or unreadable).
 */
export async function releaseManifest(kube: Kube, hr: FluxObject): Promise<ReleaseManifest | { why: string }> {
  const status = (hr.status ?? {}) as { history?: History[]; storageNamespace?: string }
  const latest = status.history?.[0]
  if (!latest?.version) return { why: 'helm-controller has not released it yet' }
  const release = latest.name ?? hr.metadata.name
  const namespace = latest.namespace ?? (hr.spec?.targetNamespace as string | undefined) ?? hr.metadata.namespace
  const storageNamespace =
    status.storageNamespace ?? (hr.spec?.storageNamespace as string | undefined) ?? hr.metadata.namespace
  const name = releaseSecretName(release, latest.version)
  let data: string | undefined
  try {
    data = (
      await rest<{ data?: Record<string, string> }>(
        kube,
        'GET',
        `/api/v1/namespaces/${encodeURIComponent(storageNamespace)}/secrets/${encodeURIComponent(name)}`,
      )
    ).data?.release
  } catch (err) {
    if (isApiError(err, 404)) return { why: `its release Secret ${storageNamespace}/${name} is gone` }
    if (isApiError(err, 403)) return { why: `reading its release Secret ${storageNamespace}/${name} is forbidden` }
    throw err
  }
  if (!data) return { why: `its release Secret ${storageNamespace}/${name} has no release key` }
  let manifest: string
  try {
    // the API's base64 around Helm's own base64 of the gzipped JSON
    const helmB64 = Buffer.from(data, 'base64').toString('utf8')
    const json = JSON.parse(gunzipSync(Buffer.from(helmB64, 'base64')).toString('utf8')) as { manifest?: string }
    manifest = json.manifest ?? ''
  } catch {
    return { why: `its release Secret ${storageNamespace}/${name} is not a Helm v3 release` }
  }
  const objects: ManifestObject[] = []
  for (const doc of parseAllDocuments(manifest)) {
    if (doc.errors.length) continue
    const o = doc.toJS() as ManifestObject | null
    if (!o || typeof o !== 'object' || !o.kind || !o.metadata?.name) continue
    objects.push(o)
  }
  return {
    release,
    namespace,
    storageNamespace,
    revision: latest.version,
    status: latest.status ?? '',
    objects,
  }
}
