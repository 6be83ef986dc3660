// The test run itself (test/run.sh, test/all.ts): a test that leaves a timer or a child
// process behind must not make the run wait for ever with every test passed (node:test prints
// its summary only once the event loop is empty; a CI run once sat at its deadline that way),
// and the run names what was left so the leak can be found.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { describe, it } from 'node:test'
import { repoRoot } from '../../shared/core/paths.ts'

describe('the test run', () => {
  it('exits with its summary when a test left handles behind, naming them', async () => {
    // run.sh's own two lines that start the tests, as `just test` runs them
    const lines = fs
      .readFileSync(path.join(repoRoot, 'test/run.sh'), 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('export NODE_OPTIONS=') || l.startsWith('exec shared/bin/nsops-node'))
    assert.equal(lines.length, 2, 'test/run.sh sets NODE_OPTIONS and runs test/all.ts')
    const child = spawn('sh', ['-c', lines.join('\n')], {
      cwd: repoRoot,
      env: { ...process.env, NODE_OPTIONS: '', NSOPS_TEST_ONLY: 'fixtures/test-run/' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    let err = ''
    child.stdout.on('data', (d: Buffer) => (out += d.toString()))
    child.stderr.on('data', (d: Buffer) => (err += d.toString()))
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
    clearTimeout(timer)
    const leftChild = /child process (\d+): sleep 120/.exec(err)
    if (leftChild) process.kill(Number(leftChild[1]), 'SIGKILL')
    assert.equal(code, 0, `the run exited by itself\n${out}\n${err}`)
    assert.match(out, /^# pass 1$/m)
    assert.match(err, /still active: .*Timeout ×1/)
    assert.ok(leftChild, `the child process is named:\n${err}`)
  })
})
