// Watching a folder for saves, as both dev loops (a namespace's overlay, a Tanka environment)
// do: fs.watch recursive, a filter for the files that matter, and Tilt's coalescing — a quiet
// window after the last change, but at most 10 s after the first, so a stream of saves still
// applies. 50 ms by default: Tilt's 200 ms alone would eat most of a 250 ms save → live budget.
import fs from 'node:fs'

export interface FileWatch {
  close(): void
  /**
   * Runs fn with the watch deaf to its writes (a beforeApply hook that regenerates a file
   * under the folder must not trigger another apply), and for a moment after, since fs
   * events arrive late.
   */
  muted<T>(fn: () => Promise<T>): Promise<T>
}

export function watchDebounced(root: string, opts: { debounceMs?: number; relevant: (file: string) => boolean; onChange: (file: string) => void }): FileWatch {
  const debounce = opts.debounceMs ?? 50
  let timer: NodeJS.Timeout | undefined
  let firstChangeAt = 0
  let last = ''
  let mutes = 0
  let deafUntil = 0
  const watcher = fs.watch(root, { recursive: true }, (_event, file) => {
    if (mutes > 0 || Date.now() < deafUntil) return
    if (!file || !opts.relevant(file.toString())) return
    last = file.toString()
    if (!timer) firstChangeAt = Date.now()
    clearTimeout(timer)
    const wait = Math.max(0, Math.min(debounce, firstChangeAt + 10_000 - Date.now()))
    timer = setTimeout(() => { timer = undefined; opts.onChange(last) }, wait)
  })
  return {
    close() { clearTimeout(timer); watcher.close() },
    async muted(fn) {
      mutes++
      try { return await fn() } finally { mutes--; deafUntil = Date.now() + 150 }
    },
  }
}
