# nsops: operate a Flux-managed cluster one namespace at a time.
# `just --list` shows every recipe; each script also answers --help.

set shell := ["bash", "-euo", "pipefail", "-c"]
# Recipe arguments reach the scripts as "$@", exactly as typed: `just deploy NS -m "a b $HOME"`
# passes one unexpanded argument (`{{FLAGS}}` would be re-split and evaluated by the shell).
# Every recipe `exec`s node, so no shell sits between just and node: Ctrl-C and SIGTERM reach
# node directly, and its exit code is just's. [no-exit-message]: the scripts print their own
# `error:` + `hint:` (and drift exits 1 for "drift found"), so just adds no "recipe failed" line.
set positional-arguments
export PATH := justfile_directory() + "/node_modules/.bin:" + env_var("PATH")

nsops := justfile_directory() + "/shared/bin/nsops.ts"

import 'tanka/tanka.just'

# list the recipes
default:
    @{{just_executable()}} --list --unsorted

# install npm dependencies and provision every pinned tool (first run builds them: ~11 min)
[no-exit-message]
setup *FLAGS:
    @[ -f node_modules/.package-lock.json ] || npm ci; exec "{{nsops}}" setup "$@"

# ensure a cluster (allowed context → kind/k3d → sim), bootstrap it, run the dev loops of NS… (default: all) in one view
[no-exit-message]
dev-up *NS:
    @exec "{{nsops}}" dev-up "$@"

# stop running dev loops, resume every Flux object nsops suspended, stop the sim cluster
[no-exit-message]
dev-down *FLAGS:
    @exec "{{nsops}}" dev-down "$@"

# the cluster and one line per namespace (dev loop, health, Flux)
[no-exit-message]
dev-status *FLAGS:
    @exec "{{nsops}}" dev-status "$@"

# the dev loop for one namespace (= ./namespaces/NS/dev.ts); --ci applies once and waits
[no-exit-message]
dev NS *FLAGS:
    @exec "{{nsops}}" dev "$@"

# one namespace at a glance (= ./namespaces/NS/dashboard.ts); --json, --watch, --check
[no-exit-message]
dashboard NS *FLAGS:
    @exec "{{nsops}}" dashboard "$@"

# follow the logs of APP's pods in NS (no APP: every pod), across restarts; --since, --tail, --include/--exclude, --previous, -o json
[no-exit-message]
logs NS *ARGS:
    @exec "{{nsops}}" logs "$@"

# run a namespace's typed zx task NAME from its namespace.ts (no NAME: list them)
[no-exit-message]
task NS *ARGS:
    @exec "{{nsops}}" task "$@"

# GitOps deploy: validate, diff, commit, push, reconcile Flux, wait, roll back on failure
[no-exit-message]
deploy NS *FLAGS:
    @exec "{{nsops}}" deploy "$@"

# what in the live NS differs from git and who changed it, read-only (exit 0 in sync, 1 drift, 2 error); --baseline, -o json
[no-exit-message]
drift NS *FLAGS:
    @exec "{{nsops}}" drift "$@"

# revert the last deploy commit of NS (a new commit), push and reconcile
[no-exit-message]
rollback NS *FLAGS:
    @exec "{{nsops}}" deploy "$1" --rollback "${@:2}"

# build the prod overlay of NS (default: all), check schemas, server-side dry-run when a cluster answers
[no-exit-message]
validate *NS:
    @exec "{{nsops}}" validate "$@"

# what CI runs on a pull request: changed → validate → diff → e2e (or one STEP); --base REF (default: the upstream branch)
[no-exit-message]
ci *ARGS:
    @exec "{{nsops}}" ci "$@"

# what `just deploy NS` would change in the cluster (server-side diff, Secrets masked)
[no-exit-message]
diff NS *FLAGS:
    @exec "{{nsops}}" deploy "$1" --dry-run "${@:2}"

# scaffold namespaces/NAME with config, scripts, overlays and its Flux Kustomization
[no-exit-message]
new-namespace NAME:
    @exec "{{nsops}}" new-namespace "$@"

# start the local cluster or find it running (sim without Docker; --provider kind|k3d|existing)
[no-exit-message]
cluster-up *FLAGS:
    @exec "{{nsops}}" cluster-up "$@"

# stop every process of the sim cluster (state kept; --purge deletes it)
[no-exit-message]
cluster-down *FLAGS:
    @exec "{{nsops}}" cluster-down "$@"

# each cluster component: running, stopped, or dead with its log tail
[no-exit-message]
cluster-status *FLAGS:
    @exec "{{nsops}}" cluster-status "$@"

# type-check and run every test (unit, integration on a real sim cluster, end to end)
test *FILTER:
    @NSOPS_TEST_ONLY="$(IFS=,; echo "$*")" exec test/run.sh

# format the TypeScript and JavaScript with Prettier (`just test` checks it)
fmt:
    @prettier --write --log-level warn "**/*.{ts,mts,mjs}"

# typescript-eslint, the layering check of shared/ and the type check (all part of `just test`)
lint:
    @eslint --max-warnings 0 . && exec shared/bin/nsops-node test/layers.ts && tsc --noEmit -p .

# benchmarks: print figures and ratios (see bench/README.md)
bench *WHICH:
    @exec shared/bin/nsops-node bench/run.ts "$@"
