// A namespace.ts that does not compile, or throws while it loads, as a user meets it through
// `just validate`: one message naming the file and the place, a hint, exit 1, no stack trace.
// The folder is made under namespaces/ for the test and removed after it.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { after, describe, it } from 'node:test'
import { promisify } from 'node:util'
import { repoRoot } from '../../shared/core/paths.ts'

const run = promisify(execFile)
const name = `bad-ns-${process.pid}`
const dir = path.join(repoRoot, 'namespaces', name)

async function validate(): Promise<{ code: number; stderr: string }> {
  try {
    const { stderr } = await run(path.join(repoRoot, 'shared/bin/nsops.ts'), ['validate', name, '--offline'], {
      env: { ...process.env, CI: '1', NO_COLOR: '1' },
    })
    return { code: 0, stderr }
  } catch (err) {
    const e = err as { code?: number; stderr?: string }
    return { code: typeof e.code === 'number' ? e.code : -1, stderr: e.stderr ?? '' }
  }
}

describe('a malformed namespace.ts', () => {
  after(() => fs.rmSync(dir, { recursive: true, force: true }))

  it('that does not compile is named with file:line:column and a hint', async () => {
    fs.mkdirSync(dir, { recursive: true })
    fs.writeFileSync(
      path.join(dir, 'namespace.ts'),
      `import { defineNamespace } from '../../shared/config/namespace-config.ts'\nexport default defineNamespace({ name: '${name}'\n`,
    )
    const r = await validate()
    assert.equal(r.code, 1, r.stderr)
    assert.match(
      r.stderr,
      new RegExp(
        `namespaces/${name}/namespace\\.ts does not compile: namespaces/${name}/namespace\\.ts:3:0: Expected "\\}" but found end of file`,
      ),
    )
    assert.match(r.stderr, /hint: fix namespaces\/.*namespace\.ts \(`npx tsc --noEmit`/)
    assert.doesNotMatch(r.stderr, /\n\s+at |Transform failed|report it if it looks like a bug/)
  })

  it('that throws while it loads is named, with what it threw', async () => {
    fs.writeFileSync(path.join(dir, 'namespace.ts'), "throw new Error('no such setting: FOO')\n")
    const r = await validate()
    assert.equal(r.code, 1, r.stderr)
    assert.match(r.stderr, new RegExp(`namespaces/${name}/namespace\\.ts failed to load: no such setting: FOO`))
    assert.doesNotMatch(r.stderr, /\n\s+at /)
  })
})
