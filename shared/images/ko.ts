// `ko`: a Go main package built into an image with no Dockerfile and no daemon (ko v0.19.1,
// pinned). ko pulls its base from a registry, so `scratch` and local bases are pushed into the
// image's registry first (base.ts); by default the base is scratch, which keeps it offline.
import path from 'node:path'
import { cacheDir } from '../core/paths.ts'
import type { ImageSpec, KoBuild } from '../config/image-types.ts'
import { toolPath } from '../tools/provision.ts'
import { resolveImageBase, scratchBase } from './base.ts'
import { runStep } from './process.ts'
import type { BuilderRun, BuildStepContext } from './build.ts'

export async function buildKo(image: ImageSpec, ctx: BuildStepContext): Promise<BuilderRun> {
  const b = image.build as KoBuild
  const baseOpts = { root: ctx.root, host: ctx.registry.host, platform: image.platform, onLine: ctx.onLine }
  const base = (await resolveImageBase(b.base, baseOpts)) ?? (await scratchBase(baseOpts))
  const ko = await toolPath('ko')
  const repo = ctx.ref.replace(/:[^:/]+$/, '')
  const tag = ctx.ref.slice(repo.length + 1)
  const args = ['build', '--bare', '--platform', image.platform, '--tags', tag, '--sbom', 'none']
  if (ctx.registry.plainHttp) args.push('--insecure-registry')
  args.push(b.main ?? '.')
  ctx.onLine(`$ KO_DOCKER_REPO=${repo} KO_DEFAULTBASEIMAGE=${base} ko ${args.join(' ')}`)
  const stdout = await runStep('ko build', ko, args, {
    cwd: image.context,
    env: {
      KO_DOCKER_REPO: repo,
      KO_DEFAULTBASEIMAGE: base,
      KOCACHE: path.join(cacheDir(), 'ko'),
      CGO_ENABLED: '0',
    },
    onLine: ctx.onLine,
    signal: ctx.signal,
  })
  const pushed = stdout.trim().split('\n').pop() ?? ''
  return { pushed, builder: 'ko' }
}
