// How each pinned tool is built from its Go module when no binary can be had. The main
// packages of kubernetes, etcd and kustomize-controller carry replace directives, so they
// cannot be `go install`ed: each gets a small wrapper module (research/control-plane.md §2).
import type { ToolSpec } from './versions.ts'

export interface GoRecipe {
  /**
   * `install`: go install MODULE@VERSION; `wrapper`: go build inside a generated module;
   * `local`: go build of a main package in this repo (`dir`), cached under a hash of its sources
   */
  kind: 'install' | 'wrapper' | 'local'
  /** `local` builds: the package's directory, relative to the repo root */
  dir?: string
  /** go.mod of the wrapper module */
  goMod?: (spec: ToolSpec) => string
  /** packages to build, one binary each (wrapper builds) */
  packages?: string[]
  ldflags?: (spec: ToolSpec) => string
  /** what a newcomer should expect while it builds */
  expect: string
}

const k8sStaging = [
  'api', 'apiextensions-apiserver', 'apimachinery', 'apiserver', 'cli-runtime', 'client-go', 'cloud-provider',
  'cluster-bootstrap', 'code-generator', 'component-base', 'component-helpers', 'controller-manager', 'cri-api',
  'cri-client', 'csi-translation-lib', 'dynamic-resource-allocation', 'endpointslice', 'externaljwt', 'kms',
  'kube-aggregator', 'kube-controller-manager', 'kube-proxy', 'kube-scheduler', 'kubectl', 'kubelet', 'metrics',
  'mount-utils', 'pod-security-admission', 'sample-apiserver',
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
        [`gitVersion=${s.version}`, 'gitMajor=1', `gitMinor=${minor}`, 'gitTreeState=clean', 'buildDate=2026-01-01T00:00:00Z']
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
  helm: {
    kind: 'install',
    expect: 'about 75 seconds',
    ldflags: (s) => `-s -w -X helm.sh/helm/v3/internal/version.version=${s.version}`,
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
        'replace github.com/opencontainers/go-digest => github.com/opencontainers/go-digest v1.0.1-0.20220411205349-bde1400a84be',
        'replace sigs.k8s.io/kustomize/api => sigs.k8s.io/kustomize/api v0.21.1',
        'replace sigs.k8s.io/kustomize/kyaml => sigs.k8s.io/kustomize/kyaml v0.21.1',
        'replace gopkg.in/yaml.v3 => gopkg.in/yaml.v3 v3.0.1',
        '',
      ].join('\n'),
    packages: ['github.com/fluxcd/kustomize-controller'],
    ldflags: () => '-s -w',
  },
  'tanka-renderer': { kind: 'local', dir: 'tanka/renderer', expect: 'about 10 seconds', ldflags: () => '-s -w' },
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
  // kustomize-controller has no version flag: only the cache or a build is trusted.
}
