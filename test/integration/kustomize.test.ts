// kustomize build with the pinned binary over the fixtures in test/fixtures/kustomize: a base
// with a dev overlay and patches, and broken kustomizations whose errors must say where.
import assert from 'node:assert/strict'
import path from 'node:path'
import { describe, it } from 'node:test'
import { NsopsError } from '../../shared/core/errors.ts'
import { buildKustomization, parseManifests, type ManifestObject } from '../../shared/kustomize/build.ts'
import { repoRoot } from '../../shared/core/paths.ts'

const fixtures = path.join(repoRoot, 'test', 'fixtures', 'kustomize')
const fixture = (...p: string[]) => path.join(fixtures, ...p)
/** how errors print a fixture path: relative to the working directory when inside it, else absolute */
const shown = (...p: string[]) => {
  const rel = path.relative(process.cwd(), fixture(...p))
  return rel.startsWith('..') ? fixture(...p) : rel || '.'
}
const escaped = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')

async function buildError(dir: string): Promise<NsopsError> {
  try {
    await buildKustomization(dir)
  } catch (err) {
    assert.ok(err instanceof NsopsError, `expected an NsopsError, got ${String(err)}`)
    assert.ok(err.hint, 'every build error carries a hint')
    return err
  }
  assert.fail(`kustomize build ${dir} succeeded`)
}

const byKind = (objects: ManifestObject[], kind: string) => objects.find((o) => o.kind === kind)

describe('kustomize build', () => {
  it("builds an overlay over its base, with the overlay's patches, prefix, namespace and labels", async () => {
    const objects = await buildKustomization(fixture('overlays', 'dev'))
    assert.deepEqual(objects.map((o) => `${o.kind}/${o.metadata.name}`).sort(), [
      'ConfigMap/dev-web-config',
      'Deployment/dev-web',
      'Service/dev-web',
    ])
    for (const o of objects) {
      assert.equal(o.metadata.namespace, 'shop-dev')
      assert.equal(o.metadata.labels?.env, 'dev')
    }
    const deployment = byKind(objects, 'Deployment') as ManifestObject & {
      spec: { replicas: number; template: { spec: { containers: { image: string }[] } } }
    }
    assert.equal(deployment.apiVersion, 'apps/v1')
    assert.equal(deployment.spec.replicas, 3, 'the strategic merge patch set replicas')
    assert.equal(deployment.spec.template.spec.containers[0].image, 'nginx:1.27', 'the base survives the patch')
    assert.deepEqual(
      byKind(objects, 'ConfigMap')?.data,
      { LOG_LEVEL: 'debug' },
      'the JSON 6902 patch replaced the value',
    )
  })

  it('builds a base on its own', async () => {
    const objects = await buildKustomization(fixture('base'))
    assert.equal(objects.length, 3)
    assert.equal((byKind(objects, 'Deployment')?.spec as { replicas: number }).replicas, 1)
    assert.ok(objects.every((o) => o.metadata.namespace === undefined))
  })

  it('names the file, line and column of malformed YAML in a resource', async () => {
    const err = await buildError(fixture('broken', 'malformed'))
    assert.match(
      err.message,
      new RegExp(`^malformed YAML: ${escaped(shown('broken', 'malformed', 'configmap.yaml'))}:6:14 \\S`),
    )
  })

  it('names the file inside the base when an overlay builds a malformed base', async () => {
    const err = await buildError(fixture('broken', 'overlay-of-malformed'))
    assert.ok(err.message.includes(`${shown('broken', 'malformed', 'configmap.yaml')}:6:14 `), err.message)
  })

  it('names the kustomization and the resource that does not exist', async () => {
    const err = await buildError(fixture('broken', 'missing-resource'))
    assert.equal(
      err.message,
      `${shown('broken', 'missing-resource', 'kustomization.yaml')}: resource ./x.yaml does not exist.`,
    )
  })

  it('names the patch whose target is not among the resources', async () => {
    const err = await buildError(fixture('broken', 'bad-patch'))
    assert.equal(
      err.message,
      `${shown('broken', 'bad-patch', 'kustomization.yaml')}: patch scale-api.yaml targets Deployment api, which is not among the kustomization's resources.`,
    )
  })

  it('refuses a directory without a kustomization', async () => {
    const err = await buildError(fixtures)
    assert.equal(err.message, `${shown()} has no kustomization.yaml.`)
  })

  it('refuses a directory that does not exist', async () => {
    const err = await buildError(fixture('no-such-overlay'))
    assert.equal(err.message, `${shown('no-such-overlay')} is not a directory.`)
  })
})

describe('parseManifests', () => {
  it('reads every document of a multi-document stream and skips empty ones', () => {
    const objects = parseManifests(
      '---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: b\n',
      'x.yaml',
    )
    assert.deepEqual(
      objects.map((o) => `${o.kind}/${o.metadata.name}`),
      ['ConfigMap/a', 'Secret/b'],
    )
  })

  it('unrolls a List into its items', () => {
    const objects = parseManifests(
      'apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: b}}\n',
      'list.yaml',
    )
    assert.deepEqual(
      objects.map((o) => o.metadata.name),
      ['a', 'b'],
    )
  })

  it('gives the line in the whole file for an error in a later document', () => {
    const text =
      'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n data: [\n'
    assert.throws(
      () => parseManifests(text, 'app/config.yaml'),
      (err: unknown) => {
        assert.ok(err instanceof NsopsError)
        assert.match(err.message, /^malformed YAML: app\/config\.yaml:10:1 /)
        return true
      },
    )
  })

  it('names the document that lacks kind or metadata.name', () => {
    const text = 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\napiVersion: v1\nmetadata:\n  labels: {}\n'
    assert.throws(
      () => parseManifests(text, 'app/config.yaml'),
      (err: unknown) => {
        assert.ok(err instanceof NsopsError)
        assert.equal(err.message, 'app/config.yaml:6:1: the object has no kind, metadata.name.')
        return true
      },
    )
  })

  it('refuses a document that is not an object', () => {
    assert.throws(
      () => parseManifests('- a\n- b\n', 'list.yaml'),
      /list\.yaml:1:1 is not a Kubernetes object \(a YAML list\)/,
    )
  })
})
