// One name, one meaning (issue 23): no two files of shared/ declare the same exported name, so
// an import names one thing wherever it is read (a second meaning gets a name of its own, by
// its role; a second copy of the same thing imports the first). And what Flux reads as "reconcile
// now" is written in one place, flux/reconcile.ts, which every caller goes through.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { describe, it } from 'node:test'
import { repoRoot } from '../../shared/core/paths.ts'

const shared = path.join(repoRoot, 'shared')

/** Names a file of its own can never choose: an API it implements fixes them. */
const FIXED_BY_AN_API = new Map([
  // module.register()'s loader hooks are looked up by name
  ['resolve', 'bin/fast-deps-hooks.mjs'],
])

function sourceFiles(): string[] {
  return (fs.readdirSync(shared, { recursive: true }) as string[])
    .filter((f) => /\.(ts|mts|mjs)$/.test(f) && !f.endsWith('.d.ts'))
    .map((f) => f.split(path.sep).join('/'))
}

const DECLARATION =
  /^export (?:declare )?(?:async )?(?:function\*?|const|let|interface|type|class|enum) ([A-Za-z0-9_$]+)/gm

/** Code without its comments, so a comment that names an annotation is not a write of it. */
function withoutComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '')
}

describe('names in shared/', () => {
  it('every exported name is declared in one file only', () => {
    const where = new Map<string, string[]>()
    for (const file of sourceFiles()) {
      const text = fs.readFileSync(path.join(shared, file), 'utf8')
      for (const m of text.matchAll(DECLARATION)) {
        if (FIXED_BY_AN_API.get(m[1]) === file) continue
        where.set(m[1], [...(where.get(m[1]) ?? []), file])
      }
    }
    assert.ok(where.size > 500, `found only ${where.size} exported names: is the pattern still right?`)
    const twice = [...where]
      .filter(([, files]) => files.length > 1)
      .map(([name, files]) => `${name}: ${files.join(', ')}`)
    assert.deepEqual(twice, [])
  })

  it('the reconcile request (reconcile.fluxcd.io/requestedAt) is written in flux/reconcile.ts only', () => {
    const writers = sourceFiles().filter((file) => {
      const code = withoutComments(fs.readFileSync(path.join(shared, file), 'utf8'))
      return code.includes('reconcile.fluxcd.io/') || /\[\s*(REQUESTED_AT|FORCE_AT)\s*\]\s*:/.test(code)
    })
    assert.deepEqual(writers, ['flux/reconcile.ts'])
  })
})
