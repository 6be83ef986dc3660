// tk-diff: what applying an environment would change, as a server-side dry run answers.
import { ExitCode } from '../core/errors.ts'
import { targetOptions } from '../kube/target.ts'
import {
  clusterHelp,
  engineOf,
  EXIT_DIFF,
  parseEnvironmentCommand,
  reachableCluster,
  renderShown,
  rootAndEngineHelp,
} from '../tanka/command-line.ts'

const usage = `
Usage: just tk-diff ENV [--with-prune] [--exit-zero] [--json] [--root DIR] [--engine NAME]

What applying the environment would change, as the API server answers a server-side dry run
(defaults filled in, Secret values masked). Exits ${EXIT_DIFF} when there are changes (as \`tk diff\`),
0 when there are none, 1 when the server rejects an object.
  --with-prune       also show what \`tk-apply --prune\` would delete
  --exit-zero        exit 0 even when there are changes
  --json             the diff as data${rootAndEngineHelp}${clusterHelp}
`

export async function tkDiff(argv: string[]): Promise<number> {
  const { values, env } = parseEnvironmentCommand(argv, usage, {
    'with-prune': { type: 'boolean' },
    'exit-zero': { type: 'boolean' },
    json: { type: 'boolean' },
    ...targetOptions,
  })
  const kube = await reachableCluster(values)
  const { objects } = await renderShown(env, engineOf(values.engine), kube)
  const { diffEnvironment } = await import('../tanka/apply.ts')
  const { renderDiff } = await import('../apply/diff.ts')
  const result = await diffEnvironment(kube, env, objects, { withPrune: values['with-prune'] })
  process.stdout.write(values.json ? `${JSON.stringify(result, null, 2)}\n` : `${renderDiff(result)}\n`)
  if (result.objects.some((d) => d.error)) return ExitCode.usage
  const changes = result.objects.some((d) => d.action !== 'unchanged')
  return changes && !values['exit-zero'] ? EXIT_DIFF : ExitCode.ok
}
