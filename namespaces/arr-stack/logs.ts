#!/usr/bin/env -S sh -c 'exec "${0%/*}/../../shared/bin/nsops-node" "$0" "$@"'
// Follow the logs of arr-stack's apps (--help for flags): [APP] [--since DUR] [--tail N] [-o json] …
import ns from './namespace.ts'
import { runMain } from '../../shared/core/cli.ts'

runMain(async () => (await import('../../shared/commands/logs.ts')).logs(ns, process.argv.slice(2)))
