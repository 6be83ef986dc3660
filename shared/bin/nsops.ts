#!/usr/bin/env -S sh -c 'exec "${0%/*}/nsops-node" "$0" "$@"'
// The one entry the justfile calls: `nsops <command> [flags]`. Commands load lazily so
// `--help` and light commands start fast.
import { runMain } from '../core/cli.ts'
import { NsopsError } from '../core/errors.ts'

const commands: Record<string, () => Promise<(argv: string[]) => Promise<number>>> = {
  'cluster-up': async () => (await import('../commands/cluster-up.ts')).clusterUp,
  'cluster-down': async () => (await import('../commands/cluster-down.ts')).clusterDown,
  'cluster-status': async () => (await import('../commands/cluster-status.ts')).clusterStatus,
  'pin-checksums': async () => (await import('../commands/pin-checksums.ts')).pinChecksums,
  setup: async () => (await import('../commands/setup.ts')).setup,
  'dev-up': async () => (await import('../commands/dev-up.ts')).devUp,
  'dev-down': async () => (await import('../commands/dev-down.ts')).devDown,
  'dev-status': async () => (await import('../commands/dev-status.ts')).devStatus,
  validate: async () => (await import('../commands/validate.ts')).validate,
  chart: async () => (await import('../commands/chart.ts')).chart,
  charts: async () => (await import('../commands/charts.ts')).charts,
  render: async () => (await import('../commands/render.ts')).render,
  ci: async () => (await import('../commands/ci.ts')).ci,
  'new-namespace': async () => (await import('../commands/new-namespace.ts')).newNamespace,
  init: async () => (await import('../commands/init.ts')).init,
  'tk-vendor': async () => (await import('../commands/tk-vendor.ts')).tkVendor,
  'tk-show': async () => (await import('../commands/tk-show.ts')).tkShow,
  'tk-diff': async () => (await import('../commands/tk-diff.ts')).tkDiff,
  'tk-apply': async () => (await import('../commands/tk-apply.ts')).tkApply,
  'tk-export': async () => (await import('../commands/tk-export.ts')).tkExport,
  'tk-fmt': async () => (await import('../commands/tk-fmt.ts')).tkFmt,
  'tk-validate': async () => (await import('../commands/tk-validate.ts')).tkValidate,
  // per-namespace commands: `nsops dashboard NS [flags]` = ./namespaces/NS/dashboard.ts [flags]
  dashboard: async () =>
    perNamespace(async (ns, argv) => (await import('../commands/dashboard.ts')).dashboard(ns, argv)),
  dev: async () => perNamespace(async (ns, argv) => (await import('../commands/dev.ts')).dev(ns, argv)),
  deploy: async () => perNamespace(async (ns, argv) => (await import('../commands/deploy.ts')).deploy(ns, argv)),
  // drift exits 2 on every error (a missing namespace included), like `flux diff`: 1 means drift
  drift: async () => async (argv) => {
    const { drift, asDriftError } = await import('../commands/drift.ts')
    try {
      return await perNamespace(drift)(argv)
    } catch (err) {
      throw asDriftError(err)
    }
  },
  task: async () => perNamespace(async (ns, argv) => (await import('../commands/task.ts')).task(ns, argv)),
  'browse-pvc': async () =>
    perNamespace(async (ns, argv) => (await import('../commands/browse-pvc.ts')).browsePvc(ns, argv)),
  reconcile: async () =>
    perNamespace(async (ns, argv) => (await import('../commands/reconcile.ts')).reconcile(ns, argv)),
  suspend: async () => perNamespace(async (ns, argv) => (await import('../commands/suspend.ts')).suspend(ns, argv)),
  resume: async () => perNamespace(async (ns, argv) => (await import('../commands/resume.ts')).resume(ns, argv)),
  build: async () => perNamespace(async (ns, argv) => (await import('../commands/build.ts')).build(ns, argv)),
  logs: async () => perNamespace(async (ns, argv) => (await import('../commands/logs.ts')).logs(ns, argv)),
}

type NsCommand = (ns: import('../config/namespace-config.ts').NamespaceConfig, argv: string[]) => Promise<number>

function perNamespace(run: NsCommand): (argv: string[]) => Promise<number> {
  return async ([name, ...argv]) => {
    const { loadNamespace, knownNamespaces } = await import('../config/namespaces.ts')
    if (!name || name.startsWith('-')) {
      throw new NsopsError('name a namespace first.', { hint: `Known namespaces: ${knownNamespaces().join(', ')}.` })
    }
    return run(await loadNamespace(name), argv)
  }
}

runMain(async () => {
  const [name, ...argv] = process.argv.slice(2)
  if (name === '--version' || name === '-V' || name === 'version') {
    return (await import('../commands/version.ts')).version()
  }
  if (name === '--help' || name === '-h') {
    process.stdout.write(
      `Usage: nsops <command> [flags]   (usually through just: \`just --list\`)\nCommands: ${Object.keys(commands).join(', ')}\nEach command answers --help. nsops --version prints the pinned versions.\n`,
    )
    return 0
  }
  // a flag before any command is answered as every command answers one: one line, then --help
  if (name?.startsWith('-')) throw new NsopsError(`unknown flag ${name} for nsops`, { hint: 'see --help' })
  const load = name ? commands[name] : undefined
  if (!load) {
    throw new NsopsError(name ? `unknown command "${name}".` : 'no command given.', {
      hint: `Commands: ${Object.keys(commands).join(', ')}. Or run \`just --list\`.`,
    })
  }
  return (await load())(argv)
})
