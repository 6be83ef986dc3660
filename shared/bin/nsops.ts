#!/usr/bin/env -S sh -c 'exec "${0%/*}/nsops-node" "$0" "$@"'
// The one entry the justfile calls: `nsops <command> [flags]`. Commands load lazily so
// `--help` and light commands start fast.
import { runMain } from '../cli.ts'
import { NsopsError } from '../errors.ts'

const commands: Record<string, () => Promise<(argv: string[]) => Promise<number>>> = {
  'cluster-up': async () => (await import('../commands/cluster.ts')).clusterUp,
  'cluster-down': async () => (await import('../commands/cluster.ts')).clusterDown,
  'cluster-status': async () => (await import('../commands/cluster.ts')).clusterStatus,
  setup: async () => (await import('../commands/setup.ts')).setup,
}

runMain(async () => {
  const [name, ...argv] = process.argv.slice(2)
  if (name === '--help' || name === '-h') {
    process.stdout.write(`Usage: nsops <command> [flags]   (usually through just: \`just --list\`)\nCommands: ${Object.keys(commands).join(', ')}\nEach command answers --help.\n`)
    return 0
  }
  const load = name ? commands[name] : undefined
  if (!load) {
    throw new NsopsError(name ? `unknown command "${name}".` : 'no command given.', {
      hint: `Commands: ${Object.keys(commands).join(', ')}. Or run \`just --list\`.`,
    })
  }
  return (await load())(argv)
})
