# nsops: operate a Flux-managed cluster one namespace at a time.
# `just --list` shows every recipe; each script also answers --help.

set shell := ["bash", "-euo", "pipefail", "-c"]
export PATH := justfile_directory() + "/node_modules/.bin:" + env_var("PATH")

nsops := justfile_directory() + "/shared/bin/nsops.ts"

import 'tanka/tanka.just'

# list the recipes
default:
    @{{just_executable()}} --list --unsorted

# install npm dependencies and provision every pinned tool (first run builds them: ~11 min)
setup *FLAGS:
    @[ -f node_modules/.package-lock.json ] || npm ci
    @{{nsops}} setup {{FLAGS}}

# ensure a cluster (allowed context → kind/k3d → sim), bootstrap it, run the dev loops of NS… (default: all) in one view
dev-up *NS:
    @{{nsops}} dev-up {{NS}}

# stop running dev loops, resume every Flux object nsops suspended, stop the sim cluster
dev-down *FLAGS:
    @{{nsops}} dev-down {{FLAGS}}

# the cluster and one line per namespace (dev loop, health, Flux)
dev-status:
    @{{nsops}} dev-status

# the dev loop for one namespace (= ./namespaces/NS/dev.ts); --ci applies once and waits
dev NS *FLAGS:
    @{{nsops}} dev {{NS}} {{FLAGS}}

# one namespace at a glance (= ./namespaces/NS/dashboard.ts); --json, --watch, --check
dashboard NS *FLAGS:
    @{{nsops}} dashboard {{NS}} {{FLAGS}}

# GitOps deploy: validate, diff, commit, push, reconcile Flux, wait, roll back on failure
deploy NS *FLAGS:
    @{{nsops}} deploy {{NS}} {{FLAGS}}

# revert the last deploy commit of NS (a new commit), push and reconcile
rollback NS *FLAGS:
    @{{nsops}} deploy {{NS}} --rollback {{FLAGS}}

# build the prod overlay of NS (default: all), check schemas, server-side dry-run when a cluster answers
validate *NS:
    @{{nsops}} validate {{NS}}

# what `just deploy NS` would change in the cluster (server-side diff, Secrets masked)
diff NS *FLAGS:
    @{{nsops}} deploy {{NS}} --dry-run {{FLAGS}}

# scaffold namespaces/NAME with config, scripts, overlays and its Flux Kustomization
new-namespace NAME:
    @{{nsops}} new-namespace {{NAME}}

# start the local cluster or find it running (sim without Docker; --provider kind|k3d|existing)
cluster-up *FLAGS:
    @{{nsops}} cluster-up {{FLAGS}}

# stop every process of the sim cluster (state kept; --purge deletes it)
cluster-down *FLAGS:
    @{{nsops}} cluster-down {{FLAGS}}

# each cluster component: running, stopped, or dead with its log tail
cluster-status *FLAGS:
    @{{nsops}} cluster-status {{FLAGS}}

# type-check and run every test (unit, integration on a real sim cluster, end to end)
test *FILTER:
    @NSOPS_TEST_ONLY="{{FILTER}}" test/run.sh

# benchmarks: print figures and ratios (see bench/README.md)
bench *WHICH:
    @shared/bin/nsops-node bench/run.ts {{WHICH}}
