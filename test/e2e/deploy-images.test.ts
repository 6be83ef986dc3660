// deploy refuses manifests that name an image its registry does not have (konflate's "images
// missing from their registry"), through `npx just deploy observability` in a copy of this
// repo against the sim and its real registry: observability builds an image (logdemo), so its
// prod manifests are checked. A tag nobody pushed is refused by name, with nothing committed or
// pushed; a registry that does not answer is said plainly; once the tag is pushed the deploy
// goes on; --allow-missing-images pushes without asking the registry.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { after, before, describe, it } from 'node:test'
import { crane } from '../../shared/images/crane.ts'
import { advertisedRegistry } from '../../shared/images/registry.ts'
import { ciRepo, type CiRepo } from '../ci-fixture.ts'
import { git } from '../git-fixture.ts'
import { testCluster, type TestCluster } from '../harness.ts'
import { layerWith } from '../image-fixture.ts'

const exec = promisify(execFile)
const PROD = 'namespaces/observability/overlays/prod/kustomization.yaml'

interface Ran {
  code: number
  stdout: string
  stderr: string
}

describe('deploy: images missing from their registry', () => {
  let cluster: TestCluster
  let repo: CiRepo
  let host: string
  let env: Record<string, string>
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-deploy-images-'))

  before(async () => {
    cluster = await testCluster()
    host = (await advertisedRegistry(cluster.kube))!.host
    repo = ciRepo()
    env = {
      ...(process.env as Record<string, string>),
      CI: '1',
      NO_COLOR: '1',
      KUBECONFIG: cluster.kubeconfig,
      NSOPS_PROVIDER: 'existing',
      NSOPS_STATE_DIR: stateDir,
    }
    // loki and promtail come from a mirror in the sim's registry (this machine may be offline)
    const layer = await layerWith(repo.root, 'hello.txt', 'a mirrored image\n')
    for (const name of ['loki', 'promtail'])
      await crane(['append', '--oci-empty-base', '--new_layer', layer, '--new_tag', `${host}/mirror/${name}:3.5.3`])
  })
  after(() => {
    if (repo) fs.rmSync(repo.root, { recursive: true, force: true })
    fs.rmSync(stateDir, { recursive: true, force: true })
  })

  const just = async (...args: string[]): Promise<Ran> =>
    exec('npx', ['just', ...args], { cwd: repo.work, env, maxBuffer: 32 << 20, timeout: 300_000 }).then(
      ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
      (e: { code?: number; stdout?: string; stderr?: string }) => ({
        code: typeof e.code === 'number' ? e.code : -1,
        stdout: e.stdout ?? '',
        stderr: e.stderr ?? '',
      }),
    )
  /** the prod overlay pins logdemo to REF (name:tag) and promtail to PROMTAIL */
  const pin = (logdemo: string, promtail = `${host}/mirror/promtail`) => {
    const file = path.join(repo.work, PROD)
    const [name, tag] = [logdemo.slice(0, logdemo.lastIndexOf(':')), logdemo.slice(logdemo.lastIndexOf(':') + 1)]
    const text = fs.readFileSync(file, 'utf8').replace(/\nimages:\n[\s\S]*$/, '\n')
    fs.writeFileSync(
      file,
      `${text}images:
  - name: logdemo
    newName: ${name}
    newTag: "${tag}"
  - name: docker.io/grafana/loki
    newName: ${host}/mirror/loki
  - name: docker.io/grafana/promtail
    newName: ${promtail}
`,
    )
  }
  const remoteHead = () => git(repo.remote, 'rev-parse', 'refs/heads/main')

  it('a tag nobody pushed is refused by name, and a registry that does not answer is said plainly: exit 1, nothing committed or pushed', async () => {
    pin(`${host}/observability/logdemo:1.0.0`, '127.0.0.1:1/mirror/promtail')
    const [head, remote] = [git(repo.work, 'rev-parse', 'HEAD'), remoteHead()]
    const r = await just('deploy', 'observability', '--yes')
    assert.equal(r.code, 1, r.stderr)
    assert.match(
      r.stderr,
      new RegExp(
        `1 image the prod manifests name is missing from its registry:\\n\\s+${host}/observability/logdemo:1\\.0\\.0 \\(Deployment observability/logdemo\\): not in ${host}: .*MANIFEST_UNKNOWN`,
      ),
    )
    assert.match(
      r.stderr,
      /1 image could not be checked \(the registry did not answer.*\n\s+127\.0\.0\.1:1\/mirror\/promtail:3\.5\.3 \(DaemonSet observability\/promtail\): could not ask 127\.0\.0\.1:1: .*connection refused/,
    )
    assert.match(r.stderr, /nothing was committed or pushed/)
    assert.match(r.stderr, /hint: .*--allow-missing-images/)
    assert.equal(git(repo.work, 'rev-parse', 'HEAD'), head, 'nothing committed')
    assert.equal(remoteHead(), remote, 'nothing pushed')
  })

  it('once the tag is in the registry the deploy goes on (--push-only: exit 4, pushed)', async () => {
    pin(`${host}/observability/logdemo:1.0.0`)
    const built = await just('build', 'observability', '--tag', '1.0.0', '--quiet')
    assert.equal(built.code, 0, built.stderr)
    const before = remoteHead()
    const r = await just('deploy', 'observability', '--yes', '--push-only', '-m', 'logdemo 1.0.0')
    assert.equal(r.code, 4, r.stderr)
    assert.match(r.stderr, /3 images found in 1 registry/)
    assert.notEqual(remoteHead(), before, 'pushed')
    assert.equal(git(repo.remote, 'log', '-1', '--format=%s', 'refs/heads/main'), 'logdemo 1.0.0')
  })

  it('--allow-missing-images pushes a tag that is not there yet, saying it did not check', async () => {
    pin(`${host}/observability/logdemo:1.1.0`)
    const refused = await just('deploy', 'observability', '--yes', '--push-only')
    assert.equal(refused.code, 1, refused.stderr)
    assert.match(refused.stderr, /logdemo:1\.1\.0 \(Deployment observability\/logdemo\): not in/)
    const before = remoteHead()
    const r = await just('deploy', 'observability', '--yes', '--push-only', '--allow-missing-images')
    assert.equal(r.code, 4, r.stderr)
    assert.match(r.stderr, /images not checked against their registries \(--allow-missing-images\)/)
    assert.notEqual(remoteHead(), before, 'pushed')
  })
})
