// tk-show: an environment's objects as one YAML stream, as `tk show`.
import { parseCommand } from '../core/cli.ts'
import { ExitCode } from '../core/errors.ts'
import { setJsonMode } from '../core/output.ts'
import { toYamlStream } from '../tanka/export.ts'
import {
  engineOf,
  environmentArg,
  renderShown,
  rootAndEngineHelp,
  rootOptions,
  tankaRoot,
} from '../tanka/command-line.ts'

const usage = `
Usage: just tk-show ENV [--json] [--root DIR] [--engine NAME]

Renders the environment (tanka/environments/ENV) and prints its Kubernetes objects as
\`tk show\` does: one YAML stream, namespaces defaulted from spec.json, in apply order.
  --json             a JSON array instead of YAML${rootAndEngineHelp}
`

export async function tkShow(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(argv, {
    usage,
    allowPositionals: true,
    options: { json: { type: 'boolean' }, ...rootOptions },
  })
  if (values.json) setJsonMode(true)
  const env = environmentArg(positionals, tankaRoot(values.root), usage)
  const { objects } = await renderShown(env, engineOf(values.engine))
  process.stdout.write(values.json ? `${JSON.stringify(objects, null, 2)}\n` : toYamlStream(objects))
  return ExitCode.ok
}
