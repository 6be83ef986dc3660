// A forward judges its target only once both of its lists (the Service, the namespace's pods)
// have arrived. On a loaded machine the pods' list can come back first; judging then said
// "Service … does not exist (yet)" for a Service that exists (seen in a CI run). The order of
// two responses from a real API server cannot be forced, so this test holds the Service list
// back (the real request, answered late) until the pods' list has arrived — the only stand-in.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { watchServiceTarget, type Resolution } from '../../shared/portforward/target.ts'
import type { Kube } from '../../shared/kube/client.ts'
import { testCluster, testNamespace } from '../harness.ts'
import { until } from '../until.ts'

describe('a forward judges its target once both lists have arrived', () => {
  let kube: Kube
  let ns: { name: string; cleanup: () => Promise<void> }
  before(async () => {
    kube = (await testCluster()).kube
    ns = await testNamespace('pfsync')
    await kube.core.createNamespacedService({
      namespace: ns.name,
      body: {
        metadata: { name: 'web' },
        spec: { selector: { app: 'web' }, ports: [{ port: 80 }] },
      },
    })
  })
  after(async () => {
    await ns?.cleanup()
  })

  it('the pods arriving first does not make an existing Service look missing', async () => {
    let podsListed!: () => void
    const podsArrived = new Promise<void>((r) => {
      podsListed = r
    })
    // the same client, with the Service list answered only after the pods' list is in
    const core = Object.create(kube.core) as Kube['core']
    core.listNamespacedService = async (...args: Parameters<Kube['core']['listNamespacedService']>) => {
      const answer = await kube.core.listNamespacedService(...args)
      await podsArrived
      await new Promise((r) => setTimeout(r, 50)) // the pods' list is handled before this one
      return answer
    }
    core.listNamespacedPod = async (...args: Parameters<Kube['core']['listNamespacedPod']>) => {
      const answer = await kube.core.listNamespacedPod(...args)
      setImmediate(podsListed)
      return answer
    }
    const seen: Resolution[] = []
    const targets = watchServiceTarget(
      { ...kube, core },
      { namespace: ns.name, service: 'web', remotePort: 80 },
      () => seen.push(targets.current()),
      () => {},
    )
    try {
      await until('a first answer', async () => (seen.length ? true : undefined))
      assert.doesNotMatch(seen[0].problem ?? '', /does not exist/, 'the Service exists')
      assert.match(seen[0].problem ?? '', /no Ready pod behind Service .*\/web/)
    } finally {
      await targets.stop()
    }
  })
})
