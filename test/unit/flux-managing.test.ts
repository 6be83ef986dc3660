import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, describe, it } from 'node:test'
import { inventoryRefs, manages, pathBuilds, type Manager } from '../../shared/flux/managing.ts'
import type { FluxObject } from '../../shared/flux/kinds.ts'

// A repo laid out like the seed (talos-homelab): one root Kustomization whose path holds a
// kustomization.yaml that includes each namespace's overlays/prod from elsewhere in the tree.
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-managing-'))
after(() => fs.rmSync(root, { recursive: true, force: true }))
const write = (rel: string, text: string) => {
  fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true })
  fs.writeFileSync(path.join(root, rel), text)
}
write('clusters/home/kustomization.yaml', 'resources:\n  - flux-system\n  - ../../apps\n')
write('clusters/home/flux-system/kustomization.yaml', 'resources: [gotk.yaml]\n')
write('clusters/home/flux-system/gotk.yaml', 'kind: List\n')
write(
  'apps/kustomization.yaml',
  'resources:\n  - ../namespaces/arr-stack/overlays/prod\n  - https://example.com/remote//base\n',
)
write('namespaces/arr-stack/overlays/prod/kustomization.yaml', 'resources: [../../base]\n')
write('namespaces/monitoring/overlays/prod/kustomization.yaml', 'resources: []\n')
write('plain/namespaces/x/overlays/prod/kustomization.yaml', 'resources: []\n')

describe('which Kustomization builds a namespace (spec.path)', () => {
  it('follows kustomization.yaml folders transitively, also outside the path', () => {
    assert.equal(pathBuilds('./clusters/home', 'namespaces/arr-stack/overlays/prod', root), true)
    assert.equal(pathBuilds('./clusters/home', 'namespaces/monitoring/overlays/prod', root), false)
  })
  it('a path without kustomization.yaml takes in every folder below it', () => {
    assert.equal(pathBuilds('./plain', 'plain/namespaces/x/overlays/prod', root), true)
    assert.equal(pathBuilds('./plain', 'namespaces/arr-stack/overlays/prod', root), false)
  })
  it('the overlay itself, and nothing for a missing folder', () => {
    assert.equal(pathBuilds('./namespaces/arr-stack/overlays/prod/', 'namespaces/arr-stack/overlays/prod', root), true)
    assert.equal(pathBuilds('./nowhere', 'namespaces/arr-stack/overlays/prod', root), false)
  })
})

describe('what a Kustomization manages (inventory)', () => {
  const ks = (entries?: { id: string; v: string }[]): FluxObject => ({
    apiVersion: 'kustomize.toolkit.fluxcd.io/v1',
    kind: 'Kustomization',
    metadata: { name: 'flux-system', namespace: 'flux-system' },
    ...(entries ? { status: { inventory: { entries } } } : {}),
  })
  const m = (k: FluxObject): Manager => ({ kustomization: k, by: 'inventory', root: true })
  it('reads inventory ids, cluster-scoped ones without a namespace', () => {
    assert.deepEqual(
      inventoryRefs(
        ks([
          { id: '_arr-stack__Namespace', v: 'v1' },
          { id: 'arr-stack_sonarr_apps_Deployment', v: 'v1' },
          { id: 'broken', v: 'v1' },
        ]),
      ),
      [
        { apiVersion: 'v1', kind: 'Namespace', name: 'arr-stack' },
        { apiVersion: 'apps/v1', kind: 'Deployment', name: 'sonarr', namespace: 'arr-stack' },
      ],
    )
  })
  it('an object is managed when the inventory lists it, whatever its apiVersion', () => {
    const k = m(ks([{ id: 'arr-stack_sonarr_apps_Deployment', v: 'v1' }]))
    assert.equal(
      manages(k, { apiVersion: 'apps/v1', kind: 'Deployment', namespace: 'arr-stack', name: 'sonarr' }, 'arr-stack'),
      true,
    )
    assert.equal(
      manages(
        k,
        { apiVersion: 'apps/v1', kind: 'Deployment', namespace: 'arr-stack-dev', name: 'sonarr' },
        'arr-stack',
      ),
      false,
    )
  })
  it('before its first apply, everything in the prod namespace counts as managed', () => {
    const k = m(ks())
    assert.equal(
      manages(k, { apiVersion: 'v1', kind: 'Service', namespace: 'arr-stack', name: 'x' }, 'arr-stack'),
      true,
    )
    assert.equal(
      manages(k, { apiVersion: 'v1', kind: 'Service', namespace: 'arr-stack-dev', name: 'x' }, 'arr-stack'),
      false,
    )
  })
})
