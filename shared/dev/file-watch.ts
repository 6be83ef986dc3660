// Watching a folder for saves, as both dev loops (a namespace's overlay, a Tanka environment)
// do: a watch per directory (chokidar), a filter for the files that matter, and Tilt's
// coalescing — a quiet window after the last change, but at most 10 s after the first, so a
// stream of saves still applies. 50 ms by default: Tilt's 200 ms alone would eat most of a
// 250 ms save → live budget.
//
// Not node's `fs.watch(root, { recursive: true })`: on Linux (node 20) it loses a file once an
// editor saves it atomically (write a temp file, rename it over the old one — vim, sed -i,
// JetBrains' safe write): every later save of that file went unseen. A watch per directory
// sees the rename of the file's name, which is what chokidar keeps for every folder below.
import fs from 'node:fs'
import path from 'node:path'
import chokidar from 'chokidar'

export interface FileWatch {
  /** resolves once every folder below the root is watched: saves from then on are seen */
  ready: Promise<void>
  close(): void
  /**
   * Runs fn with the watch deaf to its writes: a beforeApply hook that regenerates a file
   * under the folder must not trigger another apply. fs events arrive late, so an event
   * is ignored when the file's mtime falls inside a muted run, also after it ended; a
   * person's edit made afterwards has a later mtime and counts.
   */
  muted<T>(fn: () => Promise<T>): Promise<T>
}

export function watchDebounced(
  root: string,
  opts: {
    debounceMs?: number
    relevant: (file: string) => boolean
    /** `file` is the last file saved in the window, `files` every one (relative to root) */
    onChange: (file: string, files: string[]) => void
  },
): FileWatch {
  const debounce = opts.debounceMs ?? 50
  let timer: NodeJS.Timeout | undefined
  let firstChangeAt = 0
  let last = ''
  let files = new Set<string>()
  // when muted work ran: a file whose mtime falls inside one was written by it, so its
  // event (which may arrive after the work ended) is an echo, not a person's edit
  const windows: { start: number; end: number }[] = []
  const writtenWhileMuted = (file: string) => {
    let mtime: number
    try {
      mtime = fs.statSync(path.join(root, file)).mtimeMs
    } catch {
      return false
    }
    return windows.some((w) => mtime >= w.start && mtime <= w.end)
  }
  const watcher = chokidar.watch(root, {
    ignoreInitial: true,
    // a link is watched as a file, never walked: one to ~ or / in the namespace folder would
    // have the watch open every folder below it (and kustomize refuses files outside anyway)
    followSymlinks: false,
    ignored: (p: string) => path.basename(p).startsWith('.') && p !== root,
  })
  // files created in this window: one removed again in the same window was an editor's temp
  // file (sed -i's sedXXXX, vim's 4913 and file~), not a save to build for or to name
  let created = new Set<string>()
  watcher.on('all', (event, abs) => {
    if (event === 'addDir' || event === 'unlinkDir') return
    const file = path.relative(root, abs)
    if (!file || !opts.relevant(file)) return
    if (event === 'add') created.add(file)
    if (event === 'unlink' && created.delete(file)) {
      files.delete(file)
      if (last === file) last = [...files].at(-1) ?? ''
      if (files.size === 0) {
        clearTimeout(timer)
        timer = undefined
      }
      return
    }
    if (writtenWhileMuted(file)) return
    last = file
    files.add(last)
    if (!timer) firstChangeAt = Date.now()
    clearTimeout(timer)
    const wait = Math.max(0, Math.min(debounce, firstChangeAt + 10_000 - Date.now()))
    timer = setTimeout(() => {
      timer = undefined
      const all = [...files]
      files = new Set()
      created = new Set()
      opts.onChange(last, all)
    }, wait)
  })
  return {
    ready: new Promise<void>((resolve) => watcher.once('ready', () => resolve())),
    close() {
      clearTimeout(timer)
      void watcher.close()
    },
    async muted(fn) {
      const w = { start: Date.now() - 5, end: Infinity }
      windows.push(w)
      if (windows.length > 8) windows.shift()
      try {
        return await fn()
      } finally {
        w.end = Date.now() + 5
      }
    },
  }
}
