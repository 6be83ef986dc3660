// STAND-IN TEST: no Docker engine (and so no kind or k3d) is obtainable on the machine these tests
// run on, so the real kind/k3d registry path cannot run here. `docker`, `kind` and `k3d` below are
// stand-in shell scripts (test/fixtures/docker-standins) that record their argv and keep just
// enough state to answer; the KEP-1755 ConfigMap is recorded instead of applied (there is no
// apiserver of a kind cluster). What this checks is the command sequence of the kind and k3d
// local-registry recipes and the ConfigMap's content, not that a real cluster pulls.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, afterEach, before, beforeEach, describe, it } from 'node:test'
import type { V1ConfigMap } from '@kubernetes/client-node'
import YAML from 'yaml'
import { DockerCluster } from '../../shared/cluster/docker-cluster.ts'
import { parseRegistryHosting, REGISTRY_HOSTING } from '../../shared/images/registry.ts'

const standins = path.join(import.meta.dirname, '../fixtures/docker-standins')
let tmp: string
const saved = { PATH: process.env.PATH, NSOPS_STATE_DIR: process.env.NSOPS_STATE_DIR }
const log = () => fs.readFileSync(path.join(tmp, 'argv.log'), 'utf8').trim().split('\n')

describe('kind/k3d local registry (stand-in docker/kind/k3d)', () => {
  before(() => {
    process.env.PATH = `${standins}:${process.env.PATH}`
  })
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-docker-standin-'))
    process.env.STANDIN_LOG = path.join(tmp, 'argv.log')
    process.env.STANDIN_DIR = tmp
    process.env.NSOPS_STATE_DIR = path.join(tmp, 'state')
    fs.writeFileSync(process.env.STANDIN_LOG, '')
  })
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }))
  after(() => {
    process.env.PATH = saved.PATH
    if (saved.NSOPS_STATE_DIR === undefined) delete process.env.NSOPS_STATE_DIR
    else process.env.NSOPS_STATE_DIR = saved.NSOPS_STATE_DIR
    delete process.env.STANDIN_LOG
    delete process.env.STANDIN_DIR
  })

  it('kind: runs kind-registry, creates the cluster, writes hosts.toml, joins the kind network, advertises it; reuses it; removes it on stop', async () => {
    const applied: V1ConfigMap[] = []
    const kind = new DockerCluster('kind', 'nsops', async (_kc, cm) => {
      applied.push(cm)
    })
    await kind.ensure()
    const first = log().filter((l) => !l.startsWith('docker info') && !l.startsWith('kind get clusters'))
    const run = first.find((l) => l.startsWith('docker run'))!
    const port = Number(/-p 127\.0\.0\.1:(\d+):5000/.exec(run)![1])
    assert.deepEqual(first, [
      'docker inspect --format {{json .}} kind-registry',
      `docker run -d --restart=always -p 127.0.0.1:${port}:5000 --network bridge --name kind-registry --label nsops.dev/registry=owned registry:2`,
      `kind create cluster --name nsops --config ${path.resolve('k8s/kind.yaml')} --wait 120s`,
      'kind get kubeconfig --name nsops',
      'kind get nodes --name nsops',
      `docker exec nsops-control-plane sh -c mkdir -p '/etc/containerd/certs.d/localhost:${port}' && printf '%s\\n' '[host."http://kind-registry:5000"]' > '/etc/containerd/certs.d/localhost:${port}/hosts.toml'`,
      'docker inspect --format {{json .NetworkSettings.Networks.kind}} kind-registry',
      'docker network connect kind kind-registry',
    ])
    // containerd reads hosts.toml only with config_path set, which k8s/kind.yaml patches in
    const kindYaml = YAML.parse(fs.readFileSync('k8s/kind.yaml', 'utf8')) as { containerdConfigPatches: string[] }
    assert.match(kindYaml.containerdConfigPatches.join('\n'), /config_path = "\/etc\/containerd\/certs.d"/)
    assert.equal(applied.length, 1)
    assert.equal(applied[0].metadata?.namespace, REGISTRY_HOSTING.namespace)
    assert.equal(applied[0].metadata?.name, REGISTRY_HOSTING.name)
    assert.deepEqual(parseRegistryHosting(applied[0].data), {
      host: `localhost:${port}`,
      hostFromContainerRuntime: 'kind-registry:5000',
      hostFromClusterNetwork: 'kind-registry:5000',
      help: 'https://kind.sigs.k8s.io/docs/user/local-registry/',
    })

    // a second cluster-up: same container, same port, no second `docker run`, no second network connect
    fs.writeFileSync(process.env.STANDIN_LOG!, '')
    await kind.ensure()
    assert.ok(
      !log().some((l) => l.startsWith('docker run') || l.startsWith('kind create') || l.startsWith('docker network')),
    )
    assert.equal(parseRegistryHosting(applied[1].data)?.host, `localhost:${port}`)

    fs.writeFileSync(process.env.STANDIN_LOG!, '')
    await kind.stop()
    assert.deepEqual(
      log().filter(
        (l) => !l.startsWith('docker info') && !l.startsWith('kind get clusters') && !l.startsWith('docker inspect'),
      ),
      ['kind delete cluster --name nsops', 'docker rm -f kind-registry'],
    )
  })

  it('kind: a kind-registry nsops did not start is used and left alone on stop', async () => {
    fs.writeFileSync(path.join(tmp, 'container-kind-registry'), '5001 \n')
    const applied: V1ConfigMap[] = []
    const kind = new DockerCluster('kind', 'nsops', async (_kc, cm) => {
      applied.push(cm)
    })
    await kind.ensure()
    assert.ok(!log().some((l) => l.startsWith('docker run')))
    assert.equal(parseRegistryHosting(applied[0].data)?.host, 'localhost:5001')
    await kind.stop()
    assert.ok(!log().some((l) => l.startsWith('docker rm')))
  })

  it("kind: a registry that cannot start stops cluster-up with docker's message and a hint, before any cluster is made", async () => {
    process.env.STANDIN_DOCKER_RUN_FAILS = 'Error response from daemon: network bridge not found'
    try {
      await assert.rejects(
        new DockerCluster('kind', 'nsops', async () => {}).ensure(),
        (err: Error & { hint?: string }) => {
          assert.equal(err.name, 'NsopsError')
          assert.match(
            err.message,
            /docker run .*registry:2` failed: Error response from daemon: network bridge not found/,
          )
          assert.match(err.hint ?? '', /sim provider/)
          return true
        },
      )
      assert.ok(!log().some((l) => l.startsWith('kind create')))
    } finally {
      delete process.env.STANDIN_DOCKER_RUN_FAILS
    }
  })

  it('k3d: hands k3d a config that creates nsops-registry; uses it on a second up; deletes it on stop', async () => {
    const k3d = new DockerCluster('k3d')
    await k3d.ensure()
    const created = log().find((l) => l.startsWith('k3d cluster create'))!
    const config = path.join(tmp, 'state', 'k3d', 'k3d.yaml')
    assert.equal(created, `k3d cluster create nsops --config ${config} --wait`)
    const doc = YAML.parse(fs.readFileSync(path.join(tmp, 'k3d-config.yaml'), 'utf8')) as {
      metadata: { name: string }
      registries: { create: { name: string; host: string; hostPort: string } }
    }
    assert.equal(doc.metadata.name, 'nsops') // the rest of k8s/k3d.yaml is kept
    assert.equal(doc.registries.create.name, 'nsops-registry')
    assert.equal(doc.registries.create.host, '127.0.0.1')
    const port = doc.registries.create.hostPort
    assert.match(port, /^\d+$/)

    // the cluster is gone but the registry stays (e.g. a failed delete): the next up uses it
    fs.rmSync(path.join(tmp, 'k3d-cluster'))
    await k3d.ensure()
    const again = YAML.parse(fs.readFileSync(path.join(tmp, 'k3d-config.yaml'), 'utf8')) as {
      registries: { use: string[] }
    }
    assert.deepEqual(again.registries, { use: [`k3d-nsops-registry:${port}`] })

    fs.writeFileSync(process.env.STANDIN_LOG!, '')
    await k3d.stop()
    assert.ok(log().includes('k3d cluster delete nsops'))
    assert.ok(log().includes('k3d registry delete k3d-nsops-registry'))
  })
})
