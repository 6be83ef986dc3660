// tk-fmt: the Tanka project's Jsonnet in jsonnetfmt's style, as `tk fmt`.
import fs from 'node:fs'
import path from 'node:path'
import { parseCommand } from '../core/cli.ts'
import { ExitCode, NsopsError } from '../core/errors.ts'
import { c, log } from '../core/output.ts'
import { shown } from '../tanka/environments.ts'
import { formatJsonnet } from '../tanka/renderer.ts'
import { tankaRoot } from '../tanka/command-line.ts'

const usage = `
Usage: just tk-fmt [--test] [PATH...] [--root DIR]

Formats the Jsonnet (.jsonnet, .libsonnet) of the Tanka project, or of PATHs, in jsonnetfmt's
style as \`tk fmt\` does (vendor/ and hidden files are left alone).
  --test             change nothing; list the files that are not formatted and exit 1 if any
  --root DIR         the Tanka project (default: tanka/, or $NSOPS_TANKA_ROOT)
`

export async function tkFmt(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(argv, {
    usage,
    allowPositionals: true,
    options: { test: { type: 'boolean' }, root: { type: 'string' } },
  })
  const paths = positionals.length ? positionals.map((p) => path.resolve(p)) : [tankaRoot(values.root)]
  for (const p of paths) if (!fs.existsSync(p)) throw new NsopsError(`${p} does not exist.`)
  const { changed } = await formatJsonnet(paths, { test: values.test })
  if (values.test) {
    if (changed.length === 0) {
      log.ok('all Jsonnet is formatted')
      return ExitCode.ok
    }
    log.fail(`${changed.length} file(s) are not formatted:`)
    for (const f of changed) process.stdout.write(`${shown(f)}\n`)
    log.info(c.dim('  run `just tk-fmt` to format them'))
    return ExitCode.usage
  }
  for (const f of changed) log.info(`formatted ${shown(f)}`)
  if (changed.length === 0) log.ok('all Jsonnet was formatted already')
  return ExitCode.ok
}
