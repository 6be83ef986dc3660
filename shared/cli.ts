// How every nsops command starts and ends: parse flags, print --help, map errors to the
// documented exit codes (stack traces only with --debug), exit 130 on Ctrl-C.
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { ExitCode, NsopsError, formatError, isNsopsError } from './errors.ts'

export interface CommandSpec<O extends NonNullable<ParseArgsConfig['options']>> {
  usage: string
  options: O
  allowPositionals?: boolean
}

export function parseCommand<O extends NonNullable<ParseArgsConfig['options']>>(argv: string[], spec: CommandSpec<O>) {
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      options: { ...spec.options, help: { type: 'boolean', short: 'h' }, debug: { type: 'boolean' } },
      allowPositionals: spec.allowPositionals ?? false,
      strict: true,
    })
  } catch (err) {
    throw new NsopsError((err as Error).message.split('\n')[0], { hint: `Usage:\n${spec.usage}` })
  }
  if ((parsed.values as { help?: boolean }).help) {
    process.stdout.write(`${spec.usage.trim()}\n`)
    process.exit(ExitCode.ok)
  }
  return parsed
}

/** Runs a command's main function and turns its outcome into an exit code. */
export function runMain(main: () => Promise<number | void>): void {
  const debug = process.argv.includes('--debug')
  main().then(
    (code) => process.exit(code ?? ExitCode.ok),
    (err) => {
      process.stderr.write(`${formatError(err, debug)}\n`)
      process.exit(isNsopsError(err) ? err.exitCode : ExitCode.usage)
    },
  )
}
