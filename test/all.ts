// The single test entry: imports every test/**/*.test.ts into one process, so the sim
// cluster is started once and shared (test/harness.ts). NSOPS_TEST_ONLY=a,b keeps only the
// files whose path contains one of the words.
import fs from 'node:fs'
import path from 'node:path'
import { after } from 'node:test'
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
  .sort()

after(async () => {
  await stopTestCluster()
})

for (const f of files) await import(pathToFileURL(path.join(here, f)).href)
