// The dev loop's image builds (Tilt's image build reconciler): one state per image of the
// namespace, a build per save under its deps, saves during a build coalesced into one more
// build after it, and the last good digest kept — a failed build leaves what runs running and
// applies nothing. The loop rewrites its manifests with refs() before every apply.
import path from 'node:path'
import { EventEmitter } from 'node:events'
import type { NamespaceConfig } from '../config/namespace-config.ts'
import type { ImageSpec } from '../config/image-types.ts'
import { errorMessage } from '../core/errors.ts'
import type { Kube } from '../kube/client.ts'
import { ImageBuildError, buildImage, repositoryFor, type BuiltImage } from '../images/build.ts'
import { chooseRegistry, type RegistryChoice } from '../images/registry.ts'
import { imageDigest } from '../images/crane.ts'
import { watchDebounced, type FileWatch } from './file-watch.ts'
import { syncFiles, syncRuleFor } from './live-sync.ts'

export interface ImageState {
  name: string
  /** ko, binary, dockerfile, custom; after a build the builder that ran (`dockerfile (buildah)`) */
  builder: string
  state: 'idle' | 'building' | 'ok' | 'failed' | 'syncing' | 'synced'
  /** what the manifests get: <registry>/<ns>/<image>@sha256:… (the last good build) */
  ref?: string
  digest?: string
  size?: number
  /** the last build's duration, and its host compile's share (binary) */
  ms?: number
  hostMs?: number
  at?: string
  trigger?: string
  error?: string
  /** the last build's output (its tail) */
  log: string[]
  /** a save arrived during the build: one more build follows */
  pending?: boolean
  /** the last live sync: files copied into running containers without a rebuild */
  lastSync?: { at: string; ms: number; files: number; pods: number }
}

interface ImageBuildsEvents {
  /** any state changed */
  change: []
  /** a build produced a digest the manifests do not have yet */
  built: [name: string, trigger: string]
  /** saved files went into the running containers */
  synced: [name: string, ms: number]
}

/** Whether a file (absolute) is one of the image's deps. */
export function isImageDep(image: ImageSpec, file: string): boolean {
  const rel = path.relative(image.context, file)
  if (rel.startsWith('..') || path.isAbsolute(rel)) return false
  return image.deps.some((g) => path.matchesGlob(rel, g))
}

export class ImageBuilds extends EventEmitter<ImageBuildsEvents> {
  readonly states: ImageState[]
  private registry?: Promise<RegistryChoice>
  private running = new Map<string, Promise<void>>()
  private watchers: FileWatch[] = []
  private closed = false

  constructor(
    private readonly kube: Kube,
    private readonly ns: NamespaceConfig,
    private readonly signal?: AbortSignal,
  ) {
    super()
    this.states = Object.values(ns.images).map((i) => ({ name: i.name, builder: i.build.kind, state: 'idle', log: [] }))
  }

  get any(): boolean {
    return this.states.length > 0
  }

  /** name → the last good reference by digest, for rewriteImages. */
  refs(): Map<string, string> {
    return new Map(this.states.filter((s) => s.ref).map((s) => [s.name, s.ref!]))
  }

  private chosen(): Promise<RegistryChoice> {
    this.registry ??= chooseRegistry({
      kube: this.kube,
      configured: this.ns.registry
        ? { host: this.ns.registry, file: `namespaces/${this.ns.name}/namespace.ts` }
        : undefined,
    })
    this.registry.catch(() => (this.registry = undefined))
    return this.registry
  }

  /**
   * Every image, one after the other (builds share the machine's cores). An image whose build
   * fails keeps the digest an earlier session pushed (`:dev` in the registry), if any.
   */
  async buildAll(trigger: string): Promise<ImageBuildError[]> {
    const failed: ImageBuildError[] = []
    for (const s of this.states) {
      const err = await this.build(s.name, trigger)
      if (err) {
        failed.push(err)
        if (!s.ref) await this.adoptPrevious(s)
      }
    }
    return failed
  }

  /** A save under an image's deps: build now, or once more after the running build. */
  request(name: string, trigger: string): void {
    const s = this.states.find((x) => x.name === name)
    if (!s || this.closed) return
    if (this.running.has(name)) {
      s.pending = true
      s.trigger = trigger
      this.emit('change')
      return
    }
    void this.build(name, trigger)
  }

  private build(name: string, trigger: string): Promise<ImageBuildError | undefined> {
    const s = this.states.find((x) => x.name === name)!
    const image = this.ns.images[name]
    const done = (async (): Promise<ImageBuildError | undefined> => {
      let failure: ImageBuildError | undefined
      let next: string | undefined = trigger
      while (next !== undefined && !this.closed) {
        s.state = 'building'
        s.trigger = next
        s.pending = false
        s.log = []
        this.emit('change')
        const before = s.digest
        failure = undefined
        try {
          const registry = await this.chosen()
          const built: BuiltImage = await buildImage(image, {
            namespace: this.ns.name,
            root: this.ns.paths.root,
            registry,
            signal: this.signal,
            onLine: (l) => {
              s.log.push(l)
              if (s.log.length > 200) s.log.shift()
            },
          })
          Object.assign(s, {
            state: 'ok',
            builder: built.builder,
            ref: built.pullRef,
            digest: built.digest,
            size: built.size,
            ms: built.ms,
            hostMs: built.hostMs,
            at: built.at,
            error: undefined,
          })
          this.emit('change')
          if (built.digest !== before) this.emit('built', name, next)
        } catch (err) {
          failure = err instanceof ImageBuildError ? err : new ImageBuildError(name, errorMessage(err), [...s.log])
          Object.assign(s, { state: 'failed', error: failure.message, at: new Date().toISOString() })
          if (!(err instanceof ImageBuildError)) s.log.push(errorMessage(err))
          this.emit('change')
        }
        next = s.pending ? s.trigger : undefined
      }
      return failure
    })()
    const tracked = done.then(
      () => {},
      () => {},
    )
    this.running.set(name, tracked)
    void tracked.then(() => this.running.delete(name))
    return done
  }

  /** The digest `:dev` names in the registry: what an earlier session of this loop pushed. */
  private async adoptPrevious(s: ImageState): Promise<void> {
    try {
      const registry = await this.chosen()
      const repo = repositoryFor(registry.host, this.ns.name, s.name)
      const digest = await imageDigest(`${repo}:dev`)
      s.digest = digest
      s.ref = `${repositoryFor(registry.pullHost, this.ns.name, s.name)}@${digest}`
      s.log.push(`keeping ${s.ref}, pushed by an earlier build`)
      this.emit('change')
    } catch {
      /* never built: the manifests keep naming the bare image */
    }
  }

  /**
   * A save every file of which a sync rule covers (and no fallBackOn glob matches) goes into
   * the running containers; anything else, or a sync that fails, builds.
   */
  private async saved(image: ImageSpec, file: string, files: string[]): Promise<void> {
    const abs = files.map((f) => path.join(image.context, f))
    const s = this.states.find((x) => x.name === image.name)!
    const syncable =
      image.sync.length > 0 &&
      s.ref !== undefined &&
      !this.running.has(image.name) &&
      abs.every((f) => syncRuleFor(image, f)) &&
      !files.some((f) => image.fallBackOn.some((g) => path.matchesGlob(f, g)))
    if (!syncable) return this.request(image.name, `changed ${file}`)
    s.state = 'syncing'
    s.trigger = `changed ${file}`
    this.emit('change')
    try {
      const registry = await this.chosen()
      const r = await syncFiles(this.kube, {
        namespace: this.ns.namespaces.dev,
        image,
        repository: repositoryFor(registry.pullHost, this.ns.name, image.name),
        files: abs,
        onLine: (l) => {
          s.log.push(l)
          if (s.log.length > 200) s.log.shift()
        },
      })
      s.state = 'synced'
      s.lastSync = { at: new Date().toISOString(), ms: r.ms, files: r.files, pods: r.pods }
      this.emit('change')
      this.emit('synced', image.name, r.ms)
    } catch (err) {
      s.log.push(`live sync failed (${errorMessage(err)}): a full build instead`)
      this.request(image.name, `changed ${file} (sync failed)`)
    }
  }

  /** Watches each image's context: a save under its deps or its sync rules syncs or builds. */
  watch(debounceMs?: number): Promise<void> {
    for (const image of Object.values(this.ns.images)) {
      this.watchers.push(
        watchDebounced(image.context, {
          debounceMs,
          relevant: (file) => {
            const abs = path.join(image.context, file)
            return isImageDep(image, abs) || syncRuleFor(image, abs) !== undefined
          },
          onChange: (file, files) => void this.saved(image, file, files),
        }),
      )
    }
    return Promise.all(this.watchers.map((w) => w.ready)).then(() => {})
  }

  /** Waits for running builds (a stop lets them finish their push rather than leave half an upload). */
  async close(): Promise<void> {
    this.closed = true
    for (const w of this.watchers) w.close()
    await Promise.all(this.running.values())
  }
}
