// `dockerfile`: built by the first of buildah, podman, BuildKit (buildctl talking to a running
// buildkitd) or docker (with an engine that answers) that this machine has; the log says
// which ran, and with none the error says what to install. None of them is pinned: a
// Dockerfile build is the user's own toolchain, like `go` for a binary build.
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { NsopsError } from '../core/errors.ts'
import type { DockerfileBuild, ImageSpec } from '../config/image-types.ts'
import { imageDigest } from './crane.ts'
import { runStep } from './process.ts'
import type { BuilderRun, BuildStepContext } from './build.ts'

const run = promisify(execFile)

type Tool = 'buildah' | 'podman' | 'buildctl' | 'docker'

function onPath(binary: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter).filter(Boolean)) {
    const p = path.join(dir, binary)
    try {
      fs.accessSync(p, fs.constants.X_OK)
      return p
    } catch {
      /* next */
    }
  }
  return undefined
}

/** The first usable Dockerfile builder, and why the others were passed over. */
export async function dockerfileBuilder(): Promise<{ tool?: Tool; path?: string; skipped: string[] }> {
  const skipped: string[] = []
  for (const tool of ['buildah', 'podman', 'buildctl', 'docker'] as Tool[]) {
    const p = onPath(tool)
    if (!p) {
      skipped.push(`${tool}: not installed`)
      continue
    }
    // buildctl and docker are clients: they need their daemon
    const probe = tool === 'buildctl' ? ['debug', 'workers'] : tool === 'docker' ? ['info'] : ['--version']
    try {
      await run(p, probe, { timeout: 5000 })
      return { tool, path: p, skipped }
    } catch {
      skipped.push(
        `${tool}: installed, but ${tool === 'buildctl' ? 'no buildkitd answers' : tool === 'docker' ? 'no Docker engine answers' : 'it does not run'}`,
      )
    }
  }
  return { skipped }
}

export async function buildDockerfile(image: ImageSpec, ctx: BuildStepContext): Promise<BuilderRun> {
  const b = image.build as DockerfileBuild
  const found = await dockerfileBuilder()
  if (!found.tool || !found.path)
    throw new NsopsError(`image ${image.name}: no Dockerfile builder on this machine (${found.skipped.join('; ')}).`, {
      hint:
        'Install one: `apt-get install buildah` (daemonless, rootless; Debian 12 ships 1.28) or podman; or run ' +
        'buildkitd and put buildctl on PATH. Or build without a Dockerfile: `build: { kind: "binary" }` or `{ kind: "ko" }`.',
    })
  const dockerfile = path.resolve(image.context, b.dockerfile ?? 'Dockerfile')
  const buildArgs = Object.entries(b.args ?? {}).flatMap(([k, v]) => ['--build-arg', `${k}=${v}`])
  const target = image.target ? ['--target', image.target] : []
  // buildah, podman and docker take the same build flags
  const buildArgv = (verb: string) => [
    verb,
    '--file',
    dockerfile,
    '--platform',
    image.platform,
    ...target,
    ...buildArgs,
    '--tag',
    ctx.ref,
    '.',
  ]
  const opts = { cwd: image.context, onLine: ctx.onLine, signal: ctx.signal }
  const tls = ctx.registry.plainHttp ? ['--tls-verify=false'] : []
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-dockerfile-'))
  const digestFile = path.join(dir, 'digest')
  ctx.onLine(`building with ${found.tool} (${found.path})`)
  try {
    switch (found.tool) {
      case 'buildah':
      case 'podman': {
        const args = buildArgv(found.tool === 'buildah' ? 'bud' : 'build')
        ctx.onLine(`$ ${found.tool} ${args.join(' ')}`)
        await runStep(`${found.tool} build`, found.path, args, opts)
        await runStep(
          `${found.tool} push`,
          found.path,
          ['push', ...tls, '--digestfile', digestFile, ctx.ref, `docker://${ctx.ref}`],
          opts,
        )
        break
      }
      case 'buildctl': {
        const args = [
          'build',
          '--frontend',
          'dockerfile.v0',
          '--local',
          'context=.',
          '--local',
          `dockerfile=${path.dirname(dockerfile)}`,
          '--opt',
          `filename=${path.basename(dockerfile)}`,
          '--opt',
          `platform=${image.platform}`,
          ...(image.target ? ['--opt', `target=${image.target}`] : []),
          ...Object.entries(b.args ?? {}).flatMap(([k, v]) => ['--opt', `build-arg:${k}=${v}`]),
          '--output',
          `type=image,name=${ctx.ref},push=true${ctx.registry.plainHttp ? ',registry.insecure=true' : ''}`,
        ]
        ctx.onLine(`$ buildctl ${args.join(' ')}`)
        await runStep('buildctl build', found.path, args, opts)
        break
      }
      case 'docker': {
        const args = buildArgv('build')
        ctx.onLine(`$ docker ${args.join(' ')}`)
        await runStep('docker build', found.path, args, opts)
        await runStep('docker push', found.path, ['push', ctx.ref], opts)
        break
      }
    }
    const digest = fs.existsSync(digestFile) ? fs.readFileSync(digestFile, 'utf8').trim() : await imageDigest(ctx.ref)
    return { pushed: `${ctx.ref.replace(/:[^:/]+$/, '')}@${digest}`, builder: `dockerfile (${found.tool})` }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}
