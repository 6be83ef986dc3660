// `just new-namespace NAME`: a working namespace folder with one sample app, in the same
// shape as the others (namespace.ts, the three scripts, base/overlays/components), plus its
// Flux Kustomization under k8s/flux/.
import fs from 'node:fs'
import path from 'node:path'
import { parseCommand } from '../core/cli.ts'
import { NsopsError } from '../core/errors.ts'
import { checkNamespaceName, knownNamespaces, namespacesDir } from '../config/namespaces.ts'
import { log } from '../core/output.ts'
import { repoRoot } from '../core/paths.ts'

const usage = `
Usage: just new-namespace NAME

Scaffolds namespaces/NAME: namespace.ts (typed config), dev.ts, dashboard.ts, deploy.ts, drift.ts,
base/ with one sample app (traefik/whoami), overlays/dev (namespace NAME-dev, local-path
storage) and overlays/prod (namespace NAME, NFS storage), components/storage/{local-path,nfs},
and k8s/flux/NAME.yaml (its own Flux Kustomization). NAME: lowercase letters, digits, '-'.
`

const script = (
  kind: string,
  what: string,
) => `#!/usr/bin/env -S sh -c 'exec "\${0%/*}/../../shared/bin/nsops-node" "$0" "$@"'
// ${what} (--help for flags). The namespace's own touches live in namespace.ts.
import ns from './namespace.ts'
import { runMain } from '../../shared/core/cli.ts'

runMain(async () => (await import('../../shared/commands/${kind}.ts')).${kind}(ns, process.argv.slice(2)))
`

/** The standard scripts of a namespace folder (each runs its command with ./namespace.ts). */
export function scriptFiles(name: string): Record<string, string> {
  return {
    'dev.ts': script('dev', `The ${name} dev loop`),
    'dashboard.ts': script('dashboard', `${name} at a glance`),
    'deploy.ts': script('deploy', `GitOps deploy of ${name}`),
    'drift.ts': script('drift', `What in the live ${name} namespace differs from git, read-only`),
  }
}

export function scaffoldFiles(name: string): Record<string, string> {
  const app = 'web'
  return {
    'namespace.ts': `// ${name}: describe what runs here and why it is one namespace.
import { defineNamespace } from '../../shared/config/namespace-config.ts'

export default defineNamespace({
  name: '${name}',
  description: 'TODO: what this namespace runs.',
  namespaces: { dev: '${name}-dev', prod: '${name}' },
  flux: { kustomization: '${name}', namespace: 'flux-system' },
  domains: { dev: '${name}.localhost', prod: 'home.example' },
  groups: [{ title: 'Apps', apps: [{ name: '${app}', port: 80, description: 'sample app; replace it' }] }],
  portForwards: [{ app: '${app}', local: 18080, remote: 80 }],
  quickCommands: [{ title: 'Follow ${app} logs', command: 'kubectl -n {namespace} logs deploy/${app} -f' }],
  // Typed zx tasks (README "Tasks and hooks"): \`just task ${name} status\`. \`$\` runs in this
  // folder with KUBECONFIG pinned to the session's context and the pinned kubectl on PATH;
  // \`on: 'apply'\` or \`'save'\` would run it in the dev loop by itself, \`after\` names tasks to run first.
  tasks: {
    status: {
      description: 'what runs of ${name} in the namespace the task works on',
      on: 'manual',
      run: async ({ $, namespace }) => {
        await $\`kubectl -n \${namespace} get deploy,pods -l app.kubernetes.io/part-of=${name}\`
      },
    },
  },
  // Hooks at fixed points: beforeApply/afterApply (dev), beforeCommit/afterDeploy (deploy),
  // dashboardSections. This smoke test runs after \`just deploy ${name}\` once Flux applied the
  // commit and everything is healthy, against prod; if it fails, the deploy is rolled back (exit 2).
  hooks: {
    afterDeploy: async ({ $, namespace }) => {
      await $\`kubectl -n \${namespace} rollout status deploy/${app} --timeout=60s\`
    },
  },
})
`,
    ...scriptFiles(name),
    'base/kustomization.yaml': `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
labels:
  - pairs: { app.kubernetes.io/part-of: ${name} }
resources:
  - ${app}
`,
    [`base/${app}/kustomization.yaml`]: `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [deployment.yaml, service.yaml, ingress.yaml, pvc.yaml]
`,
    [`base/${app}/deployment.yaml`]: `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${app}
  labels: { app.kubernetes.io/name: ${app}, nsops.dev/group: apps }
spec:
  replicas: 1
  strategy: { type: Recreate } # its data volume is ReadWriteOnce
  selector:
    matchLabels: { app.kubernetes.io/name: ${app} }
  template:
    metadata:
      labels: { app.kubernetes.io/name: ${app}, nsops.dev/group: apps }
    spec:
      containers:
        - name: ${app}
          image: traefik/whoami:v1.10.3
          ports: [{ name: http, containerPort: 80 }]
          readinessProbe: { httpGet: { path: /health, port: http }, periodSeconds: 10 }
          livenessProbe: { httpGet: { path: /health, port: http }, periodSeconds: 30 }
          resources:
            requests: { cpu: 10m, memory: 16Mi }
            limits: { memory: 64Mi }
          volumeMounts: [{ name: data, mountPath: /data }]
      volumes:
        - name: data
          persistentVolumeClaim: { claimName: ${app}-data }
`,
    [`base/${app}/service.yaml`]: `apiVersion: v1
kind: Service
metadata:
  name: ${app}
  labels: { app.kubernetes.io/name: ${app} }
spec:
  selector: { app.kubernetes.io/name: ${app} }
  ports: [{ name: http, port: 80, targetPort: http }]
`,
    [`base/${app}/ingress.yaml`]: `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: ${app}
  labels: { app.kubernetes.io/name: ${app} }
spec:
  rules:
    - host: ${app}.DOMAIN
      http:
        paths:
          - path: /
            pathType: Prefix
            backend: { service: { name: ${app}, port: { name: http } } }
`,
    [`base/${app}/pvc.yaml`]: `apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: ${app}-data
  labels: { app.kubernetes.io/name: ${app}, nsops.dev/storage: state }
spec:
  accessModes: [ReadWriteOnce]
  resources: { requests: { storage: 1Gi } }
`,
    'components/storage/local-path/kustomization.yaml': `# Every volume on \`local-path\` (kind, k3d, sim).
apiVersion: kustomize.config.k8s.io/v1alpha1
kind: Component
patches:
  - target: { kind: PersistentVolumeClaim }
    patch: |-
      - op: add
        path: /spec/storageClassName
        value: local-path
`,
    'components/storage/nfs/kustomization.yaml': `# Shared volumes on NFS at home; state volumes stay on the default class.
apiVersion: kustomize.config.k8s.io/v1alpha1
kind: Component
patches:
  - target: { kind: PersistentVolumeClaim, labelSelector: nsops.dev/storage=shared }
    patch: |-
      - op: add
        path: /spec/storageClassName
        value: nfs-media
`,
    ...Object.fromEntries(
      (['dev', 'prod'] as const).flatMap((env) => {
        const ns = env === 'dev' ? `${name}-dev` : name
        const domain = env === 'dev' ? `${name}.localhost` : 'home.example'
        return [
          [
            `overlays/${env}/kustomization.yaml`,
            `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: ${ns}
resources:
  - namespace.yaml
  - domain.yaml
  - ../../base
components:
  - ../../components/storage/${env === 'dev' ? 'local-path' : 'nfs'}
replacements:
  - source: { kind: ConfigMap, name: ingress-domain, fieldPath: data.domain }
    targets:
      - select: { kind: Ingress }
        fieldPaths: [spec.rules.*.host]
        options: { delimiter: ".", index: 1 }
`,
          ],
          [
            `overlays/${env}/namespace.yaml`,
            `apiVersion: v1
kind: Namespace
metadata:
  name: ${ns}
  labels: { nsops.dev/namespace: ${name}, nsops.dev/environment: ${env} }
`,
          ],
          [
            `overlays/${env}/domain.yaml`,
            `# Build-time input only; keep equal to domains.${env} in ../../namespace.ts.
apiVersion: v1
kind: ConfigMap
metadata:
  name: ingress-domain
  annotations: { config.kubernetes.io/local-config: "true" }
data:
  domain: ${domain}
`,
          ],
        ]
      }),
    ),
  }
}

export function fluxKustomization(name: string): string {
  return `# ${name}'s own Flux Kustomization: applies overlays/prod (never one root for everything).
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: ${name}
  namespace: flux-system
spec:
  interval: 10m
  timeout: 5m
  path: ./namespaces/${name}/overlays/prod
  prune: true
  wait: true
  targetNamespace: ${name}
  sourceRef: { kind: GitRepository, name: nsops }
`
}

export async function newNamespace(argv: string[]): Promise<number> {
  const { positionals } = parseCommand(argv, { usage, options: {}, allowPositionals: true })
  const [name, extra] = positionals
  if (!name || extra) throw new NsopsError('give exactly one NAME.', { hint: usage.trim() })
  checkNamespaceName(name)
  const dir = path.join(namespacesDir, name)
  if (fs.existsSync(dir)) {
    throw new NsopsError(`namespaces/${name} already exists; nothing was changed.`, {
      hint: `Known namespaces: ${knownNamespaces().join(', ')}.`,
    })
  }
  const files = scaffoldFiles(name)
  for (const [rel, text] of Object.entries(files)) {
    const file = path.join(dir, rel)
    fs.mkdirSync(path.dirname(file), { recursive: true })
    fs.writeFileSync(file, text, { mode: rel.endsWith('.ts') && rel !== 'namespace.ts' ? 0o755 : 0o644 })
  }
  const fluxDir = path.join(repoRoot, 'k8s', 'flux')
  const fluxFile = path.join(fluxDir, `${name}.yaml`)
  if (fs.existsSync(fluxDir) && !fs.existsSync(fluxFile)) {
    fs.writeFileSync(fluxFile, fluxKustomization(name))
    const kfile = path.join(fluxDir, 'kustomization.yaml')
    if (fs.existsSync(kfile)) {
      const { default: YAML } = await import('yaml')
      const doc = YAML.parseDocument(fs.readFileSync(kfile, 'utf8'))
      const resources = doc.get('resources') as { add?: (v: string) => void } | undefined
      resources?.add?.(`${name}.yaml`)
      fs.writeFileSync(kfile, doc.toString())
    }
  }
  log.ok(`created namespaces/${name} (${Object.keys(files).length} files) and k8s/flux/${name}.yaml`)
  log.info(`next: edit namespaces/${name}/namespace.ts and base/, then ./namespaces/${name}/dev.ts`)
  return 0
}
