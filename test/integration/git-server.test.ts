// The local smart-HTTP git server: the real git CLI clones, pushes and fetches through it.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { promisify } from 'node:util'
import zlib from 'node:zlib'
import { createBareRepo, startGitServer, type GitServer } from '../../shared/cluster/sim/git-server.ts'

const run = promisify(execFile)
const gitEnv = { ...process.env, GIT_CONFIG_NOSYSTEM: '1', GIT_TERMINAL_PROMPT: '0' }

async function git(cwd: string, ...args: string[]): Promise<string> {
  const { stdout } = await run('git', ['-c', 'user.name=test', '-c', 'user.email=test@example.com', ...args], {
    cwd,
    env: gitEnv,
  })
  return stdout.trim()
}

function post(url: string, headers: Record<string, string>, body: Buffer): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }))
    })
    req.on('error', reject)
    req.end(body)
  })
}

describe('git server', () => {
  let tmp: string
  let server: GitServer

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-git-server-'))
    fs.mkdirSync(path.join(tmp, 'repos'))
    await createBareRepo(path.join(tmp, 'repos'), 'app')
    server = await startGitServer({ root: path.join(tmp, 'repos') })
  })

  after(async () => {
    await server?.stop()
    fs.rmSync(tmp, { recursive: true, force: true })
  })

  it('clones an empty repository, pushes to it and another clone fetches the pushed commits', async () => {
    const url = server.urlFor('app.git')
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/app\.git$/)
    await git(tmp, 'clone', '--quiet', url, 'a')
    const a = path.join(tmp, 'a')
    fs.writeFileSync(path.join(a, 'README.md'), 'hello\n')
    await git(a, 'checkout', '--quiet', '-b', 'main')
    await git(a, 'add', 'README.md')
    await git(a, 'commit', '--quiet', '-m', 'first')
    await git(a, 'push', '--quiet', 'origin', 'main')
    const first = await git(a, 'rev-parse', 'HEAD')
    assert.equal(await git(tmp, '--git-dir', path.join(tmp, 'repos', 'app.git'), 'rev-parse', 'refs/heads/main'), first)

    await git(tmp, 'clone', '--quiet', url, 'b')
    const b = path.join(tmp, 'b')
    assert.equal(fs.readFileSync(path.join(b, 'README.md'), 'utf8'), 'hello\n')

    fs.writeFileSync(path.join(a, 'README.md'), 'hello again\n')
    await git(a, 'commit', '--quiet', '-am', 'second')
    await git(a, 'push', '--quiet', 'origin', 'main')
    const second = await git(a, 'rev-parse', 'HEAD')
    await git(b, 'fetch', '--quiet', 'origin')
    assert.equal(await git(b, 'rev-parse', 'origin/main'), second)
    assert.equal(await git(tmp, 'ls-remote', url, 'refs/heads/main'), `${second}\trefs/heads/main`)
  })

  it('fetches over protocol v2 and v0 alike', async () => {
    const url = server.urlFor('app.git')
    for (const version of ['0', '2']) {
      const out = await git(tmp, '-c', `protocol.version=${version}`, 'ls-remote', url, 'refs/heads/main')
      assert.match(out, /^[0-9a-f]{40}\trefs\/heads\/main$/)
    }
  })

  it('answers a gzip-encoded upload-pack request with a packfile', async () => {
    const head = await git(tmp, 'ls-remote', server.urlFor('app.git'), 'refs/heads/main').then((l) => l.split('\t')[0])
    const pkt = (s: string) => `${(s.length + 4).toString(16).padStart(4, '0')}${s}`
    const request = Buffer.from(`${pkt(`want ${head} ofs-delta\n`)}0000${pkt('done\n')}`)
    const res = await post(
      `${server.urlFor('app.git')}/git-upload-pack`,
      {
        'Content-Type': 'application/x-git-upload-pack-request',
        'Content-Encoding': 'gzip',
      },
      zlib.gzipSync(request),
    )
    assert.equal(res.status, 200)
    assert.ok(
      res.body.includes(Buffer.from('PACK')),
      `no packfile in the answer: ${res.body.subarray(0, 80).toString()}`,
    )
  })

  it('refuses a repository that does not exist with an error git shows', async () => {
    await assert.rejects(git(tmp, 'ls-remote', server.urlFor('missing.git')), /not found|repository .* not found|404/i)
  })

  it('frees its port on stop()', async () => {
    const other = await startGitServer({ root: path.join(tmp, 'repos') })
    await git(tmp, 'ls-remote', other.urlFor('app.git'))
    await other.stop()
    await assert.rejects(
      git(tmp, 'ls-remote', other.urlFor('app.git')),
      /Failed to connect|Connection refused|Couldn't connect/i,
    )
  })
})
