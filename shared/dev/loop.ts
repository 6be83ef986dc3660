// One namespace's dev loop, as cooperating parts that publish status (Tilt's reconcilers):
// file watch → kustomize build → apply (only what changed) → health; port-forwards; Flux
// suspended for the loop's lifetime. The terminal view only reads `status`.
import { EventEmitter } from 'node:events'
import fs from 'node:fs'
import path from 'node:path'
import { applyObjects, type ApplyResult } from '../apply/apply.ts'
import { deleteObject } from '../kube/rest.ts'
import { pruneLeftovers, type PruneReport } from '../apply/prune.ts'
import { refKey, refOf, refString, type ObjectRef } from '../kube/refs.ts'
import { inventoryConfigMapName, readInventory, writeInventory, type InventoryRef } from '../apply/inventory.ts'
import {
  keepReleasePvcs,
  NotDeployed,
  refreshChartSources,
  ReleaseBusy,
  waitReleasesGone,
} from '../flux/helm-release.ts'
import { NsopsError, errorMessage } from '../core/errors.ts'
import { TimedOut, within } from '../core/deadline.ts'
import { rewriteImages } from '../images/rewrite.ts'
import { ImageBuilds, type ImageState } from './image-builds.ts'
import type { ObjectHealth, WaitResult } from '../health/wait.ts'
import { HealthFeed, lastApplyOf } from './health-feed.ts'
import type { ManifestObject } from '../kustomize/build.ts'
import { buildProd, clusterVars, devSubstitution } from '../flux/build/index.ts'
import { chartsLine, namespaceCharts, publishCharts } from '../images/charts.ts'
import { OverlayBuild } from './overlay-build.ts'
import { devNamespaceObject, FluxDevBuild, type DevStage } from './flux-dev-build.ts'
import { waitFor } from '../health/wait.ts'
import { healthRefs } from './health-feed.ts'
import { ensureReachable, isApiError, type Kube } from '../kube/client.ts'
import { developedInPlace, sourceRoot, type NamespaceConfig } from '../config/namespace-config.ts'
import type { ApplyInfo } from '../config/task-types.ts'
import {
  claimSession,
  holdLease,
  releaseSession,
  writeSession,
  type DevSession,
  type ForwardInfo,
  type LeaseHandle,
} from './session.ts'
import { watchDebounced, type FileWatch } from './file-watch.ts'
import {
  describeHeld,
  endKeptHolds,
  fluxApplied,
  holding,
  keepHold,
  refreshHold,
  releaseHold,
  takeHold,
  type FluxHold,
  type HoldOptions,
} from './flux-hold.ts'
import { hookFailure, runHook, runTask } from '../tasks/run.ts'
import { forwardService } from '../portforward/index.ts'

// The "kubectl" prefix is deliberate: kustomize-controller folds managers named kubectl* into
// its own before it applies, so when Flux resumes, what the dev overlay set and prod does
// not have is removed instead of lingering (research/anchors.md Part 1 §2, field managers).
export const DEV_FIELD_MANAGER = 'kubectl-nsops-dev'

// The exit's bounds (a cluster that stopped answering must not keep the process): what each
// step may take, the deletion of the dev-only objects (uninstalling a HelmRelease waits for
// helm-controller: about two minutes at most, flux/helm-release.ts), and the one question
// whether the cluster answers at all. Their sum stays below core/signals.ts' backstop.
const STOP_WAIT_MS = 30_000
const STOP_DELETE_MS = 180_000
const STOP_PROBE_MS = 10_000

/** An apply of the dev loop: what the hooks are told (ApplyInfo), when and how long it took. */
export interface LastApply extends ApplyInfo {
  at: string
  ms: number
  /** how the overlay was built: 'full', or 'partial: base/app' (only what the save fed) */
  build?: string
}

export interface DevStatus {
  namespace: string
  target: string
  phase: 'starting' | 'applying' | 'watching' | 'error' | 'stopping' | 'stopped'
  error?: string
  flux: string
  /**
   * the namespace is developed in place (namespace.ts layout.dev.inPlace): the working tree's
   * build goes into prod's namespace itself, what Flux also applies is held, prod comes back on exit
   */
  inPlace?: boolean
  /** what the Flux hold warns about (overlap with the root, suspended by someone else) */
  fluxWarnings?: string[]
  lastApply?: LastApply
  /** the namespace's apps (namespace.ts), for views that group objects by app */
  apps?: string[]
  resources: readonly ObjectHealth[]
  forwards: ForwardInfo[]
  /** the namespace's tasks (namespace.ts) and how their last run went */
  tasks?: TaskState[]
  /** the namespace's images (namespace.ts): last build, digest, state, log */
  images?: ImageState[]
  /** the charts the namespace folder holds (<ns>/charts/) as published to the cluster's registry */
  charts?: string
}

export interface TaskState {
  name: string
  on: 'manual' | 'apply' | 'save'
  state: 'idle' | 'running' | 'ok' | 'failed'
  at?: string
  ms?: number
  error?: string
}

export interface DevLoopOptions {
  /** run port-forwards from namespace.ts; default true */
  forwards?: boolean
  /** watch files and re-apply; false for --ci */
  watch?: boolean
  /** on stop, leave the applied objects in place (normally dev-only objects are deleted) */
  keep?: boolean
  debounceMs?: number
  /** what to hold in Flux (namespace.ts flux.hold, --hold-root) */
  hold?: HoldOptions
  /** aborts start-up where it is (Ctrl-C during start) */
  signal?: AbortSignal
  /** let the loop delete CustomResourceDefinitions that left the overlay (never, without it) */
  pruneCrds?: boolean
  /** how long a dependsOn dependency may take to become healthy (default: its Kustomization's spec.timeout, else 5 min) */
  dependencyTimeoutMs?: number
}

export interface EndKeptOptions {
  /** delete the dev objects even though overlays/prod does not build (held and shared ones still stay) */
  prodBroken?: boolean
}

export interface StopOptions {
  /** leave the stack running (dev --ci): objects, Flux hold and session stay, marked kept */
  keep?: boolean
  /** what the cleanup is doing now, for a signal that arrives meanwhile */
  progress?: (doing: string) => void
}

/** What a loop publishes; views subscribe to these and only render them. */
export interface LoopEvents {
  /** the whole status, whenever any part of it changed */
  status: [DevStatus]
  /** an apply finished */
  applied: [LastApply]
  /** the Flux hold was decided (taken, or why nothing is held) */
  flux: [FluxHold]
  /** a line of a task's or hook's log */
  taskLine: [task: string, line: string]
}

/** What the runner and the view need from a loop (a namespace's, or a Tanka environment's). */
export interface Loop extends EventEmitter<LoopEvents> {
  readonly name: string
  readonly status: DevStatus
  start(): Promise<void>
  stop(opts?: StopOptions): Promise<string[]>
  /** what a forced exit leaves behind, if anything (a namespace's loop records it in its session) */
  leftover?(): string | undefined
  waitHealthy(timeoutMs: number): Promise<WaitResult>
}

/** Files under these folders feed the dev overlay; overlays/prod, the scripts and image sources do not. */
function feedsDevOverlay(ns: NamespaceConfig, file: string): boolean {
  const abs = path.resolve(ns.paths.root, file)
  const rel = path.relative(ns.paths.root, abs)
  if (rel.startsWith('..') || rel.endsWith('.ts') || rel.split(path.sep).some((p) => p.startsWith('.'))) return false
  // an image's source (its context) rebuilds the image (image-builds.ts), not the overlay
  const manifests = [ns.paths.base, ns.paths.overlays.dev, ns.paths.components]
  const under = (dir: string) => !path.relative(dir, abs).startsWith('..')
  if (Object.values(ns.images).some((i) => under(i.context)) && !manifests.some(under)) return false
  return !rel.startsWith(path.join('overlays', 'prod'))
}

/** Under a layout's root: what is not a script, not hidden and not a prod overlay. */
function feedsLayoutOverlay(root: string, file: string): boolean {
  const rel = path.relative(root, path.resolve(root, file))
  if (rel.startsWith('..') || rel.endsWith('.ts') || rel.split(path.sep).some((p) => p.startsWith('.'))) return false
  return !rel
    .split(path.sep)
    .join('/')
    .match(/(^|\/)overlays\/prod(\/|$)/)
}

export class DevLoop extends EventEmitter<LoopEvents> implements Loop {
  readonly status: DevStatus
  private session?: DevSession
  private watcher?: FileWatch
  private applying: Promise<void> = Promise.resolve()
  private lastApplied = new Map<string, string>() // refKey → JSON of what we sent
  private objects: ManifestObject[] = []
  private buildError: unknown
  private readonly build: OverlayBuild
  /** no overlays/dev: prod's Flux build moved into the dev namespace (flux-dev-build.ts) */
  private readonly fluxBuild?: FluxDevBuild
  /** the folders that feed fluxBuild (watched) */
  private fluxInputs: string[] = []
  /** the last build's stages (its Flux Kustomizations in dependsOn order) */
  private stages: DevStage[] = []
  /** the start's build, applied by the first apply when nothing could have changed since */
  private prebuilt?: ManifestObject[]
  /** prod's post-build substitution over each build (undefined: the namespace's Kustomization has no postBuild) */
  private substitute?: (objects: ManifestObject[]) => Promise<ManifestObject[]>
  /** the full build that checks partial builds once saves pause */
  private checkTimer?: NodeJS.Timeout
  private readonly health: HealthFeed
  private forwards: { stop(): Promise<void> | void }[] = []
  private flux?: FluxHold
  private fluxRefresh?: NodeJS.Timeout
  private lease?: LeaseHandle
  /** why the exit could not delete everything (overlays/prod broken): `just dev-down` finishes */
  private unfinished?: string
  private starting: Promise<void> = Promise.resolve()
  private stopped = false
  private readonly inventory: InventoryRef
  private readonly images: ImageBuilds

  constructor(
    readonly kube: Kube,
    readonly ns: NamespaceConfig,
    private readonly opts: DevLoopOptions = {},
  ) {
    super()
    this.status = {
      namespace: ns.name,
      target: ns.namespaces.dev,
      ...(developedInPlace(ns) ? { inPlace: true } : {}),
      phase: 'starting',
      flux: 'checking',
      apps: ns.apps.map((a) => a.name),
      resources: [],
      forwards: [],
      tasks: Object.entries(ns.tasks).map(([name, t]) => ({ name, on: t.on ?? 'manual', state: 'idle' as const })),
    }
    this.inventory = { name: `dev-${ns.name}`, namespace: ns.namespaces.dev }
    this.images = new ImageBuilds(kube, ns, opts.signal)
    if (this.images.any) this.status.images = this.images.states
    this.images.on('change', () => this.publish())
    // a new digest: the manifests get it (a failed build changes nothing and applies nothing)
    this.images.on('built', (name, trigger) => {
      if (this.status.phase !== 'starting') void this.apply(`built ${name} (${trigger})`) // the start's apply has it
    })
    // a beforeApply hook may write anywhere in the namespace: then every build is a full one
    this.build = new OverlayBuild(ns.paths.overlays.dev, { partial: !ns.hooks.beforeApply })
    // in place, the working tree's prod build is what the loop applies, a dev overlay or not;
    // variables from the cluster (substituteFrom) as the controller reads them, so an unresolved
    // one never overwrites prod's value with its default
    if (developedInPlace(ns) || !fs.existsSync(ns.paths.overlays.dev))
      this.fluxBuild = new FluxDevBuild(ns, clusterVars(kube))
    this.health = new HealthFeed(kube, (all) => {
      this.status.resources = all
      this.publish()
    })
  }

  get name(): string {
    return this.ns.name
  }

  private publish(): void {
    if (this.session) {
      this.session.forwards = this.status.forwards
      this.session.lastApply = this.status.lastApply?.at
      writeSession(this.session)
    }
    this.emit('status', this.status)
  }

  start(): Promise<void> {
    this.starting = this.startSteps()
    return this.starting
  }

  private get aborted(): boolean {
    return Boolean(this.opts.signal?.aborted) || this.stopped
  }

  private async startSteps(): Promise<void> {
    // each step checks for Ctrl-C first: stop() then undoes exactly what was done
    this.session = claimSession({
      namespace: this.ns.name,
      kubernetesNamespace: this.ns.namespaces.dev,
      context: this.kube.context,
      ...(developedInPlace(this.ns) ? { inPlace: true } : {}),
    })
    try {
      this.lease = await holdLease(this.kube, this.session)
    } catch (err) {
      releaseSession(this.ns.name)
      this.session = undefined
      throw err
    }
    this.lease.onLost((why) => this.leaseLost(why))
    if (this.aborted) return
    // the images build while the overlay builds and Flux is asked: the first apply needs both
    const imagesBuilt = this.images.any ? this.images.buildAll('start') : Promise.resolve([])
    imagesBuilt.catch(() => {})
    // what the dev overlay writes decides what Flux must hold (nothing, when they do not overlap)
    let devObjects: ManifestObject[] = []
    // the charts the namespace folder holds are in the cluster's registry before a HelmRelease
    // asks for them (unchanged ones cost one manifest GET), with the variables naming it
    const charts = namespaceCharts(this.ns.paths.root)
    if (charts.length) {
      const published = await publishCharts(this.kube, charts)
      if (published.charts.length) this.status.charts = chartsLine(published.charts)
    }
    if (this.aborted) return
    // a dev apply sees the values prod's Flux Kustomization gives (postBuild substitution, its
    // substituteFrom read from the cluster as the controller reads it), plus the dev overlay's own changes
    if (!this.fluxBuild)
      this.substitute = await devSubstitution(this.ns, path.resolve(this.ns.paths.root, '..', '..'), {
        vars: clusterVars(this.kube),
      }).catch(
        () => undefined, // no Flux tree to read (k8s/flux broken): the dev overlay as written; validate says why
      )
    else this.fluxInputs = await this.fluxBuild.inputs().catch(() => [sourceRoot(this.ns)])
    try {
      devObjects = await this.substituted((await this.buildFull()).objects)
      if (!this.ns.hooks.beforeApply) this.prebuilt = devObjects
    } catch {
      /* reported by the apply below */
    }
    if (this.aborted) return
    this.flux = await takeHold(this.kube, this.ns, this.session, devObjects, this.opts.hold)
    this.status.flux = this.flux.summary
    this.status.fluxWarnings = this.flux.warnings
    this.emit('flux', this.flux)
    const hold = this.flux
    if (holding(hold)) {
      this.fluxRefresh = setInterval(() => {
        void refreshHold(this.kube, hold).then(
          (lost) => {
            if (!lost.length) return
            this.status.flux = `${lost.map((l) => `${l.kind}/${l.namespace}/${l.name}`).join(', ')} resumed or re-suspended by someone else: no longer held by this loop`
            this.publish()
          },
          () => {},
        )
      }, 30 * 60_000)
      this.fluxRefresh.unref()
    }
    this.publish()
    if (this.aborted) return
    const failedImages = await imagesBuilt
    if (this.aborted) return
    if (failedImages.length && this.opts.watch === false) {
      // --ci: a build error is the verdict, with the compiler's output
      this.status.phase = 'error'
      this.status.error = failedImages.map((f) => f.message).join('; ')
      this.publish()
      throw new NsopsError(
        failedImages
          .map(
            (f) =>
              `${f.message}\n${f.log
                .slice(-30)
                .map((l) => `  │ ${l}`)
                .join('\n')}`,
          )
          .join('\n'),
        { hint: `fix the source and run again; nothing of ${this.ns.name} was applied.` },
      )
    }
    await this.apply('start')
    if (this.aborted) return
    if (this.opts.watch !== false) this.watchFiles()
    const imagesWatched = this.opts.watch !== false ? this.images.watch(this.opts.debounceMs) : undefined
    if (this.opts.forwards !== false) await this.startForwards()
    await this.watcher?.ready // "watching" only once a save is sure to be seen
    await imagesWatched
    if (this.status.phase === 'applying') this.status.phase = 'watching'
    this.publish()
  }

  /** What a forced exit leaves (recorded in the session too, for `just dev-status` and `just dev-down`). */
  leftover(): string | undefined {
    if (!this.session || this.status.phase === 'stopped') return undefined
    const parts = [
      this.flux && holding(this.flux) ? `Flux hold on ${describeHeld(this.flux)}` : '',
      this.opts.keep ? '' : `dev objects in ${this.ns.namespaces.dev}`,
      `the session of ${this.ns.name}`,
    ].filter(Boolean)
    this.leaveUnfinished('the exit was forced before its cleanup finished')
    return `${this.ns.name}: left ${parts.join(', ')}`
  }

  private watchFiles(): void {
    if (this.fluxBuild) {
      // the namespace's Flux Kustomizations' folders, wherever the repository keeps them
      const root = commonDir(this.fluxInputs)
      const inputs = this.fluxInputs
      this.watcher = watchDebounced(root, {
        debounceMs: this.opts.debounceMs,
        relevant: (file) => {
          const abs = path.resolve(root, file)
          return (
            !file.endsWith('.ts') &&
            !file.split(path.sep).some((p) => p.startsWith('.')) &&
            inputs.some((d) => !path.relative(d, abs).startsWith('..'))
          )
        },
        onChange: (file) => void this.apply(`changed ${file}`),
      })
      return
    }
    // a layout's dev overlay lives in the repository's own folders (applications/<ns>/overlays/dev)
    const root = sourceRoot(this.ns)
    // a chart the namespace folder holds (<ns>/charts/): published again, not applied
    const chartsDir = path.join(this.ns.paths.root, 'charts')
    const isChart = (file: string) => !path.relative(chartsDir, path.resolve(root, file)).startsWith('..')
    this.watcher = watchDebounced(root, {
      debounceMs: this.opts.debounceMs,
      relevant: (file) => (this.ns.layout ? feedsLayoutOverlay(root, file) : feedsDevOverlay(this.ns, file)),
      onChange: (file, files) => {
        const charts = files.filter(isChart)
        const rest = files.filter((f) => !isChart(f))
        if (charts.length) void this.chartsChanged(`changed ${charts[0]}`)
        if (rest.length) void this.apply(`changed ${rest.includes(file) ? file : rest[0]}`, rest)
      },
    })
  }

  /**
   * A save in one of the namespace's charts: publish it again (its source digest changed, so
   * the same tag gets the new content) and have the dev namespace's OCIRepositories that read
   * it fetch it now; helm-controller then upgrades the release to the new chart digest.
   * Serialised with the applies.
   */
  private chartsChanged(trigger: string): Promise<void> {
    this.applying = this.applying.then(async () => {
      try {
        const published = await publishCharts(this.kube, namespaceCharts(this.ns.paths.root))
        if (published.charts.length) this.status.charts = `${chartsLine(published.charts)} (${trigger})`
        const pushed = published.charts.filter((ch) => !ch.unchanged).map((ch) => ch.name)
        await refreshChartSources(this.kube, this.ns.namespaces.dev, pushed)
        if (this.status.phase === 'error' && this.status.error?.startsWith('chart: ')) {
          this.status.phase = 'watching'
          this.status.error = undefined
        }
      } catch (err) {
        this.status.phase = 'error'
        this.status.error = `chart: ${errorMessage(err)}`
      }
      this.publish()
    })
    return this.applying
  }

  /**
   * Build the dev overlay and apply what changed; serialised so applies never overlap.
   * `saved`: the files (relative to the namespace folder) a save changed, so the build can
   * redo only what they feed; without it the overlay is built in full.
   */
  apply(trigger: string, saved?: string[]): Promise<void> {
    clearTimeout(this.checkTimer)
    this.applying = this.applying.then(() => this.applyOnce(trigger, saved))
    return this.applying
  }

  private taskOptions() {
    return {
      kube: this.kube,
      ns: this.ns,
      env: 'dev' as const,
      signal: this.opts.signal,
      forwards: Object.fromEntries(
        this.status.forwards.filter((f) => f.status === 'active').map((f) => [f.app, f.url]),
      ),
      onLine: (task: string, line: string) => this.emit('taskLine', task, line),
    }
  }

  /** Runs a task of the namespace now (a trigger from a key, the web page, or apply/save). */
  async runTask(name: string): Promise<boolean> {
    const state = this.status.tasks?.find((t) => t.name === name)
    if (!state) throw new Error(`${this.ns.name} has no task ${name}`)
    if (state.state === 'running') return false
    state.state = 'running'
    this.publish()
    const runs = await runTask(name, this.taskOptions()).catch((err) => [
      { name, ok: false, ms: 0, at: new Date().toISOString(), error: errorMessage(err), lines: [] },
    ])
    const last = runs[runs.length - 1]
    const ok = last.ok && last.name === name
    Object.assign(state, {
      state: ok ? 'ok' : 'failed',
      at: last.at,
      ms: last.ms,
      error: ok ? undefined : `${last.name === name ? '' : `${last.name}: `}${last.error}`,
    })
    this.publish()
    return ok
  }

  /** Another loop holds the namespace now: write nothing more, say so, keep the view open. */
  private leaseLost(why: string): void {
    this.watcher?.close()
    this.watcher = undefined
    clearTimeout(this.checkTimer)
    this.status.phase = 'error'
    this.status.error = `${why}. Its objects are that loop's now: this one deletes nothing on exit. Stop this loop (Ctrl-C) and work in the other one, or stop that one and start this again.`
    this.publish()
  }

  /** The refs of what the prune and the exit must leave: objects held from Flux are prod's. */
  private retain = (ref: { apiVersion: string; kind: string; namespace?: string; name: string }) =>
    this.flux?.objects.some((h) => refKey(h) === refKey(ref))
      ? 'held from Flux by this loop (prod has it too), so it is not deleted'
      : undefined

  private async applyOnce(trigger: string, saved?: string[]): Promise<void> {
    const t0 = performance.now()
    // before anything is written: still ours? (a laptop waking from sleep finds out here)
    if (this.lease && (await this.lease.renew())) return
    this.status.phase = 'applying'
    this.publish()
    if (this.ns.hooks.beforeApply) {
      // e.g. regenerate a ConfigMap from a template: its writes must not trigger another apply
      const ran = this.watcher
        ? await this.watcher.muted(() => runHook('beforeApply', {}, this.taskOptions()))
        : await runHook('beforeApply', {}, this.taskOptions())
      if (ran && !ran.run.ok) {
        this.status.phase = 'error'
        this.status.error = hookFailure('beforeApply', ran.run, 'nothing was applied', this.ns.name).message
        this.publish()
        return
      }
    }
    let objects: ManifestObject[]
    let how = 'full'
    try {
      const prebuilt = this.prebuilt
      this.prebuilt = undefined
      if (prebuilt && trigger === 'start') objects = prebuilt
      else if (this.fluxBuild) ({ objects, how } = await this.buildFull())
      else ({ objects, how } = saved ? await this.build.afterSave(sourceRoot(this.ns), saved) : await this.build.full())
      objects = await this.substituted(objects)
    } catch (err) {
      this.buildError = err
      this.status.phase = 'error'
      this.status.error = errorMessage(err) // a broken file: keep watching, report, apply nothing
      this.publish()
      return
    }
    this.buildError = undefined
    // image references by digest, in what is applied only (kustomize's images: semantics)
    objects = rewriteImages(objects, this.images.refs()).objects
    const keys = new Map(objects.map((o) => [refKey(refOf(o)), o]))
    const sameSet = keys.size === this.lastApplied.size && [...keys.keys()].every((k) => this.lastApplied.has(k))
    const changed = objects.filter((o) => this.lastApplied.get(refKey(refOf(o))) !== JSON.stringify(o))
    let result: ApplyResult
    if (!sameSet && this.fluxBuild) {
      const blocked = await this.applyDependencies(objects)
      if (blocked) {
        this.status.phase = 'error'
        this.status.error = blocked
        this.buildError = new NsopsError(blocked, {
          hint: `fix that Kustomization's objects (\`just dashboard ${this.ns.name}\` shows them); what depends on it was not applied.`,
        })
        this.publish()
        return
      }
    }
    try {
      // Same set of objects: send only those whose rendering changed. A set that gained or
      // lost objects goes through the full apply, which records the inventory and prunes.
      result = sameSet
        ? await applyObjects(this.kube, changed, {
            fieldManager: DEV_FIELD_MANAGER,
            prune: false,
            namespace: this.ns.namespaces.dev,
            knownChanged: true,
          })
        : await applyObjects(this.kube, objects, {
            fieldManager: DEV_FIELD_MANAGER,
            inventory: this.inventory,
            namespace: this.ns.namespaces.dev,
            // the same safety as the exit: what others share, CRDs, what Flux holds stay
            keepShared: true,
            keepCrds: !this.opts.pruneCrds,
            retain: this.retain,
          })
    } catch (err) {
      this.status.phase = 'error'
      this.status.error = errorMessage(err)
      this.publish()
      return
    }
    const failed = new Set(result.failed.map((f) => refKey(f.ref)))
    if (!sameSet) this.lastApplied.clear()
    for (const o of objects) {
      const k = refKey(refOf(o))
      if (!failed.has(k)) this.lastApplied.set(k, JSON.stringify(o))
    }
    this.status.lastApply = {
      ...lastApplyOf(result, t0, trigger, sameSet ? objects.length - changed.length : 0),
      build: how,
    }
    // a partial overlay build is checked against a full one; the Flux build is always whole
    if (how !== 'full' && !this.fluxBuild) this.scheduleCheck()
    // at start, "watching" waits for the file watches (startSteps): a save before them is missed
    this.status.phase = result.failed.length ? 'error' : trigger === 'start' ? 'applying' : 'watching'
    this.status.error = result.failed.length ? `${result.failed.length} object(s) rejected` : undefined
    this.publish()
    this.emit('applied', this.status.lastApply)
    await this.build.learnPending().catch(() => {}) // after the apply: not in this save's way
    // the same objects: the feed that follows them sees the change live (new informers over
    // every object on each save cost a 400-object loop more than the save itself)
    if (!sameSet || !this.health.current) this.health.follow(objects)
    this.objects = objects
    if (result.failed.length === 0) await this.afterApply(trigger)
  }

  /**
   * Once saves pause, a full build checks what partial builds applied; if it disagrees,
   * partial builds are off for the session and the full result is applied.
   */
  private scheduleCheck(): void {
    clearTimeout(this.checkTimer)
    this.checkTimer = setTimeout(() => {
      void this.build.check().then(
        (full) => {
          if (!full || this.stopped) return
          this.status.error = `${this.build.off}: applying the full build; partial builds are off until the loop restarts`
          this.publish()
          void this.apply('full build (check)')
        },
        () => {
          /* the overlay does not build now: the next save reports it */
        },
      )
    }, 1500)
    this.checkTimer.unref()
  }

  private async afterApply(trigger: string): Promise<void> {
    const la = this.status.lastApply!
    if (this.ns.hooks.afterApply) {
      const ran = await runHook('afterApply', { applied: la }, this.taskOptions())
      if (ran && !ran.run.ok) {
        this.status.error = hookFailure(
          'afterApply',
          ran.run,
          'the apply stands but its follow-up did not run',
          this.ns.name,
        ).message
        this.publish()
      }
    }
    // tasks that run by themselves: after every apply, or after an apply a save caused
    const saved = trigger.startsWith('changed ')
    for (const t of this.status.tasks ?? []) {
      if (t.on === 'apply' || (t.on === 'save' && saved)) void this.runTask(t.name)
    }
  }

  /** For --ci: wait until what the last apply built is healthy, or the timeout. */
  async waitHealthy(timeoutMs: number): Promise<WaitResult> {
    if (this.buildError) throw this.buildError // the overlay did not build: nothing to wait for
    return this.health.waitHealthy(this.objects, timeoutMs)
  }

  private async startForwards(): Promise<void> {
    for (const pf of this.ns.portForwards) {
      const info: ForwardInfo = {
        app: pf.app,
        local: pf.local,
        remote: pf.remote,
        url: `http://127.0.0.1:${pf.local}`,
        status: 'starting',
      }
      this.status.forwards.push(info)
      try {
        const fwd = await forwardService(this.kube, {
          namespace: this.ns.namespaces.dev,
          service: pf.app,
          localPort: pf.local,
          remotePort: pf.remote,
        })
        this.forwards.push(fwd)
        fwd.on('status', (s: { status: string; pod?: string; lastError?: string }) => {
          info.status = s.status
          info.pod = s.pod
          info.error = s.lastError
          this.publish()
        })
      } catch (err) {
        info.status = 'error'
        info.error = errorMessage(err) // e.g. the local port is taken: report, keep the loop
      }
    }
    this.publish()
  }

  /**
   * Every exit path ends here: stop forwards and watches, delete the objects only the dev
   * overlay has (not Namespaces, not PVCs: nothing is lost), resume Flux, free the session.
   * With `keep` (dev --ci) the stack stays: objects, hold and session, marked kept.
   * Every step is bounded: a cluster that stopped answering leaves what it could not undo
   * recorded in the session, for `just dev-status` to show and `just dev-down` to finish.
   */
  async stop(opts: StopOptions = {}): Promise<string[]> {
    this.stopped = true
    const notes: string[] = []
    const gaveUp = (err: unknown) => {
      if (!(err instanceof TimedOut)) return
      notes.push(`${err.message}; the cleanup went on without it`)
    }
    // a start step waiting on a cluster that stopped answering: each step checks `stopped`
    // before the next one, so once it returns it does nothing more
    await within(this.starting, STOP_WAIT_MS, `the start of ${this.ns.name}`).catch(gaveUp)
    // never claimed the namespace (another loop runs it): nothing here is ours to undo
    if (!this.session) return notes
    const say = opts.progress ?? (() => {})
    this.status.phase = 'stopping'
    this.emit('status', this.status)
    this.watcher?.close()
    clearTimeout(this.checkTimer)
    clearInterval(this.fluxRefresh)
    this.health.stop()
    await within(
      Promise.all([this.images.close(), this.applying.catch(() => {})]),
      STOP_WAIT_MS,
      `the image build or apply of ${this.ns.name} in progress`,
    ).catch(gaveUp)
    say(`stopping the port-forwards of ${this.ns.name}`)
    // local servers: what does not close in time closes with the process
    await within(Promise.allSettled(this.forwards.map((f) => f.stop())), STOP_WAIT_MS, 'the port-forwards').catch(
      () => {},
    )
    const lost = this.lease?.lost()
    if (lost) {
      // the namespace is another loop's now: its objects, its Lease; only our Flux marks go
      // (a hold the other loop took over carries its marker, so release leaves it)
      if (this.flux)
        notes.push(
          ...(await within(releaseHold(this.kube, this.flux), STOP_WAIT_MS, 'releasing the Flux hold').catch(() => [])),
        )
      await within(this.lease?.release() ?? Promise.resolve(), STOP_WAIT_MS, 'releasing the Lease').catch(() => {})
      releaseSession(this.ns.name)
      notes.push(`${lost}; deleted nothing`)
      this.status.phase = 'stopped'
      this.emit('status', this.status)
      return notes
    }
    // one question before the cleanup writes to the cluster: one that stopped answering (stopped,
    // its apiserver hung) would otherwise hold each step below for its whole bound
    say(`checking that the cluster ${this.kube.context} answers`)
    const silent = await ensureReachable(this.kube, STOP_PROBE_MS).then(
      () => undefined,
      (err: unknown) => errorMessage(err),
    )
    if (silent) {
      this.leaveUnfinished(silent.replace(/\.$/, ''))
      notes.push(
        `${this.unfinished}. Once it answers again (\`just cluster-up\` for the local sim), \`just dev-down\` finishes the cleanup`,
      )
      return notes
    }
    const keep = opts.keep ?? this.opts.keep
    if (opts.keep) {
      if (this.flux)
        notes.push(
          ...(await within(keepHold(this.kube, this.flux), STOP_WAIT_MS, 'marking the Flux hold kept').catch((err) => [
            `could not mark the Flux hold kept: ${errorMessage(err)}`,
          ])),
        )
      await within(
        this.lease?.release({ keep: true }) ?? Promise.resolve(),
        STOP_WAIT_MS,
        'marking the Lease kept',
      ).catch(() => {})
      this.session.kept = true
      this.session.forwards = []
      writeSession(this.session)
      notes.push(
        `kept ${this.ns.name} running in ${this.ns.namespaces.dev}: \`just dev-down\` ends it (deletes dev-only objects${holding(this.flux) ? ', releases the Flux hold' : ''})`,
      )
      this.status.phase = 'stopped'
      this.emit('status', this.status)
      return notes
    }
    if (!keep) {
      say(`deleting the dev-only objects of ${this.ns.name} in ${this.ns.namespaces.dev}`)
      try {
        notes.push(
          ...(await within(
            this.deleteDevOnly({}, say),
            STOP_DELETE_MS,
            `deleting the dev-only objects of ${this.ns.name}`,
          )),
        )
      } catch (err) {
        notes.push(`could not delete dev objects: ${errorMessage(err)}`)
        // the inventory still names them: the session stays for `just dev-down` to delete them
        const left = `the dev-only objects in ${this.ns.namespaces.dev} were not all deleted`
        this.unfinished = this.unfinished ? `${this.unfinished}; ${left}` : left
      }
    }
    if (this.flux) {
      if (holding(this.flux)) say(`releasing the Flux hold on ${describeHeld(this.flux)}`)
      try {
        notes.push(...(await within(releaseHold(this.kube, this.flux), STOP_WAIT_MS, 'releasing the Flux hold')))
      } catch (err) {
        notes.push(`could not resume Flux: ${errorMessage(err)} — run \`just dev-down\` to retry`)
      }
    }
    await within(this.lease?.release() ?? Promise.resolve(), STOP_WAIT_MS, 'releasing the Lease').catch((err) =>
      notes.push(errorMessage(err)),
    )
    if (this.unfinished) {
      // what could be prod's is still there: the session stays for `just dev-down` to finish
      this.session.kept = true
      this.session.unfinished = this.unfinished
      this.session.forwards = []
      writeSession(this.session)
    } else releaseSession(this.ns.name)
    this.status.phase = 'stopped'
    this.emit('status', this.status)
    return notes
  }

  /**
   * The cleanup cannot finish (the cluster does not answer, or the exit was forced): the
   * session stays, kept and saying what was left, so `just dev-status` shows it and
   * `just dev-down` (or the next dev loop of the namespace) finishes it.
   */
  private leaveUnfinished(why: string): void {
    if (!this.session) return
    const left = [
      this.opts.keep ? '' : `the dev-only objects in ${this.ns.namespaces.dev}`,
      this.flux && holding(this.flux) ? `the Flux hold on ${describeHeld(this.flux)}` : '',
    ].filter(Boolean)
    this.unfinished = `${why}: left ${left.length ? left.join(' and ') : 'its Lease'}`
    this.session.kept = true
    this.session.unfinished = this.unfinished
    this.session.forwards = []
    try {
      writeSession(this.session)
    } catch {
      /* the state folder is gone: nothing can record it */
    }
    this.status.phase = 'stopped'
    this.emit('status', this.status)
  }

  /**
   * `just dev-down` for a session `dev --ci` kept: take the namespace over (the kept session
   * file and Lease allow it), resume the holds it left, delete its dev-only objects.
   */
  async endKept(opts: EndKeptOptions = {}): Promise<string[]> {
    const session = claimSession({
      namespace: this.ns.name,
      kubernetesNamespace: this.ns.namespaces.dev,
      context: this.kube.context,
    })
    this.session = session
    this.lease = await holdLease(this.kube, session)
    const notes = await this.deleteDevOnly(opts)
    notes.push(...(await endKeptHolds(this.kube, this.ns)))
    await this.lease.release()
    if (this.unfinished) {
      session.kept = true
      session.unfinished = this.unfinished
      writeSession(session)
    } else releaseSession(this.ns.name)
    return notes
  }

  /** The dev build: overlays/dev, or (none) prod's Flux build moved into the dev namespace, by stage. */
  private async buildFull(): Promise<{ objects: ManifestObject[]; how: string }> {
    if (!this.fluxBuild) return this.build.full()
    const r = await this.fluxBuild.full()
    this.stages = r.stages
    const objects = r.objects.some((o) => o.kind === 'Namespace' && o.metadata.name === this.ns.namespaces.dev)
      ? r.objects
      : [devNamespaceObject(this.ns), ...r.objects]
    return { objects, how: `${r.stages.length} Flux Kustomization(s) in dependsOn order` }
  }

  /**
   * dependsOn, as kustomize-controller honours it: each stage another stage depends on is
   * applied first and must become healthy before what depends on it is applied. Returns why
   * it stopped (the link that is not Ready), or undefined when every dependency is healthy.
   */
  private async applyDependencies(objects: ManifestObject[]): Promise<string | undefined> {
    const needed = new Set(this.stages.flatMap((s) => s.dependsOn))
    const deps = this.stages.filter((s) => needed.has(s.id))
    if (!deps.length) return undefined
    const current = new Map(objects.map((o) => [refKey(refOf(o)), o]))
    const namespace = objects.filter((o) => o.kind === 'Namespace' && o.metadata.name === this.ns.namespaces.dev)
    for (const stage of this.stages) {
      if (!needed.has(stage.id)) continue
      // what the image rewrite left, in this stage
      const mine = stage.objects.flatMap((o) => current.get(refKey(refOf(o))) ?? [])
      const r = await applyObjects(this.kube, [...namespace, ...mine], {
        fieldManager: DEV_FIELD_MANAGER,
        prune: false,
        namespace: this.ns.namespaces.dev,
      })
      const dependents = this.stages.filter((s) => s.dependsOn.includes(stage.id)).map((s) => s.id)
      const link = `${stage.id}${stage.file ? ` (${stage.file})` : ''}`
      if (r.failed.length)
        return `dependsOn: ${link} is not Ready: ${r.failed.map((f) => `${refString(f.ref)}: ${f.message}`).join('; ')}; ${dependents.join(', ')} not applied`
      this.status.phase = 'applying'
      this.status.error = `waiting for ${link} to be healthy (${dependents.join(', ')} depend${dependents.length === 1 ? 's' : ''} on it)`
      this.publish()
      const w = await waitFor(this.kube, healthRefs(mine), {
        timeoutMs: Math.min(stage.timeoutMs, this.opts.dependencyTimeoutMs ?? Infinity),
        failFast: true,
        signal: this.opts.signal,
      })
      this.status.error = undefined
      if (!w.ok) return `dependsOn: ${link} is not Ready (${w.report}); ${dependents.join(', ')} not applied`
    }
    return undefined
  }

  /** The build after prod's post-build substitution (devSubstitution), when the namespace has one. */
  private async substituted(objects: ManifestObject[]): Promise<ManifestObject[]> {
    return this.substitute ? this.substitute(objects) : objects
  }

  private async deleteDevOnly(opts: EndKeptOptions = {}, say: (doing: string) => void = () => {}): Promise<string[]> {
    const applied = await readInventory(this.kube, this.inventory)
    for (const [k, json] of this.lastApplied)
      if (!applied.has(k)) applied.set(k, refOf(JSON.parse(json) as ManifestObject))
    const notes: string[] = []
    let prod = new Set<string>()
    /** objects left because they could be prod's while overlays/prod does not build */
    let unsure: ObjectRef[] = []
    try {
      const repoDir = path.resolve(this.ns.paths.root, '..', '..')
      // in place, the working tree's build is what was applied: prod is what Flux applies (its
      // inventories), and what the working tree added beside it is dev-only
      const inFlux = developedInPlace(this.ns) ? await fluxApplied(this.kube, this.ns) : undefined
      prod = inFlux ?? new Set((await buildProd(this.ns, repoDir)).objects.map((o) => refKey(refOf(o))))
    } catch (err) {
      // Which objects prod has is unknown: what could be prod's (in its namespace, or
      // cluster-wide) stays until overlays/prod builds again; a separate dev namespace goes.
      const couldBeProd = (r: ObjectRef) => !r.namespace || r.namespace === this.ns.namespaces.prod
      if (!opts.prodBroken) unsure = [...applied.values()].filter(couldBeProd)
      for (const r of unsure) applied.delete(refKey(r))
      if (unsure.length) {
        this.unfinished = `overlays/prod of ${this.ns.name} does not build, so ${unsure.length} object(s) that could be prod's were not deleted`
        notes.push(
          `${this.unfinished} (${errorMessage(err).split('\n')[0]}). Fix overlays/prod, then run \`just dev-down\` to delete the dev-only ones; or \`just dev-down --prod-broken\` deletes them now (objects Flux or another tool also manages still stay)`,
        )
      }
    }
    const doomed = [...applied.entries()].filter(([k]) => !prod.has(k)).map(([, r]) => r)
    // dev-only HelmReleases: helm-controller uninstalls them when they are deleted (its
    // finalizer); their PVCs are marked for Helm to keep first, as every other PVC is kept
    const releases = doomed.filter(
      (r) => r.kind === 'HelmRelease' && r.apiVersion.startsWith('helm.toolkit.fluxcd.io/') && r.namespace,
    )
    const spared = new Set<string>()
    if (releases.length)
      say(
        `marking the PVCs of HelmRelease ${releases.map((r) => r.name).join(', ')} for Helm to keep (helm-controller)`,
      )
    await Promise.all(
      releases.map(async (hr) => {
        try {
          const kept = await keepReleasePvcs(this.kube, hr.namespace!, hr.name, DEV_FIELD_MANAGER)
          if (kept.length) notes.push(`kept the PVCs of HelmRelease ${hr.name}: ${kept.join(', ')}`)
        } catch (err) {
          if (isApiError(err, 404)) return // gone already
          if (err instanceof NotDeployed) {
            notes.push(`HelmRelease ${hr.name}: ${err.message}`)
            return
          }
          // uninstalling it now would delete its PVCs: left in place (in the inventory, the
          // session kept unfinished), `just dev-down` tries again. A release helm-controller is
          // busy with (an upgrade waiting for its pods) is not waited for: that takes minutes
          spared.add(refKey(hr))
          notes.push(
            err instanceof ReleaseBusy
              ? `left HelmRelease ${hr.namespace}/${hr.name} installed: ${err.message}; once helm-controller is done, \`just dev-down\` uninstalls it keeping them`
              : `left HelmRelease ${hr.namespace}/${hr.name} installed: its PVCs could not be marked for Helm to keep (${errorMessage(err)}); \`just dev-down\` tries again`,
          )
        }
      }),
    )
    // the same safety as prune: ours by field manager, uid precondition, shared objects kept,
    // CRDs only with --prune-crds, what this loop holds from Flux is prod's
    const r = await pruneLeftovers(
      this.kube,
      doomed.filter((d) => !spared.has(refKey(d))),
      {
        fieldManager: DEV_FIELD_MANAGER,
        dryRun: false,
        prunePvcs: false,
        concurrency: 16,
        keepShared: true,
        keepCrds: !this.opts.pruneCrds,
        unsure: this.retain,
      },
    )
    if (spared.size) {
      const left = `${spared.size} HelmRelease(s) of ${this.ns.name} were left installed to keep their PVCs`
      this.unfinished = this.unfinished ? `${this.unfinished}; ${left}` : left
    }
    if (unsure.length || spared.size) {
      // the inventory keeps naming them, for the `just dev-down` that finishes
      const left = [...unsure, ...r.keep, ...releases.filter((hr) => spared.has(refKey(hr)))]
      await writeInventory(this.kube, this.inventory, left, DEV_FIELD_MANAGER).catch((e) =>
        notes.push(`could not record what is left: ${errorMessage(e)}`),
      )
    } else {
      try {
        await deleteObject(
          this.kube,
          {
            apiVersion: 'v1',
            kind: 'ConfigMap',
            namespace: this.inventory.namespace,
            name: inventoryConfigMapName(this.inventory),
          },
          { dryRun: false },
        )
      } catch {
        /* none */
      }
    }
    const deletedReleases = r.pruned.filter((p) => releases.some((hr) => refKey(hr) === refKey(p)))
    if (deletedReleases.length) {
      const byNs = new Map<string, string[]>()
      for (const hr of deletedReleases) byNs.set(hr.namespace!, [...(byNs.get(hr.namespace!) ?? []), hr.name])
      for (const [namespace, names] of byNs) {
        say(`waiting for helm-controller to uninstall HelmRelease ${names.join(', ')} in ${namespace}`)
        const w = await waitReleasesGone(this.kube, namespace, names)
        if (w.gone.length)
          notes.push(`uninstalled HelmRelease ${w.gone.join(', ')} (helm-controller removed its release)`)
        for (const s of w.stuck)
          notes.push(
            `HelmRelease ${namespace}/${s.name} is still being uninstalled (${s.why}); helm-controller removes it when done`,
          )
      }
    }
    return [...notes, ...this.deleteNotes(r)]
  }

  private deleteNotes(r: PruneReport): string[] {
    const notes: string[] = []
    if (r.pruned.length)
      notes.push(
        `deleted ${r.pruned.length} dev-only object(s) in ${this.ns.namespaces.dev} (PVCs and the namespace kept)`,
      )
    for (const x of r.retained.filter((x) => /shared|held|CustomResourceDefinition/.test(x.reason)))
      notes.push(`left ${refString(x.ref)} in place: ${x.reason}`)
    for (const f of r.failed) notes.push(`could not delete ${refString(f.ref)}: ${f.message}`)
    return notes
  }
}

/** The deepest folder holding all of `dirs`. */
function commonDir(dirs: string[]): string {
  const parts = dirs.map((d) => path.resolve(d).split(path.sep))
  let common = parts[0] ?? []
  for (const p of parts.slice(1)) {
    let i = 0
    while (i < common.length && i < p.length && common[i] === p[i]) i++
    common = common.slice(0, i)
  }
  return common.join(path.sep) || path.sep
}
