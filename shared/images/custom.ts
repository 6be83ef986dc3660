// `custom`: the user's own typed zx function builds and pushes `ref` (Tilt's custom_build with
// outputs_image_ref_to); nsops then reads the digest it pushed.
import { $, type LogEntry } from 'zx'
import type { CustomBuild, ImageSpec } from '../config/image-types.ts'
import { NsopsError, errorMessage } from '../core/errors.ts'
import { imageDigest } from './crane.ts'
import type { BuilderRun, BuildStepContext } from './build.ts'

export async function buildCustom(image: ImageSpec, ctx: BuildStepContext): Promise<BuilderRun> {
  const b = image.build as CustomBuild
  const partial = new Map<string, string>()
  const sink = (entry: LogEntry) => {
    if (entry.kind === 'cmd') ctx.onLine(`$ ${entry.cmd}`)
    else if (entry.kind === 'stdout' || entry.kind === 'stderr') {
      const parts = ((partial.get(entry.id) ?? '') + entry.data.toString()).split('\n')
      partial.set(entry.id, parts.pop() ?? '')
      for (const p of parts) ctx.onLine(p)
    } else if (entry.kind === 'end') {
      const rest = partial.get(entry.id)
      if (rest) ctx.onLine(rest)
      partial.delete(entry.id)
    }
  }
  const signal = ctx.signal ?? new AbortController().signal
  const shell = $({ cwd: image.context, verbose: true, log: sink, signal })
  await b.run({ $: shell, ref: ctx.ref, context: image.context, platform: image.platform, log: ctx.onLine, signal })
  let digest: string
  try {
    digest = await imageDigest(ctx.ref)
  } catch (err) {
    throw new NsopsError(`image ${image.name}: the custom build finished but ${ctx.ref} is not in the registry.`, {
      hint: `images.${image.name}.build.run must push exactly \`ref\` (${errorMessage(err)}).`,
    })
  }
  return { pushed: `${ctx.ref.replace(/:[^:/]+$/, '')}@${digest}`, builder: 'custom' }
}
