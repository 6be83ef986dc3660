// Day two works like day one (issue 24 item 0), as a new user meets it, in a copy of this repo
// with a sim of its own: `npx just cluster-up`, `npx just dev observability` in a terminal, the
// loki forward answers and `npx just logs` prints. When the node's kubelet stops answering
// (kwok killed), the forward is shown failing with the reason — in the view, on the web page
// (chromium) and in `just dev-status`, never as a live URL — and the log view says it cannot
// reach the logs.
// Then Ctrl-C, `just cluster-down` (state kept), `just cluster-up`, `dev` again: the forward
// answers and `just logs` prints.
import assert from 'node:assert/strict'
import { execFile, spawn } from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { after, before, describe, it } from 'node:test'
import { chromium } from 'playwright-core'
import { freePort } from '../../shared/core/ports.ts'
import { ciRepo, type CiRepo } from '../ci-fixture.ts'
import { Terminal, tmuxAvailable } from '../tty.ts'
import { until } from '../until.ts'

const exec = promisify(execFile)
const browserPath = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p))

/** The status code of GET url, or the error's code (ECONNREFUSED, ECONNRESET …). */
function get(url: string, timeoutMs = 3000): Promise<number | string> {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: timeoutMs }, (res) => {
      res.resume()
      resolve(res.statusCode ?? 0)
    })
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })))
    req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message))
  })
}

describe(
  'day two: the sim restarted with its state kept, forwards and logs work; a kubelet that does not answer is said',
  {
    skip:
      (!tmuxAvailable() && 'tmux is not installed (.ci/run installs it)') ||
      (!browserPath && 'chromium is not installed (.ci/run installs it)'),
  },
  () => {
    let repo: CiRepo
    let env: Record<string, string>
    let port = 0
    let stateDir = ''
    let term: Terminal | undefined

    before(async () => {
      repo = ciRepo()
      stateDir = path.join(repo.root, 'state')
      port = await freePort()
      const nsFile = path.join(repo.work, 'namespaces/observability/namespace.ts')
      fs.writeFileSync(
        nsFile,
        fs
          .readFileSync(nsFile, 'utf8')
          .replace("{ app: 'loki', local: 3100, remote: 3100 }", `{ app: 'loki', local: ${port}, remote: 3100 }`),
      )
      env = {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? os.homedir(),
        TERM: 'xterm-256color',
        USER: os.userInfo().username,
        NSOPS_PROVIDER: 'sim',
        NSOPS_STATE_DIR: stateDir,
        NO_COLOR: '1',
        ...(process.env.XDG_CACHE_HOME ? { XDG_CACHE_HOME: process.env.XDG_CACHE_HOME } : {}),
        ...(process.env.GOCACHE ? { GOCACHE: process.env.GOCACHE } : {}),
      }
    })
    after(async () => {
      await term?.close()
      if (repo) {
        await just('cluster-down', '--purge', '--yes').catch(() => {})
        fs.rmSync(repo.root, { recursive: true, force: true })
      }
    })

    const just = async (...args: string[]) => {
      const { stdout, stderr } = await exec('npx', ['just', ...args], {
        cwd: repo.work,
        env,
        timeout: 240_000,
        maxBuffer: 16 << 20,
      }).catch((e: { stdout: string; stderr: string; code: number }) => {
        if (args[0] === 'dev-status') return e // exit 1 when the cluster does not answer: its output tells
        throw new Error(`just ${args.join(' ')} exited ${e.code}:\n${e.stderr}`)
      })
      return `${stdout}${stderr}`
    }
    const url = () => `http://127.0.0.1:${port}`
    /** `just logs observability loki` until it printed a line, then Ctrl-C (it follows). */
    const logsPrint = async (): Promise<string> => {
      const child = spawn('npx', ['just', 'logs', 'observability', 'loki', '--tail', '5'], {
        cwd: repo.work,
        env,
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      let out = ''
      child.stdout.on('data', (b) => (out += b))
      child.stderr.on('data', (b) => (out += b))
      try {
        return await until(
          'a line from just logs',
          async () => (/listening on|ready/.test(out) ? out : undefined),
          60_000,
        )
      } finally {
        process.kill(-child.pid!, 'SIGINT')
        await new Promise((r) => child.once('exit', r))
      }
    }
    const devInTerminal = async () => {
      term = await Terminal.open(['npx', 'just', 'dev', 'observability', '--ui-port', '0'], { cwd: repo.work, env })
      await until(
        'the loki forward answers',
        async () => ((await get(`${url()}/ready`)) === 200 ? true : undefined),
        180_000,
      )
      return term
    }
    const kwokPid = () =>
      (
        JSON.parse(fs.readFileSync(path.join(stateDir, 'sim/state.json'), 'utf8')) as {
          components: { name: string; pid: number }[]
        }
      ).components.find((c) => c.name === 'kwok')!.pid

    it('day one: the forward answers and just logs prints; a kubelet that stops answering shows as failing with the reason, in the view, on the page, in dev-status and the log view', async (t) => {
      await just('cluster-up')
      const term = await devInTerminal()
      try {
        assert.match(await logsPrint(), /loki/)

        process.kill(kwokPid(), 'SIGKILL')
        const failing = new RegExp(
          `✗ http://127\\.0\\.0\\.1:${port} \\(failing: forwarding to pod observability-dev/loki-`,
        )
        const screen = await term.waitFor(failing, 60_000)
        assert.match(
          screen.replace(/\n/g, ''),
          /the apiserver cannot reach the pod's node \(its kubelet\): dial tcp 127\.0\.0\.1:\d+: connect: connection refused/,
        )
        assert.notEqual(await get(`${url()}/ready`, 2000), 200)
        const status = await just('dev-status')
        assert.match(
          status,
          new RegExp(`observability/loki\\s+http://127\\.0\\.0\\.1:${port}\\s+✗ failing: forwarding to pod`),
        )
        // the page: the forward is a failing state with its reason, not a link
        const pageUrl = /· (http:\/\/127\.0\.0\.1:\d+\/)/.exec(screen)![1]
        const browser = await chromium.launch({ executablePath: browserPath, args: ['--no-sandbox'] })
        try {
          const page = await browser.newPage()
          await page.goto(pageUrl)
          const cell = page.locator('tr.app[data-app="loki"] td.forward')
          await cell.locator('[data-forward="failing"]').waitFor({ timeout: 30_000 })
          assert.match((await cell.textContent()) ?? '', /\(failing: forwarding to pod .*connection refused\)/)
          assert.equal(await cell.locator('a').count(), 0, 'no link to a forward that does not answer')
          // the app's log pane says it cannot reach the logs
          await page.locator('tr.app[data-app="loki"]').click()
          const problem = page.locator('#log-problem')
          await problem.waitFor({ state: 'visible', timeout: 30_000 })
          const said = (await problem.textContent()) ?? ''
          assert.match(said, /⚠ cannot reach the logs \(since [\d:]+\): .*connection refused/)
          // the API's own message, not the client library's dump of code, body and headers
          assert.doesNotMatch(said, /HTTP-Code|Headers:/)
        } finally {
          await browser.close()
        }
        await term.press('l')
        await term.waitFor(/⚠ cannot reach the logs \(since [\d:]+\): /, 60_000)
        await term.press('s')

        await term.press('C-c')
        assert.equal(await term.waitExit(), 130)
      } catch (err) {
        t.diagnostic(`the terminal:\n${await term.screen()}`)
        throw err
      } finally {
        await term.close()
      }
    })

    it('day two: after cluster-down and cluster-up (state kept) the forward answers and just logs prints', async (t) => {
      await just('cluster-down')
      await just('cluster-up')
      const term = await devInTerminal()
      try {
        assert.match(await term.screen(), new RegExp(`loki .*http://127\\.0\\.0\\.1:${port}`))
        assert.match(await logsPrint(), /loki/)
        await term.press('C-c')
        assert.equal(await term.waitExit(), 130)
      } catch (err) {
        t.diagnostic(`the terminal:\n${await term.screen()}`)
        throw err
      } finally {
        await term.close()
      }
    })
  },
)
