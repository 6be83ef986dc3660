// The diff as people and --json see it: line diffs in `diff -u` form, noise stripped, Secret
// values masked so no value (plain or base64) can leak, colour only when output allows it.
import assert from 'node:assert/strict'
import { before, describe, it } from 'node:test'
import {
  maskSecrets,
  objectDiff,
  renderDiff,
  stripNoise,
  summaryLine,
  type DiffResult,
} from '../../shared/apply/diff.ts'
import { diffLines, hunks, unifiedText } from '../../shared/apply/line-diff.ts'
import { c } from '../../shared/core/output.ts'

const ANSI = /\x1b\[[0-9;]*m/

function withColour<T>(on: boolean, fn: () => T): T {
  const was = c.enabled
  c.enabled = on
  try {
    return fn()
  } finally {
    c.enabled = was
  }
}

const b64 = (s: string) => Buffer.from(s).toString('base64')

function liveDeployment(replicas: number) {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: 'web',
      namespace: 'shop',
      uid: '6f1c',
      resourceVersion: '1234',
      generation: 3,
      creationTimestamp: '2024-05-01T10:00:00Z',
      managedFields: [{ manager: 'nsops', operation: 'Apply', fieldsV1: { 'f:spec': {} } }],
      annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{"secret":"in here"}' },
      labels: { app: 'web' },
    },
    spec: {
      replicas,
      selector: { matchLabels: { app: 'web' } },
      template: { spec: { containers: [{ name: 'web', image: 'nginx:1.27' }] } },
    },
    status: { replicas, readyReplicas: replicas },
  }
}

function secret(data: Record<string, string>) {
  return { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'db', namespace: 'shop' }, type: 'Opaque', data }
}

describe('line diff', () => {
  // expected texts are GNU diffutils 3.8 `diff -u` output without the file header lines
  it('prints one changed line with three lines of context, as diff -u does', () => {
    const a = ['a', 'b', 'c', 'd', 'e', 'f', 'g']
    const b = ['a', 'b', 'c', 'D', 'e', 'f', 'g']
    assert.equal(unifiedText(diffLines(a, b)), '@@ -1,7 +1,7 @@\n a\n b\n c\n-d\n+D\n e\n f\n g')
  })

  it('splits changes far apart into separate hunks with their own line numbers', () => {
    const a = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n']
    const b = ['a', 'b', 'C', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'M', 'n']
    const hs = hunks(diffLines(a, b))
    assert.deepEqual(
      hs.map((h) => h.header),
      ['@@ -1,6 +1,6 @@', '@@ -10,5 +10,5 @@'],
    )
  })

  it('numbers an insertion and an empty side like diff -u', () => {
    assert.equal(unifiedText(diffLines(['a', 'b', 'c'], ['a', 'b', 'c', 'd'])), '@@ -1,3 +1,4 @@\n a\n b\n c\n+d')
    assert.equal(unifiedText(diffLines([], ['a', 'b'])), '@@ -0,0 +1,2 @@\n+a\n+b')
    assert.equal(unifiedText(diffLines(['x', 'a', 'b'], ['a', 'b'])), '@@ -1,3 +1,2 @@\n-x\n a\n b')
  })

  it('finds the common lines between moved blocks', () => {
    const lines = diffLines(['k1', 'a', 'b', 'k2', 'c'], ['k1', 'b', 'k2', 'a', 'c'])
    assert.equal(lines.filter((l) => l.op === ' ').length, 4, 'k1, b, k2 and c are kept')
    assert.equal(lines.filter((l) => l.op !== ' ').length, 2)
  })

  it('has no hunks when nothing changed', () => {
    assert.deepEqual(hunks(diffLines(['a', 'b'], ['a', 'b'])), [])
  })
})

describe('object diff', () => {
  it("shows a replica change and none of the server's bookkeeping", () => {
    const d = objectDiff(
      { apiVersion: 'apps/v1', kind: 'Deployment', namespace: 'shop', name: 'web' },
      liveDeployment(1),
      liveDeployment(3),
    )
    assert.equal(d.action, 'update')
    assert.deepEqual({ added: d.added, removed: d.removed }, { added: 1, removed: 1 })
    assert.match(d.diff!, /^-  replicas: 1$/m)
    assert.match(d.diff!, /^\+  replicas: 3$/m)
    assert.doesNotMatch(
      d.diff!,
      /managedFields|resourceVersion|generation|uid|creationTimestamp|status|readyReplicas|last-applied/,
    )
  })

  it('calls an object without a live side a creation and one without a desired side a deletion', () => {
    const ref = { apiVersion: 'v1', kind: 'ConfigMap', namespace: 'shop', name: 'c' }
    const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', namespace: 'shop' }, data: { a: 'b' } }
    const created = objectDiff(ref, undefined, cm)
    assert.equal(created.action, 'create')
    assert.equal(created.removed, 0)
    assert.match(created.diff!, /^\+kind: ConfigMap$/m)
    const deleted = objectDiff(ref, cm, undefined)
    assert.equal(deleted.action, 'delete')
    assert.equal(deleted.added, 0)
    assert.match(deleted.diff!, /^-  a: b$/m)
  })

  it('calls objects that differ only in bookkeeping unchanged, with no diff', () => {
    const live = liveDeployment(2)
    const again = {
      ...liveDeployment(2),
      metadata: { ...liveDeployment(2).metadata, resourceVersion: '999', generation: 9 },
    }
    const d = objectDiff({ apiVersion: 'apps/v1', kind: 'Deployment', namespace: 'shop', name: 'web' }, live, again)
    assert.equal(d.action, 'unchanged')
    assert.equal(d.diff, undefined)
  })

  it('strips the noise fields and an annotation map left empty', () => {
    const stripped = stripNoise(liveDeployment(1)) as { metadata: Record<string, unknown>; status?: unknown }
    assert.deepEqual(Object.keys(stripped.metadata).sort(), ['labels', 'name', 'namespace'])
    assert.equal(stripped.status, undefined)
  })
})

describe('secret masking', () => {
  it('marks changed and unchanged values and masks keys present on one side', () => {
    const [b, a] = maskSecrets(
      secret({ same: b64('s1'), changed: b64('old'), gone: b64('x') }),
      secret({ same: b64('s1'), changed: b64('new'), added: b64('y') }),
    )
    assert.deepEqual(b?.data, { same: '*** (unchanged)', changed: '***', gone: '***' })
    assert.deepEqual(a?.data, { same: '*** (unchanged)', changed: '*** (changed)', added: '***' })
  })

  it('masks stringData and leaves other kinds alone', () => {
    const [, a] = maskSecrets(undefined, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 's' },
      stringData: { token: 'abc' },
    })
    assert.deepEqual(a?.stringData, { token: '***' })
    const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' }, data: { token: 'abc' } }
    assert.deepEqual(maskSecrets(cm, cm), [cm, cm])
  })

  it('does not change the objects it is given', () => {
    const live = secret({ k: b64('v') })
    maskSecrets(live, secret({ k: b64('w') }))
    assert.equal(live.data.k, b64('v'))
  })

  it('never lets a value through, plain or base64, in the text or the JSON', () => {
    const values = ['correct-horse-battery', 'staple-2024', 'only-before', 'only-after']
    const ref = { apiVersion: 'v1', kind: 'Secret', namespace: 'shop', name: 'db' }
    const result: DiffResult = {
      objects: [
        objectDiff(
          ref,
          secret({ password: b64(values[0]), gone: b64(values[2]) }),
          secret({ password: b64(values[1]), added: b64(values[3]) }),
        ),
        objectDiff({ ...ref, name: 'new' }, undefined, {
          ...secret({ password: b64(values[0]) }),
          metadata: { name: 'new', namespace: 'shop' },
        }),
        objectDiff(
          { ...ref, name: 'old' },
          { ...secret({ password: b64(values[1]) }), metadata: { name: 'old', namespace: 'shop' } },
          undefined,
        ),
      ],
    }
    const outputs = [
      withColour(false, () => renderDiff(result)),
      withColour(true, () => renderDiff(result)),
      JSON.stringify(result),
    ]
    for (const out of outputs) {
      for (const v of values) {
        assert.ok(!out.includes(v), `"${v}" leaked`)
        assert.ok(!out.includes(b64(v)), `"${v}" leaked as base64`)
      }
    }
    assert.match(result.objects[0].diff!, /^\+  password: "\*\*\* \(changed\)"$/m)
  })
})

describe('diff rendering', () => {
  const result: DiffResult = {
    objects: [
      objectDiff(
        { apiVersion: 'apps/v1', kind: 'Deployment', namespace: 'shop', name: 'web' },
        liveDeployment(1),
        liveDeployment(3),
      ),
      objectDiff({ apiVersion: 'v1', kind: 'ConfigMap', namespace: 'shop', name: 'new' }, undefined, {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'new', namespace: 'shop' },
      }),
      objectDiff(
        { apiVersion: 'v1', kind: 'ConfigMap', namespace: 'shop', name: 'old' },
        { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'old', namespace: 'shop' } },
        undefined,
      ),
      objectDiff(
        { apiVersion: 'v1', kind: 'Service', namespace: 'shop', name: 'web' },
        { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web' } },
        { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web' } },
      ),
      {
        ref: { apiVersion: 'apps/v1', kind: 'Deployment', namespace: 'shop', name: 'broken' },
        action: 'create',
        added: 0,
        removed: 0,
        error: 'Deployment.apps "broken" is invalid: spec.template.spec.containers: Required value',
      },
    ],
  }
  let plain: string
  let coloured: string
  before(() => {
    plain = withColour(false, () => renderDiff(result))
    coloured = withColour(true, () => renderDiff(result))
  })

  it('heads each changed object with its action and counts, and leaves unchanged ones out', () => {
    assert.match(plain, /^~ Deployment\/shop\/web \(changed, \+1 -1\)$/m)
    assert.match(plain, /^\+ ConfigMap\/shop\/new \(new, \+5\)$/m)
    assert.match(plain, /^- ConfigMap\/shop\/old \(pruned, -5\)$/m)
    assert.doesNotMatch(plain, /Service\/shop\/web/)
  })

  it('indents the hunks under their object', () => {
    assert.match(plain, /^ {4}@@ -\d+,\d+ \+\d+,\d+ @@$/m)
    assert.match(plain, /^ {4}-  replicas: 1\n {4}\+  replicas: 3$/m)
  })

  it("shows a rejected object with the API's message", () => {
    assert.match(
      plain,
      /^! Deployment\/shop\/broken: Deployment\.apps "broken" is invalid: spec\.template\.spec\.containers: Required value$/m,
    )
  })

  it('ends with a summary of what would happen', () => {
    assert.equal(plain.split('\n').pop(), '1 to create, 1 to update, 1 to prune, 1 unchanged, 1 rejected')
    assert.equal(
      withColour(false, () => summaryLine({ objects: [] })),
      '0 to create, 0 to update, 0 to prune, 0 unchanged',
    )
  })

  it('colours only when colour is enabled, and the text is the same without the codes', () => {
    assert.doesNotMatch(plain, ANSI)
    assert.match(coloured, ANSI)
    assert.equal(coloured.replace(/\x1b\[[0-9;]*m/g, ''), plain)
  })

  it('keeps the JSON form free of colour codes', () => {
    const json = withColour(true, () => JSON.stringify(result))
    assert.doesNotMatch(json, ANSI)
    const parsed = JSON.parse(json) as DiffResult
    assert.deepEqual(
      parsed.objects.map((o) => o.action),
      ['update', 'create', 'delete', 'unchanged', 'create'],
    )
  })
})
