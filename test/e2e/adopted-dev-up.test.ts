// `just dev-up` in a repository adopted with `just init` (the seed homelab: `flux bootstrap`'s
// clusters/home/flux-system, no k8s/flux/), through `npx just …` with a state folder of its
// own: the sim starts with the real source- and kustomize-controller, the repository goes to
// the sim's git server, and Flux is bootstrapped from the repository's own root Kustomization
// (flux-system over clusters/home) as `flux bootstrap` leaves a cluster. Flux then applies the
// repository's GitRepository from gotk-sync.yaml (its real remote, ssh://git.example.com):
// the root's patch keeps it on the sim's git server, so every namespace's Kustomization
// becomes Ready from the pushed branch.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { conditionOf, fluxKinds, type FluxObject } from '../../shared/flux/kinds.ts'
import type { Kube } from '../../shared/kube/client.ts'
import { adoptRepo } from '../adopt-fixture.ts'
import { simRepo, type SimRepo } from '../sim-repo-fixture.ts'
import { git } from '../git-fixture.ts'
import { until } from '../until.ts'

describe('just dev-up in an adopted repository bootstraps Flux from its own root', () => {
  let r: SimRepo
  let kube: Kube
  const flux = (kind: 'Kustomization' | 'GitRepository', name: string) =>
    kube.custom
      .getNamespacedCustomObject({ ...fluxKinds[kind], namespace: 'flux-system', name })
      .then((o) => o as FluxObject)
  const ready = async (name: string) => {
    const o = await flux('Kustomization', name).catch(() => undefined)
    return conditionOf(o, 'Ready')?.status === 'True' ? o : undefined
  }

  before(() => {
    r = simRepo(adoptRepo('seed-homelab'))
  })
  after(() => r?.close())

  it("applies the root, keeps the repository's GitRepository on the sim's git server, and Flux applies every namespace", async () => {
    assert.equal((await r.just(['init'])).code, 0)
    git(r.work, 'add', '-A')
    git(r.work, 'commit', '-qm', 'nsops init')
    const up = await r.just(['dev-up', 'media', '--ci', '--down', '--no-ui', '--timeout', '4m'])
    assert.equal(up.code, 0, `${up.stdout}\n${up.stderr}`)
    const all = `${up.stdout}\n${up.stderr}`
    assert.match(all, /Flux reads http:\/\/127\.0\.0\.1:\d+\/nsops\.git \(branch change\)/)
    assert.doesNotMatch(all, /GitOps bootstrap incomplete/)

    kube = r.kube()
    const root = await until('Kustomization flux-system/flux-system Ready', () => ready('flux-system'), 180_000)
    // the root applied gotk-sync.yaml's GitRepository (ssh://git.example.com, in git) …
    const inventory = JSON.stringify(root.status?.inventory)
    assert.match(inventory, /flux-system_flux-system_source\.toolkit\.fluxcd\.io_GitRepository/)
    // … and it still reads the sim's git server, on the branch pushed, with no deploy key
    const source = await flux('GitRepository', 'flux-system')
    assert.match(String(source.spec?.url), /^http:\/\/127\.0\.0\.1:\d+\/nsops\.git$/)
    assert.deepEqual(source.spec?.ref, { branch: 'change' })
    for (const name of ['ingress', 'media', 'home-automation'])
      await until(`Kustomization flux-system/${name} Ready`, () => ready(name), 180_000)
    const jellyfin = await kube.apps.readNamespacedDeployment({ namespace: 'media', name: 'jellyfin' })
    assert.equal(jellyfin.metadata?.labels?.['kustomize.toolkit.fluxcd.io/name'], 'media', 'applied by Flux')
  })
})
