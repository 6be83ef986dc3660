# nsops: operate a Flux-managed cluster one namespace at a time.
# `just --list` shows every recipe by group; each script also answers --help.

# just 1.55 brought this check; the pinned one (npm rust-just) is 1.57
set minimum-version := '1.55.0'
set shell := ["bash", "-euo", "pipefail", "-c"]
# Recipe arguments reach the scripts as "$@", exactly as typed: `just deploy NS -m "a b $HOME"`
# passes one unexpanded argument (`{{FLAGS}}` would be re-split and evaluated by the shell).
# Every recipe `exec`s node, so no shell sits between just and node: Ctrl-C and SIGTERM reach
# node directly, and its exit code is just's.
set positional-arguments
# no command echo; and no "recipe failed" line: the scripts print their own `error:` + `hint:`
# (and drift exits 1 for "drift found"), so just adds nothing to it.
set quiet
set no-exit-message
export PATH := justfile_directory() + "/node_modules/.bin:" + env_var("PATH")

nsops := justfile_directory() + "/shared/bin/nsops.ts"

import 'tanka/tanka.just'

# list the recipes
[private]
default:
    {{just_executable()}} --list --unsorted

# install npm dependencies and provision every pinned tool (the first run builds them: about half an hour on 2 cores)
[group('setup')]
setup *FLAGS:
    [ -f node_modules/.package-lock.json ] || npm ci; exec "{{nsops}}" setup "$@"

# write the sha256 of each pinned tool's release for linux/darwin × amd64/arm64 into k8s/versions.yaml (after a version bump)
[group('setup')]
pin-checksums *ARGS:
    exec "{{nsops}}" pin-checksums "$@"

# just's, nsops', Node's and every pinned tool's version (= nsops --version)
[group('setup')]
version:
    {{just_executable()}} --version; exec "{{nsops}}" --version

# ensure a cluster (allowed context → kind/k3d → sim), bootstrap it, run the dev loops of NS… (default: all) in one view
[group('dev')]
dev-up *NS:
    exec "{{nsops}}" dev-up "$@"

# stop running dev loops, resume every Flux object nsops suspended, stop the sim cluster
[group('dev')]
dev-down *FLAGS:
    exec "{{nsops}}" dev-down "$@"

# the cluster and one line per namespace (dev loop, health, Flux)
[group('dev')]
dev-status *FLAGS:
    exec "{{nsops}}" dev-status "$@"

# the dev loop for one namespace (= ./namespaces/NS/dev.ts); --ci applies once and waits
[group('dev')]
dev NS *FLAGS:
    exec "{{nsops}}" dev "$@"

# one namespace at a glance (= ./namespaces/NS/dashboard.ts); --json, --watch, --check
[group('dev')]
dashboard NS *FLAGS:
    exec "{{nsops}}" dashboard "$@"

# follow the logs of APP's pods in NS (no APP: every pod), across restarts; --since, --tail, --include/--exclude, --previous, -o json
[group('dev')]
logs NS *ARGS:
    exec "{{nsops}}" logs "$@"

# run a namespace's typed zx task NAME from its namespace.ts (no NAME: list them)
[group('dev')]
task NS *ARGS:
    exec "{{nsops}}" task "$@"

# build NS's images (namespace.ts images:; IMAGE… for some) and push them to the cluster's registry, by digest
[group('dev')]
build NS *ARGS:
    exec "{{nsops}}" build "$@"

# a shell in a throwaway pod that mounts PVC of NS (the pod is deleted when the shell ends)
[group('dev')]
browse-pvc NS PVC *FLAGS:
    exec "{{nsops}}" browse-pvc "$@"

# GitOps deploy: validate, diff, commit, push, reconcile Flux, wait, roll back on failure (asks first; --yes)
[group('deploy')]
deploy NS *FLAGS:
    exec "{{nsops}}" deploy "$@"

# what `just deploy NS` would change in the cluster (server-side diff, Secrets masked)
[group('deploy')]
diff NS *FLAGS:
    exec "{{nsops}}" deploy "$1" --dry-run "${@:2}"

# (no [confirm] on rollback and deploy: they show the plan and ask themselves, --yes answers;
# a [confirm] would ask a second time, before the plan)

# revert the last deploy commit of NS (a new commit), push and reconcile (asks first; --yes)
[group('deploy')]
rollback NS *FLAGS:
    exec "{{nsops}}" deploy "$1" --rollback "${@:2}"

# what in the live NS differs from git and who changed it, read-only (exit 0 in sync, 1 drift, 2 error); --baseline, -o json
[group('deploy')]
drift NS *FLAGS:
    exec "{{nsops}}" drift "$@"

# build what Flux applies to NS (default: all; its Flux Kustomizations, substituted), check schemas, server-side dry-run when a cluster answers
[group('deploy')]
validate *NS:
    exec "{{nsops}}" validate "$@"

# print what Flux would apply to NS, substituted (its Flux Kustomizations built as kustomize-controller builds them), for piping
[group('deploy')]
render NS *FLAGS:
    exec "{{nsops}}" render "$@"

# adopt this Flux repository as it is laid out: namespaces/NS/namespace.ts (layout: its Flux Kustomizations) and scripts for each namespace its Flux tree applies
[group('deploy')]
init *ARGS:
    exec "{{nsops}}" init "$@"

# scaffold namespaces/NAME with config, scripts, overlays and its Flux Kustomization
[group('deploy')]
new-namespace NAME:
    exec "{{nsops}}" new-namespace "$@"

# package a chart folder (or take a .tgz) and push it to the cluster's OCI registry as oci://HOST/charts/NAME:VERSION
[group('flux')]
chart *ARGS:
    exec "{{nsops}}" chart "$@"

# list the charts in the cluster's OCI registry and their versions
[group('flux')]
charts *FLAGS:
    exec "{{nsops}}" charts "$@"

# ask Flux to apply NS's Kustomization(s) now (--with-source: fetch the git source first), as flux reconcile ks
[group('flux')]
reconcile NS *FLAGS:
    exec "{{nsops}}" reconcile "$@"

# stop Flux applying NS (its Kustomizations suspended, with nsops' marker: who, when), as flux suspend ks
[group('flux')]
suspend NS *FLAGS:
    exec "{{nsops}}" suspend "$@"

# let Flux apply NS again (resumes nsops' suspensions; one made by hand only with --force), as flux resume ks
[group('flux')]
resume NS *FLAGS:
    exec "{{nsops}}" resume "$@"

# start the local cluster or find it running (sim without Docker; --provider kind|k3d|existing)
[group('cluster')]
cluster-up *FLAGS:
    exec "{{nsops}}" cluster-up "$@"

# stop every process of the sim cluster, its state kept for the next cluster-up (--purge deletes it)
[group('cluster')]
cluster-down *FLAGS:
    exec "{{nsops}}" cluster-down "$@"

# stop the sim cluster and delete its state (etcd data, PKI, git server): the next cluster-up starts from scratch
[group('cluster')]
[confirm("Delete the sim cluster's state (etcd data, PKI, its git server)? The next cluster-up starts from scratch. [y/N]")]
cluster-purge:
    exec "{{nsops}}" cluster-down --purge --yes

# each cluster component: running, stopped, or dead with its log tail
[group('cluster')]
cluster-status *FLAGS:
    exec "{{nsops}}" cluster-status "$@"

# what CI runs on a pull request: changed → validate → diff → e2e (or one STEP); --base REF (default: the upstream branch)
[group('ci')]
ci *ARGS:
    exec "{{nsops}}" ci "$@"

# type-check and run every test (unit, integration on a real sim cluster, end to end)
[group('ci')]
[exit-message]
test *FILTER:
    NSOPS_TEST_ONLY="$(IFS=,; echo "$*")" exec test/run.sh

# format the TypeScript and JavaScript with Prettier (`just test` checks it)
[group('ci')]
fmt:
    prettier --write --log-level warn "**/*.{ts,mts,mjs}"

# Prettier's check, typescript-eslint, the layering check of shared/ and the type check (all part of `just test`)
[group('ci')]
lint:
    prettier --check --log-level warn "**/*.{ts,mts,mjs}" && eslint --max-warnings 0 . && shared/bin/nsops-node test/layers.ts && exec tsc --noEmit -p .

# benchmarks: print figures and ratios (see bench/README.md)
[group('ci')]
bench *WHICH:
    exec shared/bin/nsops-node bench/run.ts "$@"
