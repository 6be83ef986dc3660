// What the deploy reads from the namespace's Flux Kustomization: its inventory (what to wait
// for and what it would prune), the labels it adds when applying, and what makes a push
// pointless (suspended, a source on another branch).
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { normalizeGitUrl, sameRepository } from '../../shared/git/repo.ts'
import { asFluxApplies, fluxBlocker, waitTargets, type FluxFound } from '../../shared/deploy/flux-target.ts'
import type { FluxObject } from '../../shared/flux/kinds.ts'
import { inventoryRefs } from '../../shared/flux/managing.ts'
import type { ManifestObject } from '../../shared/kustomize/build.ts'

function ks(
  fields: {
    spec?: Record<string, unknown>
    status?: Record<string, unknown>
    annotations?: Record<string, string>
  } = {},
): FluxObject {
  return {
    apiVersion: 'kustomize.toolkit.fluxcd.io/v1',
    kind: 'Kustomization',
    metadata: {
      name: 'arr-stack',
      namespace: 'flux-system',
      generation: 1,
      ...(fields.annotations ? { annotations: fields.annotations } : {}),
    },
    spec: {
      path: './namespaces/arr-stack/overlays/prod',
      sourceRef: { kind: 'GitRepository', name: 'nsops' },
      ...fields.spec,
    },
    status: fields.status ?? {},
  }
}

const source = (branch: string): FluxObject => ({
  apiVersion: 'source.toolkit.fluxcd.io/v1',
  kind: 'GitRepository',
  metadata: { name: 'nsops', namespace: 'flux-system' },
  spec: { url: 'https://git.example/nsops.git', ref: { branch } },
})

const upstream = { branch: 'main', remote: 'origin', remoteBranch: 'main' }
const found = (k: FluxObject, src: FluxObject | null): FluxFound => ({
  found: true,
  kustomization: k,
  managers: [{ kustomization: k, by: 'name', root: false }],
  source: src,
  sourceRef: { kind: 'GitRepository', namespace: 'flux-system', name: 'nsops' },
})

describe('deploy: the Flux Kustomization', () => {
  it('reads the inventory ids <ns>_<name>_<group>_<Kind> with their version, cluster-scoped ones without a namespace', () => {
    const k = ks({
      status: {
        inventory: {
          entries: [
            { id: 'arr-stack_sonarr_apps_Deployment', v: 'v1' },
            { id: 'arr-stack_sonarr__Service', v: 'v1' },
            { id: '_arr-stack__Namespace', v: 'v1' },
            { id: 'arr-stack_web_networking.k8s.io_Ingress', v: 'v1' },
            { id: 'broken', v: 'v1' },
          ],
        },
      },
    })
    assert.deepEqual(inventoryRefs(k), [
      { apiVersion: 'apps/v1', kind: 'Deployment', namespace: 'arr-stack', name: 'sonarr' },
      { apiVersion: 'v1', kind: 'Service', namespace: 'arr-stack', name: 'sonarr' },
      { apiVersion: 'v1', kind: 'Namespace', name: 'arr-stack' },
      { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', namespace: 'arr-stack', name: 'web' },
    ])
    assert.deepEqual(waitTargets(k)[2], { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'arr-stack' } })
    assert.deepEqual(inventoryRefs(ks()), [], 'no inventory yet')
  })

  it('adds the labels kustomize-controller sets, and spec.commonMetadata, without touching the input', () => {
    const obj: ManifestObject = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x', labels: { app: 'x' } } }
    const [out] = asFluxApplies(
      [obj],
      ks({ spec: { commonMetadata: { labels: { team: 'media' }, annotations: { owner: 'me' } } } }),
    )
    assert.deepEqual(out.metadata.labels, {
      app: 'x',
      team: 'media',
      'kustomize.toolkit.fluxcd.io/name': 'arr-stack',
      'kustomize.toolkit.fluxcd.io/namespace': 'flux-system',
    })
    assert.deepEqual(out.metadata.annotations, { owner: 'me' })
    assert.deepEqual(obj.metadata.labels, { app: 'x' })
  })

  it('stops a deploy Flux would ignore: a suspended Kustomization, by hand or by a dev session', () => {
    const byHand = fluxBlocker(found(ks({ spec: { suspend: true } }), source('main')), upstream)!
    assert.match(
      byHand.reason,
      /Kustomization\/flux-system\/arr-stack is suspended \(.*\), so Flux would not apply the push/,
    )
    assert.match(byHand.hint, /flux resume kustomization arr-stack -n flux-system/)
  })

  it('stops a push to a branch the GitRepository does not follow', () => {
    const b = fluxBlocker(found(ks(), source('release')), upstream)!
    assert.match(
      b.reason,
      /GitRepository\/flux-system\/nsops follows branch "release", but this deploy pushes to origin\/main/,
    )
    assert.match(b.hint, /git switch release/)
    assert.equal(fluxBlocker(found(ks(), source('main')), upstream), undefined)
    assert.equal(
      fluxBlocker(found(ks(), source('release'))),
      undefined,
      'no upstream known (a dry run): nothing to compare',
    )
  })

  it('stops a push to another repository than the one the GitRepository reads (nsops-local vs origin)', () => {
    const b = fluxBlocker(found(ks(), source('main')), { ...upstream, url: 'http://127.0.0.1:41234/nsops.git' })!
    assert.match(
      b.reason,
      /reads https:\/\/git\.example\/nsops\.git, but this deploy pushes to origin \(http:\/\/127\.0\.0\.1:41234\/nsops\.git\)/,
    )
    assert.match(b.hint, /nsops-local/)
    assert.equal(
      fluxBlocker(found(ks(), source('main')), { ...upstream, url: 'git@git.example:nsops' }),
      undefined,
      'the same repository written another way',
    )
  })

  it('a suspended Kustomization among several managers blocks too', () => {
    const own = ks()
    const root = ks({ spec: { suspend: true } })
    root.metadata.name = 'flux-system'
    const f: FluxFound = {
      ...found(own, source('main')),
      managers: [
        { kustomization: own, by: 'name', root: false },
        { kustomization: root, by: 'path', root: true },
      ],
    }
    assert.match(fluxBlocker(f, upstream)!.reason, /Kustomization\/flux-system\/flux-system is suspended/)
  })
})

describe('git URLs', () => {
  it('names one repository the same way whatever the scheme, user, port, .git or trailing slash', () => {
    const same = [
      'git@github.com:me/repo.git',
      'ssh://git@github.com/me/repo',
      'https://github.com/me/repo',
      'https://token:x@GitHub.com:443/me/repo.git/',
      'ssh://git@github.com:22/me/repo.git',
    ]
    for (const u of same) assert.equal(normalizeGitUrl(u), 'github.com/me/repo', u)
    assert.ok(sameRepository('/tmp/x/origin.git', 'file:///tmp/x/origin.git'))
    assert.ok(!sameRepository('https://github.com/me/repo', 'https://github.com/me/other'))
    assert.ok(
      !sameRepository('http://127.0.0.1:4000/nsops.git', 'http://127.0.0.1:4001/nsops.git'),
      'another port is another server',
    )
  })
})
