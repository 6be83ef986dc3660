// The cold start as a newcomer sees it, in a real terminal (tmux): `npx just setup` building
// three tools for real (two local Go packages of this repo and go-jsonnet from its module)
// into a throwaway tool cache, two at a time. Go's own build cache is the machine's, so the
// builds take seconds, not minutes; nsops' side (PATH check, cache miss, the builds, the live
// display) runs exactly as on a fresh machine. While they run the screen shows one row per
// running build with its elapsed time; no "[ora] Multiple concurrent spinners" warning ever;
// and what stays on the screen is whole lines only: no piece of a row or of go's output.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, describe, it } from 'node:test'
import { repoRoot } from '../../shared/core/paths.ts'
import { Terminal, tmuxAvailable } from '../tty.ts'

const TOOLS = ['kustomize-server', 'tanka-renderer', 'jsonnet']
const FRAME = '[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]'

describe(
  'cold start in a terminal: one live display for parallel builds',
  { skip: !tmuxAvailable() && 'no tmux' },
  () => {
    const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-cold-cache-'))
    after(() => fs.rmSync(cache, { recursive: true, force: true }))

    it('shows a row per running build with its time, never an ora warning, and leaves only whole lines', async () => {
      const go = (v: string) => execFileSync('go', ['env', v], { encoding: 'utf8' }).trim()
      const env: Record<string, string> = {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? os.homedir(),
        TERM: 'xterm-256color',
        USER: os.userInfo().username,
        XDG_CACHE_HOME: cache, // nsops' tool cache: empty, as on a fresh machine
        GOCACHE: go('GOCACHE'), // go's caches: this machine's (they would follow XDG_CACHE_HOME)
        GOMODCACHE: go('GOMODCACHE'),
        NSOPS_NO_DOWNLOAD: '1', // no internet here: straight to the build
      }
      for (const k of ['GOPROXY', 'GONOSUMDB', 'GOFLAGS', 'GOSUMDB', 'GOPRIVATE'])
        if (process.env[k]) env[k] = process.env[k]!
      const t = await Terminal.open(['npx', 'just', 'setup', '--only', TOOLS.join(',')], { cwd: repoRoot, env })
      try {
        const screens: string[] = []
        let most = 0
        for (const end = Date.now() + 240_000; Date.now() < end;) {
          const screen = await t.screen()
          screens.push(screen)
          most = Math.max(most, screen.match(new RegExp(`^${FRAME} building \\S+`, 'gm'))?.length ?? 0)
          if (/EXIT=\d+/.test(screen)) break
          await new Promise((r) => setTimeout(r, 100)) // sampling the screen, not waiting for a condition
        }
        // the final screen with wrapped lines joined, as they were written
        const final = await t.tmux('capture-pane', '-p', '-J', '-t', 't')
        assert.equal(await t.exitStatus(), 0, final)
        assert.ok(
          most >= 2,
          `two builds were on the screen at once, each its own row (most rows seen: ${most})\n${screens.find((s) => s.includes('building')) ?? ''}`,
        )
        const timed = screens.find((s) => new RegExp(`^${FRAME} building \\S+ \\S+  \\d+(\\.\\d)? (ms|s)`, 'm').test(s))
        assert.ok(timed, 'a row shows the time since its build started')
        for (const s of screens) assert.doesNotMatch(s, /\[ora\]|concurrent spinners/)
        const lines = final.split('\n').filter((l) => l.trim() !== '')
        const whole = [
          /^› building \S+ \S+ from \S+ \(.*\); about .+$/, // why and how long, once per build
          /^✔ built \S+ \S+ in [\d.]+ (ms|s|min \d+ s) → \S+$/, // each build's end
          /^✔ \S+ +\/\S+$/, // setup's summary: each binary and where it is
          /^EXIT=0$/,
        ]
        for (const l of lines)
          assert.ok(
            whole.some((re) => re.test(l)),
            `a whole line, not a fragment: ${JSON.stringify(l)}\n${final}`,
          )
        for (const tool of TOOLS) {
          assert.equal(lines.filter((l) => l.startsWith(`✔ built ${tool} `)).length, 1, `${tool} built once`)
          assert.ok(
            fs.existsSync(path.join(cache, 'nsops', 'tools', tool)),
            `${tool} is in the throwaway cache, not taken from elsewhere`,
          )
        }
      } finally {
        await t.close()
      }
    })
  },
)
