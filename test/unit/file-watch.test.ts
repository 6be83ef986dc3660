// The dev loop's file watch (shared/dev/file-watch.ts) on a real folder: a symlink inside the
// namespace folder is never walked (a link to ~ would have it watch the whole home folder),
// while saves in the folder itself are seen.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, describe, it } from 'node:test'
import { watchDebounced } from '../../shared/dev/file-watch.ts'

describe('the dev loop file watch', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-watch-'))
  after(() => fs.rmSync(tmp, { recursive: true, force: true }))

  it('does not follow a symlink out of the folder: a write behind it is not a save, one in the folder is', async () => {
    const root = path.join(tmp, 'ns')
    const outside = path.join(tmp, 'home')
    fs.mkdirSync(path.join(root, 'overlays', 'dev'), { recursive: true })
    fs.mkdirSync(path.join(outside, 'deep', 'er'), { recursive: true })
    fs.writeFileSync(path.join(root, 'overlays', 'dev', 'kustomization.yaml'), 'resources: []\n')
    fs.symlinkSync(outside, path.join(root, 'home-link'))
    const saves: string[] = []
    let seen: () => void = () => {}
    const watch = watchDebounced(root, {
      debounceMs: 20,
      relevant: () => true,
      onChange: (file) => {
        saves.push(file)
        seen()
      },
    })
    try {
      await watch.ready
      const next = new Promise<void>((resolve) => (seen = resolve))
      // first behind the link, then in the folder: the first save seen must be the second write
      fs.writeFileSync(path.join(outside, 'deep', 'er', 'secret.yaml'), 'a: 1\n')
      fs.writeFileSync(path.join(root, 'overlays', 'dev', 'kustomization.yaml'), 'resources: [x.yaml]\n')
      await next
      assert.deepEqual(saves, [path.join('overlays', 'dev', 'kustomization.yaml')])
    } finally {
      watch.close()
    }
  })
})
