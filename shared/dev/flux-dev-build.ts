// The dev loop's build for a namespace with no overlays/dev (one a namespace.ts layout points
// at a home-ops repository's ks.yaml files, say): the working tree's prod build — its Flux
// Kustomizations built as kustomize-controller builds them, substituted — moved into the dev
// namespace as a targetNamespace would move it, with the dev overrides namespace.ts declares
// (replicas, resources, storage class, Ingress domain). Its stages keep the Kustomizations'
// dependsOn order, so the loop applies a dependency and waits for it before what depends on it.
import path from 'node:path'
import { goDuration } from '../core/cli.ts'
import type { ManifestObject } from '../kustomize/build.ts'
import { sourceRoot, type DevOverrides, type NamespaceConfig } from '../config/namespace-config.ts'
import { buildProd, FluxTree, strictInRepo, type ProdPart, type VarsLookup } from '../flux/build/index.ts'

/** One Flux Kustomization's objects in dev, and the Kustomizations (`namespace/name`) it depends on. */
export interface DevStage {
  /** `flux-system/sonarr`, or the folder for a part no Kustomization builds */
  id: string
  /** where it is written, for messages */
  file?: string
  objects: ManifestObject[]
  dependsOn: string[]
  /** its spec.timeout: how long what depends on it waits for it (kustomize-controller's default: 5 min) */
  timeoutMs: number
}

export interface FluxDevBuildResult {
  objects: ManifestObject[]
  how: string
  stages: DevStage[]
}

const WORKLOADS = new Set(['Deployment', 'StatefulSet', 'ReplicaSet'])
const POD_TEMPLATES = new Set(['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job'])

/** Builds what Flux would apply to the namespace now (a fresh tree each time: the files changed), for dev. */
export class FluxDevBuild {
  readonly repoDir: string

  constructor(
    private readonly ns: NamespaceConfig,
    /**
     * where a substituteFrom the repository does not hold is read (the cluster, as the controller
     * reads it): in place, an unresolved variable would otherwise overwrite prod's value with its default
     */
    private readonly vars?: VarsLookup,
  ) {
    this.repoDir = path.resolve(ns.paths.root, '..', '..')
  }

  async full(): Promise<FluxDevBuildResult> {
    const tree = await FluxTree.load(this.repoDir, { strict: strictInRepo(this.repoDir), vars: this.vars })
    const built = await buildProd(this.ns, this.repoDir, { tree })
    const stages = built.parts.map((p) => this.stage(p))
    return { objects: stages.flatMap((s) => s.objects), how: 'full', stages }
  }

  /** The folders whose files feed the build: every built Kustomization's spec.path, components and file. */
  async inputs(): Promise<string[]> {
    const tree = await FluxTree.load(this.repoDir, { strict: strictInRepo(this.repoDir) })
    const built = await buildProd(this.ns, this.repoDir, { tree })
    const dirs = new Set<string>()
    if (this.ns.layout) dirs.add(sourceRoot(this.ns))
    for (const p of built.parts) {
      dirs.add(p.dir)
      const ks = p.node?.kustomization
      if (p.node?.file) dirs.add(path.dirname(path.join(this.repoDir, p.node.file)))
      for (const c of ks?.spec?.components ?? []) dirs.add(path.resolve(p.dir, c))
    }
    return [...dirs]
  }

  private stage(p: ProdPart): DevStage {
    const objects = devObjects(p.objects, this.ns)
    const timeout = p.node?.kustomization.spec?.timeout
    const timeoutMs = (typeof timeout === 'string' ? goDuration(timeout) : undefined) ?? 5 * 60_000
    return p.node
      ? { id: p.node.id, file: p.node.file, objects, dependsOn: p.node.dependsOn, timeoutMs }
      : { id: path.relative(this.repoDir, p.dir), objects, dependsOn: [], timeoutMs }
  }
}

/**
 * Prod's objects as the dev namespace gets them: what lives in the prod namespace moves to the
 * dev one (in place, namespaces.dev is prod's: nothing moves) (the prod Namespace object becomes the dev one; one is added when the build has
 * none), objects of other namespaces are left to those namespaces, and the overrides apply.
 */
export function devObjects(objects: ManifestObject[], ns: NamespaceConfig): ManifestObject[] {
  const prod = ns.namespaces.prod
  const dev = ns.namespaces.dev
  const out: ManifestObject[] = []
  for (const o of objects) {
    if (o.kind === 'Namespace' && o.apiVersion === 'v1') {
      if (o.metadata.name !== prod) continue
      const copy = structuredClone(o)
      copy.metadata.name = dev
      out.push(copy)
      continue
    }
    const namespace = o.metadata.namespace
    if (namespace && namespace !== prod) continue
    const copy = structuredClone(o)
    if (namespace) copy.metadata.namespace = dev
    out.push(applyOverrides(copy, ns.layout?.dev ?? {}, ns.domains))
  }
  return out
}

/** The namespace the dev objects need, when no stage brings one. */
export function devNamespaceObject(ns: NamespaceConfig): ManifestObject {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns.namespaces.dev } } as ManifestObject
}

type Obj = Record<string, unknown>
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)

function applyOverrides(o: ManifestObject, d: DevOverrides, domains: NamespaceConfig['domains']): ManifestObject {
  const spec = (o as unknown as { spec?: Obj }).spec
  if (!isObj(spec)) return o
  if (d.replicas !== undefined && WORKLOADS.has(o.kind) && o.apiVersion.startsWith('apps/')) spec.replicas = d.replicas
  if (d.resources && POD_TEMPLATES.has(o.kind)) {
    const pod = (spec.template as { spec?: Obj } | undefined)?.spec
    for (const key of ['containers', 'initContainers'])
      for (const c of Array.isArray(pod?.[key]) ? (pod[key] as Obj[]) : [])
        if (isObj(c)) c.resources = structuredClone(d.resources)
  }
  if (d.storageClass) {
    if (o.kind === 'PersistentVolumeClaim') spec.storageClassName = d.storageClass
    if (o.kind === 'StatefulSet' && Array.isArray(spec.volumeClaimTemplates))
      for (const t of spec.volumeClaimTemplates as { spec?: Obj }[])
        if (isObj(t.spec)) t.spec.storageClassName = d.storageClass
  }
  if (o.kind === 'Ingress' && domains.dev) {
    const host = (h: unknown) => (typeof h === 'string' ? devHost(h, domains.prod, domains.dev!) : h)
    for (const r of Array.isArray(spec.rules) ? (spec.rules as Obj[]) : [])
      if (isObj(r) && 'host' in r) r.host = host(r.host)
    for (const t of Array.isArray(spec.tls) ? (spec.tls as Obj[]) : [])
      if (isObj(t) && Array.isArray(t.hosts)) t.hosts = t.hosts.map(host)
  }
  return o
}

/** `sonarr.home.example` → `sonarr.media.localhost`: prod's domain swapped for dev's (else the first label kept). */
export function devHost(host: string, prodDomain: string | undefined, devDomain: string): string {
  if (prodDomain && host.endsWith(`.${prodDomain}`)) return `${host.slice(0, -prodDomain.length)}${devDomain}`
  return `${host.split('.')[0]}.${devDomain}`
}
