// What kustomize-controller builds for one Flux Kustomization: `kustomize build` of
// spec.path under a kustomization.yaml the controller generates over it (components,
// patches, images, namePrefix/nameSuffix, targetNamespace), then spec.postBuild substitution
// on every object, then spec.commonMetadata. The work is done by flux-build
// (shared/tools/flux-build), which runs the controller's own code (fluxcd/pkg/kustomize at
// the version kustomize-controller v1.9.5 pins): drone/envsubst's semantics, the var name
// check, Secret decoding and the substitute-disabled annotation are the controller's, not an
// imitation. This file finds what the build needs (the substituteFrom ConfigMaps and
// Secrets, strict mode) and turns the controller's errors into ones a user can act on.
import path from 'node:path'
import fs from 'node:fs'
import { NsopsError } from '../../core/errors.ts'
import type { ManifestObject } from '../../kube/refs.ts'
import { fluxBuildServer } from './server.ts'

export const KUSTOMIZATION_API = 'kustomize.toolkit.fluxcd.io/v1'

export interface SubstituteReference {
  kind: 'ConfigMap' | 'Secret'
  name: string
  optional?: boolean
}

/** The fields of a Flux Kustomization's spec the build reads (the rest rides along). */
export interface FluxKustomizationSpec {
  path?: string
  sourceRef: { kind: string; name: string; namespace?: string }
  targetNamespace?: string
  namePrefix?: string
  nameSuffix?: string
  components?: string[]
  ignoreMissingComponents?: boolean
  patches?: { patch: string; target?: Record<string, string> }[]
  images?: { name: string; newName?: string; newTag?: string; digest?: string }[]
  commonMetadata?: { labels?: Record<string, string>; annotations?: Record<string, string> }
  postBuild?: {
    substitute?: Record<string, string>
    substituteFrom?: SubstituteReference[]
    substituteStrategy?: 'Always' | 'WithVariables'
  }
  dependsOn?: { name: string; namespace?: string }[]
  suspend?: boolean
  [field: string]: unknown
}

export interface FluxKustomization {
  apiVersion: string
  kind: 'Kustomization'
  metadata: { name: string; namespace?: string; [field: string]: unknown }
  spec: FluxKustomizationSpec
}

/** A ConfigMap or Secret that postBuild.substituteFrom names, looked up by whoever knows where they are. */
export type VarsLookup = (ref: {
  kind: 'ConfigMap' | 'Secret'
  namespace: string
  name: string
}) => Promise<ManifestObject | undefined>

/** Renders a leaf of the output (a HelmRelease) into the objects its controller would apply. */
export type LeafRenderer = (obj: ManifestObject, ctx: LeafContext) => Promise<ManifestObject[]>

export interface LeafContext {
  kustomization: FluxKustomization
  sourceRoot: string
  /** every object of the Kustomization's build (a HelmRelease's OCIRepository, its values ConfigMaps) */
  objects: ManifestObject[]
  /** any object the repository's other Flux builds apply (a HelmRepository in flux-system, a values ConfigMap) */
  lookup?: (ref: { kind: string; namespace: string; name: string }) => Promise<ManifestObject | undefined>
}

export interface FluxBuildOptions {
  /**
   * Where spec.postBuild.substituteFrom is read: the cluster when connected, else the
   * repository's builds (shared/flux/build/tree.ts). None: every reference is missing (an
   * optional one is skipped, as the controller does; a required one is an error).
   */
  vars?: VarsLookup
  /**
   * strict post-build substitution: an unset `${VAR}` with no default fails the build. On by
   * default, as in kustomize-controller since v1.9 (its StrictPostBuildSubstitutions gate is
   * opt-out); false for a controller run with --feature-gates=StrictPostBuildSubstitutions=false.
   */
  strict?: boolean
  /**
   * also what the controller does when it applies: normalize (e.g. a Secret's stringData
   * into data, default protocols) and its owner labels kustomize.toolkit.fluxcd.io/name|namespace
   */
  applied?: boolean
  /**
   * no cluster was read (offline): a substituteFrom reference `vars` finds nowhere is taken to
   * be one the cluster holds (a SOPS Secret, `cluster-secrets` made by hand), not an error by
   * itself. Its variables keep their defaults; a required one makes substitution strict (what
   * it would give cannot be known) and a variable left unset is an error that names the
   * reference it would come from. An optional one is skipped, as the controller skips it.
   */
  offline?: boolean
  /** where the Kustomization was read (a file of the repo, `the cluster`), for messages */
  origin?: string
  /** renderers of leaf kinds in the output, by kind (`HelmRelease`); their objects go to FluxBuild.leaves */
  leaves?: Partial<Record<string, LeafRenderer>>
  /** where a leaf's sources are looked up beyond the build (LeafContext.lookup) */
  lookup?: LeafContext['lookup']
}

export interface FluxBuild {
  kustomization: FluxKustomization
  /** what the controller applies, in its order */
  objects: ManifestObject[]
  /** each leaf the options rendered (a HelmRelease) with the objects its controller would apply */
  leaves: { object: ManifestObject; objects: ManifestObject[] }[]
}

/** `flux-system/apps` */
export function ksName(ks: FluxKustomization): string {
  return `${ks.metadata.namespace ?? 'flux-system'}/${ks.metadata.name}`
}

function where(ks: FluxKustomization, origin?: string): string {
  return `Flux Kustomization ${ksName(ks)}${origin ? ` (${origin})` : ''}`
}

/**
 * Builds one Flux Kustomization as kustomize-controller would: `sourceRoot` is the root of its
 * source (the repository's working tree for a GitRepository of this repo), spec.path is
 * relative to it. Returns the objects the controller applies.
 */
export async function buildFluxKustomization(
  ks: FluxKustomization,
  sourceRoot: string,
  opts: FluxBuildOptions = {},
): Promise<FluxBuild> {
  const namespace = ks.metadata.namespace ?? 'flux-system'
  const object = { ...ks, metadata: { ...ks.metadata, namespace } }
  const dir = path.resolve(sourceRoot, ks.spec.path ?? '.')
  if (!fs.existsSync(dir)) {
    throw new NsopsError(
      `${where(ks, opts.origin)}: spec.path ${ks.spec.path ?? '.'} does not exist in ${sourceRoot}.`,
      {
        hint: 'spec.path is relative to the root of the source (the repository), e.g. ./kubernetes/apps/default/sonarr/app.',
      },
    )
  }
  const { objects, unread } = await substituteSources(ks, namespace, opts)
  const server = await fluxBuildServer()
  const answer = await server.ask({
    root: path.resolve(sourceRoot),
    kustomization: withUnreadOptional(object, unread) as unknown as Record<string, unknown>,
    objects: objects as unknown as Record<string, unknown>[],
    strict: opts.strict !== false || unread.some((r) => !r.optional),
    applied: opts.applied === true,
  })
  if (answer.error !== undefined) throw buildError(ks, answer.error, opts, unread)
  const built = (answer.objects ?? []) as ManifestObject[]
  const leaves: FluxBuild['leaves'] = []
  for (const obj of built) {
    const render = opts.leaves?.[obj.kind]
    if (render)
      leaves.push({
        object: obj,
        objects: await render(obj, { kustomization: ks, sourceRoot, objects: built, lookup: opts.lookup }),
      })
  }
  return { kustomization: ks, objects: built, leaves }
}

/**
 * Objects built elsewhere (a dev overlay) run through a Kustomization's post-build
 * substitution only, as the controller substitutes its own build: the dev loop applies the
 * values prod's Kustomization gives, on top of the dev overlay's own changes. Objects are
 * returned unchanged when the Kustomization has no postBuild.
 */
export async function substituteLike(
  ks: FluxKustomization,
  objects: ManifestObject[],
  opts: Pick<FluxBuildOptions, 'vars' | 'strict' | 'origin' | 'offline'> = {},
): Promise<ManifestObject[]> {
  if (!ks.spec?.postBuild || objects.length === 0) return objects
  const namespace = ks.metadata.namespace ?? 'flux-system'
  const sources = await substituteSources(ks, namespace, opts)
  const server = await fluxBuildServer()
  const answer = await server.ask({
    root: '.',
    kustomization: withUnreadOptional(
      { ...ks, metadata: { ...ks.metadata, namespace } },
      sources.unread,
    ) as unknown as Record<string, unknown>,
    objects: sources.objects as unknown as Record<string, unknown>[],
    strict: opts.strict !== false || sources.unread.some((r) => !r.optional),
    applied: false,
    substitute: objects as unknown as Record<string, unknown>[],
  })
  if (answer.error !== undefined) throw buildError(ks, answer.error, opts, sources.unread)
  return (answer.objects ?? []) as ManifestObject[]
}

/**
 * The ConfigMaps and Secrets substituteFrom names, as far as `vars` finds them; offline, the
 * references found nowhere (`unread`: they would be read from the cluster).
 */
async function substituteSources(
  ks: FluxKustomization,
  namespace: string,
  opts: Pick<FluxBuildOptions, 'vars' | 'offline'>,
): Promise<{ objects: ManifestObject[]; unread: SubstituteReference[] }> {
  const refs = ks.spec.postBuild?.substituteFrom ?? []
  if (!refs.length) return { objects: [], unread: [] }
  const found = opts.vars
    ? await Promise.all(refs.map((r) => opts.vars!({ kind: r.kind, namespace, name: r.name })))
    : refs.map(() => undefined)
  return {
    objects: found.filter((o): o is ManifestObject => o !== undefined),
    unread: opts.offline ? refs.filter((_, i) => found[i] === undefined) : [],
  }
}

/**
 * The Kustomization as handed to the build when some references could not be read offline:
 * those marked optional, so the controller's LoadVariables skips them instead of failing, and
 * what they would give shows up as an unset variable (strict), said for the reference.
 */
function withUnreadOptional<T extends FluxKustomization>(ks: T, unread: SubstituteReference[]): T {
  if (!unread.length) return ks
  const from = (ks.spec.postBuild?.substituteFrom ?? []).map((r) => (unread.includes(r) ? { ...r, optional: true } : r))
  return { ...ks, spec: { ...ks.spec, postBuild: { ...ks.spec.postBuild, substituteFrom: from } } }
}

/** `Secret flux-system/cluster-secrets` or `ConfigMap … or Secret …`. */
function refsText(refs: SubstituteReference[], namespace: string): string {
  const one = (r: SubstituteReference) => `${r.kind} ${namespace}/${r.name}${r.optional ? ' (optional)' : ''}`
  return refs.length === 1 ? one(refs[0]) : `${refs.slice(0, -1).map(one).join(', ')} or ${one(refs.at(-1)!)}`
}

/** The controller's message, said for the Kustomization and the variable it is about. */
function buildError(
  ks: FluxKustomization,
  message: string,
  opts: Pick<FluxBuildOptions, 'origin'>,
  unread: SubstituteReference[] = [],
): NsopsError {
  const at = where(ks, opts.origin)
  const object = /post build failed for '([^']+)\/([^']+)'/.exec(message)
  const inObject = object ? ` in ${object[1].split('.')[0]} ${object[2]}` : ''
  const unset = /variable not set \(strict mode\): "([^"]+)"/.exec(message)
  if (unset && unread.length) {
    const refs = refsText(unread, ks.metadata.namespace ?? 'flux-system')
    return new NsopsError(
      `${at}: variable ${unset[1]} is not set${inObject}: it would come from ${refs} on the cluster (postBuild.substituteFrom), which is not in the repository's Flux builds and was not read (no cluster).`,
      {
        hint: `Run it connected to the cluster (without --offline; --kubeconfig/--context) so nsops reads ${unread.length === 1 ? 'it' : 'them'} as kustomize-controller does, or give the variable a default: \${${unset[1]}:=value}.`,
        cause: new Error(message),
      },
    )
  }
  if (unset) {
    return new NsopsError(`${at}: variable ${unset[1]} is not set${inObject} (strict post-build substitution).`, {
      hint: `Set ${unset[1]} in spec.postBuild.substitute or a substituteFrom ConfigMap/Secret, or give it a default: \${${unset[1]}:=value}.`,
      cause: new Error(message),
    })
  }
  const badName = /'([^']*)' var name is invalid/.exec(message)
  if (badName) {
    return new NsopsError(`${at}: variable name ${JSON.stringify(badName[1])} is invalid${inObject}.`, {
      hint: 'A variable name is letters, digits and _, not starting with a digit (kustomize-controller refuses the whole build otherwise). Rename it in postBuild.substitute or the ConfigMap/Secret keys.',
      cause: new Error(message),
    })
  }
  const missingFrom = /substitute from '(ConfigMap|Secret)\/([^']+)' error: (.*)/.exec(message)
  if (missingFrom) {
    const notFound = /not found/.test(missingFrom[3])
    return new NsopsError(
      `${at}: postBuild.substituteFrom ${missingFrom[1]} ${ks.metadata.namespace ?? 'flux-system'}/${missingFrom[2]} ${notFound ? 'was not found' : `cannot be read: ${missingFrom[3]}`}.`,
      {
        hint: notFound
          ? `Create it (in the cluster, or in a Kustomization this one dependsOn), or mark the reference \`optional: true\`.`
          : 'Check the object: data values must be strings.',
        cause: new Error(message),
      },
    )
  }
  const substitution = /envsubst error: (.*)/.exec(message)
  if (substitution) {
    return new NsopsError(`${at}: post-build substitution failed${inObject}: ${substitution[1]}.`, {
      hint: 'A `${…}` expression the controller cannot read: write a literal $ as $$, or annotate the object kustomize.toolkit.fluxcd.io/substitute: disabled.',
      cause: new Error(message),
    })
  }
  const oneLine = message.replace(/\s+/g, ' ').trim()
  return new NsopsError(`${at}: ${oneLine}`, {
    hint: `kustomize-controller would fail the same way. Check spec.path (${ks.spec.path ?? '.'}), spec.components and spec.patches against the files.`,
    cause: new Error(message),
  })
}
