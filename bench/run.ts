// `just bench [name...]`: runs the benchmarks and prints figures (medians) and ratios
// against a baseline measured in the same run. Not a test: nothing here passes or fails.
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
const all = fs
  .readdirSync(here)
  .filter((f) => f.endsWith('.bench.ts'))
  .map((f) => f.replace(/\.bench\.ts$/, ''))
  .sort()
const wanted = process.argv.slice(2)
const unknown = wanted.filter((w) => !all.includes(w))
if (unknown.length) {
  console.error(`unknown benchmark(s): ${unknown.join(', ')}. Known: ${all.join(', ')}`)
  process.exit(1)
}
for (const name of wanted.length ? wanted : all) {
  console.log(`\n## ${name}`)
  const mod = await import(pathToFileURL(path.join(here, `${name}.bench.ts`)).href)
  await mod.default()
}
