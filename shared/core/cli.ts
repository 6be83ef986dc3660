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
  // kubectl and flux users type `-o json`: every command with --json takes it as well
  const takesJson = (spec.options as Record<string, { type?: string }>).json?.type === 'boolean'
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        ...spec.options,
        ...(takesJson ? { output: { type: 'string', short: 'o' } } : {}),
        help: { type: 'boolean', short: 'h' },
        debug: { type: 'boolean' },
      },
      allowPositionals: spec.allowPositionals ?? false,
      strict: true,
    })
  } catch (err) {
    throw parseError(err as Error & { code?: string }, spec.usage)
  }
  const values = parsed.values as { help?: boolean; output?: string; json?: boolean }
  if (values.help) {
    process.stdout.write(`${spec.usage.trim()}\n`)
    process.exit(ExitCode.ok)
  }
  if (values.output !== undefined) {
    if (values.output !== 'json')
      throw new NsopsError(`-o ${values.output} is not supported: the only output format is json.`, {
        hint: 'use -o json (or --json).',
      })
    values.json = true
  }
  return parsed
}

/** The command's name as its usage spells it: `just dashboard NS` and `./namespaces/x/dashboard.ts` → dashboard. */
export function commandName(usage: string): string {
  const words = (usage.match(/Usage:\s*(.*)/)?.[1] ?? '').split(/\s+/)
  const word = words[0] === 'just' || words[0] === 'nsops' ? words[1] : words[0]
  return (word ?? 'nsops').replace(/^.*\//, '').replace(/\.ts$/, '')
}

/**
 * A flag parseArgs refused, as one line that names it and the command (`unknown flag --foo
 * for dashboard`), and where to look: the whole usage is what --help is for.
 */
function parseError(err: Error & { code?: string }, usage: string): NsopsError {
  const name = commandName(usage)
  const first = err.message.split('\n')[0]
  let message: string
  if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    message = `unknown flag ${first.match(/'([^']+)'/)?.[1] ?? first} for ${name}`
  } else if (err.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    const flag = first.match(/'(-[^ ']+)/)?.[1]
    message = flag ? `flag ${flag} of ${name} needs a value` : `${first} (${name})`
  } else if (err.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
    message = `${name} takes no argument ${first.match(/'([^']+)'/)?.[1] ?? ''}`.trimEnd()
  } else {
    message = `${first} (${name})`
  }
  return new NsopsError(message, { hint: `see --help`, cause: err })
}

const UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
}

/**
 * A Go duration (time.ParseDuration, how flux and kubectl print them: `90s`, `1m30s`, `5m0s`,
 * `300ms`, `1.5h`) in milliseconds; undefined when it is not one. A bare number is seconds.
 */
export function goDuration(text: string | undefined): number | undefined {
  const s = text?.trim()
  if (!s) return undefined
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s) * 1000
  if (s === '0') return 0
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y
  let total = 0
  let at = 0
  for (let m = re.exec(s); m; m = re.exec(s)) {
    total += Number(m[1]) * UNITS[m[2]]
    at = re.lastIndex
  }
  return at === s.length ? total : undefined
}

/** A duration flag's value in milliseconds (> 0 unless `allowZero`), or an NsopsError that names the flag. */
export function parseDuration(text: string, flag = '--timeout', opts: { allowZero?: boolean } = {}): number {
  const ms = goDuration(text)
  if (ms === undefined)
    throw new NsopsError(`${flag} ${JSON.stringify(text)} is not a duration.`, {
      hint: `give it as Go and flux write them: e.g. ${flag} 90s, 1m30s, 5m or 1h.`,
    })
  if (!(ms > 0) && !(opts.allowZero && ms === 0))
    throw new NsopsError(`${flag} must be longer than 0, not ${JSON.stringify(text)}.`, { hint: `e.g. ${flag} 5m` })
  return ms
}

/** Runs a command's main function and turns its outcome into an exit code. */
export function runMain(main: () => Promise<number | void>): void {
  const debug = process.argv.includes('--debug')
  // node ends a process whose event loop has nothing referenced left, with exit code 0, even
  // while main() still waits (on an idle keep-alive connection, an unref'd child or timer):
  // a cleanup cut short and reported as success. The process stays until main() settles.
  const hold = setInterval(() => {}, 1 << 30)
  main()
    .finally(() => clearInterval(hold))
    .then(
      (code) => process.exit(code ?? ExitCode.ok),
      (err) => {
        process.stderr.write(`${formatError(err, debug)}\n`)
        process.exit(isNsopsError(err) ? err.exitCode : ExitCode.usage)
      },
    )
}
