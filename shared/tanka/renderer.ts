// The project's own Tanka-compatible renderer (tanka/renderer, go-jsonnet with Tanka's
// import paths and native functions), provisioned like every other tool: built once from
// this repo's sources and cached under their hash.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { NsopsError } from '../core/errors.ts'
import { toolPath } from '../tools/provision.ts'
import { shown, type TankaEnvironment } from './environments.ts'
import { parseRenderError, renderFailure } from './render-error.ts'

const run = promisify(execFile)
const MAX_OUTPUT = 512 * 1024 * 1024

export interface RendererTools {
  /** the tanka-renderer binary; default: provisioned */
  renderer?: string
  /** the helm binary helmTemplate runs; default: the pinned helm */
  helm?: string
  /** the target cluster's Kubernetes version, for helmTemplate calls that set no kubeVersion */
  kubeVersion?: string
}

export async function rendererBinary(): Promise<string> {
  return toolPath('tanka-renderer')
}

/** Evaluates the environment's main.jsonnet (`tk eval`): the raw output, before tk's processing. */
export async function evaluateEnvironment(env: TankaEnvironment, tools: RendererTools = {}): Promise<unknown> {
  const renderer = tools.renderer ?? (await rendererBinary())
  const helm = tools.helm ?? (await toolPath('helm'))
  let stdout: string
  try {
    const kubeVersion = tools.kubeVersion ? ['--kube-version', tools.kubeVersion] : []
    ;({ stdout } = await run(renderer, ['eval', '--errors', 'json', '--helm', helm, ...kubeVersion, env.dir], {
      maxBuffer: MAX_OUTPUT,
      cwd: env.root,
    }))
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string; code?: number | string }
    if (typeof e.code === 'string') {
      throw new NsopsError(`cannot run the Tanka renderer ${renderer}: ${e.message}`, {
        cause: err,
        hint: 'Run `just setup` to build it again.',
      })
    }
    throw renderFailure(env, parseRenderError(e.stderr ?? ''))
  }
  try {
    return JSON.parse(stdout) as unknown
  } catch (err) {
    throw new NsopsError(`the Tanka renderer printed something that is not JSON for ${env.name}.`, {
      cause: err,
      hint: 'Run again with --debug and report it.',
    })
  }
}

export interface FormatResult {
  /** files whose formatting differs (rewritten unless `test`) */
  changed: string[]
}

/** `tk fmt` over the given paths: jsonnetfmt's default style; `test` writes nothing. */
export async function formatJsonnet(
  paths: string[],
  opts: { test?: boolean; renderer?: string } = {},
): Promise<FormatResult> {
  const renderer = opts.renderer ?? (await rendererBinary())
  const args = ['fmt', '--errors', 'json', ...(opts.test ? ['--test'] : []), ...paths]
  try {
    const { stdout } = await run(renderer, args, { maxBuffer: MAX_OUTPUT })
    return { changed: stdout.split('\n').filter(Boolean) }
  } catch (err) {
    const e = err as { code?: number | string; stdout?: string; stderr?: string; message: string }
    // exit 1 with --test: files need formatting, listed on stdout
    if (e.code === 1) return { changed: (e.stdout ?? '').split('\n').filter(Boolean) }
    const report = parseRenderError(e.stderr ?? '')
    const at = report.file ? `${shown(report.file)}:${report.line}:${report.column}: ` : ''
    throw new NsopsError(`cannot format Jsonnet: ${at}${report.message || e.message}`, {
      cause: err,
      hint: 'A file that does not parse cannot be formatted; fix the syntax at that place first.',
    })
  }
}
