// The floors of shared/ hold: no import goes up a floor, no two folders import each other
// (directly or around a ring), every file has a room. test/layers.ts is the check; this runs
// it in `just test` and also proves it would catch a break.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { describe, it } from 'node:test'
import { FLOORS, floorOf, importsOf, layerViolations } from '../layers.ts'
import { repoRoot } from '../../shared/core/paths.ts'

describe('layers of shared/', () => {
  it('every import goes down a floor and no folders form a cycle', () => {
    const violations = layerViolations()
    assert.deepEqual(
      violations.map((v) => `${v.kind}: ${v.detail}`),
      [],
    )
  })

  it('core imports nothing of ours but core, and bin is the only floor above commands', () => {
    assert.equal(floorOf('core'), 0)
    assert.equal(floorOf('bin'), FLOORS.length - 1)
    assert.ok(floorOf('web') > floorOf('dev'), 'the page renders the dev loop, never the other way')
  })

  it("the README's architecture table shows FLOORS as they are: the same folders on the same floors", () => {
    const readme = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8')
    const section = readme.split('## Architecture: the floors of `shared/`')[1]?.split(/^## /m)[0] ?? ''
    const rows = [...section.matchAll(/^\| (\d+) \| ((?:`[a-z-]+\/` ?)+) \|/gm)].map((m) => ({
      floor: Number(m[1]),
      folders: [...m[2].matchAll(/`([a-z-]+)\/`/g)].map((f) => f[1]),
    }))
    assert.deepEqual(
      rows,
      FLOORS.map((folders, i) => ({ floor: i + 1, folders: [...folders] })),
    )
  })

  it('catches an upward import and a cycle (a file written for the check, then removed)', () => {
    const probe = path.join(repoRoot, 'shared/core/__layers-probe.ts')
    const probe2 = path.join(repoRoot, 'shared/web/__layers-probe.ts')
    try {
      fs.writeFileSync(probe, "import type { WebUi } from '../web/dev-ui.ts'\nexport type X = WebUi\n")
      assert.deepEqual(importsOf(probe), [path.join(repoRoot, 'shared/web/dev-ui.ts')])
      const v = layerViolations()
      const upward = v.find((x) => x.kind === 'upward' && x.from === 'core' && x.to === 'web')
      assert.ok(upward, JSON.stringify(v))
      // numbered as the README's table numbers them (core is floor 1 there), so the message
      // and the table a newcomer looks it up in agree
      const readme = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8')
      const webFloor = /^\| (\d+) \| `web\/` \|/m.exec(readme)?.[1]
      assert.equal(webFloor, String(floorOf('web') + 1), "the README's floor of web/")
      assert.match(
        upward.detail,
        new RegExp(
          `^core/ \\(floor 1\\) imports web/ \\(floor ${webFloor}\\): core/__layers-probe\\.ts → web/dev-ui\\.ts$`,
        ),
      )
      assert.ok(
        v.some((x) => x.kind === 'cycle'),
        'core → web → core is a cycle',
      )
      fs.rmSync(probe)
      fs.writeFileSync(probe2, "export const y = await import('../../shared/dev/loop.ts')\n")
      assert.deepEqual(layerViolations(), [], 'a lazy import() downward is fine')
    } finally {
      fs.rmSync(probe, { force: true })
      fs.rmSync(probe2, { force: true })
    }
  })
})
