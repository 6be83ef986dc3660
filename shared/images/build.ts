// Builds one image of a namespace with its builder and pushes it to the registry, addressed by
// digest afterwards: `<registry>/<namespace>/<image>@sha256:…`. The tag (`dev`) only names the
// latest push; manifests get the digest (rewrite.ts), so a rollout is exactly this build.
import { NsopsError, errorMessage, isNsopsError } from '../core/errors.ts'
import type { ImageSpec } from '../config/image-types.ts'
import type { RegistryChoice } from './registry.ts'
import { crane } from './crane.ts'
import { StepFailed } from './process.ts'
import { buildBinary } from './binary.ts'
import { buildKo } from './ko.ts'
import { buildDockerfile } from './dockerfile.ts'
import { buildCustom } from './custom.ts'

export interface BuildStepContext {
  /** where the image is pushed: <host>/<namespace>/<image>:<tag> */
  ref: string
  registry: RegistryChoice
  /** the namespace folder (relative base paths) */
  root: string
  onLine: (line: string) => void
  signal?: AbortSignal
}

/** What a builder reports: the pushed reference by digest. */
export interface BuilderRun {
  pushed: string
  builder: string
  /** the host compile's share of the build (binary builds) */
  hostMs?: number
}

export interface BuiltImage {
  name: string
  builder: string
  /** <push host>/<ns>/<image>@sha256:… */
  ref: string
  /** what manifests name: <pull host>/<ns>/<image>@sha256:… */
  pullRef: string
  digest: string
  /** compressed size of the layers plus the config, bytes */
  size?: number
  ms: number
  hostMs?: number
  at: string
}

/** A build that failed: its log is the user's compiler output, shown where they look. */
export class ImageBuildError extends NsopsError {
  constructor(
    readonly image: string,
    message: string,
    readonly log: string[],
    hint?: string,
  ) {
    super(message, { hint })
  }
}

export function repositoryFor(host: string, namespace: string, image: string): string {
  return `${host}/${namespace}/${image}`
}

export async function buildImage(
  image: ImageSpec,
  opts: {
    namespace: string
    root: string
    registry: RegistryChoice
    tag?: string
    onLine?: (line: string) => void
    signal?: AbortSignal
  },
): Promise<BuiltImage> {
  const log: string[] = []
  const onLine = (l: string) => {
    log.push(l)
    if (log.length > 500) log.shift()
    opts.onLine?.(l)
  }
  const repo = repositoryFor(opts.registry.host, opts.namespace, image.name)
  const ctx: BuildStepContext = {
    ref: `${repo}:${opts.tag ?? 'dev'}`,
    registry: opts.registry,
    root: opts.root,
    onLine,
    signal: opts.signal,
  }
  const t0 = performance.now()
  const at = new Date().toISOString()
  let r: BuilderRun
  try {
    switch (image.build.kind) {
      case 'binary':
        r = await buildBinary(image, ctx)
        break
      case 'ko':
        r = await buildKo(image, ctx)
        break
      case 'dockerfile':
        r = await buildDockerfile(image, ctx)
        break
      case 'custom':
        r = await buildCustom(image, ctx)
        break
    }
  } catch (err) {
    const why = err instanceof StepFailed ? `${err.what} exited ${err.code ?? 'on a signal'}` : errorMessage(err)
    if (!(err instanceof StepFailed)) onLine(why)
    throw new ImageBuildError(
      image.name,
      `image ${image.name} did not build: ${why}`,
      log,
      isNsopsError(err) ? err.hint : `its output is above; the build ran in ${image.context}.`,
    )
  }
  const digest = r.pushed.split('@')[1]
  if (!digest?.startsWith('sha256:'))
    throw new ImageBuildError(image.name, `image ${image.name}: the builder printed no digest (${r.pushed})`, log)
  let size: number | undefined
  try {
    const m = JSON.parse((await crane(['manifest', `${repo}@${digest}`])).stdout) as {
      config?: { size?: number }
      layers?: { size?: number }[]
    }
    size = (m.config?.size ?? 0) + (m.layers ?? []).reduce((n, l) => n + (l.size ?? 0), 0)
  } catch {
    /* an index or an odd manifest: no size */
  }
  const ms = Math.round(performance.now() - t0)
  onLine(`pushed ${repo}@${digest} (${r.builder}, ${ms} ms)`)
  return {
    name: image.name,
    builder: r.builder,
    ref: `${repo}@${digest}`,
    pullRef: `${repositoryFor(opts.registry.pullHost, opts.namespace, image.name)}@${digest}`,
    digest,
    size,
    ms,
    hostMs: r.hostMs === undefined ? undefined : Math.round(r.hostMs),
    at,
  }
}
