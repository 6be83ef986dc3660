// `just drift NS`: what in the live namespace differs from git, and who changed it, without
// changing anything. Git is the managing Kustomization's build at the baseline revision
// (applied as kustomize-controller applies it: its labels, commonMetadata, targetNamespace),
// or overlays/prod for a namespace no Kustomization manages. Each object is compared through
// a server-side dry run with kustomize-controller's field manager and force, which is exactly
// the apply Flux would make, so server defaults appear on both sides and never as drift.
// The only writes are dry runs (`dryRun=All`): the API server persists nothing.
import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { ApiException } from '@kubernetes/client-node'
import { stripNoise } from '../apply/diff.ts'
import { mapLimit } from '../apply/order.ts'
import { refKey, refOf, refString, type ObjectRef } from '../kube/refs.ts'
import { dryRunAgainstLive, getObject, resourceFor, UnknownKindError, type LiveObject } from '../kube/rest.ts'
import { asFluxApplies } from '../deploy/flux-target.ts'
import { FLUX_APPLY_MANAGER, splitEncrypted } from '../deploy/validate.ts'
import { NsopsError, errorMessage, isNsopsError } from '../core/errors.ts'
import { findManagers, inventoryRefs, type Manager } from '../flux/managing.ts'
import { getFlux, isSuspended, fluxRefString, type FluxObject } from '../flux/kinds.ts'
import { sourceOf } from '../flux/status.ts'
import { describeSuspension, suspendedBy } from '../flux/suspend.ts'
import { releaseManifest, type ReleaseManifest } from '../flux/release-manifest.ts'
import { suspensionBy } from '../flux/release-view.ts'
import { apiMessage, type Kube } from '../kube/client.ts'
import {
  buildFluxKustomization,
  clusterVars,
  helmReleaseRenderer,
  strictInCluster,
  type FluxKustomization,
  type HelmRenderOptions,
  type LeafRenderer,
  warmFluxBuild,
} from '../flux/build/index.ts'
import { buildKustomization, warmKustomizeServer, type ManifestObject } from '../kustomize/build.ts'
import { KUSTOMIZATION_FILES } from '../kustomize/files.ts'
import type { NamespaceConfig } from '../config/namespace-config.ts'
import { repoRootOf, resolveBaseline, shaOf, type Baseline } from './baseline.ts'
import { buildCacheKey, readBuild, storeBuild } from '../kustomize/build-cache.ts'
import { InputRecorder, inputsUnchanged, type BuildInputs } from './build-inputs.ts'
import { toolSpec } from '../tools/versions.ts'
import { builtIn, liveRef, NamespaceListing, UNLISTED } from './extras.ts'
import { DryRunCache } from './dry-runs.ts'
import { leafChanges, removePath, wantedChanges, type FieldChange } from './fields.ts'
import { ignoredPaths, kustomizationRules, localRules, type IgnoreRule } from '../config/ignore-rules.ts'
import { settersOf } from './managers.ts'
import {
  DRIFT_CLASSES,
  DRIFT_SCHEMA,
  type DriftClass,
  type DriftObject,
  type DriftReport,
  type DriftSuspension,
} from './types.ts'
import { immutableWarnings } from './warnings.ts'
import { trace } from '../core/trace.ts'
import { renderTarget } from '../schema/index.ts'

export interface DriftOptions {
  /** `applied` (default under Flux), `worktree`, or a git revision (default `HEAD` when not under Flux) */
  baseline?: string
  /** extra objects count as drift too (exit 1) */
  strict?: boolean
  /** the clone to read git from; default: the one namespaces/<ns> lives in */
  repoDir?: string
  /** requests in flight at once; default 16 */
  concurrency?: number
}

const ERROR = 2
const KS_GROUP = 'kustomize.toolkit.fluxcd.io'
const RECONCILE = `${KS_GROUP}/reconcile`
const SSA = `${KS_GROUP}/ssa`
const PRUNE = `${KS_GROUP}/prune`

type Meta = { labels?: Record<string, string>; annotations?: Record<string, string> }
const metaValue = (m: Meta | undefined, key: string) => m?.annotations?.[key] ?? m?.labels?.[key]

/** Why kustomize-controller would not apply this object (its ExclusionSelector / IfNotPresentSelector), or undefined. */
export function skipReason(desired: Meta | undefined, live: Meta | undefined): string | undefined {
  for (const [where, m] of [
    ['in git', desired],
    ['on the live object', live],
  ] as const) {
    if (metaValue(m, RECONCILE) === 'disabled')
      return `${RECONCILE}: disabled ${where}: Flux neither applies nor prunes it`
    if (metaValue(m, SSA) === 'Ignore') return `${SSA}: Ignore ${where}: Flux does not apply it`
  }
  if (live && metaValue(desired, SSA) === 'IfNotPresent')
    return `${SSA}: IfNotPresent: Flux only creates it, and it exists`
  return undefined
}

/** A Secret value shown as a short hash of its bytes: tells changed from unchanged, reveals nothing. */
export function secretHash(base64: unknown): string {
  return `sha256:${crypto
    .createHash('sha256')
    .update(Buffer.from(String(base64), 'base64'))
    .digest('hex')
    .slice(0, 12)}`
}

/** A Secret's stringData as the server stores it (base64 data), so both sides compare alike. */
function secretAsStored(obj: Record<string, unknown>): Record<string, unknown> {
  if (obj.kind !== 'Secret' || !obj.stringData) return obj
  const data = { ...(obj.data as Record<string, string> | undefined) }
  for (const [k, v] of Object.entries(obj.stringData as Record<string, string>))
    data[k] = Buffer.from(String(v)).toString('base64')
  const copy: Record<string, unknown> = { ...obj, data }
  delete copy.stringData
  return copy
}

/** Every leaf of a Secret's value map replaced by its hash (a whole `data` map, one key's value). */
function hashLeaves(v: unknown, field: string): unknown {
  if (typeof v === 'object' && v !== null)
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, hashLeaves(x, field)]))
  // stringData holds the value itself; data its base64
  return secretHash(field === 'stringData' ? Buffer.from(String(v)).toString('base64') : v)
}

/**
 * A Secret's changes with every value at or below /data and /stringData hashed: one key's
 * value, and also the whole map when one side has none (the change is then `/data` itself).
 */
function maskSecretChanges(changes: FieldChange[]): { changes: FieldChange[]; keys: string[] } {
  const keys: string[] = []
  const masked = changes.map((ch) => {
    const m = /^\/(data|stringData)(?:\/(.+))?$/.exec(ch.path)
    if (!m) return ch
    const field = m[1]
    if (m[2] !== undefined) keys.push(m[2].split('/')[0].replaceAll('~1', '/').replaceAll('~0', '~'))
    else
      for (const side of [ch.git, ch.live])
        if (typeof side === 'object' && side !== null) keys.push(...Object.keys(side))
    return {
      path: ch.path,
      ...(ch.git !== undefined ? { git: hashLeaves(ch.git, field) as FieldChange['git'] } : {}),
      ...(ch.live !== undefined ? { live: hashLeaves(ch.live, field) as FieldChange['live'] } : {}),
    }
  })
  return { changes: masked, keys }
}

interface Context {
  kube: Kube
  rules: IgnoreRule[]
  listing: NamespaceListing
  dryRuns: DryRunCache
}

/** The live object: from the namespace's lists when they speak for it, else one GET. */
async function liveOf(ctx: Context, ref: ObjectRef): Promise<LiveObject | undefined> {
  const listed = await ctx.listing.find(ref)
  return listed === UNLISTED ? getObject(ctx.kube, ref) : listed
}

async function compareOne(ctx: Context, obj: ManifestObject): Promise<DriftObject> {
  const ref = refOf(obj)
  const live = await liveOf(ctx, ref)
  const skip = skipReason(obj.metadata, live?.metadata)
  if (skip && live) return { ref, class: 'skipped', reason: skip }
  if (!live)
    return {
      ref,
      class: 'missing',
      ...(skip && !skip.includes('IfNotPresent') ? { class: 'skipped' as const, reason: skip } : {}),
    }

  const ignores = ignoredPaths(ctx.rules, ref, obj.metadata)
  const whole = ignores.find((i) => i.path === '' || i.path === '/')
  if (whole) return { ref, class: 'skipped', reason: `ignored whole by ${whole.from}` }

  let gitSide: Record<string, unknown>
  let liveSide: Record<string, unknown>
  let dryRunError: string | undefined
  let current: LiveObject = live
  const applyAs = { fieldManager: FLUX_APPLY_MANAGER, force: true }
  try {
    const kept = await ctx.dryRuns.get(obj, live, applyAs)
    if (kept) gitSide = kept
    else {
      const r = await dryRunAgainstLive(ctx.kube, obj, ref, applyAs, { live })
      current = r.live ?? live
      gitSide = stripNoise(r.after)
      // an answer is kept only for the object it was applied to (not after three moved versions)
      if (r.live && r.after.metadata.resourceVersion === r.live.metadata.resourceVersion)
        await ctx.dryRuns.put(obj, r.live, applyAs, gitSide)
    }
    liveSide = stripNoise(current)
  } catch (err) {
    if (!(err instanceof ApiException)) throw err
    // refused (an immutable field, a shrinking claim, a webhook): compare what git asks for
    dryRunError = apiMessage(err)
    gitSide = secretAsStored(stripNoise(obj))
    liveSide = stripNoise(live)
  }
  const ignored: string[] = []
  for (const { path: p } of ignores) {
    removePath(gitSide, p)
    removePath(liveSide, p)
    ignored.push(p)
  }
  let changes = dryRunError ? wantedChanges(gitSide, liveSide) : leafChanges(gitSide, liveSide)
  let secretKeys: string[] | undefined
  if (ref.kind === 'Secret') ({ changes, keys: secretKeys } = maskSecretChanges(changes))
  const out: DriftObject = {
    ref,
    class: changes.length ? 'modified' : 'in-sync',
  }
  if (changes.length) {
    out.changes = changes.map((ch) => ({ ...ch, setBy: ch.live === undefined ? [] : settersOf(current, ch.path) }))
    const warnings = immutableWarnings(ref, changes)
    if (warnings.length) out.warnings = warnings
  }
  if (secretKeys?.length) out.secretKeys = [...new Set(secretKeys)]
  if (dryRunError) out.dryRunError = dryRunError
  if (ignored.length) out.ignored = [...new Set(ignored)]
  return out
}

function relPath(p: unknown): string {
  return String(p ?? '')
    .replace(/^\.\/+/, '')
    .replace(/\/+$/, '')
}

/** The folder to build inside the baseline tree: the Kustomization's spec.path, else the namespace's overlays/prod. */
function buildDirFor(baseline: Baseline, ks: FluxObject | undefined, overlay: string): string {
  if (ks) {
    const p = relPath(ks.spec?.path)
    if (KUSTOMIZATION_FILES.some((f) => fs.existsSync(path.join(baseline.dir, p, f)))) return p
  }
  return overlay
}

/** Objects as they go to the API: namespaced ones in targetNamespace (or the prod namespace), cluster-scoped ones without. */
async function place(
  kube: Kube,
  objects: ManifestObject[],
  namespace: string,
  target: string | undefined,
): Promise<{ placed: ManifestObject[]; unknown: ManifestObject[] }> {
  const placed: ManifestObject[] = []
  const unknown: ManifestObject[] = []
  await mapLimit(objects, 16, async (o) => {
    const r = await resourceFor(kube, o.apiVersion, o.kind)
    if (!r) {
      unknown.push(o)
      return
    }
    const copy = structuredClone(o)
    if (r.namespaced) copy.metadata.namespace = target ?? (copy.metadata.namespace || namespace)
    else delete copy.metadata.namespace
    placed.push(copy)
  })
  return { placed, unknown }
}

function suspensionOf(ks: FluxObject, drifted: boolean, changes: number): DriftSuspension | undefined {
  const by = suspendedBy(ks)
  if (!by) return undefined
  const marker = typeof by === 'object' ? by : undefined
  return {
    kustomization: fluxRefString(ks),
    by: describeSuspension(by),
    ...(marker
      ? {
          user: marker.user,
          host: marker.host,
          since: marker.at,
          ...(marker.session ? { session: marker.session } : {}),
        }
      : {}),
    note: drifted
      ? `Flux is not reconciling it: on resume it reverts the ${changes === 1 ? 'change' : `${changes} changes`} below (and prunes what left git)`
      : 'Flux is not reconciling it; nothing has drifted, so resuming changes nothing',
  }
}

/** A suspended HelmRelease: context for its objects' drift (helm-controller leaves them as they are). */
function releaseSuspension(hr: FluxObject, changes: number): DriftSuspension | undefined {
  const by = suspensionBy(hr)
  if (!by) return undefined
  const marker = by.kind === 'nsops' ? suspendedBy(hr) : undefined
  const m = typeof marker === 'object' ? marker : undefined
  return {
    kustomization: fluxRefString(hr),
    by: by.text,
    ...(m ? { user: m.user, host: m.host, since: m.at, ...(m.session ? { session: m.session } : {}) } : {}),
    note: changes
      ? `helm-controller is not reconciling it: the ${changes === 1 ? 'change to its objects below stays' : `${changes} changes to its objects below stay`} until it is resumed and upgraded`
      : 'helm-controller is not reconciling it; its objects match its release',
  }
}

/** Each HelmRelease's live release manifest, or why it has none to compare with. */
async function releaseBaselines(
  kube: Kube,
  releases: FluxObject[],
): Promise<{ hr: FluxObject; manifest?: ReleaseManifest; why?: string }[]> {
  return Promise.all(
    releases.map(async (hr) => {
      const r = await releaseManifest(kube, hr)
      return 'why' in r ? { hr, why: r.why } : { hr, manifest: r }
    }),
  )
}

/**
 * helm-controller gives a chart from an OCIRepository the artifact's digest as version
 * metadata (0.1.0+de485376e90d, so a chart's helm.sh/chart label reads
 * nsops-app-0.1.0_de485376e90d), which a render from git cannot know: the release's history
 * says it. Only a label that names the very chart and version the release runs is completed,
 * so a chart bump in git still shows.
 */
function withChartDigest(objects: ManifestObject[], hr: FluxObject): ManifestObject[] {
  const last = (hr.status?.history as { chartName?: string; chartVersion?: string }[] | undefined)?.[0]
  const m = /^([^+]+)\+([\w.-]+)$/.exec(last?.chartVersion ?? '')
  if (!last?.chartName || !m) return objects
  const from = `${last.chartName}-${m[1]}`
  const to = `${from}_${m[2]}`
  const fix = (labels: Record<string, string> | undefined) => {
    for (const [k, v] of Object.entries(labels ?? {})) if (v === from) labels![k] = to
  }
  return objects.map((o) => {
    const c = structuredClone(o)
    fix(c.metadata.labels)
    fix(
      (c as { spec?: { template?: { metadata?: { labels?: Record<string, string> } } } }).spec?.template?.metadata
        ?.labels,
    )
    return c
  })
}

export async function computeDrift(kube: Kube, ns: NamespaceConfig, opts: DriftOptions = {}): Promise<DriftReport> {
  const t0 = performance.now()
  const namespace = ns.namespaces.prod
  const repoDir = opts.repoDir ?? path.resolve(ns.paths.root, '..', '..')
  const overlay = path.relative(repoDir, ns.paths.overlays.prod).split(path.sep).join('/')

  // the namespace's objects (for extras, and the live side of each compare) depend on
  // neither Flux nor git: listed while we find the managers, resolve the baseline and build
  trace('drift: start')
  const listing = new NamespaceListing(kube, namespace)
  listing.all.catch(() => {}) // awaited below; an early failure must not go unhandled meanwhile
  // the dry runs an earlier drift made, and what says whether they still hold (read meanwhile too)
  const dryRuns = new DryRunCache(kube, namespace)
  const management = await findManagers(kube, ns, { root: repoDir })
  // every Kustomization's inventory accounts for objects in the namespace (not "extra")
  const allKs = management.kustomizations
  trace('drift: managing Kustomization found')
  const managers: Manager[] = management.state === 'managed' ? management.managers : []
  const primary = managers.find((m) => !m.root) ?? managers[0]
  const ks = primary?.kustomization
  const requested = opts.baseline ?? (ks ? 'applied' : 'HEAD')
  // what helm-controller made is compared with the release it installed, read meanwhile
  const helmReleases = management.state === 'managed' ? management.helmReleases : []
  const releasesP = releaseBaselines(kube, helmReleases)
  releasesP.catch(() => {}) // awaited below

  // the source's artifact is the fallback when the clone lacks the applied commit: read
  // alongside the git work, not before it
  const srcRef = ks ? sourceOf(ks) : undefined
  const source = requested === 'applied' && srcRef ? getFlux(kube, srcRef).catch(() => null) : Promise.resolve(null)
  // from git, only the folders a build of this namespace normally reads: its own and the
  // Kustomization's path (the whole tree when that path is the repository's root)
  // the namespace's other Kustomizations (home-ops' shape: one per app beside the one that
  // applies the Namespace and the apps' ks.yaml) apply objects into it too: each is built
  // from the same baseline tree with its own spec, and its objects carry its own labels
  const others = managers.filter((m) => m !== primary && !m.root).map((m) => m.kustomization)
  const nsFolder = path.relative(repoDir, ns.paths.root).split(path.sep).join('/')
  const ksPaths = [ks, ...others].flatMap((k) => (k ? [relPath(k.spec?.path)] : []))
  const folders =
    ksPaths.includes('') || nsFolder.startsWith('..') ? [] : [...new Set([nsFolder, ...ksPaths.filter(Boolean)])]
  try {
    const { baseline, buildPath, built, more, rendered } = await buildAtBaseline(
      kube,
      requested,
      repoDir,
      ks,
      overlay,
      folders,
      source,
      helmReleases.length > 0,
      others,
    )
    trace('drift: built')
    const desired: ManifestObject[] = []
    const unknown: ManifestObject[] = []
    const seen = new Set<string>()
    for (const part of [{ ks, root: primary?.root, objects: built }, ...more.map((p) => ({ ...p, root: false }))]) {
      const target = typeof part.ks?.spec?.targetNamespace === 'string' ? part.ks.spec.targetNamespace : undefined
      const { placed, unknown: odd } = await place(kube, part.objects, namespace, target)
      unknown.push(...odd)
      // the root Kustomization builds every namespace: keep this one's objects
      const mine = part.root
        ? placed.filter(
            (o) => o.metadata.namespace === namespace || (o.kind === 'Namespace' && o.metadata.name === namespace),
          )
        : placed
      // an object two of them build is applied by the first (as the build joins them)
      for (const o of part.ks ? asFluxApplies(mine, part.ks) : mine) {
        const k = refKey(refOf(o))
        if (seen.has(k)) continue
        seen.add(k)
        desired.push(o)
      }
    }
    const { plain, encrypted } = splitEncrypted(desired)

    const rules = [
      ...managers.flatMap((m) => kustomizationRules(m.kustomization.spec, fluxRefString(m.kustomization))),
      ...localRules(ns.drift?.ignore),
    ]
    const ctx: Context = { kube, rules, listing, dryRuns }
    const comparing = mapLimit(plain, opts.concurrency ?? 16, (o) => compareOne(ctx, o))
    comparing.catch(() => {})

    const desiredKeys = new Set(desired.map((o) => refKey(refOf(o))))
    // HelmRelease-made objects: each against its release's manifest, attributed to the release
    // the baseline of each: the chart rendered offline for the HelmRelease as the baseline
    // build has it (flux/build's LeafRenderer); when that cannot be had (not in this build, the
    // chart unreachable, values from the cluster only), the manifest of its live Helm release
    const releases = await releasesP
    const releaseItems: { o: ManifestObject; hr: FluxObject }[] = []
    const releaseUnknown: ManifestObject[] = []
    const baselines: NonNullable<DriftReport['source']['helmReleases']> = []
    const releaseWarnings: string[] = []
    for (const r of releases) {
      const id = `${r.hr.metadata.namespace}/${r.hr.metadata.name}`
      const render = rendered.get(id)
      let objects: ManifestObject[] | undefined
      let into = r.manifest?.namespace ?? r.hr.metadata.namespace
      if (render && 'objects' in render) {
        objects = withChartDigest(render.objects, r.hr)
        into = render.namespace
        baselines.push({
          name: r.hr.metadata.name,
          namespace: r.hr.metadata.namespace,
          release: render.releaseName,
          revision: r.manifest?.revision ?? 0,
          status: r.manifest?.status ?? '',
          baseline: 'rendered',
          chart: render.chart,
        })
      } else if (r.manifest) {
        objects = r.manifest.objects
        baselines.push({
          name: r.hr.metadata.name,
          namespace: r.hr.metadata.namespace,
          release: r.manifest.release,
          revision: r.manifest.revision,
          status: r.manifest.status,
          baseline: 'release-manifest',
        })
        releaseWarnings.push(
          `HelmRelease ${id}: compared with its live Helm release's manifest (r${r.manifest.revision}), not the chart rendered from git: ${render ? render.error : 'it is not in the baseline build'}`,
        )
      }
      if (!objects) continue
      const { placed: made, unknown: odd } = await place(kube, objects, into, undefined)
      releaseUnknown.push(...odd)
      for (const o of made) if (!desiredKeys.has(refKey(refOf(o)))) releaseItems.push({ o, hr: r.hr })
    }
    const comparingReleases = mapLimit(releaseItems, opts.concurrency ?? 16, async ({ o, hr }) => {
      const d = await compareOne(ctx, o)
      d.helmRelease = `${hr.metadata.namespace}/${hr.metadata.name}`
      const by = suspensionBy(hr)
      if (by && d.class !== 'in-sync')
        d.context = `HelmRelease ${d.helmRelease} is suspended ${by.text}: helm-controller leaves this as it is until it is resumed`
      return d
    })
    comparingReleases.catch(() => {})
    for (const { o } of releaseItems) desiredKeys.add(refKey(refOf(o)))
    // what Flux applied before and git no longer has: it prunes it on the next reconcile
    const inScope = (r: ObjectRef, m: Manager) =>
      !m.root || r.namespace === namespace || (r.kind === 'Namespace' && r.name === namespace)
    const inventory = new Map<string, { ref: ObjectRef; m: Manager }>()
    for (const m of managers)
      for (const r of inventoryRefs(m.kustomization)) if (inScope(r, m)) inventory.set(refKey(r), { ref: r, m })
    const gone = await mapLimit(
      [...inventory.values()].filter(({ ref }) => !desiredKeys.has(refKey(ref))),
      opts.concurrency ?? 16,
      async ({ ref, m }): Promise<DriftObject | undefined> => {
        let live: LiveObject | undefined
        try {
          live = await liveOf(ctx, ref)
        } catch (err) {
          if (err instanceof UnknownKindError) return undefined
          throw err
        }
        if (!live) return undefined
        const pruneDisabled = metaValue(live.metadata, PRUNE) === 'disabled'
        const prunes = m.kustomization.spec?.prune === true
        const willPrune = prunes && !pruneDisabled && !skipReason(undefined, live.metadata)
        return {
          ref,
          class: 'gone-from-git',
          willPrune,
          ...(pruneDisabled ? { pruneDisabled } : {}),
          reason: pruneDisabled
            ? `${PRUNE}: disabled: Flux keeps it and drops it from its inventory`
            : willPrune
              ? `Flux deletes it on the next reconcile of ${fluxRefString(m.kustomization)}`
              : prunes
                ? 'Flux keeps it (excluded from reconciliation)'
                : `${fluxRefString(m.kustomization)} has prune: false: Flux keeps it`,
        }
      },
    )

    const compared = [...(await comparing), ...(await comparingReleases)]
    trace('drift: dry runs compared')
    await dryRuns.save()

    // extra: in the namespace, in no inventory and no build, owned by nothing
    const accounted = new Set(desiredKeys)
    for (const k of allKs) for (const r of inventoryRefs(k)) accounted.add(refKey(r))
    const { objects: present, unreadable } = await listing.all
    const extras: DriftObject[] = present
      .filter((o) => !accounted.has(refKey(liveRef(o))) && !builtIn(o, present))
      .map((o) => {
        const setBy = settersOf(o, '/metadata/name')
        const creator = (o.metadata.managedFields ?? [])[0]?.manager
        return {
          ref: liveRef(o),
          class: 'extra' as const,
          reason: `in no Kustomization's inventory and not in git${creator ? `; created by ${creator}` : setBy[0] ? `; by ${setBy[0].manager}` : ''}`,
        }
      })

    trace('drift: namespace listed')
    const objects = [...compared, ...gone.filter((g): g is DriftObject => Boolean(g)), ...extras].sort(
      (a, b) =>
        DRIFT_CLASSES.indexOf(a.class) - DRIFT_CLASSES.indexOf(b.class) ||
        refString(a.ref).localeCompare(refString(b.ref)),
    )
    const counts = Object.fromEntries(
      DRIFT_CLASSES.map((c) => [c, objects.filter((o) => o.class === c).length]),
    ) as Record<DriftClass, number>
    const drifted = counts.modified + counts.missing + counts['gone-from-git'] + (opts.strict ? counts.extra : 0) > 0
    const changeCount = objects.reduce(
      (n, o) => n + (o.changes?.length ?? (o.class === 'missing' || o.class === 'gone-from-git' ? 1 : 0)),
      0,
    )
    const releaseChanges = (hr: FluxObject) =>
      objects
        .filter((o) => o.helmRelease === `${hr.metadata.namespace}/${hr.metadata.name}`)
        .reduce((n, o) => n + (o.changes?.length ?? (o.class === 'missing' ? 1 : 0)), 0)
    const suspensions = [
      ...managers.map((m) => suspensionOf(m.kustomization, drifted, changeCount)),
      ...helmReleases.map((hr) => releaseSuspension(hr, releaseChanges(hr))),
    ].filter((s): s is DriftSuspension => Boolean(s))

    const warnings: string[] = [...releaseWarnings]
    if (management.state !== 'managed')
      warnings.push(
        `${management.note}: compared with ${buildPath} built from ${baseline.kind === 'worktree' ? 'the working tree' : `commit ${baseline.sha?.slice(0, 12)}`}`,
      )
    for (const o of objects)
      if (o.dryRunError && o.class === 'in-sync')
        warnings.push(
          `${refString(o.ref)}: the server refused the dry run (${o.dryRunError}); compared the manifest with live instead`,
        )
    if (ks && baseline.kind !== 'applied' && ks.status?.lastAppliedRevision)
      warnings.push(
        `baseline ${requested} (${baseline.sha?.slice(0, 12) ?? 'working tree'}), while Flux last applied ${ks.status.lastAppliedRevision as string}: differences include what Flux has not applied yet`,
      )

    return {
      schema: DRIFT_SCHEMA,
      generatedAt: new Date().toISOString(),
      context: kube.context,
      server: kube.server,
      namespace: { config: ns.name, name: namespace },
      source: {
        mode: ks ? 'flux' : 'local',
        ...(ks && primary
          ? {
              kustomization: {
                name: ks.metadata.name,
                namespace: ks.metadata.namespace,
                by: primary.by,
                root: primary.root,
                suspended: isSuspended(ks),
                prune: ks.spec?.prune === true,
                ...(ks.status?.lastAppliedRevision
                  ? { lastAppliedRevision: ks.status.lastAppliedRevision as string }
                  : {}),
              },
            }
          : {}),
        note: management.note,
        path: buildPath,
        ...(more.length ? { also: more.map((p) => `${p.ks.metadata.namespace}/${p.ks.metadata.name}`) } : {}),
        ...(baselines.length ? { helmReleases: baselines } : {}),
        baseline: {
          kind: baseline.kind,
          requested,
          ...(baseline.sha ? { sha: baseline.sha } : {}),
          ...(baseline.revision ? { revision: baseline.revision } : {}),
          from: baseline.from,
        },
      },
      drifted,
      counts,
      objects,
      ignoreRules: rules.map((r) => ({
        from: r.from,
        paths: r.paths,
        ...(r.target ? { target: r.target as Record<string, string> } : {}),
      })),
      suspensions,
      notChecked: [
        ...encrypted.map((o) => ({ object: refString(refOf(o)), reason: 'SOPS-encrypted: only Flux can decrypt it' })),
        ...unknown.map((o) => ({
          object: `${o.kind}/${o.metadata.name}`,
          reason: `no kind ${o.kind} in ${o.apiVersion} on the server (is its CRD installed?)`,
        })),
        ...unreadable.map((k) => ({ object: k, reason: 'could not list it for extras' })),
        ...releases
          .filter(
            (r) =>
              r.why && !baselines.some((b) => b.name === r.hr.metadata.name && b.namespace === r.hr.metadata.namespace),
          )
          .map((r) => ({ object: fluxRefString(r.hr), reason: `its objects: ${r.why}` })),
        ...releaseUnknown.map((o) => ({
          object: `${o.kind}/${o.metadata.name}`,
          reason: `no kind ${o.kind} in ${o.apiVersion} on the server (in a HelmRelease's manifest)`,
        })),
      ],
      warnings,
      tookMs: Math.round(performance.now() - t0),
    }
  } catch (err) {
    if (isNsopsError(err))
      throw err.exitCode === ERROR ? err : new NsopsError(err.message, { hint: err.hint, exitCode: ERROR, cause: err })
    if (err instanceof ApiException)
      throw new NsopsError(`the API server (context ${kube.context}) refused a read: ${apiMessage(err)}`, {
        hint: "check that your credentials may get/list the namespace's objects (and patch them in dry runs).",
        exitCode: ERROR,
        cause: err,
      })
    throw new NsopsError(`drift failed: ${errorMessage(err)}`, {
      hint: 'run again with --debug for the full trace.',
      exitCode: ERROR,
      cause: err,
    })
  }
}

type BaselineInfo = Pick<Baseline, 'kind' | 'requested' | 'sha' | 'revision' | 'from'>

/** Each HelmRelease of the baseline build (`namespace/name`): its chart rendered, or why not. */
type RenderedReleases = Map<
  string,
  { objects: ManifestObject[]; namespace: string; releaseName: string; chart: string } | { error: string }
>

/** The LeafRenderer of the baseline build: a release that cannot be rendered is noted, not fatal. */
function releaseLeaf(
  into: RenderedReleases,
  target: () => Promise<HelmRenderOptions>,
  inputs: InputRecorder,
): LeafRenderer {
  return async (obj, ctx) => {
    const id = `${obj.metadata.namespace ?? 'default'}/${obj.metadata.name}`
    let seen = { namespace: obj.metadata.namespace ?? 'default', releaseName: obj.metadata.name, chart: '' }
    try {
      const options = await target()
      inputs.sawTarget(options)
      const objects = await helmReleaseRenderer(options, (r) => {
        seen = { namespace: r.namespace, releaseName: r.releaseName, chart: `${r.chart.name}@${r.chart.version}` }
        inputs.sawChart(r.chartSource, r.chart.digest)
      })(obj, ctx)
      into.set(id, { objects, ...seen })
      return objects
    } catch (err) {
      into.set(id, { error: errorMessage(err).split('\n')[0] })
      return []
    }
  }
}

/** The API version of each kind a HelmRelease's lookup reads from the cluster. */
const LOOKUP_APIS: Record<string, string> = {
  ConfigMap: 'v1',
  Secret: 'v1',
  HelmRepository: 'source.toolkit.fluxcd.io/v1',
  OCIRepository: 'source.toolkit.fluxcd.io/v1',
  GitRepository: 'source.toolkit.fluxcd.io/v1',
}

/** Sources and values a HelmRelease names beyond the build, read from the cluster. */
function clusterLookup(kube: Kube) {
  return async (ref: { kind: string; namespace: string; name: string }): Promise<ManifestObject | undefined> => {
    const apiVersion = LOOKUP_APIS[ref.kind]
    if (!apiVersion) return undefined
    const o = await getObject(kube, { apiVersion, kind: ref.kind, namespace: ref.namespace, name: ref.name }).catch(
      () => undefined,
    )
    return o as ManifestObject | undefined
  }
}

/** What drift keeps beside a build in the build cache. */
interface KeptBaseline {
  inputs: BuildInputs
  rendered: [string, { objects: ManifestObject[]; namespace: string; releaseName: string; chart: string }][]
}

/**
 * The namespace built as git has it at the baseline: from the build cache when this very
 * tree was built before (build-cache.ts), else unpacked from git (only `folders` at first)
 * and built with kustomize. The unpacked tree is gone when this returns.
 */
async function buildAtBaseline(
  kube: Kube,
  requested: string,
  repoDir: string,
  ks: FluxObject | undefined,
  overlay: string,
  folders: string[],
  source: Promise<FluxObject | null>,
  renderReleases = false,
  others: FluxObject[] = [],
): Promise<{
  baseline: BaselineInfo
  buildPath: string
  built: ManifestObject[]
  /** each of `others` built (those whose path the baseline has) */
  more: { ks: FluxObject; objects: ManifestObject[] }[]
  rendered: RenderedReleases
}> {
  const rendered: RenderedReleases = new Map()
  const revision = ks?.status?.lastAppliedRevision as string | undefined
  const rev = requested === 'worktree' ? undefined : requested === 'applied' ? shaOf(revision) : requested
  const repo = await repoRootOf(repoDir)
  // what the build reads besides git (substituteFrom, a chart's source and target) is
  // recorded with it and checked before a kept build is used (build-inputs.ts)
  const inputs = new InputRecorder()
  let targetP: Promise<HelmRenderOptions> | undefined
  const target = () => (targetP ??= renderTarget(kube))
  let strictP: Promise<boolean | undefined> | undefined
  const strict = () => (strictP ??= strictInCluster(kube).catch(() => undefined))
  const substitutes = Boolean(ks?.spec?.postBuild)
  // the Kustomization's spec is part of what is built (patches, postBuild); so are helm's
  // version when HelmReleases are rendered with it
  const keyed =
    rev && others.length === 0
      ? await buildCacheKey(repo, rev, folders, {
          ksPath: ks ? relPath(ks.spec?.path) : null,
          overlay,
          spec: ks?.spec ?? null,
          builder: 'flux-build',
          ...(renderReleases ? { renders: toolSpec('helm').version } : {}),
        })
      : undefined
  const hit = readBuild(keyed?.key)
  const kept = hit?.extra as KeptBaseline | undefined
  if (hit && keyed && kept?.inputs && (await inputsUnchanged(kube, kept.inputs, { strict, target }))) {
    trace('drift: build cache hit')
    const kind = requested === 'applied' ? 'applied' : 'revision'
    for (const [id, r] of kept.rendered ?? []) rendered.set(id, r)
    return {
      baseline: { kind, requested, sha: keyed.sha, ...(kind === 'applied' ? { revision } : {}), from: 'git' },
      buildPath: hit.buildPath,
      built: hit.objects,
      more: [],
      rendered,
    }
  }
  // not kept: the builder starts while git unpacks the tree (a kept build needs neither)
  if (ks) warmFluxBuild()
  else warmKustomizeServer()
  const baseline = await resolveBaseline(
    requested,
    repoDir,
    ks
      ? {
          revision,
          artifact: source.then((src) => src?.status?.artifact as { url?: string; revision?: string } | undefined),
          kustomization: fluxRefString(ks),
        }
      : undefined,
    folders,
  )
  trace('drift: baseline tree ready')
  try {
    const buildPath = buildDirFor(baseline, ks, overlay)
    // the live Kustomization built as kustomize-controller builds it at the applied revision
    // (components, patches, post-build substitution from the cluster's ConfigMaps/Secrets);
    // a namespace under no Kustomization: its overlays/prod
    const liveKs = ks && buildPath === relPath(ks.spec?.path) ? (ks as unknown as FluxKustomization) : undefined
    const buildLive = async (k: FluxKustomization) =>
      (
        await buildFluxKustomization(k, baseline.dir, {
          vars: inputs.looking(() => 'v1', clusterVars(kube)),
          strict: await strict().then((s) => {
            if (substitutes) inputs.sawStrict(s)
            return s
          }),
          origin: 'the cluster',
          ...(renderReleases
            ? {
                // rendered for the live cluster's version and APIs (.Capabilities), as
                // helm-controller renders it: a chart picking an API by `Has` sees the same
                leaves: { HelmRelease: releaseLeaf(rendered, target, inputs) },
                lookup: inputs.looking((kind) => LOOKUP_APIS[kind], clusterLookup(kube)),
              }
            : {}),
        })
      ).objects
    const build = liveKs ? () => buildLive(liveKs) : () => buildKustomization(path.join(baseline.dir, buildPath))
    // the others only in Flux's mode, and only those whose folder the baseline has (one added
    // since has applied nothing yet)
    const buildMore = async () => {
      if (!liveKs) return []
      const out: { ks: FluxObject; objects: ManifestObject[] }[] = []
      for (const k of others) {
        const p = relPath(k.spec?.path)
        if (!fs.existsSync(path.join(baseline.dir, p))) continue
        out.push({ ks: k, objects: await buildLive(k as unknown as FluxKustomization) })
      }
      return out
    }
    const partial = baseline.partial
    let widened = false
    let built: ManifestObject[]
    let more: { ks: FluxObject; objects: ManifestObject[] }[]
    try {
      // a base outside those folders fails the build on the partial tree: build on the whole one
      ;[built, more] = await Promise.all([build(), buildMore()]).catch(async (err) => {
        if (!baseline.partial) throw err
        widened = true
        await baseline.widen()
        return Promise.all([build(), buildMore()])
      })
    } catch (err) {
      if (isNsopsError(err))
        throw new NsopsError(
          `building ${buildPath} at ${baseline.sha?.slice(0, 12) ?? 'the working tree'}: ${err.message}`,
          { hint: err.hint, exitCode: ERROR, cause: err },
        )
      throw err
    }
    // only a build that read nothing but the folders the key covers and the inputs recorded,
    // whose every HelmRelease rendered (a source that did not answer is not kept as an answer)
    const renderFailed = [...rendered.values()].some((r) => 'error' in r)
    if (keyed && partial && !widened && baseline.sha === keyed.sha && !renderFailed && !inputs.readSecret) {
      const extra: KeptBaseline = {
        inputs: inputs.inputs(),
        rendered: [...rendered].filter((e): e is KeptBaseline['rendered'][number] => !('error' in e[1])),
      }
      storeBuild(keyed.key, baseline.dir, folders, { buildPath, objects: built, extra })
    }
    return { baseline, buildPath, built, more, rendered }
  } finally {
    baseline.dispose()
  }
}
