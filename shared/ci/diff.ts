// `just ci diff`: what a pull request changes in the rendered manifests, without a cluster —
// as flux-local diff / konflate do it. The merge base is checked out beside the clone
// (`git worktree add`), what Flux applies to each changed namespace (its Flux Kustomization(s)
// built as kustomize-controller builds them, substituted; overlays/prod when none applies it)
// is built from both trees, and
// the objects are compared one by one (YAML line diffs, Secret values masked). Noise that
// changes on every chart bump (helm.sh/chart, app.kubernetes.io/version, checksum/*
// annotations) is left out, and what deserves a reviewer's second look is called out: image
// changes, objects Flux would prune, changes to fields the API server refuses to change in
// place, suspend flips, scaling to zero, PVC changes. Written as Markdown (job summary, PR
// comment; capped, with a marker a workflow finds its comment by) and as JSON.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { simpleGit } from 'simple-git'
import { objectDiff, type ObjectDiff } from '../apply/diff.ts'
import { groupOf, refKey, refOf, refString } from '../kube/refs.ts'
import { errorMessage } from '../core/errors.ts'
import { shortSha } from '../git/repo.ts'
import type { ManifestObject } from '../kustomize/build.ts'
import { buildProd, fluxTreeOf, touchedKustomizations, type ProdScope } from '../flux/build/index.ts'
import { loadNamespace } from '../config/namespaces.ts'
import { log } from '../core/output.ts'
import { renderTarget } from '../schema/index.ts'

/** The hidden line a workflow looks for to update its one comment instead of adding another. */
export const COMMENT_MARKER = '<!-- nsops-ci-diff -->'
/** GitHub refuses comments over 65,536 characters; Forgejo's limit is higher. */
export const DEFAULT_MARKDOWN_LIMIT = 60_000

export type SignalKind = 'image' | 'prune' | 'immutable' | 'suspend' | 'scale-to-zero' | 'pvc'

export interface Signal {
  kind: SignalKind
  namespace: string
  object: string
  message: string
}

export interface NamespaceDiff {
  name: string
  /** a tree that does not build: the message (its objects are not compared) */
  error?: string
  objects: ObjectDiff[]
  /** changed-only: the Flux Kustomizations rendered and compared (the rest of the namespace's were not built) */
  kustomizations?: string[]
}

export interface CiDiff {
  schema: 'nsops.ci-diff/v1'
  base: string
  mergeBase: string
  namespaces: NamespaceDiff[]
  signals: Signal[]
  counts: { create: number; update: number; delete: number }
  /** every Flux Kustomization built from the working tree (the tree's parents, then what was compared) */
  rendered: string[]
}

// Labels and annotations that change with every chart or config bump and say nothing
// about what the cluster will do differently (flux-local's diff action strips the same).
const NOISE_LABELS = ['helm.sh/chart', 'app.kubernetes.io/version', 'chart']
const NOISE_ANNOTATION = /^checksum\//

function stripMeta(meta: unknown): void {
  if (!meta || typeof meta !== 'object') return
  const m = meta as { labels?: Record<string, string>; annotations?: Record<string, string> }
  for (const l of NOISE_LABELS) delete m.labels?.[l]
  for (const a of Object.keys(m.annotations ?? {})) if (NOISE_ANNOTATION.test(a)) delete m.annotations![a]
  if (m.labels && !Object.keys(m.labels).length) delete m.labels
  if (m.annotations && !Object.keys(m.annotations).length) delete m.annotations
}

/** The object without chart-version labels and config checksums, on itself and its pod template. */
export function stripChartNoise(obj: ManifestObject): ManifestObject {
  const copy = structuredClone(obj)
  stripMeta(copy.metadata)
  const spec = copy.spec as Record<string, any> | undefined
  stripMeta(spec?.template?.metadata)
  stripMeta(spec?.jobTemplate?.spec?.template?.metadata)
  return copy
}

type Obj = Record<string, any>

function podSpec(o: Obj): Obj | undefined {
  if (o.kind === 'Pod') return o.spec
  if (o.kind === 'CronJob') return o.spec?.jobTemplate?.spec?.template?.spec
  return o.spec?.template?.spec
}

function images(o: Obj | undefined): Map<string, string> {
  const out = new Map<string, string>()
  const spec = o && podSpec(o)
  for (const field of ['initContainers', 'containers']) {
    for (const c of (spec?.[field] ?? []) as { name: string; image?: string }[])
      out.set(`${field === 'initContainers' ? 'init container' : 'container'} ${c.name}`, c.image ?? '')
  }
  return out
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b)
const get = (o: Obj | undefined, p: string[]) => p.reduce<any>((v, k) => (v == null ? undefined : v[k]), o)

// Fields the API server refuses to change on an existing object: Flux's apply fails on them
// (or, with `force`, deletes and recreates the object).
const IMMUTABLE: Record<string, string[][]> = {
  Deployment: [['spec', 'selector']],
  ReplicaSet: [['spec', 'selector']],
  DaemonSet: [['spec', 'selector']],
  StatefulSet: [
    ['spec', 'selector'],
    ['spec', 'volumeClaimTemplates'],
    ['spec', 'serviceName'],
    ['spec', 'podManagementPolicy'],
  ],
  Job: [
    ['spec', 'selector'],
    ['spec', 'template'],
  ],
  Service: [['spec', 'clusterIP']],
  PersistentVolumeClaim: [
    ['spec', 'storageClassName'],
    ['spec', 'accessModes'],
    ['spec', 'volumeName'],
    ['spec', 'selector'],
  ],
  RoleBinding: [['roleRef']],
  ClusterRoleBinding: [['roleRef']],
}

/** What a reviewer should look at twice in one object's change (before/after without noise). */
export function dangerSignals(namespace: string, before: Obj | undefined, after: Obj | undefined): Signal[] {
  const o = (after ?? before)!
  const object = refString(refOf(o as ManifestObject))
  const out: Signal[] = []
  const add = (kind: SignalKind, message: string) => out.push({ kind, namespace, object, message })
  if (!after) {
    const loss = o.kind === 'PersistentVolumeClaim' || o.kind === 'Namespace' ? ' — its data goes with it' : ''
    add('prune', `deleted: Flux prunes it${loss}`)
    return out
  }
  const bi = images(before)
  for (const [name, image] of images(after)) {
    const was = bi.get(name)
    if (before && was === undefined) add('image', `${name} added with image \`${image}\``)
    else if (was !== undefined && was !== image) add('image', `${name}: \`${was}\` → \`${image}\``)
  }
  if (!before) return out
  for (const p of IMMUTABLE[o.kind] ?? []) {
    const a = get(before, p)
    const b = get(after, p)
    if (a !== undefined && !same(a, b))
      add('immutable', `${p.join('.')} changed: the API server refuses this in place (the object must be recreated)`)
  }
  if (
    (o.kind === 'ConfigMap' || o.kind === 'Secret') &&
    before.immutable === true &&
    (!same(before.data, after.data) || !same(before.stringData, after.stringData))
  ) {
    add('immutable', 'data of an immutable object changed: it must be recreated')
  }
  const flux = groupOf(String(o.apiVersion)).endsWith('toolkit.fluxcd.io')
  if (
    (flux || o.kind === 'CronJob') &&
    Boolean(get(before, ['spec', 'suspend'])) !== Boolean(get(after, ['spec', 'suspend']))
  ) {
    add(
      'suspend',
      get(after, ['spec', 'suspend']) ? 'suspended: it stops reconciling' : 'resumed: it starts reconciling again',
    )
  }
  const replicas = get(after, ['spec', 'replicas'])
  if (replicas === 0 && get(before, ['spec', 'replicas']) !== 0)
    add('scale-to-zero', `replicas ${get(before, ['spec', 'replicas']) ?? 1} → 0`)
  if (o.kind === 'PersistentVolumeClaim' && !same(before.spec, after.spec)) {
    const was = get(before, ['spec', 'resources', 'requests', 'storage'])
    const now = get(after, ['spec', 'resources', 'requests', 'storage'])
    add(
      'pvc',
      was !== now
        ? `storage ${was} → ${now}${bytes(now) < bytes(was) ? ' (a shrink: refused by the API server)' : ''}`
        : 'the claim changed',
    )
  }
  return out
}

const UNITS: Record<string, number> = {
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  Ki: 1024,
  Mi: 1024 ** 2,
  Gi: 1024 ** 3,
  Ti: 1024 ** 4,
}
function bytes(q: unknown): number {
  const m = /^(\d+(?:\.\d+)?)([kMGT]i?|)$/.exec(String(q ?? ''))
  return m ? Number(m[1]) * (UNITS[m[2]] ?? 1) : NaN
}

/** Objects of two builds compared by identity (group/kind/namespace/name). */
export function compareBuilds(
  name: string,
  before: ManifestObject[],
  after: ManifestObject[],
): { objects: ObjectDiff[]; signals: Signal[] } {
  const place = (o: ManifestObject) => stripChartNoise(o)
  const key = (o: ManifestObject) => refKey(refOf(o))
  const b = new Map(before.map((o) => [key(o), place(o)]))
  const a = new Map(after.map((o) => [key(o), place(o)]))
  const objects: ObjectDiff[] = []
  const signals: Signal[] = []
  for (const k of [...new Set([...b.keys(), ...a.keys()])].sort()) {
    const was = b.get(k)
    const now = a.get(k)
    const d = objectDiff(refOf((now ?? was)!), was, now)
    if (d.action === 'unchanged') continue
    objects.push(d)
    signals.push(...dangerSignals(name, was, now))
  }
  return { objects, signals }
}

/** Builds what Flux applies to each namespace in the merge base and in the working tree and compares them. */
export async function diffAgainstMergeBase(
  repoDir: string,
  namespaces: string[],
  opts: {
    base: string
    mergeBase: string
    /** changed-only namespaces and the Flux Kustomizations the change touches in them (Changed.partial) */
    partial?: Record<string, string[]>
    /** the changed files (Changed.files): what the change touches in the merge base's tree too (a removed app) */
    files?: string[]
  },
): Promise<CiDiff> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-ci-base-'))
  const tree = path.join(tmp, 'tree')
  const git = simpleGit({ baseDir: repoDir })
  await git.raw(['worktree', 'add', '--detach', '--quiet', tree, opts.mergeBase])
  try {
    const result: CiDiff = {
      schema: 'nsops.ci-diff/v1',
      base: opts.base,
      mergeBase: opts.mergeBase,
      namespaces: [],
      signals: [],
      counts: { create: 0, update: 0, delete: 0 },
      rendered: [],
    }
    // each side's Flux tree, loaded once; a leaf (one app) is built only when a namespace asks for it
    const trees = new Map([repoDir, tree].map((root) => [root, fluxTreeOf(root, { skipLeaves: true })]))
    for (const t of trees.values()) void t.catch(() => {}) // each namespace's build says why it fails
    const outside = (opts.files ?? []).filter((f) => !f.startsWith('namespaces/') && !f.startsWith('tanka/'))
    const touchedBefore =
      opts.partial && Object.keys(opts.partial).length
        ? trees
            .get(tree)!
            .then((t) => touchedKustomizations(t, outside))
            .catch(() => undefined)
        : undefined
    const onlyFor = async (name: string): Promise<Set<string> | undefined> => {
      const ids = opts.partial?.[name]
      if (!ids) return undefined
      // as the change touches the working tree and the merge base's (a Kustomization it removes)
      return new Set([...ids, ...((await touchedBefore)?.ids ?? [])])
    }
    const build = async (root: string, name: string, only?: Set<string>) => {
      // the namespace as this change configures it (a namespace gone in this change: by its name)
      const config = await loadNamespace(name).catch(() => undefined)
      const nsRoot = path.join(root, 'namespaces', name)
      const scope: ProdScope = {
        name,
        namespaces: { prod: config?.namespaces.prod ?? name },
        flux: config?.flux,
        ...(config?.layout ? { layout: config.layout } : {}),
        paths: { root: nsRoot, overlays: { prod: path.join(nsRoot, 'overlays', 'prod') } },
      }
      // HelmReleases rendered on both sides: a values or chart change shows as the objects it changes
      const built = await buildProd(scope, root, { missingOverlay: 'empty', helm, tree: await trees.get(root)!, only })
      // none: a namespace new (or gone) in this change
      return {
        objects: [...built.objects, ...built.releases.flatMap((r) => r.objects)],
        kustomizations: built.kustomizations.map((k) => k.id),
      }
    }
    const helm = { ...(await renderTarget()), warn: (m: string) => log.warn(m) }
    // every build at once: each is its own kustomize process, so they overlap on every core
    const built = await Promise.all(
      namespaces.map(async (name): Promise<NamespaceDiff & { signals: Signal[] }> => {
        try {
          const only = await onlyFor(name)
          const [before, after] = await Promise.all([
            build(tree, name, only).catch((err) => {
              throw new Error(`the merge base does not build: ${errorMessage(err)}`)
            }),
            build(repoDir, name, only),
          ])
          return {
            name,
            ...compareBuilds(name, before.objects, after.objects),
            ...(only
              ? { kustomizations: [...new Set([...before.kustomizations, ...after.kustomizations])].sort() }
              : {}),
          }
        } catch (err) {
          return { name, error: errorMessage(err), objects: [], signals: [] }
        }
      }),
    )
    for (const { signals, ...n } of built) {
      result.namespaces.push(n)
      result.signals.push(...signals)
      for (const o of n.objects) result.counts[o.action as 'create' | 'update' | 'delete']++
    }
    result.rendered = ((await trees.get(repoDir)!.catch(() => undefined))?.builtIds() ?? []).sort()
    return result
  } finally {
    await git.raw(['worktree', 'remove', '--force', tree]).catch(() => git.raw(['worktree', 'prune']))
    fs.rmSync(tmp, { recursive: true, force: true })
  }
}

const ACTION_WORD = { create: 'added', update: 'changed', delete: 'deleted', unchanged: 'unchanged' } as const

/** One line per step, for the log. */
export function diffSummary(d: CiDiff): string {
  const failed = d.namespaces.filter((n) => n.error)
  const total = d.counts.create + d.counts.update + d.counts.delete
  const kinds = [...new Set(d.signals.map((s) => s.kind))]
  return [
    `${d.namespaces.length} namespace(s), ${total} object(s) differ (${d.counts.create} added, ${d.counts.update} changed, ${d.counts.delete} deleted)`,
    ...(d.namespaces.some((n) => n.kustomizations)
      ? [
          `changed-only: rendered ${d.namespaces
            .filter((n) => n.kustomizations)
            .map((n) => `${n.name} (${n.kustomizations!.join(', ') || 'none'})`)
            .join(', ')}`,
        ]
      : []),
    d.signals.length ? `${d.signals.length} danger signal(s): ${kinds.join(', ')}` : 'no danger signal',
    ...(failed.length ? [`${failed.map((n) => n.name).join(', ')} did not build`] : []),
  ].join('; ')
}

const fence = (text: string) => {
  // a diff line with ``` in it must not end the block early
  const ticks = '`'.repeat(Math.max(3, ...[...text.matchAll(/`+/g)].map((m) => m[0].length + 1)))
  return `${ticks}diff\n${text.trimEnd()}\n${ticks}`
}
const cell = (s: string) => s.replaceAll('|', '\\|').replaceAll('\n', ' ')

/** The Markdown for a job summary and the PR comment: everything that fits in `limit` characters. */
export function renderMarkdown(d: CiDiff, limit = DEFAULT_MARKDOWN_LIMIT): string {
  const total = d.counts.create + d.counts.update + d.counts.delete
  const head = [
    COMMENT_MARKER,
    `## nsops: rendered diff against the merge base \`${shortSha(d.mergeBase)}\` (${d.base})`,
    '',
    `${d.namespaces.length} namespace(s): ${d.namespaces.map((n) => `\`${n.name}\``).join(', ') || 'none changed'} · ${total} object(s) differ (${d.counts.create} added, ${d.counts.update} changed, ${d.counts.delete} deleted)`,
    '',
  ]
  if (d.signals.length) {
    head.push(`### ⚠️ ${d.signals.length} danger signal(s)`, '', '| signal | object | what |', '| --- | --- | --- |')
    for (const s of d.signals) head.push(`| **${s.kind}** | \`${s.object}\` | ${cell(s.message)} |`)
    head.push('')
  } else
    head.push(
      'No danger signals (image changes, prunes, immutable fields, suspend flips, scale to zero, PVC changes).',
      '',
    )
  for (const n of d.namespaces.filter((x) => x.error))
    head.push(`### ❌ ${n.name} does not build`, '', fence(n.error!), '')
  const truncated =
    "\n> ✂️ Truncated to fit a comment: the full diff is `diff-full.md` / `diff.json` in the workflow's artifacts (`just ci diff` prints it locally).\n"
  let out = head.join('\n')
  outer: for (const n of d.namespaces.filter((x) => !x.error)) {
    const only = n.kustomizations
      ? `Only the Flux Kustomization(s) this change touches were rendered: ${n.kustomizations.map((k) => `\`${k}\``).join(', ') || 'none'}.\n\n`
      : ''
    const section = `### ${n.name}: ${n.objects.length ? `${n.objects.length} object(s)` : 'no rendered change'}\n\n${only}`
    if (out.length + section.length + truncated.length > limit) {
      out += truncated
      break
    }
    out += section
    for (const o of n.objects) {
      const block = `<details><summary>${ACTION_WORD[o.action]} <code>${refString(o.ref)}</code> (+${o.added} −${o.removed})</summary>\n\n${fence(o.diff ?? '')}\n\n</details>\n\n`
      if (out.length + block.length + truncated.length > limit) {
        out += truncated
        break outer
      }
      out += block
    }
  }
  return out
}
