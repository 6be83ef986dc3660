// How each pinned tool is built from its Go module when no binary can be had. The main
// packages of kubernetes, etcd and the Flux controllers carry replace directives, so they
// cannot be `go install`ed: each gets a small wrapper module (research/control-plane.md §2).
// Everything a recipe says is part of the cache key (provision.ts toolBuildKey): a changed
// go.mod, package list or ldflags means a rebuild, not a stale binary.
import type { ToolSpec } from './versions.ts'

/**
 * Facts read from the pinned module's own go.mod at build time. While the cache key is
 * computed they answer a placeholder naming the fact, since they are fixed by the pinned
 * version, which is in the key already.
 */
export interface ModuleFacts {
  /** the version the module's go.mod requires of `dep`, e.g. k8s.io/client-go → v0.37.0 */
  require(dep: string): string
}

export interface GoRecipe {
  /**
   * `install`: go install MODULE@VERSION; `wrapper`: go build inside a generated module;
   * `copy`: go build inside a writable copy of the module's source (`prepare` edits it);
   * `local`: go build of a main package in this repo (`dir`), cached under a hash of its sources
   */
  kind: 'install' | 'wrapper' | 'copy' | 'local'
  /** `local` builds: the package's directory, relative to the repo root */
  dir?: string
  /** the module whose go.mod ModuleFacts read (and `copy` builds copy); default spec.module */
  goModule?: string
  /** go.mod of the wrapper module */
  goMod?: (spec: ToolSpec) => string
  /** extra `go mod tidy` arguments (wrapper builds) */
  tidyArgs?: string[]
  /** packages to build, one binary each (wrapper builds; `copy`: relative to the module, ./cmd/x) */
  packages?: string[]
  /** `copy` builds: what the copied source lacks, as files to write (path relative to the module → content) */
  addFiles?: Record<string, string>
  ldflags?: (spec: ToolSpec, mod: ModuleFacts) => string
  /** what a newcomer should expect while it builds */
  expect: string
}

const fluxControllerReplaces = [
  // upstream replaces go-digest with its master for BLAKE3 (opencontainers/go-digest#66)
  'replace github.com/opencontainers/go-digest => github.com/opencontainers/go-digest v1.0.1-0.20220411205349-bde1400a84be',
]

const k8sStaging = [
  'api',
  'apiextensions-apiserver',
  'apimachinery',
  'apiserver',
  'cli-runtime',
  'client-go',
  'cloud-provider',
  'cluster-bootstrap',
  'code-generator',
  'component-base',
  'component-helpers',
  'controller-manager',
  'cri-api',
  'cri-client',
  'csi-translation-lib',
  'dynamic-resource-allocation',
  'endpointslice',
  'externaljwt',
  'kms',
  'kube-aggregator',
  'kube-controller-manager',
  'kube-proxy',
  'kube-scheduler',
  'kubectl',
  'kubelet',
  'metrics',
  'mount-utils',
  'pod-security-admission',
  'sample-apiserver',
]

const k8sCommands = ['kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kubectl']

export const recipes: Record<string, GoRecipe> = {
  kubernetes: {
    kind: 'wrapper',
    expect: 'about 6 minutes and 2 GB of memory on 2 cores, once',
    goMod: (s) => {
      const staging = s.version.replace(/^v1\./, 'v0.')
      return [
        'module local/k8sbins',
        'go 1.26.0',
        'godebug default=go1.26',
        'tool (',
        ...k8sCommands.map((c) => `\tk8s.io/kubernetes/cmd/${c}`),
        ')',
        `require k8s.io/kubernetes ${s.version}`,
        'replace (',
        ...k8sStaging.map((m) => `\tk8s.io/${m} => k8s.io/${m} ${staging}`),
        ')',
        '',
      ].join('\n')
    },
    packages: k8sCommands.map((c) => `k8s.io/kubernetes/cmd/${c}`),
    // Without the stamps /version reports v0.0.0-master, which breaks Helm kubeVersion checks.
    ldflags: (s) => {
      const [, minor] = s.version.split('.')
      const stamp = (pkg: string) =>
        [
          `gitVersion=${s.version}`,
          'gitMajor=1',
          `gitMinor=${minor}`,
          'gitTreeState=clean',
          'buildDate=2026-01-01T00:00:00Z',
        ]
          .map((kv) => `-X k8s.io/${pkg}.${kv}`)
          .join(' ')
      return `-s -w ${stamp('component-base/version')} ${stamp('client-go/pkg/version')}`
    },
  },
  etcd: {
    kind: 'wrapper',
    expect: 'about 30 seconds',
    goMod: (s) => `module local/etcd\ngo 1.26.0\ntool ${s.module}\nrequire ${s.module} ${s.version}\n`,
    packages: ['go.etcd.io/etcd/server/v3'],
    ldflags: () => '-s -w',
  },
  kwok: { kind: 'install', expect: 'about 90 seconds', ldflags: () => '-s -w' },
  kustomize: { kind: 'install', expect: 'about 15 seconds', ldflags: () => '-s -w' },
  // actionlint stamps its version from the build info of a module install, so no -X is needed
  actionlint: { kind: 'install', expect: 'about 20 seconds', ldflags: () => '-s -w' },
  helm: {
    kind: 'install',
    expect: 'about 75 seconds',
    goModule: 'helm.sh/helm/v3',
    // As helm's Makefile (v3.22.0, lines 61-69): the Kubernetes version helm assumes without a
    // cluster is its client-go's, major + 1. Without these helm believes in v1.20.0 and
    // refuses every chart with `kubeVersion: >=1.23.0-0`.
    ldflags: (s, mod) => {
      const [major, minor] = mod.require('k8s.io/client-go').replace(/^v/, '').split('.')
      // (while the cache key is computed, `require` answers a placeholder, not a number)
      const k8sMajor = /^\d+$/.test(major) ? String(Number(major) + 1) : `${major}+1`
      const stamp = (pkg: string) =>
        `-X helm.sh/helm/v3/pkg/${pkg}.k8sVersionMajor=${k8sMajor} -X helm.sh/helm/v3/pkg/${pkg}.k8sVersionMinor=${minor}`
      return `-s -w -X helm.sh/helm/v3/internal/version.version=${s.version} ${stamp('lint/rules')} ${stamp('chartutil')}`
    },
  },
  jsonnet: { kind: 'install', expect: 'about 5 seconds', ldflags: () => '-s -w' },
  'kustomize-controller': {
    kind: 'wrapper',
    expect: 'about 3 minutes',
    goMod: (s) =>
      [
        'module local/kustomize-controller',
        'go 1.26.0',
        `tool ${s.module}`,
        `require ${s.module} ${s.version}`,
        `require ${s.module}/api ${s.version}`,
        // upstream's replace lines, minus the one pointing at ./api
        ...fluxControllerReplaces,
        'replace sigs.k8s.io/kustomize/api => sigs.k8s.io/kustomize/api v0.21.1',
        'replace sigs.k8s.io/kustomize/kyaml => sigs.k8s.io/kustomize/kyaml v0.21.1',
        'replace gopkg.in/yaml.v3 => gopkg.in/yaml.v3 v3.0.1',
        '',
      ].join('\n'),
    packages: ['github.com/fluxcd/kustomize-controller'],
    ldflags: () => '-s -w',
  },
  'source-controller': {
    kind: 'wrapper',
    expect: 'about 4 to 5 minutes',
    goMod: (s) =>
      [
        'module local/source-controller',
        'go 1.26.0',
        `tool ${s.module}`,
        `require ${s.module} ${s.version}`,
        `require ${s.module}/api ${s.version}`,
        ...fluxControllerReplaces,
        // v1.9.5 asks for v0.18.3, whose archive the module mirror refuses; v0.18.0 has the
        // same API (research/control-plane.md, update 2026-12-01)
        'replace github.com/fluxcd/pkg/artifact => github.com/fluxcd/pkg/artifact v0.18.0',
        '',
      ].join('\n'),
    // -e: a test-only dependency (fluxcd/pkg/helmtestserver) is refused by the mirror; the
    // controller's own packages do not import it
    tidyArgs: ['-e'],
    packages: ['github.com/fluxcd/source-controller'],
    ldflags: () => '-s -w',
  },
  'helm-controller': {
    kind: 'wrapper',
    expect: 'about 6 minutes on 2 cores, once',
    goMod: (s) =>
      [
        'module local/helm-controller',
        'go 1.26.0',
        `tool ${s.module}`,
        `require ${s.module} ${s.version}`,
        `require ${s.module}/api ${s.version}`,
        // upstream's replace lines (v1.4.0 go.mod), minus the one pointing at ./api; its
        // go-digest pin is a newer master than source-controller's
        'replace github.com/opencontainers/go-digest => github.com/opencontainers/go-digest v1.0.1-0.20231025023718-d50d2fec9c98',
        'replace sigs.k8s.io/kustomize/api => sigs.k8s.io/kustomize/api v0.20.1',
        'replace sigs.k8s.io/kustomize/kyaml => sigs.k8s.io/kustomize/kyaml v0.20.1',
        '',
      ].join('\n'),
    // -e: test-only dependencies the mirror may refuse; the controller's packages do not import them
    tidyArgs: ['-e'],
    packages: ['github.com/fluxcd/helm-controller'],
    ldflags: () => '-s -w',
  },
  flux: {
    kind: 'copy',
    expect: 'about 2 minutes',
    goModule: 'github.com/fluxcd/flux2/v2',
    // cmd/flux embeds manifests/*.yaml, which upstream generates from release downloads before
    // building; only `flux install` and `flux bootstrap` read them, and nsops uses neither
    addFiles: {
      'cmd/flux/manifests/nsops-placeholder.yaml':
        '# nsops builds flux from its module: the install manifests are not embedded, so `flux install` and `flux bootstrap` do not work with this binary\n',
    },
    packages: ['./cmd/flux'],
    ldflags: (s) => `-s -w -X main.VERSION=${s.version.replace(/^v/, '')}`,
  },
  // distribution stamps its version with -X (its Makefile, v3.1.2); without it `registry --version` says v0.0.0
  registry: {
    kind: 'install',
    expect: 'about 3.5 minutes',
    ldflags: (s) => `-s -w -X github.com/distribution/distribution/v3/version.version=${s.version}`,
  },
  // crane reports its version from the module's build info, as a module install records it
  crane: { kind: 'install', expect: 'about 1 minute', ldflags: () => '-s -w' },
  ko: { kind: 'install', expect: 'about 2.5 minutes', ldflags: () => '-s -w' },
  'tanka-renderer': { kind: 'local', dir: 'tanka/renderer', expect: 'about 10 seconds', ldflags: () => '-s -w' },
  // `kustomize build` as a long-lived process for the dev loop (shared/kustomize/build.ts), on the
  // kustomize api module kustomize v5.8.2 builds with
  'kustomize-server': {
    kind: 'local',
    dir: 'shared/tools/kustomize-server',
    expect: 'about 30 seconds',
    ldflags: () => '-s -w',
  },
  // what kustomize-controller v1.9.5 builds (shared/flux/build/): its fluxcd/pkg/kustomize
  'flux-build': {
    kind: 'local',
    dir: 'shared/tools/flux-build',
    expect: 'about 2 minutes',
    ldflags: () => '-s -w',
  },
}

/** How to ask a binary on PATH for its version; the output must contain the pinned version. */
export const versionArgs: Record<string, string[] | undefined> = {
  'kube-apiserver': ['--version'],
  'kube-controller-manager': ['--version'],
  'kube-scheduler': ['--version'],
  kubectl: ['version', '--client'],
  etcd: ['--version'],
  kwok: ['--version'],
  kustomize: ['version'],
  helm: ['version', '--short'],
  jsonnet: ['--version'],
  flux: ['version', '--client'],
  actionlint: ['-version'],
  registry: ['--version'],
  crane: ['version'],
  ko: ['version'],
  // kustomize-controller and source-controller have no version flag: only the cache or a
  // build is trusted.
}
