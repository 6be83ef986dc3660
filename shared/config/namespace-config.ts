// The typed config each `namespaces/<ns>/namespace.ts` exports: what the namespace is called
// in each environment, which Flux Kustomization owns it, where its manifests live, and its
// own touches for the commands (dashboard groups, port-forwards, URLs, quick commands).
// It is checked when defined, so a typo fails on import with a message naming the field.
import path from 'node:path'
import { NsopsError } from '../core/errors.ts'
import { repoRoot } from '../core/paths.ts'
import { parseLocalRule } from './ignore-rules.ts'
import type { Hooks, TaskSpec } from './task-types.ts'
import { builderKinds, type ImageInput, type ImageSpec } from './image-types.ts'

export type Environment = 'dev' | 'prod'
export const environments: readonly Environment[] = ['dev', 'prod']

export interface AppInput {
  /** the workload's `app.kubernetes.io/name`, which is also its Service's name */
  name: string
  /** the Service port of its web UI or API */
  port: number
  /** where its UI lives under its URL; default `/` */
  path?: string
  description?: string
  /** whether it has an Ingress at `<name>.<domain>`; default: true when `domains` are set */
  ingress?: boolean
}

export interface GroupInput {
  /** what the dashboard prints above the group, e.g. `Media servers` */
  title: string
  apps: AppInput[]
}

export interface PortForward {
  /** the Service to forward to */
  app: string
  local: number
  remote: number
}

export interface QuickCommand {
  title: string
  /** a shell command; `{namespace}` stands for the environment's Kubernetes namespace */
  command: string
}

/**
 * A check `just ci e2e` runs once `dev-up --ci` found the namespace healthy (the seed's smoke
 * test after `tilt ci`): a shell command (`run`, `{namespace}` = the dev namespace, kubectl on
 * PATH and KUBECONFIG pinned to the cluster) that passes when it exits 0, or one of the
 * namespace's typed zx `tasks` by name (`task`).
 */
export type CheckSpec = { name: string; run: string; task?: never } | { name: string; task: string; run?: never }

export interface NamespaceInput {
  /** the folder under namespaces/ */
  name: string
  description: string
  /**
   * the Kubernetes namespace each overlay deploys into; with `layout.dev.inPlace` the dev loop
   * works in prod's namespace itself, and `dev` may be left out (or must equal `prod`)
   */
  namespaces: { prod: string; dev?: string }
  /**
   * `kustomization`: the Flux Kustomization that applies overlays/prod (default: the
   * namespace's name; found by inventory or spec.path when it has another name or there is
   * only the root flux-system). `hold`: what a dev loop holds in Flux while it runs — `auto`
   * (default) holds only the live objects the dev overlay shares with a Kustomization, one by
   * one (`kustomize.toolkit.fluxcd.io/reconcile: disabled`), `kustomization` always suspends
   * the namespace's own Kustomization(s), `never` holds nothing.
   */
  flux?: { kustomization?: string; namespace?: 'flux-system'; hold?: FluxHoldPolicy }
  groups?: GroupInput[]
  portForwards?: PortForward[]
  /** Ingress hosts are `<app>.<domain>`; keep equal to overlays/<env>/domain.yaml */
  domains?: Partial<Record<Environment, string>>
  quickCommands?: QuickCommand[]
  /**
   * `ignore`: fields `just drift` leaves out, on top of the Kustomization's `.spec.ignore`:
   * a JSON pointer for every object (`/spec/replicas`), or for a kind or one object
   * (`Deployment:/spec/replicas`, `Deployment/web:/spec/replicas`).
   */
  drift?: { ignore?: string[] }
  /** typed zx tasks (Tilt's local_resource/cmd_button): `just task NS NAME`, or on apply/save in the dev loop */
  tasks?: Record<string, TaskSpec>
  /** typed zx hooks at fixed points: beforeApply/afterApply (dev), beforeCommit/afterDeploy (deploy), dashboardSections */
  hooks?: Hooks
  /** what `just ci e2e` runs against the healthy dev stack: shell commands or task names */
  checks?: CheckSpec[]
  /**
   * images built from this repo (shared/config/image-types.ts): manifests name one by its key
   * (`image: hello`) and the dev loop rolls out each build by digest
   */
  images?: Record<string, ImageInput>
  /**
   * host[:port] to push images to when the cluster advertises no registry (KEP-1755); the
   * environment's NSOPS_REGISTRY comes after it
   */
  registry?: string
  /** where the namespace's Flux objects and sources are, when not overlays/prod (see LayoutInput) */
  layout?: LayoutInput
}

export type FluxHoldPolicy = 'auto' | 'kustomization' | 'never'

/**
 * Where a namespace's Flux objects and sources are, when they are not namespaces/<ns>/overlays/prod
 * (a home-ops repository's kubernetes/apps/<ns>/<app>/ks.yaml, the seed homelab's applications/<ns>/,
 * flux2's apps/production): `just init` writes it. Every command that builds "prod" builds these.
 */
export interface LayoutInput {
  /**
   * the Flux Kustomizations that apply the namespace, each as the file that holds it, relative
   * to the repository (`kubernetes/apps/default/sonarr/ks.yaml`: every Kustomization in it), or
   * by name (`sonarr`, `flux-system/sonarr`), or as a glob of such files (`just init` writes one
   * for a ks.yaml per app: every ks.yaml one folder below kubernetes/apps/default), which counts
   * every file it matches at the time, so an app added later needs no edit here
   */
  kustomizations?: string[]
  /**
   * folders (relative to the repository) that make up prod instead: each built as the Flux
   * Kustomization whose spec.path it is (substituted as Flux would), else by kustomize
   */
  paths?: string[]
  /**
   * the folder (relative to the repository) that holds the namespace's files: what deploy commits
   * and rolls back, what the dev loop watches; default: the deepest folder holding every file
   * and folder named above (namespaces/<ns> when it names Kustomizations only by name)
   */
  root?: string
  /**
   * the dev loop of a namespace with no overlays/dev applies prod's build into namespaces.dev (as
   * targetNamespace would) with these changes; Ingress hosts move from domains.prod to domains.dev
   */
  dev?: DevOverrides
}

export interface DevOverrides {
  /**
   * a dev overlay the repository keeps (relative to it: `applications/media/overlays/dev`): the
   * dev loop builds that (substituted as prod is) instead of prod's build, and the changes below
   * do not apply
   */
  overlay?: string
  /** every Deployment's and StatefulSet's spec.replicas */
  replicas?: number
  /** every container's resources (requests and limits replace prod's) */
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> }
  /** every PersistentVolumeClaim's (and volumeClaimTemplate's) storageClassName */
  storageClass?: string
  /**
   * develop the namespace in place, as the seed homelab did with Tilt: the working tree's build
   * is applied into namespaces.prod itself (not moved into a dev namespace), every object Flux
   * also applies is held from Flux one by one while the loop runs (HelmReleases too: helm-controller
   * then upgrades the release to the working tree's spec), and on exit the holds go and Flux puts
   * prod's spec back. The changes above still apply. Off by default.
   */
  inPlace?: boolean
}

export interface Layout {
  kustomizations: string[]
  paths: string[]
  dev: DevOverrides
  /**
   * the folder (relative to the repository) that holds the files it names: what deploy commits
   * and rolls back, where the dev loop watches and secrets are looked for; namespaces/<ns> when
   * it names only Kustomizations by name. sourceRoot() gives it absolute.
   */
  root: string
}

/** The plain words the dev view, its log and dev-status use for a namespace developed in place. */
export const IN_PLACE = "developed in place: prod's namespace itself, what Flux also applies held until the loop ends"

/** Whether the dev loop develops the namespace in place (layout.dev.inPlace): in prod's namespace, under the per-object hold. */
export function developedInPlace(ns: { layout?: { dev: DevOverrides } }): boolean {
  return ns.layout?.dev.inPlace === true
}

/** The folder that holds a namespace's sources (absolute): its layout's root, else namespaces/<ns>. */
export function sourceRoot(ns: { paths: { root: string }; layout?: { root: string } }): string {
  return ns.layout ? path.resolve(ns.paths.root, '..', '..', ns.layout.root) : ns.paths.root
}

// A ks.yaml entry's folder; a pattern's (kubernetes/apps/media/*/ks.yaml) is the part before its first wildcard.
function literalDir(entry: string): string {
  const parts = entry.split('/')
  const wild = parts.findIndex((p) => /[*?[]/.test(p))
  return wild < 0 ? path.dirname(entry) : parts.slice(0, wild).join('/') || '.'
}

/** The deepest folder holding every file and folder a layout names (names of Kustomizations aside), relative to the repository. */
function layoutRoot(nsRoot: string, layout: LayoutInput): string {
  const repo = path.resolve(nsRoot, '..', '..')
  const rel = (abs: string) => path.relative(repo, abs).split(path.sep).join('/')
  if (layout.root !== undefined) return rel(path.resolve(repo, layout.root))
  const dirs = [
    ...(layout.kustomizations ?? []).filter((e) => /\.ya?ml$/.test(e)).map(literalDir),
    ...(layout.paths ?? []),
  ].map((d) => path.resolve(repo, d).split(path.sep))
  if (!dirs.length) return rel(nsRoot)
  let common = dirs[0]
  for (const d of dirs.slice(1)) {
    let i = 0
    while (i < common.length && i < d.length && common[i] === d[i]) i++
    common = common.slice(0, i)
  }
  const root = common.join(path.sep) || path.sep
  // the whole repository is no namespace's folder: deploy would commit everything
  return rel(path.relative(repo, root) === '' ? nsRoot : root)
}

export interface App {
  name: string
  port: number
  path: string
  description?: string
  ingress: boolean
  /** the id of its group, also its workload's `nsops.dev/group` label */
  group: string
}

export interface AppGroup {
  /** the title as a label value (`Media servers` → `media-servers`) */
  id: string
  title: string
  apps: App[]
}

export interface NamespacePaths {
  /** namespaces/<name>, absolute */
  root: string
  base: string
  overlays: Record<Environment, string>
  components: string
}

export interface NamespaceConfig {
  name: string
  description: string
  namespaces: Record<Environment, string>
  flux: { kustomization: string; namespace: 'flux-system'; hold: FluxHoldPolicy }
  paths: NamespacePaths
  groups: AppGroup[]
  /** every app of every group, in group order */
  apps: App[]
  portForwards: PortForward[]
  domains: Partial<Record<Environment, string>>
  /** an app's URL in an environment, or undefined when it has no Ingress there */
  urls: Record<Environment, (app: string) => string | undefined>
  quickCommands: QuickCommand[]
  /** what `just drift` leaves out (see NamespaceInput.drift) */
  drift: { ignore: string[] }
  tasks: Record<string, TaskSpec>
  hooks: Hooks
  checks: CheckSpec[]
  /** the images, paths resolved and defaults filled */
  images: Record<string, ImageSpec>
  registry?: string
  /** where its Flux objects and sources are; undefined: namespaces/<ns>/overlays/prod (and overlays/dev) */
  layout?: Layout
  /** the quick commands with `{namespace}` filled in for one environment */
  quickCommandsFor(env: Environment): QuickCommand[]
}

const dnsLabel = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/
const dnsSubdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/

/** `Media servers` → `media-servers`: a group title as a label value. */
export function groupId(title: string): string {
  return title
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
}

class Problems {
  readonly list: string[] = []
  add(message: string): void {
    this.list.push(message)
  }

  label(field: string, value: unknown): value is string {
    if (typeof value === 'string' && value.length <= 63 && dnsLabel.test(value)) return true
    this.add(
      `${field} must be a DNS-1123 label (lowercase letters, digits and '-', at most 63 characters), got ${show(value)}`,
    )
    return false
  }

  subdomain(field: string, value: unknown): value is string {
    if (typeof value === 'string' && value.length <= 253 && dnsSubdomain.test(value)) return true
    this.add(`${field} must be a DNS-1123 subdomain (lowercase, dot-separated labels), got ${show(value)}`)
    return false
  }

  port(field: string, value: unknown): value is number {
    if (typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= 65535) return true
    this.add(`${field} must be a port number between 1 and 65535, got ${show(value)}`)
    return false
  }

  text(field: string, value: unknown): value is string {
    if (typeof value === 'string' && value.trim() !== '') return true
    this.add(`${field} must be a non-empty string, got ${show(value)}`)
    return false
  }

  unique(field: string, values: string[]): void {
    const seen = new Set<string>()
    for (const v of values) {
      if (seen.has(v)) this.add(`${field} lists ${show(v)} more than once`)
      seen.add(v)
    }
  }
}

function show(value: unknown): string {
  return value === undefined ? 'nothing' : JSON.stringify(value)
}

function checkInput(input: NamespaceInput, p: Problems): void {
  p.label('name', input.name)
  p.text('description', input.description)
  const inPlace = (input.layout?.dev as DevOverrides | undefined)?.inPlace === true
  p.label('namespaces.prod', input.namespaces?.prod)
  if (!inPlace || input.namespaces?.dev !== undefined) p.label('namespaces.dev', input.namespaces?.dev)
  if (inPlace && input.namespaces?.dev !== undefined && input.namespaces.dev !== input.namespaces.prod)
    p.add(
      `namespaces.dev is ${show(input.namespaces.dev)}, but layout.dev.inPlace develops the namespace in ${show(input.namespaces.prod)} itself: leave namespaces.dev out (or set it to ${show(input.namespaces.prod)})`,
    )
  if (input.flux?.kustomization !== undefined) p.subdomain('flux.kustomization', input.flux.kustomization)
  if (input.flux?.namespace !== undefined && input.flux.namespace !== 'flux-system') {
    p.add(
      `flux.namespace must be "flux-system" (the namespace Flux's objects live in), got ${show(input.flux.namespace)}`,
    )
  }
  if (input.flux?.hold !== undefined && !['auto', 'kustomization', 'never'].includes(input.flux.hold)) {
    p.add(`flux.hold must be "auto", "kustomization" or "never", got ${show(input.flux.hold)}`)
  }
  for (const [env, domain] of Object.entries(input.domains ?? {})) {
    if (!environments.includes(env as Environment)) p.add(`domains.${env} is not an environment (dev or prod)`)
    else p.subdomain(`domains.${env}`, domain)
  }

  const groups = input.groups ?? []
  groups.forEach((g, i) => {
    if (p.text(`groups[${i}].title`, g.title) && groupId(g.title) === '') {
      p.add(`groups[${i}].title ${show(g.title)} needs at least one letter or digit`)
    }
    if (!Array.isArray(g.apps) || g.apps.length === 0) p.add(`groups[${i}].apps must list at least one app`)
    ;(g.apps ?? []).forEach((a, j) => {
      const at = `groups[${i}].apps[${j}]`
      p.label(`${at}.name`, a.name)
      p.port(`${at}.port`, a.port)
      if (a.path !== undefined && !(typeof a.path === 'string' && a.path.startsWith('/'))) {
        p.add(`${at}.path must start with '/', got ${show(a.path)}`)
      }
    })
  })
  p.unique(
    'groups (by title)',
    groups.map((g) => (typeof g.title === 'string' ? groupId(g.title) : '')).filter(Boolean),
  )
  p.unique(
    'groups[].apps (by name)',
    groups.flatMap((g) => (g.apps ?? []).map((a) => a.name)),
  )

  const forwards = input.portForwards ?? []
  forwards.forEach((f, i) => {
    p.label(`portForwards[${i}].app`, f.app)
    p.port(`portForwards[${i}].local`, f.local)
    p.port(`portForwards[${i}].remote`, f.remote)
  })
  p.unique(
    'portForwards (by local port)',
    forwards.map((f) => String(f.local)),
  )

  for (const [name, t] of Object.entries(input.tasks ?? {})) {
    p.label(`tasks.${name} (its name)`, name)
    if (typeof t?.run !== 'function')
      p.add(`tasks.${name}.run must be an async function ({ $, ns, kube, forwards }) => …`)
    if (t?.on !== undefined && !['manual', 'apply', 'save'].includes(t.on))
      p.add(`tasks.${name}.on must be "manual", "apply" or "save", got ${show(t.on)}`)
    for (const dep of t?.after ?? [])
      if (!(dep in (input.tasks ?? {})))
        p.add(`tasks.${name}.after names ${show(dep)}, which is not a task of this namespace`)
  }
  for (const [hook, fn] of Object.entries(input.hooks ?? {})) {
    if (!['beforeApply', 'afterApply', 'beforeCommit', 'afterDeploy', 'dashboardSections'].includes(hook))
      p.add(`hooks.${hook} is not a hook (beforeApply, afterApply, beforeCommit, afterDeploy, dashboardSections)`)
    else if (typeof fn !== 'function') p.add(`hooks.${hook} must be an async function`)
  }
  if (input.checks !== undefined && !Array.isArray(input.checks))
    p.add(
      `checks must be a list like [{ name: 'ping', run: 'kubectl -n {namespace} rollout status deploy/web' }], got ${show(input.checks)}`,
    )
  else {
    const checks = input.checks ?? []
    checks.forEach((ch, i) => {
      p.label(`checks[${i}].name`, ch?.name)
      const hasRun = ch?.run !== undefined
      const hasTask = ch?.task !== undefined
      if (hasRun === hasTask) p.add(`checks[${i}] needs exactly one of run (a shell command) or task (a task's name)`)
      else if (hasRun) p.text(`checks[${i}].run`, ch.run)
      else if (!(typeof ch.task === 'string' && ch.task in (input.tasks ?? {})))
        p.add(`checks[${i}].task names ${show(ch.task)}, which is not a task of this namespace`)
    })
    p.unique(
      'checks (by name)',
      checks.map((ch) => ch?.name).filter((n): n is string => typeof n === 'string'),
    )
  }
  ;(input.quickCommands ?? []).forEach((q, i) => {
    p.text(`quickCommands[${i}].title`, q.title)
    p.text(`quickCommands[${i}].command`, q.command)
  })

  checkImages(input, p)
  checkLayout(input, p)

  if (input.drift !== undefined) {
    if (typeof input.drift !== 'object' || input.drift === null || Array.isArray(input.drift))
      p.add(`drift must be an object like { ignore: ['/spec/replicas'] }, got ${show(input.drift)}`)
    else if (input.drift.ignore !== undefined && !Array.isArray(input.drift.ignore))
      p.add(`drift.ignore must be a list of JSON pointers, got ${show(input.drift.ignore)}`)
    else {
      ;(input.drift.ignore ?? []).forEach((e, i) => {
        const r = parseLocalRule(e, i)
        if (typeof r === 'string') p.add(`drift.ignore[${i}] ${r}`)
      })
    }
  }
}

const quantity = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$/

function checkLayout(input: NamespaceInput, p: Problems): void {
  const l = input.layout
  if (l === undefined) return
  if (typeof l !== 'object' || l === null || Array.isArray(l)) {
    p.add(
      `layout must be an object like { kustomizations: ['kubernetes/apps/default/sonarr/ks.yaml'] }, got ${show(l)}`,
    )
    return
  }
  if (
    l.root !== undefined &&
    (typeof l.root !== 'string' || l.root.startsWith('/') || l.root.split(/[\\/]/).includes('..'))
  )
    p.add(`layout.root must be a folder relative to the repository, without '..', got ${show(l.root)}`)
  for (const field of ['kustomizations', 'paths'] as const) {
    const v = l[field]
    if (v === undefined) continue
    if (!Array.isArray(v)) {
      p.add(`layout.${field} must be a list of strings, got ${show(v)}`)
      continue
    }
    v.forEach((e, i) => {
      if (!p.text(`layout.${field}[${i}]`, e)) return
      if (e.startsWith('/') || e.split(/[\\/]/).includes('..'))
        p.add(`layout.${field}[${i}] must be relative to the repository, without '..', got ${show(e)}`)
    })
  }
  if (!l.kustomizations?.length && !l.paths?.length)
    p.add('layout needs kustomizations (the ks.yaml files or names of its Flux Kustomizations) or paths')
  const d = l.dev
  if (d === undefined) return
  if (typeof d !== 'object' || d === null) {
    p.add(`layout.dev must be an object like { replicas: 1, storageClass: 'local-path' }, got ${show(d)}`)
    return
  }
  if (
    d.overlay !== undefined &&
    (typeof d.overlay !== 'string' || d.overlay.startsWith('/') || d.overlay.split(/[\\/]/).includes('..'))
  )
    p.add(`layout.dev.overlay must be a folder relative to the repository, without '..', got ${show(d.overlay)}`)
  if (d.inPlace !== undefined && typeof d.inPlace !== 'boolean')
    p.add(`layout.dev.inPlace must be true or false, got ${show(d.inPlace)}`)
  if (d.inPlace === true && d.overlay !== undefined)
    p.add(
      'layout.dev.inPlace and layout.dev.overlay do not go together: in place, the dev loop applies the working tree’s prod build into the namespace itself; drop one of them',
    )
  if (d.replicas !== undefined && !(Number.isInteger(d.replicas) && d.replicas >= 0))
    p.add(`layout.dev.replicas must be a whole number (0 or more), got ${show(d.replicas)}`)
  if (d.storageClass !== undefined) p.subdomain('layout.dev.storageClass', d.storageClass)
  for (const kind of ['requests', 'limits'] as const) {
    const r = d.resources?.[kind]
    if (r === undefined) continue
    for (const [k, v] of Object.entries(r))
      if (typeof v !== 'string' || !quantity.test(v))
        p.add(`layout.dev.resources.${kind}.${k} must be a quantity like "100m" or "128Mi", got ${show(v)}`)
  }
}

const imageKey = /^[a-z0-9]+([._-][a-z0-9]+)*$/

function checkImages(input: NamespaceInput, p: Problems): void {
  if (input.registry !== undefined && !(typeof input.registry === 'string' && /^[^\s/]+$/.test(input.registry)))
    p.add(`registry must be a host[:port] like "registry.example.com:5000", got ${show(input.registry)}`)
  if (input.images === undefined) return
  if (typeof input.images !== 'object' || input.images === null || Array.isArray(input.images)) {
    p.add(
      `images must be an object like { hello: { context: 'src/hello', build: { kind: 'ko' } } }, got ${show(input.images)}`,
    )
    return
  }
  for (const [name, img] of Object.entries(input.images)) {
    const at = `images.${name}`
    if (!imageKey.test(name))
      p.add(`${at}: an image's key is the name manifests use (\`image: ${name}\`): lowercase letters, digits and . _ -`)
    if (!img || typeof img !== 'object') {
      p.add(`${at} must be an object with context and build`)
      continue
    }
    p.text(`${at}.context`, img.context)
    const kind = (img.build as { kind?: unknown } | undefined)?.kind
    if (!builderKinds.includes(kind as never)) {
      p.add(`${at}.build.kind must be one of ${builderKinds.map((k) => `"${k}"`).join(', ')}, got ${show(kind)}`)
      continue
    }
    const b = img.build
    if (b.kind === 'binary') {
      p.text(`${at}.build.command`, b.command)
      if (!b.files || typeof b.files !== 'object' || Object.keys(b.files).length === 0)
        p.add(`${at}.build.files must map what the command makes to where it goes, like { 'out/hello': '/hello' }`)
      else
        for (const [from, to] of Object.entries(b.files))
          if (typeof to !== 'string' || !to.startsWith('/'))
            p.add(`${at}.build.files[${show(from)}] must be an absolute path in the image, got ${show(to)}`)
    }
    if (b.kind === 'custom' && typeof b.run !== 'function')
      p.add(`${at}.build.run must be an async function ({ $, ref, context }) => … that pushes ref`)
    if (img.platform !== undefined && !/^[a-z0-9]+\/[a-z0-9]+(\/[a-z0-9]+)?$/.test(img.platform))
      p.add(`${at}.platform must be os/arch like "linux/amd64", got ${show(img.platform)}`)
    for (const field of ['deps', 'fallBackOn'] as const)
      if (img[field] !== undefined && !(Array.isArray(img[field]) && img[field].every((g) => typeof g === 'string')))
        p.add(`${at}.${field} must be a list of globs relative to the context, got ${show(img[field])}`)
    ;(img.sync ?? []).forEach((r, i) => {
      p.text(`${at}.sync[${i}].from`, r?.from)
      if (!(typeof r?.to === 'string' && r.to.startsWith('/')))
        p.add(`${at}.sync[${i}].to must be an absolute path in the container, got ${show(r?.to)}`)
    })
    ;(img.run ?? []).forEach((r, i) => p.text(`${at}.run[${i}].cmd`, r?.cmd))
  }
}

/** os/arch of this machine, as images are built by default. */
export function hostPlatform(): string {
  const arch = ({ x64: 'amd64', arm64: 'arm64', arm: 'arm' } as Record<string, string>)[process.arch] ?? process.arch
  return `linux/${arch}`
}

function imageSpecs(root: string, input: NamespaceInput): Record<string, ImageSpec> {
  return Object.fromEntries(
    Object.entries(input.images ?? {}).map(([name, img]) => [
      name,
      {
        name,
        context: path.resolve(root, img.context),
        deps: [...(img.deps ?? ['**/*'])],
        build: img.build,
        ...(img.target === undefined ? {} : { target: img.target }),
        platform: img.platform ?? hostPlatform(),
        sync: (img.sync ?? []).map((r) => ({ ...r })),
        run: (img.run ?? []).map((r) => ({ ...r })),
        fallBackOn: [...(img.fallBackOn ?? [])],
      },
    ]),
  )
}

/** Where a namespace folder keeps its manifests. */
export function namespacePaths(root: string): NamespacePaths {
  return {
    root,
    base: path.join(root, 'base'),
    overlays: { dev: path.join(root, 'overlays', 'dev'), prod: path.join(root, 'overlays', 'prod') },
    components: path.join(root, 'components'),
  }
}

/** namespacePaths, with a layout's dev overlay (in the repository's own folders) as overlays.dev. */
function layoutPaths(root: string, layout: LayoutInput | undefined): NamespacePaths {
  const paths = namespacePaths(root)
  if (layout?.dev?.overlay) paths.overlays.dev = path.resolve(root, '..', '..', layout.dev.overlay)
  return paths
}

/** Check a namespace's config and fill in what follows from it (paths, URLs, group ids). */
export function defineNamespace(input: NamespaceInput): NamespaceConfig {
  const problems = new Problems()
  checkInput(input, problems)
  if (problems.list.length > 0) {
    const where =
      typeof input.name === 'string' && dnsLabel.test(input.name)
        ? `namespaces/${input.name}/namespace.ts`
        : 'a namespace.ts'
    throw new NsopsError(`${where} is invalid: ${problems.list.join('; ')}.`, {
      hint: 'Fix those fields; shared/config/namespace-config.ts describes each one.',
    })
  }

  const domains = { ...input.domains }
  const hasDomain = Object.values(domains).some(Boolean)
  const groups: AppGroup[] = (input.groups ?? []).map((g) => {
    const id = groupId(g.title)
    return {
      id,
      title: g.title,
      apps: g.apps.map((a) => ({
        name: a.name,
        port: a.port,
        path: a.path ?? '/',
        ...(a.description === undefined ? {} : { description: a.description }),
        ingress: a.ingress ?? hasDomain,
        group: id,
      })),
    }
  })
  const apps = groups.flatMap((g) => g.apps)
  const byName = new Map(apps.map((a) => [a.name, a]))

  const urlIn =
    (env: Environment) =>
    (name: string): string | undefined => {
      const domain = domains[env]
      const app = byName.get(name)
      if (!domain || app?.ingress === false) return undefined
      const sub = app && app.path !== '/' ? app.path : ''
      return `http://${name}.${domain}${sub}`
    }

  const root = path.join(repoRoot, 'namespaces', input.name)
  const quickCommands = (input.quickCommands ?? []).map((q) => ({ ...q }))
  // in place, "dev" is prod's namespace itself: every part of the dev loop follows it there
  const inPlace = input.layout?.dev?.inPlace === true
  const namespaces = { dev: inPlace ? input.namespaces.prod : input.namespaces.dev!, prod: input.namespaces.prod }
  return Object.freeze({
    name: input.name,
    description: input.description,
    namespaces,
    flux: {
      kustomization: input.flux?.kustomization ?? input.name,
      namespace: 'flux-system' as const,
      hold: input.flux?.hold ?? 'auto',
    },
    paths: layoutPaths(root, input.layout),
    groups,
    apps,
    portForwards: (input.portForwards ?? []).map((f) => ({ ...f })),
    domains,
    urls: { dev: urlIn('dev'), prod: urlIn('prod') },
    quickCommands,
    drift: { ignore: [...(input.drift?.ignore ?? [])] },
    tasks: { ...input.tasks },
    hooks: { ...input.hooks },
    checks: (input.checks ?? []).map((ch) => ({ ...ch })),
    images: imageSpecs(root, input),
    ...(input.registry === undefined ? {} : { registry: input.registry }),
    ...(input.layout === undefined
      ? {}
      : {
          layout: {
            kustomizations: [...(input.layout.kustomizations ?? [])],
            paths: [...(input.layout.paths ?? [])],
            dev: structuredClone(input.layout.dev ?? {}),
            root: layoutRoot(root, input.layout),
          },
        }),
    quickCommandsFor: (env: Environment) =>
      quickCommands.map((q) => ({ title: q.title, command: q.command.replaceAll('{namespace}', namespaces[env]) })),
  })
}
