// The floors of shared/, checked: every import between two folders of shared/ must go down
// (or sideways within one floor without a cycle). Go's compiler refuses import cycles between
// packages; TypeScript does not, so this does. `just test` runs it (test/unit/layers.test.ts),
// and `node test/layers.ts` prints the folder graph and any violation.
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

/**
 * The floors, lowest first. A folder may import its own floor's folders (no cycle between
 * folders) and any floor below; never one above. The README's architecture section shows
 * the same list, numbered from 1 (floor 1 = FLOORS[0]), as the messages below number them.
 */
export const FLOORS: readonly (readonly string[])[] = [
  ['core'], // errors, output, paths, signals, lock, ports, trace, cli: nothing of ours
  ['config', 'kube'], // namespace config, task/hook/ignore types; the API client, transport, refs, target, guard
  ['git', 'kustomize', 'helm', 'tools'], // the tools nsops drives
  ['apply', 'health', 'portforward', 'logs', 'images'], // cluster mechanics: apply, kstatus, forwards, logs
  ['flux', 'tanka'], // finder, holds, readiness, reconcile, what Flux builds; the Tanka environments
  ['schema'], // strict schema validation (knows the Flux CRDs)
  ['cluster'], // providers; sim/ holds its processes, PKI, git server, registry, controllers
  ['tasks', 'dev', 'deploy', 'drift', 'dashboard', 'ci'], // flows: each publishes status
  ['web'], // renders status, owns no model
  ['commands'], // one file per verb
  ['bin'], // the entry: decides what loads lazily
]

export interface Violation {
  from: string
  to: string
  kind: 'upward' | 'cycle' | 'unknown-folder' | 'root-file'
  detail: string
}

const here = path.dirname(fileURLToPath(import.meta.url))
const shared = path.resolve(here, '../shared')

function tsFiles(dir: string): string[] {
  const out: string[] = []
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name)
    if (entry.isDirectory()) out.push(...tsFiles(full))
    else if (/\.(ts|mts|mjs)$/.test(entry.name) && !entry.name.endsWith('.d.ts')) out.push(full)
  }
  return out
}

const IMPORT =
  /(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|^import\s+['"]([^'"]+)['"]/gm

/** Relative imports of a file, resolved to absolute paths (type-only imports included: they are dependencies too). */
export function importsOf(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8')
  const out: string[] = []
  for (const m of text.matchAll(IMPORT)) {
    const spec = m[1] ?? m[2] ?? m[3]
    if (spec?.startsWith('.')) out.push(path.resolve(path.dirname(file), spec))
  }
  return out
}

/** The folder of shared/ a file belongs to ('' for a file at the root of shared/). */
function folderOf(file: string): string {
  const rel = path.relative(shared, file)
  const parts = rel.split(path.sep)
  return parts.length > 1 ? parts[0] : ''
}

export function floorOf(folder: string): number {
  return FLOORS.findIndex((floor) => floor.includes(folder))
}

/** Folder → folder edges, each with one example import that makes it. */
export function folderGraph(): Map<string, Map<string, string>> {
  const graph = new Map<string, Map<string, string>>()
  for (const file of tsFiles(shared)) {
    const from = folderOf(file)
    for (const target of importsOf(file)) {
      if (!target.startsWith(shared + path.sep)) continue
      const to = folderOf(target)
      if (to === from) continue
      const edges = graph.get(from) ?? new Map<string, string>()
      if (!edges.has(to)) edges.set(to, `${path.relative(shared, file)} → ${path.relative(shared, target)}`)
      graph.set(from, edges)
    }
  }
  return graph
}

/** Every way the tree breaks its floors: root files, unknown folders, upward imports, cycles between folders. */
export function layerViolations(): Violation[] {
  const violations: Violation[] = []
  const graph = folderGraph()
  for (const file of tsFiles(shared)) {
    if (folderOf(file) === '') {
      violations.push({
        from: '',
        to: '',
        kind: 'root-file',
        detail: `shared/${path.relative(shared, file)} has no room: put it in a folder of FLOORS`,
      })
    }
  }
  const folders = new Set([...graph.keys(), ...[...graph.values()].flatMap((e) => [...e.keys()])])
  for (const folder of folders) {
    if (folder !== '' && floorOf(folder) < 0) {
      violations.push({
        from: folder,
        to: '',
        kind: 'unknown-folder',
        detail: `shared/${folder}/ is on no floor: add it to FLOORS in test/layers.ts and to the README`,
      })
    }
  }
  for (const [from, edges] of graph) {
    for (const [to, example] of edges) {
      if (floorOf(from) >= 0 && floorOf(to) > floorOf(from)) {
        violations.push({
          from,
          to,
          kind: 'upward',
          detail: `${from}/ (floor ${floorOf(from) + 1}) imports ${to}/ (floor ${floorOf(to) + 1}): ${example}`,
        })
      }
    }
  }
  for (const cycle of folderCycles(graph)) {
    const detail = cycle
      .map((f, i) => `${f}/ → ${cycle[(i + 1) % cycle.length]}/ (${graph.get(f)?.get(cycle[(i + 1) % cycle.length])})`)
      .join('; ')
    violations.push({
      from: cycle[0],
      to: cycle[cycle.length - 1],
      kind: 'cycle',
      detail: `cycle between folders: ${detail}`,
    })
  }
  return violations
}

/** One cycle per strongly connected component of more than one folder (Tarjan). */
function folderCycles(graph: Map<string, Map<string, string>>): string[][] {
  let index = 0
  const indices = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const onStack = new Set<string>()
  const cycles: string[][] = []
  const visit = (v: string): void => {
    indices.set(v, index)
    low.set(v, index++)
    stack.push(v)
    onStack.add(v)
    for (const w of graph.get(v)?.keys() ?? []) {
      if (!indices.has(w)) {
        visit(w)
        low.set(v, Math.min(low.get(v)!, low.get(w)!))
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, indices.get(w)!))
    }
    if (low.get(v) === indices.get(v)) {
      const scc: string[] = []
      let w: string
      do {
        w = stack.pop()!
        onStack.delete(w)
        scc.push(w)
      } while (w !== v)
      if (scc.length > 1) cycles.push(pathThrough(graph, new Set(scc), scc[scc.length - 1]))
    }
  }
  for (const v of graph.keys()) if (!indices.has(v)) visit(v)
  return cycles
}

/** A concrete cycle inside one component, starting at `start` (breadth-first back to it). */
function pathThrough(graph: Map<string, Map<string, string>>, scc: Set<string>, start: string): string[] {
  const prev = new Map<string, string>()
  const queue = [start]
  while (queue.length > 0) {
    const v = queue.shift()!
    for (const w of graph.get(v)?.keys() ?? []) {
      if (!scc.has(w)) continue
      if (w === start) {
        const cycle = [v]
        while (cycle[0] !== start) cycle.unshift(prev.get(cycle[0])!)
        return cycle
      }
      if (!prev.has(w)) {
        prev.set(w, v)
        queue.push(w)
      }
    }
  }
  return [...scc]
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const graph = folderGraph()
  if (process.argv.includes('--graph')) {
    for (const [from, edges] of [...graph].sort())
      console.log(`${from || '(root)'} → ${[...edges.keys()].sort().join(', ')}`)
  }
  const violations = layerViolations()
  for (const v of violations) console.log(`${v.kind}: ${v.detail}`)
  console.log(
    violations.length === 0
      ? 'layers: every import goes down a floor, no cycle between folders'
      : `layers: ${violations.length} violation(s)`,
  )
  process.exitCode = violations.length === 0 ? 0 : 1
}
