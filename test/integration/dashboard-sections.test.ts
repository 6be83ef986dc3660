// The dashboardSections hook on the sim cluster: its sections render in the terminal view and
// in --json (computed once per process run); a hook that throws, or one that hangs past its
// timeout, is one error row and the rest of the dashboard is there as usual.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { collect } from '../../shared/dashboard/collect.ts'
import { renderDashboard } from '../../shared/dashboard/render.ts'
import { hookSections } from '../../shared/dashboard/sections.ts'
import { defineNamespace, namespacePaths, type NamespaceConfig } from '../../shared/config/namespace-config.ts'
import { stateDir } from '../../shared/core/paths.ts'
import type { Hooks } from '../../shared/config/task-types.ts'
import { testCluster, testNamespace, type TestCluster } from '../harness.ts'

const plain = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '')

describe('dashboard sections from the dashboardSections hook', () => {
  let cluster: TestCluster
  let space: { name: string; cleanup: () => Promise<void> }
  let tmp = ''
  const names: string[] = []

  before(async () => {
    cluster = await testCluster()
    space = await testNamespace('sections')
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-sections-'))
  })
  after(async () => {
    await space?.cleanup()
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true })
    for (const n of names) fs.rmSync(path.join(stateDir(), 'tasks', n), { recursive: true, force: true })
  })

  const namespace = (name: string, dashboardSections: Hooks['dashboardSections']): NamespaceConfig => {
    names.push(name)
    const base = defineNamespace({
      name,
      description: 'sections',
      namespaces: { dev: space.name, prod: space.name },
      groups: [],
      hooks: { dashboardSections },
    })
    fs.mkdirSync(path.join(tmp, name), { recursive: true })
    return { ...base, paths: namespacePaths(path.join(tmp, name)) }
  }

  it("renders the hook's sections (a kubectl call through the pinned kubeconfig) in the view and in --json, computed once", async () => {
    let calls = 0
    const ns = namespace('sections-ok', async ({ $, namespace }) => {
      calls++
      const phase = (await $`kubectl get namespace ${namespace} -o jsonpath={.status.phase}`).stdout.trim()
      return [
        {
          title: 'Queue',
          rows: [
            ['namespace phase', phase],
            ['jobs waiting', String(3)],
          ],
        },
      ]
    })
    const model = await collect(cluster.kube, ns, 'dev')
    assert.deepEqual(model.sections, [
      {
        title: 'Queue',
        rows: [
          ['namespace phase', 'Active'],
          ['jobs waiting', '3'],
        ],
      },
    ])
    const text = plain(renderDashboard(model))
    assert.match(text, /\nQUEUE\n {2}namespace phase {2}Active\n {2}jobs waiting {5}3\n/)
    const again = await collect(cluster.kube, ns, 'dev')
    assert.deepEqual(again.sections, model.sections)
    assert.equal(calls, 1, 'cached for the process run')
    assert.deepEqual(JSON.parse(JSON.stringify(model)).sections, model.sections)
  })

  it('a hook that throws is one error row; the dashboard is whole and its health unaffected', async () => {
    const ns = namespace('sections-throws', async () => {
      throw new Error('queue API refused the connection')
    })
    const model = await collect(cluster.kube, ns, 'dev')
    assert.equal(model.sections?.length, 1)
    assert.equal(model.sections?.[0]?.title, 'dashboardSections')
    assert.match(
      model.sections?.[0]?.error ?? '',
      /the dashboardSections hook failed \(queue API refused the connection\)/,
    )
    assert.ok(!model.problems.some((p) => /dashboardSections/.test(p)), model.problems.join('; '))
    const text = plain(renderDashboard(model))
    assert.match(
      text,
      /DASHBOARDSECTIONS\n {2}✖ the dashboardSections hook failed \(queue API refused the connection\)/,
    )
    for (const section of ['PODS', 'STORAGE', 'RECENT WARNINGS', 'QUICK COMMANDS'])
      assert.match(text, new RegExp(`\\n${section}\\n`))
  })

  it('a hook that hangs past its timeout is an error row, its command stopped', async () => {
    let stopped = false
    const ns = namespace('sections-hangs', async ({ $ }) => {
      try {
        await $`sleep 30`
      } catch {
        stopped = true
      }
      return [{ title: 'never', rows: [] }]
    })
    const t0 = Date.now()
    const sections = await hookSections(cluster.kube, ns, 'dev', {}, 300)
    assert.ok(Date.now() - t0 < 5000, `gave up after its timeout (${Date.now() - t0} ms)`)
    assert.deepEqual(sections, [
      { title: 'dashboardSections', rows: [], error: 'the dashboardSections hook did not answer within 0.3 s' },
    ])
    assert.ok(stopped, 'its sleep was killed, not left running')
  })

  it('a hook that returns something else than sections is an error row', async () => {
    const ns = namespace('sections-shape', (async () => 'three jobs') as unknown as Hooks['dashboardSections'])
    const model = await collect(cluster.kube, ns, 'dev')
    assert.match(model.sections?.[0]?.error ?? '', /returned string, not a list of \{ title, rows \}/)
  })
})
