// A CRD the API server will not establish (its kind is already taken by another CRD of the
// same group: NamesAccepted=False) stops an apply with the CRD's own reason and a hint, as an
// NsopsError a user reads, not a bare Error that asks them to report a bug.
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { ApiextensionsV1Api, type V1CustomResourceDefinition } from '@kubernetes/client-node'
import { waitForEstablished } from '../../shared/apply/order.ts'
import { formatError, isNsopsError } from '../../shared/core/errors.ts'
import { testCluster } from '../harness.ts'

const group = `clash${process.pid}.nsops.dev`
function crd(plural: string, kind: string): V1CustomResourceDefinition {
  return {
    metadata: { name: `${plural}.${group}` },
    spec: {
      group,
      scope: 'Namespaced',
      names: { plural, kind, singular: plural.replace(/s$/, ''), listKind: `${kind}List` },
      versions: [
        {
          name: 'v1',
          served: true,
          storage: true,
          schema: { openAPIV3Schema: { type: 'object', x_kubernetes_preserve_unknown_fields: true } },
        },
      ],
    },
  }
}

describe('waiting for a CRD to be Established', () => {
  const names: string[] = []
  after(async () => {
    const { kube } = await testCluster()
    const ext = kube.kc.makeApiClient(ApiextensionsV1Api)
    for (const name of names) await ext.deleteCustomResourceDefinition({ name }).catch(() => {})
  })

  it('a CRD whose kind another CRD already uses fails with NamesAccepted=False and a hint', async () => {
    const { kube } = await testCluster()
    const ext = kube.kc.makeApiClient(ApiextensionsV1Api)
    const first = await ext.createCustomResourceDefinition({ body: crd('widgets', 'Widget') })
    names.push(first.metadata!.name!)
    await waitForEstablished(kube, first.metadata!.name!, 30_000)
    const second = await ext.createCustomResourceDefinition({ body: crd('gizmos', 'Widget') })
    names.push(second.metadata!.name!)
    const err = await waitForEstablished(kube, second.metadata!.name!, 2_000).then(
      () => undefined,
      (e: unknown) => e,
    )
    assert.ok(isNsopsError(err), `an NsopsError, not ${String(err)}`)
    const text = formatError(err)
    assert.match(
      text,
      /^error: CustomResourceDefinition gizmos\.\S+ is not Established after 2000 ms \(NamesAccepted=False: .*Widget/m,
    )
    assert.match(text, /^hint: read its conditions with `kubectl get crd gizmos\./m)
  })
})
