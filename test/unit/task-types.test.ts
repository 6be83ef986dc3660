// "Typed zx": tsc checks a namespace's tasks and hooks. A task whose run takes something
// other than the task context, or a hook returning the wrong thing, does not compile.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { after, describe, it } from 'node:test'
import { repoRoot } from '../../shared/core/paths.ts'

const run = promisify(execFile)
const dir = path.join(repoRoot, 'test', `.tsc-${process.pid}`)
after(() => fs.rmSync(dir, { recursive: true, force: true }))

async function typecheck(source: string): Promise<{ code: number; out: string }> {
  fs.mkdirSync(dir, { recursive: true })
  fs.writeFileSync(path.join(dir, 'namespace.ts'), source)
  fs.writeFileSync(
    path.join(dir, 'tsconfig.json'),
    JSON.stringify({ extends: '../../tsconfig.json', include: ['namespace.ts'] }),
  )
  return run(path.join(repoRoot, 'node_modules/.bin/tsc'), ['--noEmit', '-p', dir]).then(
    (r) => ({ code: 0, out: r.stdout }),
    (e: { code: number; stdout: string }) => ({ code: e.code, out: e.stdout }),
  )
}

const config = (
  tasks: string,
  hooks = '{}',
) => `import { defineNamespace } from '../../shared/config/namespace-config.ts'
export default defineNamespace({ name: 'typed', description: 't', namespaces: { dev: 'typed-dev', prod: 'typed' }, tasks: ${tasks}, hooks: ${hooks} })
`

describe('tasks and hooks are typed', () => {
  it('a task and hooks with the right signatures compile', async () => {
    const r = await typecheck(
      config(
        "{ seed: { on: 'apply', after: [], run: async ({ $, forwards, kube, namespace }) => { await $`echo ${forwards.sonarr} ${namespace}`; await kube.core.listNamespacedPod({ namespace }) } } }",
        "{ afterApply: async ({ applied, log }) => { log(String(applied.created)) }, dashboardSections: async () => [{ title: 'x', rows: [['a']] }] }",
      ),
    )
    assert.equal(r.code, 0, r.out)
  })

  it('a task whose run takes a string is rejected, naming the task', async () => {
    const r = await typecheck(config('{ seed: { run: async (url: string) => url.length } }'))
    assert.notEqual(r.code, 0)
    assert.match(r.out, /namespace\.ts\(\d+,\d+\): error TS2322/)
    assert.match(r.out, /seed|TaskContext/)
  })

  it('an unknown trigger and a dashboard section of the wrong shape are rejected', async () => {
    const r = await typecheck(
      config("{ seed: { on: 'sometimes', run: async () => {} } }", "{ dashboardSections: async () => 'rows' }"),
    )
    assert.notEqual(r.code, 0)
    assert.match(r.out, /"sometimes"/)
    assert.match(r.out, /dashboardSections|DashboardSection/)
  })
})
