#!/usr/bin/env -S sh -c 'exec "${0%/*}/../../shared/bin/nsops-node" "$0" "$@"'
// What in the live monitoring namespace differs from git, read-only (--help for flags; exit 0 in sync, 1 drift, 2 error).
import ns from './namespace.ts'
import { runMain } from '../../shared/core/cli.ts'

runMain(async () => (await import('../../shared/commands/drift.ts')).drift(ns, process.argv.slice(2)))
