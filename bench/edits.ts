// File saved → change visible through the API: saves `n` edits one after another and times
// each until a watch sees the mark that edit carries. Shared by the dev-loop benchmarks.
import { Watch } from '@kubernetes/client-node'
import type { Kube } from '../shared/kube/client.ts'

export interface EditRun {
  /** what to watch: an API path and its query (fieldSelector, labelSelector) */
  watch: { path: string; query: Record<string, string> }
  /** the mark an object carries, if any */
  markOf(obj: unknown): string | undefined
  /** saves edit i, which puts `mark` into the watched object */
  save(mark: string, i: number): void
  /** told each save's mark and time (another watch over the same edits) */
  onSave?: (mark: string, at: number) => void
  n: number
}

export async function timeEdits(kube: Kube, run: EditRun): Promise<number[]> {
  const seen = new Map<string, number>()
  const ac = await new Watch(kube.kc).watch(
    run.watch.path,
    run.watch.query,
    (_t, obj) => {
      const mark = run.markOf(obj)
      if (mark !== undefined && !seen.has(mark)) seen.set(mark, performance.now())
    },
    () => {},
  )
  const latencies: number[] = []
  try {
    for (let i = 0; i < run.n; i++) {
      const mark = `edit-${i}`
      const t0 = performance.now()
      run.save(mark, i)
      run.onSave?.(mark, t0)
      while (!seen.has(mark)) await new Promise((r) => setTimeout(r, 2))
      latencies.push(seen.get(mark)! - t0)
      await new Promise((r) => setTimeout(r, 300)) // let the debounce window close
    }
  } finally {
    ac.abort()
  }
  return latencies
}
