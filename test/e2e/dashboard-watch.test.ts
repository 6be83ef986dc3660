// `dashboard.ts --watch` as a person runs it: in a real terminal (tmux), it draws the
// namespace in the alternate screen, redraws from watch events when the cluster changes (an
// app created with kubectl appears, no keypress, no restart), and Ctrl-C ends it with 130 and
// the terminal restored (main screen, cursor shown).
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { V1Deployment } from '@kubernetes/client-node'
import os from 'node:os'
import path from 'node:path'
import { repoRoot } from '../../shared/core/paths.ts'
import { testCluster, testNamespace, type TestCluster } from '../harness.ts'
import { Terminal, tmuxAvailable } from '../tty.ts'

function app(name: string): V1Deployment {
  const labels = { 'app.kubernetes.io/name': name }
  return {
    metadata: { name, labels },
    spec: {
      replicas: 1,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          containers: [{ name, image: `example/${name}:1`, ports: [{ containerPort: 80 }] }],
        },
      },
    },
  }
}

describe(
  'dashboard.ts --watch in a real terminal',
  { skip: !tmuxAvailable() && 'tmux is not installed (.ci/run installs it)' },
  () => {
    let cluster: TestCluster
    let ns: { name: string; cleanup: () => Promise<void> }
    let term: Terminal | undefined

    before(async () => {
      cluster = await testCluster()
      ns = await testNamespace('dashwatch')
      await cluster.kube.apps.createNamespacedDeployment({ namespace: ns.name, body: app('web') })
    })
    after(async () => {
      await term?.close()
      await ns?.cleanup()
    })

    it('redraws when an app is created with kubectl, and Ctrl-C exits 130 with the terminal restored', async () => {
      term = await Terminal.open(
        [
          path.join(repoRoot, 'test/fixtures/web-ns/dashboard.ts'),
          '--watch',
          '--env',
          'dev',
          '--kubeconfig',
          cluster.kubeconfig,
        ],
        {
          cwd: os.tmpdir(),
          env: {
            PATH: process.env.PATH ?? '',
            HOME: process.env.HOME ?? os.homedir(),
            TERM: 'xterm-256color',
            NSOPS_TEST_WEB_NS: ns.name,
            ...(process.env.XDG_CACHE_HOME ? { XDG_CACHE_HOME: process.env.XDG_CACHE_HOME } : {}),
          },
        },
      )
      // web runs, api does not exist yet
      await term.waitFor(/web\s+✓ Current/)
      assert.match(await term.screen(), /api\s+✗ NotFound/)
      assert.equal(await term.alternateScreen(), true, 'the view holds the alternate screen')

      // a change in the cluster is drawn without a keypress
      await cluster.kube.apps.createNamespacedDeployment({ namespace: ns.name, body: app('api') })
      await term.waitFor(/api\s+✓ Current/, 60_000)

      await term.press('C-c')
      assert.equal(await term.waitExit(30_000), 130)
      assert.equal(await term.restored(), true, 'main screen and cursor back')
    })
  },
)
