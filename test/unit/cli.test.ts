// The flags every command shares: Go durations (how flux and kubectl print them) and
// `-o json` as a synonym of --json.
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { describe, it } from 'node:test'
import { commandName, goDuration, parseCommand, parseDuration } from '../../shared/core/cli.ts'
import { NsopsError } from '../../shared/core/errors.ts'
import { repoRoot } from '../../shared/core/paths.ts'

describe('cli: durations', () => {
  it('reads Go durations: 90s, 1m30s, 5m0s, 300ms, 1h, 1.5h, 2h45m', () => {
    assert.equal(parseDuration('90s'), 90_000)
    assert.equal(parseDuration('1m30s'), 90_000)
    assert.equal(parseDuration('5m0s'), 300_000)
    assert.equal(parseDuration('300ms'), 300)
    assert.equal(parseDuration('1h'), 3_600_000)
    assert.equal(parseDuration('1.5h'), 5_400_000)
    assert.equal(parseDuration('2h45m'), 9_900_000)
    assert.equal(parseDuration('1m0.5s'), 60_500)
  })

  it('takes a bare number as seconds, as the flags always did', () => {
    assert.equal(parseDuration('90'), 90_000)
  })

  it('refuses what is not a duration, naming the flag and giving examples', () => {
    for (const bad of ['5 m', '1m30', 'm', '5d', '-5m', '', '1h-5m']) {
      assert.throws(
        () => parseDuration(bad, '--timeout'),
        (err: unknown) => {
          assert.ok(err instanceof NsopsError, String(err))
          assert.match(err.message, /--timeout/)
          assert.match(err.hint ?? '', /1m30s/)
          return true
        },
        bad,
      )
    }
  })

  it('refuses zero unless the flag gives 0 a meaning', () => {
    assert.throws(() => parseDuration('0s'), /longer than 0/)
    assert.equal(parseDuration('0', '--timeout', { allowZero: true }), 0)
    assert.equal(goDuration('0s'), 0)
    assert.equal(goDuration(undefined), undefined)
  })
})

describe('cli: -o json', () => {
  const spec = { usage: 'Usage: x', options: { json: { type: 'boolean' as const } } }

  it('sets json for -o json and --output json, as --json does', () => {
    assert.equal((parseCommand(['-o', 'json'], spec).values as { json?: boolean }).json, true)
    assert.equal((parseCommand(['--output=json'], spec).values as { json?: boolean }).json, true)
    assert.equal((parseCommand(['--json'], spec).values as { json?: boolean }).json, true)
    assert.equal((parseCommand([], spec).values as { json?: boolean }).json, undefined)
  })

  it('refuses other formats, and -o on a command without --json', () => {
    assert.throws(() => parseCommand(['-o', 'yaml'], spec), /only output format is json/)
    assert.throws(() => parseCommand(['-o', 'json'], { usage: 'Usage: y', options: {} }), NsopsError)
  })
})

describe('cli: runMain', () => {
  it('keeps the process until main() settles, even when all it waits on is unreferenced (no silent exit 0 mid-cleanup)', async () => {
    const { execFile } = await import('node:child_process')
    const fs = await import('node:fs')
    const os = await import('node:os')
    const path = await import('node:path')
    const { repoRoot } = await import('../../shared/core/paths.ts')
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-runmain-test-'))
    try {
      // a cleanup that waits on an unref'd timer, as on an idle keep-alive connection
      fs.writeFileSync(
        path.join(dir, 'main.mts'),
        `import { runMain } from ${JSON.stringify(path.join(repoRoot, 'shared/core/cli.ts'))}
runMain(async () => {
  await new Promise((resolve) => setTimeout(resolve, 300).unref())
  process.stdout.write('cleaned up')
  return 130
})
`,
      )
      const result = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
        execFile(path.join(repoRoot, 'shared/bin/nsops-node'), [path.join(dir, 'main.mts')], (err, stdout) =>
          resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout }),
        )
      })
      assert.deepEqual(result, { code: 130, stdout: 'cleaned up' })
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('cli: flags it does not know', () => {
  const spec = {
    usage: '\nUsage: just dashboard NS [--json]\n\nlong text…',
    options: { json: { type: 'boolean' as const } },
  }

  it('names the flag and the command in one line and points at --help, without the usage', () => {
    assert.throws(
      () => parseCommand(['--foo'], spec),
      (err: unknown) => {
        assert.ok(err instanceof NsopsError)
        assert.equal(err.message, 'unknown flag --foo for dashboard')
        assert.equal(err.hint, 'see --help')
        return true
      },
    )
    assert.equal(commandName('Usage: ./namespaces/arr-stack/drift.ts [--all]'), 'drift')
    assert.equal(commandName('Usage: just tk-show ENV'), 'tk-show')
  })
})

describe('cli: the launcher without its pinned Node', () => {
  // A machine npm has no Node 24 for (macOS): shared/bin/nsops-node falls back to the node on
  // PATH. This machine's system node is 20, so a copy of the launcher in a root whose
  // node_modules has no pinned node meets a real Node 20.
  it('refuses a node older than 24 in one line, with a hint, before running anything', () => {
    const system = execFileSync('sh', ['-c', 'PATH=/usr/bin:/bin node -p process.versions.node'], { encoding: 'utf8' })
    if (Number(system.split('.')[0]) >= 24)
      return assert.fail(`the system node is ${system.trim()}: this test needs one older than 24`)
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-launcher-'))
    try {
      fs.mkdirSync(path.join(root, 'shared/bin'), { recursive: true })
      fs.copyFileSync(path.join(repoRoot, 'shared/bin/nsops-node'), path.join(root, 'shared/bin/nsops-node'))
      fs.mkdirSync(path.join(root, 'node_modules/tsx/dist/esm'), { recursive: true })
      fs.writeFileSync(path.join(root, 'node_modules/tsx/dist/esm/index.mjs'), '')
      fs.writeFileSync(path.join(root, 'main.mts'), 'console.log("ran")\n')
      const r = spawnSync(path.join(root, 'shared/bin/nsops-node'), [path.join(root, 'main.mts')], {
        encoding: 'utf8',
        env: { ...process.env, PATH: '/usr/bin:/bin' },
      })
      assert.equal(r.status, 1)
      assert.equal(r.stdout, '')
      assert.match(r.stderr, /^nsops: needs Node\.js 24 or newer, found: v20\.[\d.]+\.\nhint: .*Node 24 LTS/)
    } finally {
      fs.rmSync(root, { recursive: true, force: true })
    }
  })
})
