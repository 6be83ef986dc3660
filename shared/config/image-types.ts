// The typed `images:` of namespace.ts: how each image of the namespace is built, what rebuilds
// it, and how files reach a running container without a rebuild (Tilt's docker_build /
// custom_build + live_update, daemonless). Only types and their check here; the builders are
// in shared/images/.
import type { Shell } from 'zx'

/** `ko build` of a Go main package: no Dockerfile, no daemon. */
export interface KoBuild {
  kind: 'ko'
  /** the main package, relative to the image's context; default `.` */
  main?: string
  /**
   * the base image: a reference, `scratch`, `oci:PATH` (a local OCI layout) or `tarball:PATH`
   * (`docker save` / `crane pull` output), PATH relative to the namespace folder; default
   * `scratch` (ko's own default, cgr.dev/chainguard/static, needs the internet)
   */
  base?: string
}

/**
 * A host build command whose output files are appended as one layer onto a base image
 * (crane `mutate --append`): BRRTRouter's way, and the fastest.
 */
export interface BinaryBuild {
  kind: 'binary'
  /**
   * run with `sh -c` in the context folder; GOOS/GOARCH (from `platform`) and CGO_ENABLED=0
   * are set for it, e.g. `go build -o .out/hello .` or `cargo build --release`
   */
  command: string
  /** what it made → where it goes in the image: `{ '.out/hello': '/hello' }` (relative to the context) */
  files: Record<string, string>
  /** as KoBuild.base; default `scratch` */
  base?: string
  entrypoint?: string[]
  cmd?: string[]
  workdir?: string
  env?: Record<string, string>
}

/** A Dockerfile, built by the first of buildah, podman, BuildKit (buildctl) or docker present. */
export interface DockerfileBuild {
  kind: 'dockerfile'
  /** relative to the context; default `Dockerfile` */
  dockerfile?: string
  /** --build-arg NAME=VALUE */
  args?: Record<string, string>
}

export interface CustomBuildContext {
  /** zx's `$`, in the image's context folder */
  $: Shell
  /** where the image must be pushed (registry/repository:tag); nsops reads its digest afterwards */
  ref: string
  /** the context folder, absolute */
  context: string
  /** e.g. linux/amd64 */
  platform: string
  /** a line in the build's log */
  log: (line: string) => void
  signal: AbortSignal
}

/** Any builder (Tilt's custom_build with outputs_image_ref_to): a typed zx function that must push `ref`. */
export interface CustomBuild {
  kind: 'custom'
  run: (ctx: CustomBuildContext) => Promise<unknown>
}

export type ImageBuild = KoBuild | BinaryBuild | DockerfileBuild | CustomBuild
export type BuilderKind = ImageBuild['kind']
export const builderKinds: readonly BuilderKind[] = ['ko', 'binary', 'dockerfile', 'custom']

/** Live sync (Tilt's live_update): files copied into the running containers instead of a rebuild. */
export interface SyncRule {
  /** a folder or file, relative to the context */
  from: string
  /** the absolute path in the container */
  to: string
}

export interface RunRule {
  /** run in the container (`sh -c`) after a sync */
  cmd: string
  /** only when a synced file matches one of these globs (relative to the context); default: always */
  trigger?: string[]
}

export interface ImageInput {
  /** the folder the build runs in, relative to the namespace folder (`src/hello`, `../../apps/web`) */
  context: string
  /** globs, relative to the context, whose changes rebuild it; default every file of the context */
  deps?: string[]
  build: ImageBuild
  /** a Dockerfile's stage (dockerfile builds) */
  target?: string
  /** os/arch, default linux/<this machine's arch> */
  platform?: string
  /** files a save copies into the running containers instead of rebuilding */
  sync?: SyncRule[]
  /** commands run in the container after a sync */
  run?: RunRule[]
  /** globs (relative to the context) that force a full rebuild even when a sync rule covers them */
  fallBackOn?: string[]
}

/** An image as the commands see it: paths resolved, defaults filled. */
export interface ImageSpec {
  /** the key in `images:`; manifests name the image by it (`image: hello`) */
  name: string
  /** absolute */
  context: string
  deps: string[]
  build: ImageBuild
  target?: string
  platform: string
  sync: SyncRule[]
  run: RunRule[]
  fallBackOn: string[]
}
