// tk-show: an environment's objects as one YAML stream, as `tk show`.
import { ExitCode } from '../core/errors.ts'
import { toYamlStream } from '../tanka/export.ts'
import { engineOf, parseEnvironmentCommand, renderShown, rootAndEngineHelp } from '../tanka/command-line.ts'

const usage = `
Usage: just tk-show ENV [--json] [--root DIR] [--engine NAME]

Renders the environment (tanka/environments/ENV) and prints its Kubernetes objects as
\`tk show\` does: one YAML stream, namespaces defaulted from spec.json, in apply order.
  --json             a JSON array instead of YAML${rootAndEngineHelp}
`

export async function tkShow(argv: string[]): Promise<number> {
  const { values, env } = parseEnvironmentCommand(argv, usage, { json: { type: 'boolean' } })
  const { objects } = await renderShown(env, engineOf(values.engine))
  process.stdout.write(values.json ? `${JSON.stringify(objects, null, 2)}\n` : toYamlStream(objects))
  return ExitCode.ok
}
