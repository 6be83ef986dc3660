// A namespace.ts whose name is not its folder's is refused before anything runs, through both
// doors: `npx just validate NS` (the folder named on the command line) and the folder's own
// script (./namespaces/NS/deploy.ts imports ./namespace.ts). Before, deploy went on with the
// other folder's paths: it would have validated and committed namespaces/<name>, not this one.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { after, before, describe, it } from 'node:test'
import { repoRoot } from '../../shared/core/paths.ts'

const run = promisify(execFile)
const outcome = (p: Promise<{ stdout: string; stderr: string }>) =>
  p.then(
    (r) => ({ code: 0, out: r.stdout + r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout + e.stderr }),
  )

describe('a namespace.ts named unlike its folder', () => {
  const folder = `zz-misnamed-${process.pid}`
  const dir = path.join(repoRoot, 'namespaces', folder)
  before(() => {
    fs.mkdirSync(dir)
    fs.writeFileSync(
      path.join(dir, 'namespace.ts'),
      `import { defineNamespace } from '../../shared/config/namespace-config.ts'\n\nexport default defineNamespace({\n  name: 'arr-stack',\n  description: 'a copy someone forgot to rename',\n  namespaces: { dev: 'arr-stack-dev', prod: 'arr-stack' },\n})\n`,
    )
    fs.copyFileSync(path.join(repoRoot, 'namespaces/arr-stack/deploy.ts'), path.join(dir, 'deploy.ts'))
    fs.chmodSync(path.join(dir, 'deploy.ts'), 0o755)
  })
  after(() => fs.rmSync(dir, { recursive: true, force: true }))

  it('is refused by npx just validate NS, naming both names and the fix', async () => {
    const r = await outcome(run('npx', ['just', 'validate', folder], { cwd: repoRoot }))
    assert.notEqual(r.code, 0, r.out)
    assert.match(r.out, new RegExp(`names its namespace "arr-stack", but its folder is namespaces/${folder}`))
    assert.match(r.out, new RegExp(`set name: '${folder}'`))
  })

  it("is refused by the folder's own deploy.ts before it validates or commits anything", async () => {
    const r = await outcome(run(path.join(dir, 'deploy.ts'), ['--dry-run'], { cwd: repoRoot }))
    assert.notEqual(r.code, 0, r.out)
    assert.match(r.out, new RegExp(`names its namespace "arr-stack", but its folder is namespaces/${folder}`))
    assert.doesNotMatch(r.out, /namespaces\/arr-stack\/overlays/, 'nothing of the other folder was touched')
  })
})
