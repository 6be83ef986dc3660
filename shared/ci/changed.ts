// `just ci changed`: what a pull request touches, as flux-local/flate's changed-only mode
// decides it. The files that differ between the merge base with the base branch and the
// working tree (HEAD plus anything not committed yet, so a local run sees what CI will see
// once it is pushed) select the namespaces and Tanka environments they belong to; a change
// to shared/ (the library every script runs on) or k8s/ (pinned tools, Flux objects, cluster
// configs) selects everything, as does one to tanka/ outside an environment for Tanka. A
// namespace whose Flux objects live elsewhere (namespace.ts layout) is selected by the Flux
// Kustomizations a changed file touches, and only those are rendered (changed-only).
import fs from 'node:fs'
import path from 'node:path'
import { simpleGit } from 'simple-git'
import { NsopsError, errorMessage } from '../core/errors.ts'
import { shortSha } from '../git/repo.ts'
import { knownEnvironments } from '../tanka/environments.ts'
import { loadNamespace } from '../config/namespaces.ts'
import { sourceRoot } from '../config/namespace-config.ts'
import { fluxTreeOf, kustomizationsOf, touchedKustomizations } from '../flux/build/index.ts'

export interface Changed {
  /** the ref the merge base was taken with, as given (or the upstream's name) */
  base: string
  /** where the base ref came from: --base, NSOPS_CI_BASE, or the upstream branch */
  baseSource: string
  mergeBase: string
  /** every file that differs, repo-relative, sorted */
  files: string[]
  namespaces: string[]
  tankaEnvironments: string[]
  /** why everything was selected (`shared/ changed`), when it was */
  all?: string
  /**
   * namespaces selected only because files outside namespaces/ touch some of their Flux
   * Kustomizations (a namespace.ts layout: home-ops' kubernetes/apps/<ns>/<app>/): those
   * Kustomizations, `namespace/name`; the diff renders only them
   */
  partial: Record<string, string[]>
  /** every Flux Kustomization the files touch, and why */
  kustomizations: { id: string; why: string }[]
}

/** Paths whose change selects every namespace and every Tanka environment. */
export const EVERYTHING = ['shared/', 'k8s/']

/** The base: --base, else NSOPS_CI_BASE (what the workflows set), else the upstream branch. */
export async function resolveBase(repoDir: string, flag?: string): Promise<{ base: string; source: string }> {
  if (flag) return { base: flag, source: '--base' }
  if (process.env.NSOPS_CI_BASE) return { base: process.env.NSOPS_CI_BASE, source: 'NSOPS_CI_BASE' }
  const git = simpleGit({ baseDir: repoDir })
  try {
    const up = (await git.raw(['rev-parse', '--abbrev-ref', '--symbolic-full-name', '@{upstream}'])).trim()
    if (up) return { base: up, source: 'the upstream branch' }
  } catch {
    /* no upstream: said below */
  }
  let branch = ''
  try {
    branch = (await git.raw(['branch', '--show-current'])).trim()
  } catch {
    /* not a repo: said by mergeBase */
  }
  throw new NsopsError(
    `${branch ? `branch "${branch}"` : 'HEAD (detached)'} has no upstream, so there is no base branch to compare with.`,
    {
      hint: 'name it: `just ci --base origin/main` (or set NSOPS_CI_BASE=origin/main, as the workflows do); in a fresh clone fetch it first (`git fetch origin main`, checkout with fetch-depth: 0).',
    },
  )
}

export async function changedSince(repoDir: string, base: string, baseSource = '--base'): Promise<Changed> {
  const git = simpleGit({ baseDir: repoDir })
  let mergeBase: string
  try {
    mergeBase = (await git.raw(['merge-base', base, 'HEAD'])).trim()
  } catch (err) {
    const msg = errorMessage(err).trim().split('\n')[0]
    throw new NsopsError(`no merge base between ${base} (${baseSource}) and HEAD in ${repoDir}: ${msg}`, {
      hint:
        /not a valid|unknown revision|bad revision|Not a valid object/i.test(msg) || msg === ''
          ? `${base} is not known here: fetch it (\`git fetch origin <branch>\`; in CI check out with fetch-depth: 0), or pass another --base.`
          : 'a shallow clone has no history to find it in: fetch more (`git fetch --unshallow`), or check out with fetch-depth: 0.',
    })
  }
  if (!mergeBase)
    throw new NsopsError(`${base} and HEAD share no history in ${repoDir}.`, {
      hint: 'pass a --base on the same history (e.g. origin/main).',
    })
  // committed, staged and unstaged changes against the merge base, then untracked files
  const tracked = (await git.raw(['diff', '--name-only', '--no-renames', mergeBase, '--'])).split('\n')
  const untracked = (await git.raw(['ls-files', '--others', '--exclude-standard'])).split('\n')
  const files = [...new Set([...tracked, ...untracked].map((f) => f.trim()).filter(Boolean))].sort()
  const picked = select(repoDir, files)
  const flux = picked.all ? { partial: {}, kustomizations: [] } : await selectByFlux(repoDir, files, picked.namespaces)
  const namespaces = [...new Set([...picked.namespaces, ...Object.keys(flux.partial), ...(flux.whole ?? [])])].sort()
  return {
    base,
    baseSource,
    mergeBase,
    files,
    ...picked,
    namespaces,
    partial: flux.partial,
    kustomizations: flux.kustomizations,
  }
}

/**
 * Namespaces whose Flux objects live outside namespaces/ (a namespace.ts layout), selected by
 * the Flux Kustomizations the changed files touch (flux/build/changes.ts): only those are
 * rendered. A file no Kustomization reads but under a layout's root selects its namespace whole.
 */
async function selectByFlux(
  repoDir: string,
  files: string[],
  already: string[],
): Promise<{ partial: Record<string, string[]>; whole?: string[]; kustomizations: Changed['kustomizations'] }> {
  const outside = files.filter((f) => !f.startsWith('namespaces/') && !f.startsWith('tanka/'))
  const known = knownNamespacesIn(repoDir).filter((n) => !already.includes(n))
  if (!outside.length || !known.length) return { partial: {}, kustomizations: [] }
  const layouts = (await Promise.all(known.map((n) => loadNamespace(n).catch(() => undefined)))).filter(
    (c): c is NonNullable<typeof c> => c?.layout !== undefined,
  )
  if (!layouts.length) return { partial: {}, kustomizations: [] }
  const under = (f: string, dir: string) => {
    const rel = path.relative(dir, path.join(repoDir, f))
    return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel)
  }
  let tree: Awaited<ReturnType<typeof fluxTreeOf>>
  try {
    tree = await fluxTreeOf(repoDir, { skipLeaves: true })
  } catch {
    // a Flux tree that does not load: every layout namespace a file is under, whole (ci diff says why it fails)
    return {
      partial: {},
      whole: layouts.filter((c) => outside.some((f) => under(f, sourceRoot(c)))).map((c) => c.name),
      kustomizations: [],
    }
  }
  const touched = await touchedKustomizations(tree, outside)
  const read = new Set(
    tree.all().flatMap((n) => [...tree.inputsOf(n).files, ...(n.file ? [path.join(repoDir, n.file)] : [])]),
  )
  const partial: Record<string, string[]> = {}
  const whole: string[] = []
  for (const c of layouts) {
    const stray = outside.some((f) => under(f, sourceRoot(c)) && !read.has(path.join(repoDir, f)))
    if (stray) {
      whole.push(c.name)
      continue
    }
    const nodes = await kustomizationsOf(c, tree).catch(() => undefined)
    if (!nodes) {
      whole.push(c.name)
      continue
    }
    const hit = nodes.filter((n) => touched.ids.has(n.id)).map((n) => n.id)
    if (hit.length) partial[c.name] = hit
  }
  return {
    partial,
    whole,
    kustomizations: [...touched.ids].sort().map((id) => ({ id, why: touched.why.get(id) ?? '' })),
  }
}

/** Which namespaces and Tanka environments the changed files select. */
export function select(repoDir: string, files: string[]): Pick<Changed, 'namespaces' | 'tankaEnvironments' | 'all'> {
  const namespaces = knownNamespacesIn(repoDir)
  const environments = knownEnvironments(path.join(repoDir, 'tanka'))
  const hit = EVERYTHING.find((p) => files.some((f) => f.startsWith(p)))
  if (hit) return { namespaces, tankaEnvironments: environments, all: `${hit} changed` }
  const ns = new Set<string>()
  const envs = new Set<string>()
  let allTanka = false
  for (const f of files) {
    const m = /^namespaces\/([^/]+)\//.exec(f)
    if (m && namespaces.includes(m[1])) ns.add(m[1])
    if (f.startsWith('tanka/environments/')) {
      const rel = f.slice('tanka/environments/'.length)
      // the longest known environment the file is under (environments may nest)
      const env = environments.filter((e) => rel.startsWith(`${e}/`)).sort((a, b) => b.length - a.length)[0]
      if (env) envs.add(env)
    } else if (f.startsWith('tanka/')) allTanka = true // lib/, chartfile, renderer: every environment
  }
  return { namespaces: [...ns].sort(), tankaEnvironments: allTanka ? environments : [...envs].sort() }
}

function knownNamespacesIn(repoDir: string): string[] {
  const dir = path.join(repoDir, 'namespaces')
  if (!fs.existsSync(dir)) return []
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && fs.existsSync(path.join(dir, e.name, 'namespace.ts')))
    .map((e) => e.name)
    .sort()
}

/** The step's summary line. */
export function changedSummary(c: Changed): string {
  const what = [
    c.namespaces.length ? `namespaces ${c.namespaces.join(', ')}` : 'no namespace',
    c.tankaEnvironments.length ? `Tanka ${c.tankaEnvironments.join(', ')}` : 'no Tanka environment',
  ].join('; ')
  const partial = Object.entries(c.partial)
  const flux = partial.length
    ? `; only the Flux Kustomizations the change touches in ${partial.map(([ns, ids]) => `${ns} (${ids.join(', ')})`).join(', ')}`
    : ''
  return `${what}${c.all ? ` (all: ${c.all})` : ''}${flux} — ${c.files.length} file(s) differ from the merge base ${shortSha(c.mergeBase)} with ${c.base}`
}
