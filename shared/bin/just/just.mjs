#!/usr/bin/env node
// `npx just …` lands here. Why not rust-just's own shim: it runs just through execa, whose
// exit handler answers the terminal's Ctrl-C by sending just a SIGTERM, which just forwards
// to the recipe — so one Ctrl-C killed a dev loop in the middle of its cleanup, and the shim
// exited at once, giving the prompt back while the loop was still resuming Flux.
//
// This one follows just's own rules (just.systems/man/en/signal-handling.html): SIGINT,
// SIGHUP and SIGQUIT come from the terminal to the whole foreground group, so just and the
// recipe already have them — we only wait; SIGTERM was sent to us alone, so we pass it on.
// We exit as just exits (its code, or its signal), after the recipe has finished.
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const pkg = `rust-just-${process.platform === 'win32' ? 'windows' : process.platform}-${process.arch}`
let bin
try {
  bin = require.resolve(`${pkg}/bin/just${process.platform === 'win32' ? '.exe' : ''}`)
} catch {
  // the version the repo pins for linux (package.json, bumped by Renovate) is the one to take
  let version = ''
  try {
    const root = JSON.parse(fs.readFileSync(new URL('../../../package.json', import.meta.url), 'utf8'))
    version = root.optionalDependencies?.['rust-just-linux-x64'] ?? root.dependencies?.['rust-just-linux-x64'] ?? ''
  } catch {
    /* no package.json beside us: name no version */
  }
  process.stderr.write(
    `error: the just binary for this machine (npm package ${pkg}) is not installed.\nhint: run \`npm install --no-save ${pkg}${version ? `@${version}` : ''}\` in the repo, or install just (https://just.systems) and run \`just\` directly.\n`,
  )
  process.exit(1)
}

const child = spawn(bin, process.argv.slice(2), { stdio: 'inherit' })
for (const sig of ['SIGINT', 'SIGHUP', 'SIGQUIT']) process.on(sig, () => {})
process.on('SIGTERM', () => child.kill('SIGTERM'))
child.on('error', (err) => {
  process.stderr.write(`error: could not run ${bin}: ${err.message}\n`)
  process.exit(1)
})
child.on('exit', (code, signal) => {
  if (signal) {
    // die of the same signal, so the shell sees what just saw
    process.removeAllListeners(signal)
    process.kill(process.pid, signal)
    return
  }
  process.exit(code ?? 1)
})
