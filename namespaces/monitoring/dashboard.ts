#!/usr/bin/env -S sh -c 'exec "${0%/*}/../../shared/bin/nsops-node" "$0" "$@"'
// monitoring at a glance (--help for flags). The namespace's own touches live in namespace.ts.
import ns from './namespace.ts'
import { runMain } from '../../shared/core/cli.ts'

runMain(async () => (await import('../../shared/commands/dashboard.ts')).dashboard(ns, process.argv.slice(2)))
