// The single test entry: imports every test/**/*.test.ts into one process, so the sim
// cluster is started once and shared (test/harness.ts). NSOPS_TEST_ONLY=a,b keeps only the
// files whose path contains one of the words.
import fs from 'node:fs'
import path from 'node:path'
import { after, before } from 'node:test'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { stopTestCluster } from './harness.ts'

const here = path.dirname(fileURLToPath(import.meta.url))
const only = (process.env.NSOPS_TEST_ONLY ?? '')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean)
const files = (fs.readdirSync(here, { recursive: true }) as string[])
  .filter((f) => f.endsWith('.test.ts'))
  .filter((f) => only.length === 0 || only.some((w) => f.includes(w)))
  // fixtures/ holds test files other tests run on purpose (e.g. one that leaks a timer)
  .filter((f) => !f.startsWith(`fixtures${path.sep}`) || only.some((w) => w.startsWith('fixtures/')))
  .sort()

// What keeps the event loop alive before any test runs (stdio: stdin's handle is made when
// first read, by a test or not): not a leak.
void process.stdin
const atStart = countResources()

/** The sim's processes stop within 13 s (SIGTERM, then SIGKILL); past this something hangs. */
const STOP_DEADLINE_MS = 60_000

after(async () => {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), STOP_DEADLINE_MS)))
  if ((await Promise.race([stopTestCluster(), late])) === 'late')
    // the exit handler harness.ts set kills what is left (the run then exits: --test-force-exit)
    process.stderr.write(
      `\n# the test cluster did not stop within ${STOP_DEADLINE_MS / 1000} s: its processes are killed\n`,
    )
  clearTimeout(timer)
  // a handle that is closing (a child's 'close' just fired) goes within a few ticks
  const until = Date.now() + 2000
  while (lingering().length > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50))
  reportLingering()
})

function countResources(): Map<string, number> {
  const counts = new Map<string, number>()
  for (const r of process.getActiveResourcesInfo()) counts.set(r, (counts.get(r) ?? 0) + 1)
  return counts
}

/**
 * node:test prints its summary only once nothing keeps the event loop alive, so a test that
 * leaves a timer, socket or child process behind made a CI run wait until its deadline with
 * every test passed. run.sh passes --test-force-exit; this names what was left, so the leak
 * can be found rather than hidden.
 */
function lingering(): string[] {
  return [...countResources()].flatMap(([type, n]) => {
    const extra = n - (atStart.get(type) ?? 0)
    return extra > 0 ? [`${type} ×${extra}`] : []
  })
}

function reportLingering(): void {
  const left = lingering()
  // reading stdin keeps the run alive when CI hands it an open pipe or a terminal
  if (process.stdin.readableFlowing) left.push('stdin being read')
  if (left.length === 0) return
  const detail = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles().flatMap((h) => {
    const o = h as { constructor?: { name?: string }; spawnargs?: string[]; pid?: number; remotePort?: number }
    if (o.spawnargs) return [`child process ${o.pid}: ${o.spawnargs.join(' ')}`]
    if (o.remotePort) return [`socket to port ${o.remotePort}`]
    return []
  })
  process.stderr.write(
    `\n# after every test, still active: ${left.join(', ')}${detail.map((d) => `\n#   ${d}`).join('')}\n` +
      '# (a test left it behind; --test-force-exit in test/run.sh ends the run anyway)\n',
  )
}

// node:test starts the first file's tests while later files are still being imported, so a
// describe body that reads the environment (e.g. the cache folder) could see what a running
// test set for a moment: the tests wait until every file is imported.
let imported!: () => void
const allImported = new Promise<void>((resolve) => (imported = resolve))
before(() => allImported)
try {
  for (const f of files) await import(pathToFileURL(path.join(here, f)).href)
} finally {
  imported()
}
