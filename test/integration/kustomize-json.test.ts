// Builds come back from kustomize-server as JSON (`"output": "json"`) so JSON.parse replaces
// the YAML parse. Those objects must be exactly what the kustomize CLI's YAML parses to —
// values, types (an int stays an int, "1" a string), object order and key order — on the
// shipped overlays and on values YAML makes tricky; and without a server (no Go toolchain to
// build it) builds must still work, through the CLI.
import assert from 'node:assert/strict'
import { execFile, spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { after, before, describe, it } from 'node:test'
import { promisify } from 'node:util'
import {
  buildKustomization,
  buildKustomizationWarm,
  parseManifests,
  type ManifestObject,
} from '../../shared/kustomize/build.ts'
import { repoRoot } from '../../shared/core/paths.ts'
import { toolPath } from '../../shared/tools/provision.ts'

const run = promisify(execFile)

/** The CLI + YAML path: the pinned kustomize binary, its output read by parseManifests. */
async function cliBuild(dir: string): Promise<ManifestObject[]> {
  const { stdout } = await run(await toolPath('kustomize'), ['build', dir], { maxBuffer: 256 * 1024 * 1024 })
  return parseManifests(stdout, `kustomize build ${dir}`)
}

/** JSON.stringify keeps object order, key order and 1 vs "1": equal text is equal objects. */
function assertSame(actual: unknown, expected: unknown, what: string): void {
  assert.deepStrictEqual(actual, expected, what)
  assert.equal(JSON.stringify(actual), JSON.stringify(expected), `${what}: key order`)
}

/** One JSON request straight to a kustomize-server of the test's own. */
async function serverAnswer(dir: string): Promise<{ objects?: unknown[]; yaml?: string; error?: string }> {
  const child = spawn(await toolPath('kustomize-server'), ['serve'], { stdio: ['pipe', 'pipe', 'inherit'] })
  try {
    const lines = createInterface({ input: child.stdout })
    child.stdin.write(`${JSON.stringify({ id: 1, dir, loadRestrictor: 'rootOnly', output: 'json' })}\n`)
    for await (const line of lines) return JSON.parse(line)
    throw new Error('kustomize-server ended without an answer')
  } finally {
    child.stdin.end() // EOF ends it
    if (child.exitCode === null) await new Promise((resolve) => child.once('exit', resolve))
  }
}

const TRICKY = `apiVersion: example.com/v1
kind: Tricky
metadata:
  name: tricky
  annotations:
    count: "3"
spec:
  int: 42
  negative: -7
  zero: 0
  octal: 0644
  hex: 0x1F
  big: 9007199254740993
  float: 1.50
  exp: 1e3
  intString: "42"
  floatString: "1.50"
  octalString: "0644"
  bools: [true, false, "true", yes, no, on, off, "on", "yes", "off", y, n, True]
  nulls: [null, ~, "null", "~", ""]
  empty: {}
  emptyList: []
  emptyString: ""
  multiline: |
    first
      second

    --- not a separator
    last
  strip: |-
    no trailing newline
  keep: |+
    two trailing newlines

  folded: >
    folded
    text
  spaces: "  leading and trailing  "
  date: 2024-01-02
  underscore: 1_000
  sexagesimal: 1:20
  colon: "a: b"
  hash: "a #b"
  keyOrder: {b: 1, B: 2, _x: 3, a10: 4, a9: 5, "1": 6, "10": 7, "2": 8, A_b: 9, Ab: 10, "-z": 11, z0: 12, z00: 13}
  unicode: "héllo ✓ 😀"
  escapes: "tab\\there\\u0007bell\\r\\n"
  html: "<a href='x'>&amp;</a>"
  nested: [[1, "1"], {a: [{}]}]
`

const LIST = `apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: from-list-a}
  data: {port: "8080", enabled: "true"}
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: from-list-b}
`

describe('kustomize builds as JSON', () => {
  const overlays = [
    path.join(repoRoot, 'test', 'fixtures', 'kustomize', 'overlays', 'dev'),
    ...fs
      .readdirSync(path.join(repoRoot, 'namespaces'))
      .flatMap((ns) => ['dev', 'prod'].map((o) => path.join(repoRoot, 'namespaces', ns, 'overlays', o)))
      .filter((d) => fs.existsSync(path.join(d, 'kustomization.yaml'))),
  ]
  let tmp = ''
  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-kjson-'))
    fs.mkdirSync(path.join(tmp, 'tricky'))
    fs.writeFileSync(path.join(tmp, 'tricky', 'tricky.yaml'), TRICKY)
    fs.writeFileSync(path.join(tmp, 'tricky', 'list.yaml'), LIST)
    fs.writeFileSync(
      path.join(tmp, 'tricky', 'kustomization.yaml'),
      'resources:\n- tricky.yaml\n- list.yaml\ncommonLabels:\n  "on": "yes"\n',
    )
  })
  after(() => fs.rmSync(tmp, { recursive: true, force: true }))

  it("kustomize-server answers JSON objects equal to the CLI's YAML, order and types included", async () => {
    const dir = path.join(tmp, 'tricky')
    const answer = await serverAnswer(dir)
    assert.equal(answer.error, undefined)
    assert.equal(answer.yaml, undefined, 'a JSON request is answered without YAML')
    assert.ok(Array.isArray(answer.objects))
    const cli = await cliBuild(dir)
    assertSame(answer.objects, cli, 'tricky values')
    // the cases spelled out, so an equal mistake on both sides cannot pass unseen
    const spec = (
      answer.objects.find((o) => (o as ManifestObject).kind === 'Tricky') as { spec: Record<string, unknown> }
    ).spec
    assert.equal(spec.int, 42)
    assert.equal(spec.intString, '42')
    assert.equal(spec.octalString, '0644')
    assert.deepEqual(spec.bools, [true, false, 'true', 'yes', 'no', 'on', 'off', 'on', 'yes', 'off', 'y', 'n', true])
    assert.deepEqual(spec.nulls, [null, null, 'null', '~', ''])
    assert.deepEqual(spec.empty, {})
    assert.equal(spec.multiline, 'first\n  second\n\n--- not a separator\nlast\n')
    assert.equal(spec.keep, 'two trailing newlines\n\n')
    assert.equal(spec.sexagesimal, '1:20')
    assert.equal(spec.date, '2024-01-02T00:00:00Z') // kustomize's own doing (yaml.v3 reads a time), on both paths
    assert.deepEqual(
      cli.map((o) => o.metadata.name).sort(),
      ['from-list-a', 'from-list-b', 'tricky'],
      'the List stands for its two items',
    )
  })

  it('buildKustomization and buildKustomizationWarm give the CLI + YAML objects on every shipped overlay', async () => {
    assert.ok(overlays.length >= 5)
    for (const dir of [...overlays, path.join(tmp, 'tricky')]) {
      const cli = await cliBuild(dir)
      assertSame(await buildKustomization(dir), cli, dir)
      assertSame(await buildKustomizationWarm(dir), cli, `${dir} (warm)`)
    }
  })

  it('falls back to the kustomize CLI when kustomize-server cannot be had, with the same objects and error messages', async () => {
    // a process whose tool cache is empty, with no Go toolchain on PATH and downloads off:
    // kustomize-server cannot be built; the pinned kustomize is on PATH
    const bin = path.join(tmp, 'bin')
    fs.mkdirSync(bin)
    fs.symlinkSync(await toolPath('kustomize'), path.join(bin, 'kustomize'))
    const broken = path.join(repoRoot, 'test', 'fixtures', 'kustomize', 'broken')
    const nameless = path.join(tmp, 'nameless')
    fs.mkdirSync(nameless)
    fs.writeFileSync(
      path.join(nameless, 'job.yaml'),
      'apiVersion: batch/v1\nkind: Job\nmetadata:\n  generateName: once-\n',
    )
    fs.writeFileSync(path.join(nameless, 'kustomization.yaml'), 'resources:\n- job.yaml\n')
    const dirs = [
      overlays[overlays.length - 1],
      path.join(tmp, 'tricky'),
      nameless,
      ...fs.readdirSync(broken).map((b) => path.join(broken, b)),
    ]
    const outcomes = async (dirs: string[], build: (dir: string) => Promise<unknown>) =>
      Promise.all(
        dirs.map(async (dir) => {
          try {
            return { objects: await build(dir) }
          } catch (err) {
            return { error: (err as Error).message }
          }
        }),
      )
    const script = path.join(tmp, 'fallback.mts')
    fs.writeFileSync(
      script,
      [
        `import { buildKustomization, buildKustomizationWarm } from ${JSON.stringify(path.join(repoRoot, 'shared', 'kustomize', 'build.ts'))}`,
        `const dirs = ${JSON.stringify(dirs)}`,
        `const outcomes = ${outcomes.toString()}`,
        'const one = await outcomes(dirs, buildKustomization)',
        'const warm = await outcomes(dirs, (d) => buildKustomizationWarm(d))',
        'process.stdout.write(JSON.stringify({ one, warm }))',
      ].join('\n'),
    )
    const { stdout } = await run(
      process.execPath,
      ['--import', `file://${path.join(repoRoot, 'node_modules', 'tsx', 'dist', 'esm', 'index.mjs')}`, script],
      {
        cwd: process.cwd(), // errors show paths relative to it
        env: { PATH: bin, HOME: tmp, XDG_CACHE_HOME: path.join(tmp, 'cache'), NSOPS_NO_DOWNLOAD: '1' },
        maxBuffer: 256 * 1024 * 1024,
      },
    )
    const serverDir = path.join(tmp, 'cache', 'nsops', 'tools', 'kustomize-server')
    assert.ok(
      !fs.existsSync(serverDir) ||
        fs.readdirSync(serverDir).every((v) => !fs.existsSync(path.join(serverDir, v, 'kustomize-server'))),
      'no kustomize-server was built',
    )
    const { one, warm } = JSON.parse(stdout) as { one: unknown[]; warm: unknown[] }
    const here = await outcomes(dirs, buildKustomization) // this process: through kustomize-server
    assert.ok(here.filter((o) => 'error' in o).length >= 4, 'the broken fixtures and the nameless Job fail')
    assert.deepStrictEqual(
      one.map((o) => JSON.stringify(o)),
      here.map((o) => JSON.stringify(o)),
      'buildKustomization without a server',
    )
    assert.deepStrictEqual(
      warm.map((o) => JSON.stringify(o)),
      here.map((o) => JSON.stringify(o)),
      'buildKustomizationWarm without a server',
    )
    const cli = await cliBuild(dirs[0])
    assertSame((one[0] as { objects: unknown }).objects, cli, 'the fallback is the CLI + YAML path')
  })
})
