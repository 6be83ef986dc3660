# nsops: operate a Flux-managed cluster one namespace at a time.
# `just --list` shows every recipe; each script also answers --help.

set shell := ["bash", "-euo", "pipefail", "-c"]
export PATH := justfile_directory() + "/node_modules/.bin:" + env_var("PATH")

nsops := justfile_directory() + "/shared/bin/nsops.ts"

# list the recipes
default:
    @{{just_executable()}} --list --unsorted

# install npm dependencies and provision every pinned tool (first run builds them: ~11 min)
setup *FLAGS:
    @[ -f node_modules/.package-lock.json ] || npm ci
    @{{nsops}} setup {{FLAGS}}

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
