#!/bin/sh
# The test command (`just test`): type-check, formatting, lint, then every test in one
# node:test process (the layering check of shared/ is one of them: test/unit/layers.test.ts).
# node:test prints its summary (# tests / # pass / # fail) that CI reads; running the entry
# directly (not `node --test`) keeps everything in one process with one shared sim cluster.
set -e
cd "$(dirname "$0")/.."
node_modules/.bin/tsc --noEmit -p .
node_modules/.bin/prettier --check --log-level warn "**/*.{ts,mts,mjs}" || {
  echo "formatting: the files above are not as Prettier writes them; run: just fmt" >&2
  exit 1
}
node_modules/.bin/eslint --max-warnings 0 .
# TAP for CI's summary, then every failure with its error once more at the end of the log.
export NODE_OPTIONS="${NODE_OPTIONS:-} --test-reporter=tap --test-reporter-destination=stdout --test-reporter=\"$PWD/test/failure-summary.mjs\" --test-reporter-destination=stdout"
# --test-force-exit (node refuses it in NODE_OPTIONS): node:test prints the summary only once
# nothing keeps the event loop alive, so one handle a test left behind made a CI run wait past
# its deadline with every test passed; test/all.ts names what was left.
exec shared/bin/nsops-node --test-force-exit test/all.ts "$@"
