// Two dev loops of one namespace started at the same moment after the previous one was killed
// (kill -9 leaves its session file): exactly one may win. The claimers are real processes
// claiming the same file at once.
import assert from 'node:assert/strict'
import { execFile, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { after, describe, it } from 'node:test'
import { repoRoot } from '../../shared/core/paths.ts'

const run = promisify(execFile)

describe('claiming a session a killed loop left', () => {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-claim-'))
  after(() => fs.rmSync(stateDir, { recursive: true, force: true }))

  it('exactly one of the loops started at once wins, whatever the others read', async () => {
    const node = path.join(repoRoot, 'shared/bin/nsops-node')
    const claimer = path.join(repoRoot, 'test/fixtures/session/claim.ts')
    for (let round = 0; round < 3; round++) {
      // the session of a loop killed with -9: a pid that is gone
      const dead = spawnSync('true').pid!
      fs.mkdirSync(path.join(stateDir, 'dev'), { recursive: true })
      fs.writeFileSync(
        path.join(stateDir, 'dev', 'race.json'),
        JSON.stringify({
          namespace: 'race',
          kubernetesNamespace: 'race-dev',
          pid: dead,
          host: os.hostname(),
          user: 'killed',
          context: 'nsops-sim',
          startedAt: new Date(Date.now() - 60_000).toISOString(),
          forwards: [],
        }),
      )
      // every claimer loads first, then all claim at the same moment (round 0) or a few
      // milliseconds apart (later rounds: some read the dead file, some the winner's)
      const at = Date.now() + 4000
      const outs = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          run(node, [claimer, String(at + i * round * 2), '2000'], {
            env: { ...process.env, NSOPS_STATE_DIR: stateDir },
          }),
        ),
      )
      const won = outs.filter((o) => o.stdout.trim() === 'won').length
      assert.equal(won, 1, `round ${round}: ${outs.map((o) => o.stdout.trim()).join(' ')}`)
      fs.rmSync(path.join(stateDir, 'dev', 'race.json'), { force: true })
    }
  })
})
