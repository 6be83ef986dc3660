// The files a kustomization reads, found by reading its kustomization.yaml files rather than
// by building it: every field that names a file or folder (resources, components, patches,
// generators' files and envs, replacements, openapi, crds, configurations, plugins), followed
// into the folders it names. `just ci` asks it which build a changed file can change, before
// building anything. What it cannot follow (a remote resource, helmCharts, a file that does not
// parse) makes the answer `open`: the build may read more than `files`.
import fs from 'node:fs'
import path from 'node:path'
import { parse } from 'yaml'
import { KUSTOMIZATION_FILES, LOADING_FIELDS } from './files.ts'

export interface KustomizeInputs {
  /** absolute paths of the files read (kustomization files included) */
  files: Set<string>
  /** something the build reads could not be listed (remote resources, helm charts, an unreadable file) */
  open: boolean
}

const isRemote = (entry: string) => /^[a-z][a-z0-9+.-]*:\/\/|^git@|^github\.com\/|\?ref=|\/\/.*\.git/.test(entry)

/**
 * The files a build of `dir` reads. `generated`: the folder is a Flux Kustomization's spec.path,
 * for which kustomize-controller generates a kustomization over every manifest in it when it
 * has none (so every file under it counts).
 */
export function kustomizeInputs(dir: string, opts: { generated?: boolean } = {}): KustomizeInputs {
  const out: KustomizeInputs = { files: new Set(), open: false }
  walkDir(path.resolve(dir), out, new Set(), opts.generated === true)
  return out
}

function kustomizationFile(dir: string): string | undefined {
  return KUSTOMIZATION_FILES.map((f) => path.join(dir, f)).find((f) => fs.existsSync(f))
}

function walkDir(dir: string, out: KustomizeInputs, seen: Set<string>, generated: boolean): void {
  if (seen.has(dir)) return
  seen.add(dir)
  const file = kustomizationFile(dir)
  if (!file) {
    // no kustomization: kustomize-controller builds every manifest under it; kustomize would
    // refuse it as a resource, which the build reports
    if (generated) for (const f of allFiles(dir)) out.files.add(f)
    else out.open = true
    return
  }
  out.files.add(file)
  let k: Record<string, unknown>
  try {
    k = (parse(fs.readFileSync(file, 'utf8')) ?? {}) as Record<string, unknown>
  } catch {
    out.open = true
    return
  }
  const entry = (value: unknown) => {
    if (typeof value !== 'string' || !value.trim()) return
    if (isRemote(value)) {
      out.open = true
      return
    }
    const p = path.resolve(dir, value)
    if (!fs.existsSync(p)) return // the build reports it
    if (fs.statSync(p).isDirectory()) walkDir(p, out, seen, false)
    else out.files.add(p)
  }
  const list = (v: unknown) => (Array.isArray(v) ? v : [])
  for (const field of LOADING_FIELDS) list(k[field]).forEach(entry)
  // an entry of patchesStrategicMerge is a file or an inline patch
  for (const p of list(k.patchesStrategicMerge)) if (typeof p === 'string' && !p.includes('\n')) entry(p)
  for (const field of ['patches', 'patchesJson6902', 'replacements'])
    for (const p of list(k[field])) if (p && typeof p === 'object') entry((p as { path?: unknown }).path)
  for (const field of ['configMapGenerator', 'secretGenerator']) {
    for (const g of list(k[field])) {
      if (!g || typeof g !== 'object') continue
      const gen = g as { files?: unknown; envs?: unknown; env?: unknown }
      // `key=path` or `path`
      for (const f of list(gen.files))
        if (typeof f === 'string') entry(f.includes('=') ? f.slice(f.indexOf('=') + 1) : f)
      list(gen.envs).forEach(entry)
      entry(gen.env)
    }
  }
  const openapi = k.openapi as { path?: unknown } | undefined
  if (openapi && typeof openapi === 'object') entry(openapi.path)
  if (k.helmCharts || k.helmChartInflationGenerator) out.open = true
}

const SKIP = new Set(['.git', 'node_modules'])

function allFiles(dir: string): string[] {
  const files: string[] = []
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (SKIP.has(e.name)) continue
    const full = path.join(dir, e.name)
    if (e.isDirectory()) files.push(...allFiles(full))
    else files.push(full)
  }
  return files
}
