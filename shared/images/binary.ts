// `binary`: the user's host build (go build, cargo, npm …), then its output files appended as
// one layer onto a base with crane (`append`, then `mutate` for entrypoint, workdir, env and
// platform): BRRTRouter's "local builds, not container builds". The layer is written with a
// fixed mtime and owner, so an unchanged binary gives the same digest and nothing rolls out.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import * as tar from 'tar'
import { NsopsError } from '../core/errors.ts'
import type { BinaryBuild, ImageSpec } from '../config/image-types.ts'
import { resolveImageBase } from './base.ts'
import { crane } from './crane.ts'
import { runStep } from './process.ts'
import type { BuilderRun, BuildStepContext } from './build.ts'

export async function buildBinary(image: ImageSpec, ctx: BuildStepContext): Promise<BuilderRun> {
  const b = image.build as BinaryBuild
  const [goos, goarch] = image.platform.split('/')
  const t0 = performance.now()
  ctx.onLine(`$ ${b.command}`)
  await runStep('the build command', 'sh', ['-c', b.command], {
    cwd: image.context,
    env: { GOOS: goos, GOARCH: goarch, CGO_ENABLED: '0' },
    onLine: ctx.onLine,
    signal: ctx.signal,
  })
  const hostMs = performance.now() - t0
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-layer-'))
  try {
    const layer = await layerOf(image, b, dir)
    const base = await resolveImageBase(b.base, {
      root: ctx.root,
      host: ctx.registry.host,
      platform: image.platform,
      onLine: ctx.onLine,
    })
    const appendArgs = ['append', '--new_layer', layer, '--new_tag', ctx.ref]
    if (base) appendArgs.push('--base', base, '--platform', image.platform)
    else appendArgs.push('--oci-empty-base')
    ctx.onLine(`crane ${appendArgs.join(' ')}`)
    let pushed = (await crane(appendArgs)).stdout.trim()
    const mutate: string[] = []
    if (!base) mutate.push('--set-platform', image.platform)
    if (b.entrypoint) mutate.push('--entrypoint', b.entrypoint.join(','))
    if (b.cmd) mutate.push('--cmd', b.cmd.join(','))
    if (b.workdir) mutate.push('--workdir', b.workdir)
    for (const [k, v] of Object.entries(b.env ?? {})) mutate.push('--env', `${k}=${v}`)
    if (mutate.length) {
      ctx.onLine(`crane mutate ${mutate.join(' ')}`)
      pushed = (await crane(['mutate', ctx.ref, ...mutate, '--tag', ctx.ref])).stdout.trim()
    }
    return { pushed, hostMs, builder: 'binary (host build + crane append)' }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

/** The files the build made, at their places in the image, as one tar. */
async function layerOf(image: ImageSpec, b: BinaryBuild, dir: string): Promise<string> {
  const root = path.join(dir, 'root')
  for (const [from, to] of Object.entries(b.files)) {
    const src = path.resolve(image.context, from)
    if (!fs.existsSync(src))
      throw new NsopsError(`image ${image.name}: the build command made no ${from} (in ${image.context}).`, {
        hint: `images.${image.name}.build.files maps what \`${b.command}\` writes, relative to the context, to where it goes in the image.`,
      })
    const dest = path.join(root, to.replace(/^\/+/, ''))
    fs.mkdirSync(path.dirname(dest), { recursive: true })
    fs.cpSync(src, dest, { recursive: true })
  }
  const out = path.join(dir, 'layer.tar')
  const top = fs.readdirSync(root)
  // portable: no uid/gid names; a fixed mtime: the same files give the same layer digest
  await tar.c({ file: out, cwd: root, portable: true, mtime: new Date(0) }, top)
  return out
}
