// Server-side apply, pruning and diff against the real sim cluster, each test in a namespace
// of its own. "No write" is measured as the API server records it: resourceVersions.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  ApiextensionsV1Api,
  KubeConfig,
  PatchStrategy,
  RbacAuthorizationV1Api,
  setHeaderOptions,
} from '@kubernetes/client-node'
import { applyObjects, type ApplyResult } from '../../shared/apply/apply.ts'
import { diffObjects, renderDiff } from '../../shared/apply/diff.ts'
import { readInventory } from '../../shared/apply/inventory.ts'
import { refString, type ObjectRef } from '../../shared/kube/refs.ts'
import { clientsFor, isApiError, type Kube } from '../../shared/kube/client.ts'
import type { ManifestObject } from '../../shared/kustomize/build.ts'
import { testCluster, testNamespace } from '../harness.ts'

async function inNamespace(prefix: string, fn: (ns: string, kube: Kube) => Promise<void>): Promise<void> {
  const { kube } = await testCluster()
  const ns = await testNamespace(prefix)
  try {
    await fn(ns.name, kube)
  } finally {
    await ns.cleanup()
  }
}

function deployment(
  ns: string,
  name: string,
  opts: { replicas?: number; image?: string; containers?: unknown[] } = {},
): ManifestObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: ns, labels: { app: name } },
    spec: {
      replicas: opts.replicas ?? 1,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          containers: opts.containers ?? [
            {
              name: 'app',
              image: opts.image ?? 'nginx:1.27',
              ports: [{ containerPort: 80 }],
              resources: { limits: { cpu: 1, memory: '64Mi' } },
            },
          ],
        },
      },
    },
  }
}

function configMap(ns: string, name: string, data: Record<string, string> = { key: 'value' }): ManifestObject {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: ns }, data }
}

function service(ns: string, name: string): ManifestObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: ns },
    spec: { selector: { app: name }, ports: [{ port: 80, targetPort: 'http' }] },
  }
}

function secret(ns: string, name: string, password: string): ManifestObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace: ns },
    type: 'Opaque',
    stringData: { password, user: 'admin' },
  }
}

function pvc(ns: string, name: string): ManifestObject {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name, namespace: ns },
    spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
  }
}

const names = (refs: ObjectRef[]) => refs.map(refString).sort()

function counts(r: ApplyResult) {
  return {
    created: r.created.length,
    configured: r.configured.length,
    unchanged: r.unchanged.length,
    pruned: r.pruned.length,
    failed: r.failed.length,
  }
}

async function resourceVersions(kube: Kube, ns: string): Promise<Record<string, string | undefined>> {
  const [deps, cms, svcs, secrets] = await Promise.all([
    kube.apps.listNamespacedDeployment({ namespace: ns }),
    kube.core.listNamespacedConfigMap({ namespace: ns }),
    kube.core.listNamespacedService({ namespace: ns }),
    kube.core.listNamespacedSecret({ namespace: ns }),
  ])
  const out: Record<string, string | undefined> = {}
  for (const [kind, list] of [
    ['Deployment', deps],
    ['ConfigMap', cms],
    ['Service', svcs],
    ['Secret', secrets],
  ] as const) {
    for (const o of list.items) out[`${kind}/${o.metadata?.name}`] = o.metadata?.resourceVersion
  }
  return out
}

/** Clients for a ServiceAccount that may get (not write) the kinds the tests apply. */
async function readOnlyClient(kube: Kube, ns: string): Promise<Kube> {
  await kube.core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'reader' } } })
  const rbac = kube.kc.makeApiClient(RbacAuthorizationV1Api)
  await rbac.createNamespacedRole({
    namespace: ns,
    body: {
      metadata: { name: 'reader' },
      rules: [
        { apiGroups: [''], resources: ['configmaps', 'services', 'secrets'], verbs: ['get'] },
        { apiGroups: ['apps'], resources: ['deployments'], verbs: ['get'] },
      ],
    },
  })
  await rbac.createClusterRole({
    body: {
      metadata: { name: `${ns}-reader` },
      rules: [{ apiGroups: [''], resources: ['namespaces'], resourceNames: [ns], verbs: ['get'] }],
    },
  })
  await rbac.createNamespacedRoleBinding({
    namespace: ns,
    body: {
      metadata: { name: 'reader' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'reader' },
      subjects: [{ kind: 'ServiceAccount', name: 'reader', namespace: ns }],
    },
  })
  await rbac.createClusterRoleBinding({
    body: {
      metadata: { name: `${ns}-reader` },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: `${ns}-reader` },
      subjects: [{ kind: 'ServiceAccount', name: 'reader', namespace: ns }],
    },
  })
  const token = await kube.core.createNamespacedServiceAccountToken({
    name: 'reader',
    namespace: ns,
    body: { spec: { audiences: [], expirationSeconds: 600 } },
  })
  const cluster = kube.kc.getCurrentCluster()!
  const kc = new KubeConfig()
  kc.loadFromOptions({
    clusters: [cluster],
    users: [{ name: 'reader', token: token.status?.token }],
    contexts: [{ name: 'reader', cluster: cluster.name, user: 'reader' }],
    currentContext: 'reader',
  })
  return clientsFor(kc)
}

/**
 * Waits until the controllers are done with the namespace's Deployments (rolled out, status
 * written) and nothing moves for a moment: only then do resourceVersions measure our writes.
 */
async function settled(kube: Kube, ns: string): Promise<Record<string, string | undefined>> {
  const deadline = Date.now() + 30_000
  let last = await resourceVersions(kube, ns)
  for (;;) {
    await new Promise((r) => setTimeout(r, 150))
    const deps = (await kube.apps.listNamespacedDeployment({ namespace: ns })).items
    const rolledOut = deps.every(
      (d) =>
        d.status?.observedGeneration === d.metadata?.generation &&
        (d.status?.updatedReplicas ?? 0) === d.spec?.replicas &&
        (d.status?.availableReplicas ?? 0) === d.spec?.replicas,
    )
    const now = await resourceVersions(kube, ns)
    if (rolledOut && JSON.stringify(now) === JSON.stringify(last)) return now
    if (Date.now() > deadline) assert.fail(`the Deployments in ${ns} did not settle within 30 s`)
    last = now
  }
}

async function exists(fn: () => Promise<unknown>): Promise<boolean> {
  try {
    await fn()
    return true
  } catch (err) {
    if (isApiError(err, 404)) return false
    throw err
  }
}

describe('server-side apply', () => {
  it('creates a set, and a second apply reports all unchanged and writes nothing', async () => {
    await inNamespace('apply-idem', async (ns, kube) => {
      const set = [
        deployment(ns, 'web'),
        service(ns, 'web'),
        configMap(ns, 'web-config'),
        secret(ns, 'db', 's3cret-idem'),
      ]
      const first = await applyObjects(kube, set, { inventory: { name: ns, namespace: ns } })
      assert.deepEqual(counts(first), { created: 4, configured: 0, unchanged: 0, pruned: 0, failed: 0 })
      assert.deepEqual(names(first.created), [
        `ConfigMap/${ns}/web-config`,
        `Deployment/${ns}/web`,
        `Secret/${ns}/db`,
        `Service/${ns}/web`,
      ])

      const live = await kube.apps.readNamespacedDeployment({ name: 'web', namespace: ns })
      assert.ok(
        live.metadata?.managedFields?.some((e) => e.manager === 'nsops' && e.operation === 'Apply'),
        'applied with field manager nsops',
      )

      const before = await settled(kube, ns)
      const second = await applyObjects(kube, set, { inventory: { name: ns, namespace: ns } })
      assert.deepEqual(counts(second), { created: 0, configured: 0, unchanged: 4, pruned: 0, failed: 0 })
      assert.deepEqual(
        await resourceVersions(kube, ns),
        before,
        'no object (the inventory included) has a new resourceVersion',
      )
    })
  })

  it('re-applies an unchanged set without a single write: an identity that may only read succeeds', async () => {
    await inNamespace('apply-readonly', async (ns, kube) => {
      const set = [
        deployment(ns, 'web'),
        service(ns, 'web'),
        configMap(ns, 'web-config'),
        secret(ns, 'db', 'pw'),
        { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } } as ManifestObject,
      ]
      const inventory = { name: 'shop', namespace: ns }
      await applyObjects(kube, set, { inventory })
      const rbac = kube.kc.makeApiClient(RbacAuthorizationV1Api)
      try {
        const reader = await readOnlyClient(kube, ns)
        const result = await applyObjects(reader, set, { inventory })
        assert.deepEqual(result.failed, [])
        assert.deepEqual(counts(result), { created: 0, configured: 0, unchanged: 5, pruned: 0, failed: 0 })
        // and the reader really cannot write: a changed set is refused
        const changed = await applyObjects(reader, [configMap(ns, 'web-config', { key: 'other' })])
        assert.match(changed.failed[0]?.message ?? '', /forbidden/)
      } finally {
        await rbac.deleteClusterRoleBinding({ name: `${ns}-reader` }).catch(() => {})
        await rbac.deleteClusterRole({ name: `${ns}-reader` }).catch(() => {})
      }
    })
  })

  it('reports a changed field as configured and leaves the rest unchanged', async () => {
    await inNamespace('apply-change', async (ns, kube) => {
      await applyObjects(kube, [deployment(ns, 'web'), configMap(ns, 'web-config'), secret(ns, 'db', 'old-pw')])
      const result = await applyObjects(kube, [
        deployment(ns, 'web', { replicas: 3 }),
        configMap(ns, 'web-config'),
        secret(ns, 'db', 'new-pw'),
      ])
      assert.deepEqual(names(result.configured), [`Deployment/${ns}/web`, `Secret/${ns}/db`])
      assert.deepEqual(names(result.unchanged), [`ConfigMap/${ns}/web-config`])
      assert.equal((await kube.apps.readNamespacedDeployment({ name: 'web', namespace: ns })).spec?.replicas, 3)
      const live = await kube.core.readNamespacedSecret({ name: 'db', namespace: ns })
      assert.equal(Buffer.from(live.data?.password ?? '', 'base64').toString(), 'new-pw')
    })
  })

  it('puts back a field someone else changed, since the field is no longer ours as applied', async () => {
    await inNamespace('apply-drift', async (ns, kube) => {
      const set = [deployment(ns, 'web', { image: 'nginx:1.27' })]
      await applyObjects(kube, set)
      await kube.apps.patchNamespacedDeployment(
        {
          name: 'web',
          namespace: ns,
          fieldManager: 'kubectl-edit',
          body: { spec: { template: { spec: { containers: [{ name: 'app', image: 'nginx:hacked' }] } } } },
        },
        setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
      )
      const result = await applyObjects(kube, set)
      assert.deepEqual(names(result.configured), [`Deployment/${ns}/web`])
      const live = await kube.apps.readNamespacedDeployment({ name: 'web', namespace: ns })
      assert.equal(live.spec?.template.spec?.containers[0].image, 'nginx:1.27')
    })
  })

  it('applies with the field manager it is given', async () => {
    await inNamespace('apply-manager', async (ns, kube) => {
      await applyObjects(kube, [configMap(ns, 'cfg')], { fieldManager: 'nsops-dev-alice' })
      const live = await kube.core.readNamespacedConfigMap({ name: 'cfg', namespace: ns })
      assert.deepEqual(
        live.metadata?.managedFields?.map((e) => `${e.manager}:${e.operation}`),
        ['nsops-dev-alice:Apply'],
      )
    })
  })

  it('prunes an object that left the set on the next apply, and records the set in the inventory', async () => {
    await inNamespace('apply-prune', async (ns, kube) => {
      const inventory = { name: 'shop', namespace: ns }
      await applyObjects(kube, [configMap(ns, 'keep'), configMap(ns, 'old'), deployment(ns, 'web')], { inventory })
      assert.deepEqual([...(await readInventory(kube, inventory)).keys()].sort(), [
        `/ConfigMap/${ns}/keep`,
        `/ConfigMap/${ns}/old`,
        `apps/Deployment/${ns}/web`,
      ])

      const result = await applyObjects(kube, [configMap(ns, 'keep')], { inventory })
      assert.deepEqual(names(result.pruned).sort(), [`ConfigMap/${ns}/old`, `Deployment/${ns}/web`])
      assert.deepEqual(names(result.unchanged), [`ConfigMap/${ns}/keep`])
      assert.equal(await exists(() => kube.core.readNamespacedConfigMap({ name: 'old', namespace: ns })), false)
      assert.equal(await exists(() => kube.apps.readNamespacedDeployment({ name: 'web', namespace: ns })), false)
      assert.equal(await exists(() => kube.core.readNamespacedConfigMap({ name: 'keep', namespace: ns })), true)
      assert.deepEqual([...(await readInventory(kube, inventory)).keys()], [`/ConfigMap/${ns}/keep`])
    })
  })

  it('never prunes what it did not apply: objects outside the inventory, or recreated by someone else', async () => {
    await inNamespace('apply-prune-safe', async (ns, kube) => {
      const inventory = { name: 'shop', namespace: ns }
      await kube.core.createNamespacedConfigMap({
        namespace: ns,
        body: { metadata: { name: 'bystander' }, data: { a: 'b' } },
      })
      await applyObjects(kube, [configMap(ns, 'ours'), configMap(ns, 'taken')], { inventory })
      // someone deletes `taken` and creates their own object under the same name
      await kube.core.deleteNamespacedConfigMap({ name: 'taken', namespace: ns })
      await kube.core.createNamespacedConfigMap({
        namespace: ns,
        body: { metadata: { name: 'taken' }, data: { theirs: 'yes' } },
      })

      const result = await applyObjects(kube, [configMap(ns, 'ours')], { inventory })
      assert.deepEqual(result.pruned, [])
      assert.deepEqual(names(result.retained.map((r) => r.ref)), [`ConfigMap/${ns}/taken`])
      assert.match(result.retained[0].reason, /not ours to delete/)
      assert.equal((await kube.core.readNamespacedConfigMap({ name: 'taken', namespace: ns })).data?.theirs, 'yes')
      assert.equal(await exists(() => kube.core.readNamespacedConfigMap({ name: 'bystander', namespace: ns })), true)
    })
  })

  it('keeps a PersistentVolumeClaim that left the set unless prunePvcs is given', async () => {
    await inNamespace('apply-pvc', async (ns, kube) => {
      const inventory = { name: 'shop', namespace: ns }
      await applyObjects(kube, [configMap(ns, 'cfg'), pvc(ns, 'data')], { inventory })

      const kept = await applyObjects(kube, [configMap(ns, 'cfg')], { inventory })
      assert.deepEqual(kept.pruned, [])
      assert.deepEqual(names(kept.retained.map((r) => r.ref)), [`PersistentVolumeClaim/${ns}/data`])
      assert.match(kept.retained[0].reason, /prunePvcs/)
      const stillThere = await kube.core.readNamespacedPersistentVolumeClaim({ name: 'data', namespace: ns })
      assert.equal(stillThere.metadata?.deletionTimestamp, undefined)

      // still in the inventory, so a later run that consents prunes it
      const pruned = await applyObjects(kube, [configMap(ns, 'cfg')], { inventory, prunePvcs: true })
      assert.deepEqual(names(pruned.pruned), [`PersistentVolumeClaim/${ns}/data`])
      const after = await kube.core
        .readNamespacedPersistentVolumeClaim({ name: 'data', namespace: ns })
        .catch((err: unknown) => {
          if (isApiError(err, 404)) return undefined
          throw err
        })
      assert.ok(!after || after.metadata?.deletionTimestamp, 'the claim is deleted or being deleted')
    })
  })

  it('never prunes a Namespace', async () => {
    await inNamespace('apply-ns', async (ns, kube) => {
      const extra = `${ns}-x`.slice(0, 63)
      const inventory = { name: 'shop', namespace: ns }
      try {
        const first = await applyObjects(
          kube,
          [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: extra } }, configMap(extra, 'cfg')],
          { inventory },
        )
        assert.deepEqual(names(first.created), [`ConfigMap/${extra}/cfg`, `Namespace/${extra}`])

        const second = await applyObjects(kube, [], { inventory })
        assert.deepEqual(names(second.pruned), [`ConfigMap/${extra}/cfg`])
        assert.deepEqual(names(second.retained.map((r) => r.ref)), [`Namespace/${extra}`])
        const live = await kube.core.readNamespace({ name: extra })
        assert.equal(live.metadata?.deletionTimestamp, undefined, 'the namespace is not being deleted')
      } finally {
        await kube.core.deleteNamespace({ name: extra }).catch(() => {})
      }
    })
  })

  it('validates a dry run on the server and persists nothing', async () => {
    await inNamespace('apply-dry', async (ns, kube) => {
      const inventory = { name: 'shop', namespace: ns }
      const fresh = `${ns}-new`.slice(0, 63)
      try {
        const result = await applyObjects(
          kube,
          [
            deployment(ns, 'web'),
            configMap(ns, 'cfg'),
            deployment(ns, 'broken', { containers: [] }),
            { apiVersion: 'v1', kind: 'Namespace', metadata: { name: fresh } },
            configMap(fresh, 'cfg'),
          ],
          { dryRun: true, inventory },
        )
        assert.deepEqual(names(result.created), [`ConfigMap/${ns}/cfg`, `Deployment/${ns}/web`, `Namespace/${fresh}`])
        assert.deepEqual(
          result.failed.map((f) => f.message),
          ['Deployment.apps "broken" is invalid: spec.template.spec.containers: Required value'],
        )
        assert.deepEqual(result.skipped, [
          {
            ref: { apiVersion: 'v1', kind: 'ConfigMap', namespace: fresh, name: 'cfg' },
            reason: `its Namespace ${fresh} is created by this set, so the dry run cannot validate it`,
          },
        ])
        assert.equal(await exists(() => kube.apps.readNamespacedDeployment({ name: 'web', namespace: ns })), false)
        assert.equal(await exists(() => kube.core.readNamespacedConfigMap({ name: 'cfg', namespace: ns })), false)
        assert.equal(await exists(() => kube.core.readNamespace({ name: fresh })), false)
        assert.equal((await readInventory(kube, inventory)).size, 0, 'no inventory was written')
      } finally {
        await kube.core.deleteNamespace({ name: fresh }).catch(() => {})
      }
    })
  })

  it("reports a rejected object with the API's message and applies the rest", async () => {
    await inNamespace('apply-invalid', async (ns, kube) => {
      const result = await applyObjects(kube, [
        configMap(ns, 'cfg'),
        deployment(ns, 'broken', { containers: [] }),
        deployment(ns, 'web'),
      ])
      assert.deepEqual(names(result.created), [`ConfigMap/${ns}/cfg`, `Deployment/${ns}/web`])
      assert.deepEqual(result.failed, [
        {
          ref: { apiVersion: 'apps/v1', kind: 'Deployment', namespace: ns, name: 'broken' },
          message: 'Deployment.apps "broken" is invalid: spec.template.spec.containers: Required value',
        },
      ])
      assert.equal(await exists(() => kube.apps.readNamespacedDeployment({ name: 'web', namespace: ns })), true)
    })
  })

  it('applies a CRD and its custom resource from one set, the CRD first', async () => {
    const group = `t${process.pid}.nsops.example.com`
    const crdName = `widgets.${group}`
    const crd: ManifestObject = {
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: crdName },
      spec: {
        group,
        scope: 'Namespaced',
        names: { plural: 'widgets', singular: 'widget', kind: 'Widget' },
        versions: [
          {
            name: 'v1',
            served: true,
            storage: true,
            schema: {
              openAPIV3Schema: {
                type: 'object',
                properties: { spec: { type: 'object', properties: { size: { type: 'integer' } } } },
              },
            },
          },
        ],
      },
    }
    const { kube } = await testCluster()
    const crds = kube.kc.makeApiClient(ApiextensionsV1Api)
    try {
      await inNamespace('apply-crd', async (ns) => {
        const widget: ManifestObject = {
          apiVersion: `${group}/v1`,
          kind: 'Widget',
          metadata: { name: 'w1', namespace: ns },
          spec: { size: 3 },
        }
        const orphan: ManifestObject = {
          apiVersion: 'nope.nsops.example.com/v1',
          kind: 'Gadget',
          metadata: { name: 'g1', namespace: ns },
        }

        // neither the diff nor the dry run can validate a custom resource whose CRD the set creates
        const diff = await diffObjects(kube, [widget, crd])
        assert.deepEqual(
          diff.objects.map((o) => [refString(o.ref), o.action, o.error, o.note]),
          [
            [
              `Widget/${ns}/w1`,
              'create',
              undefined,
              `not validated: its CustomResourceDefinition ${crdName} is created by this set`,
            ],
            [`CustomResourceDefinition/${crdName}`, 'create', undefined, undefined],
          ],
        )
        const dry = await applyObjects(kube, [widget, crd], { dryRun: true })
        assert.deepEqual(names(dry.created), [`CustomResourceDefinition/${crdName}`])
        assert.deepEqual(names(dry.skipped.map((s) => s.ref)), [`Widget/${ns}/w1`])
        assert.equal(await exists(() => crds.readCustomResourceDefinition({ name: crdName })), false)

        // the custom resource comes first in the set; the apply puts the CRD first anyway
        const result = await applyObjects(kube, [widget, orphan, crd])
        assert.deepEqual(names(result.created), [`CustomResourceDefinition/${crdName}`, `Widget/${ns}/w1`])
        assert.deepEqual(
          result.failed.map((f) => f.message),
          [
            'no kind Gadget in nope.nsops.example.com/v1 is known to the API server; is its CustomResourceDefinition installed?',
          ],
        )
        const live = (await kube.custom.getNamespacedCustomObject({
          group,
          version: 'v1',
          namespace: ns,
          plural: 'widgets',
          name: 'w1',
        })) as { spec: { size: number } }
        assert.equal(live.spec.size, 3)

        const again = await applyObjects(kube, [widget, crd])
        assert.deepEqual(counts(again), { created: 0, configured: 0, unchanged: 2, pruned: 0, failed: 0 })
      })
    } finally {
      await crds.deleteCustomResourceDefinition({ name: crdName }).catch(() => {})
    }
  })
})

describe('diff against the live cluster', () => {
  it('shows a changed replica count, a new object, a pruned object and masks Secret values', async () => {
    await inNamespace('diff', async (ns, kube) => {
      const inventory = { name: 'shop', namespace: ns }
      await applyObjects(
        kube,
        [
          deployment(ns, 'web', { replicas: 1 }),
          configMap(ns, 'old'),
          secret(ns, 'db', 'hunter2-before'),
          configMap(ns, 'same'),
        ],
        { inventory },
      )
      const before = await settled(kube, ns)

      const result = await diffObjects(
        kube,
        [
          deployment(ns, 'web', { replicas: 4 }),
          configMap(ns, 'new', { greeting: 'hello' }),
          secret(ns, 'db', 'hunter2-after'),
          configMap(ns, 'same'),
        ],
        { inventory },
      )

      const actions = Object.fromEntries(result.objects.map((o) => [refString(o.ref), o.action]))
      assert.deepEqual(actions, {
        [`Deployment/${ns}/web`]: 'update',
        [`ConfigMap/${ns}/new`]: 'create',
        [`Secret/${ns}/db`]: 'update',
        [`ConfigMap/${ns}/same`]: 'unchanged',
        [`ConfigMap/${ns}/old`]: 'delete',
      })
      const web = result.objects.find((o) => o.ref.name === 'web')!
      assert.deepEqual({ added: web.added, removed: web.removed }, { added: 1, removed: 1 })
      assert.match(web.diff!, /^-  replicas: 1$/m)
      assert.match(web.diff!, /^\+  replicas: 4$/m)
      assert.doesNotMatch(web.diff!, /managedFields|resourceVersion|uid:|creationTimestamp|status:/)
      // defaults come from the server's dry run, so they are not shown as changes
      assert.doesNotMatch(web.diff!, /^[-+].*(imagePullPolicy|terminationMessagePath|progressDeadlineSeconds)/m)
      assert.match(result.objects.find((o) => o.ref.name === 'new')!.diff!, /^\+  greeting: hello$/m)
      assert.match(result.objects.find((o) => o.ref.name === 'old')!.diff!, /^-  key: value$/m)

      const db = result.objects.find((o) => o.ref.name === 'db')!
      assert.match(db.diff!, /^-  password: "\*\*\*"$/m)
      assert.match(db.diff!, /^\+  password: "\*\*\* \(changed\)"$/m)
      assert.match(db.diff!, /^ {3}user: "\*\*\* \(unchanged\)"$/m)

      const text = renderDiff(result) + JSON.stringify(result)
      for (const value of ['hunter2-before', 'hunter2-after', 'admin']) {
        assert.ok(!text.includes(value), `${value} appears in the diff`)
        assert.ok(!text.includes(Buffer.from(value).toString('base64')), `${value} appears base64-encoded in the diff`)
      }
      assert.match(renderDiff(result), /1 to create, 2 to update, 1 to prune, 1 unchanged$/)

      assert.deepEqual(await resourceVersions(kube, ns), before, 'the diff changed nothing')
      assert.equal(await exists(() => kube.core.readNamespacedConfigMap({ name: 'new', namespace: ns })), false)
    })
  })

  it('reports an object the API server would reject, with its message', async () => {
    await inNamespace('diff-invalid', async (ns, kube) => {
      const result = await diffObjects(kube, [deployment(ns, 'broken', { containers: [] })])
      assert.deepEqual(
        result.objects.map((o) => ({ action: o.action, error: o.error })),
        [
          {
            action: 'create',
            error: 'Deployment.apps "broken" is invalid: spec.template.spec.containers: Required value',
          },
        ],
      )
    })
  })

  it('finds nothing to change right after an apply', async () => {
    await inNamespace('diff-same', async (ns, kube) => {
      const set = [deployment(ns, 'web'), service(ns, 'web'), secret(ns, 'db', 'pw'), configMap(ns, 'cfg')]
      await applyObjects(kube, set)
      const result = await diffObjects(kube, set)
      assert.deepEqual(
        result.objects.map((o) => o.action),
        ['unchanged', 'unchanged', 'unchanged', 'unchanged'],
      )
    })
  })
})
