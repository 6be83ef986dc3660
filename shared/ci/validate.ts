// `just ci validate`: what `just validate --offline` checks, for the namespaces and Tanka
// environments a change selects. Offline on purpose: a pull request's CI has no cluster of
// the target, and a result that depended on whichever cluster answered would not repeat.
// Namespaces: what Flux applies (the namespace's Flux Kustomization(s) built as
// kustomize-controller builds them, post-build substitution included; overlays/prod for a
// namespace no Kustomization applies), no plaintext Secret, strict schemas of the
// pinned Kubernetes version and the Flux CRDs, errors at file:line. Tanka: the charts
// vendored (a no-op once the lock matches), the environment rendered for the pinned
// Kubernetes version, every object strictly schema-checked.
import path from 'node:path'
import { errorMessage, isNsopsError } from '../core/errors.ts'
import type { ManifestObject } from '../kustomize/build.ts'
import { log } from '../core/output.ts'
import { loadNamespace } from '../config/namespaces.ts'
import { repoRoot } from '../core/paths.ts'
import { releasesSummary, validateProd, validationSummary } from '../deploy/validate.ts'
import { defaultTankaRoot, loadEnvironment } from '../tanka/environments.ts'
import { renderEnvironment } from '../tanka/render.ts'
import { checkSchemas, renderTarget } from '../schema/index.ts'
import { toolSpec } from '../tools/versions.ts'
import { vendorCharts } from '../helm/vendor.ts'

export interface ValidateEntry {
  kind: 'namespace' | 'tanka'
  name: string
  ok: boolean
  objects?: number
  /** one line for people: what passed, or the error with file:line */
  message: string
  hint?: string
}

export interface ValidateResult {
  entries: ValidateEntry[]
  ok: boolean
}

export async function validateChanged(
  namespaces: string[],
  environments: string[],
  onEntry: (e: ValidateEntry) => void = () => {},
): Promise<ValidateResult> {
  const entries: ValidateEntry[] = []
  const done = (e: ValidateEntry) => {
    entries.push(e)
    onEntry(e)
  }
  if (namespaces.length) {
    for (const name of namespaces) {
      try {
        const ns = await loadNamespace(name)
        // HelmReleases rendered for the pinned target, as everything here is offline
        const { built, validation: v } = await validateProd(ns, repoRoot, {
          helm: { ...(await renderTarget()), warn: (m) => log.warn(m) },
        })
        const objects = built.objects
        done({
          kind: 'namespace',
          name,
          ok: true,
          objects: objects.length,
          message: `${built.label} builds (${objects.length} objects${releasesSummary(built.releases)}); ${validationSummary(v)}`,
        })
      } catch (err) {
        done({
          kind: 'namespace',
          name,
          ok: false,
          message: errorMessage(err),
          ...(isNsopsError(err) && err.hint ? { hint: err.hint } : {}),
        })
      }
    }
  }
  if (environments.length) {
    let vendorError: unknown
    try {
      await vendorCharts({ chartfile: path.join(defaultTankaRoot, 'chartfile.yaml') })
    } catch (err) {
      vendorError = err
    }
    for (const name of environments) {
      try {
        if (vendorError) throw vendorError
        const env = loadEnvironment(name)
        // rendered for the Kubernetes version nsops pins, the one the offline schemas are of
        const { objects } = await renderEnvironment(env, { kubeVersion: toolSpec('kubernetes').version })
        const v = await checkSchemas(objects as ManifestObject[], {
          overlayDir: env.dir,
          searchDir: env.dir,
          relativeTo: repoRoot,
        })
        done({
          kind: 'tanka',
          name,
          ok: true,
          objects: objects.length,
          message: `tanka/environments/${name} renders (${objects.length} objects); all pass strict schema validation against ${v.source}`,
        })
      } catch (err) {
        done({
          kind: 'tanka',
          name,
          ok: false,
          message: errorMessage(err),
          ...(isNsopsError(err) && err.hint ? { hint: err.hint } : {}),
        })
      }
    }
  }
  return { entries, ok: entries.every((e) => e.ok) }
}
