// The sim's OCI registry is a real one (CNCF distribution) that a real client (crane) pushes to
// and reads back, found the way every tool finds a local cluster's registry: KEP-1755's
// ConfigMap in kube-public.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, describe, it } from 'node:test'
import { crane, imageDigest } from '../../shared/images/crane.ts'
import { REGISTRY_HOSTING, advertisedRegistry, chooseRegistry, registryAnswers } from '../../shared/images/registry.ts'
import { testCluster } from '../harness.ts'
import { imageFiles, layerWith } from '../image-fixture.ts'

describe('the sim registry', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-registry-'))
  after(() => fs.rmSync(tmp, { recursive: true, force: true }))

  it('is advertised with KEP-1755 and answers on 127.0.0.1', async () => {
    const { kube, sim } = await testCluster()
    const hosting = await advertisedRegistry(kube)
    assert.ok(hosting, `no ${REGISTRY_HOSTING.namespace}/${REGISTRY_HOSTING.name}`)
    assert.match(hosting.host, /^127\.0\.0\.1:\d+$/)
    if (sim) assert.equal(hosting.host, sim.registryHost())
    assert.equal(await registryAnswers(hosting.host), true)
    const choice = await chooseRegistry({ kube, env: {} })
    assert.equal(choice.host, hosting.host)
    assert.equal(choice.plainHttp, true)
    assert.match(choice.from, /advertised by context/)
  })

  it('serves what crane pushed: the digest, the manifest and the file in the layer', async () => {
    const { kube } = await testCluster()
    const { host } = (await advertisedRegistry(kube))!
    const ref = `${host}/nsops-test/hello:v1`
    const layer = await layerWith(tmp, 'hello.txt', 'hello from the sim registry\n')
    // no --base: the image starts from scratch
    const { stdout } = await crane(['append', '--new_layer', layer, '--new_tag', ref])
    const pushed = stdout.trim() // crane prints the reference by digest
    assert.match(pushed, new RegExp(`^${host}/nsops-test/hello@sha256:[0-9a-f]{64}$`))
    assert.equal(`${host}/nsops-test/hello@${await imageDigest(ref)}`, pushed)
    const manifest = JSON.parse((await crane(['manifest', pushed])).stdout) as { layers: unknown[] }
    assert.equal(manifest.layers.length, 1)
    const tags = (await crane(['ls', `${host}/nsops-test/hello`])).stdout.split('\n').filter(Boolean)
    assert.deepEqual(tags, ['v1'])
    const files = await imageFiles(pushed, tmp)
    assert.equal(files['hello.txt'], 'hello from the sim registry\n')
  })
})
