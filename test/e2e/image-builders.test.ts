// The builders a user configures in namespace.ts beyond the shipped logdemo, through
// `npx just build observability IMAGE…` in a copy of this repo against the sim's real registry,
// each image read back with crane: `custom` (a typed zx function that must push `ref`; one that
// pushes nothing is refused by name), a `binary` image on a base from a local OCI layout and one
// from a tarball (offline work: the base is a folder or file on this machine), one on
// `scratch` (one layer: only the build's files), and `ko` onto scratch.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { after, before, describe, it } from 'node:test'
import { crane } from '../../shared/images/crane.ts'
import { advertisedRegistry } from '../../shared/images/registry.ts'
import { toolPath } from '../../shared/tools/provision.ts'
import { ciRepo, type CiRepo } from '../ci-fixture.ts'
import { testCluster } from '../harness.ts'
import { imageFiles, layerWith } from '../image-fixture.ts'

const exec = promisify(execFile)
const NS = 'namespaces/observability'

interface Manifest {
  layers: { digest: string }[]
}

describe('image builders through npx just build', () => {
  let repo: CiRepo
  let host = ''
  let env: Record<string, string>
  let baseLayer = ''
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-builders-state-'))

  before(async () => {
    const cluster = await testCluster()
    host = (await advertisedRegistry(cluster.kube))!.host
    repo = ciRepo()
    env = {
      ...(process.env as Record<string, string>),
      KUBECONFIG: cluster.kubeconfig,
      NSOPS_PROVIDER: 'existing',
      NSOPS_STATE_DIR: stateDir,
      NO_COLOR: '1',
    }
    // a base image saved on this machine, as `crane pull` writes one while online: an OCI
    // layout folder and a tarball (pulled here from the sim's registry, where it was made)
    const baseRef = `${host}/fixtures/base:1`
    await crane([
      'append',
      '--oci-empty-base',
      '--new_layer',
      await layerWith(repo.root, 'etc-base.txt', 'from the local base\n'),
      '--new_tag',
      baseRef,
    ])
    await crane([
      'mutate',
      baseRef,
      '--set-platform',
      `linux/${os.arch() === 'arm64' ? 'arm64' : 'amd64'}`,
      '--tag',
      baseRef,
    ])
    baseLayer = (JSON.parse((await crane(['manifest', baseRef])).stdout) as Manifest).layers[0].digest
    fs.mkdirSync(path.join(repo.work, NS, 'bases'))
    await crane(['pull', '--format', 'oci', baseRef, path.join(repo.work, NS, 'bases/base-oci')])
    await crane(['pull', baseRef, path.join(repo.work, NS, 'bases/base.tar')])

    // a context with a file to ship, and the builders in namespace.ts
    const ctx = path.join(repo.work, NS, 'src/builders')
    fs.mkdirSync(ctx, { recursive: true })
    fs.writeFileSync(path.join(ctx, 'hello.txt'), 'hello from the build\n')
    const craneBin = await toolPath('crane')
    const binary = (base: string) => `{
        context: 'src/builders',
        build: {
          kind: 'binary',
          command: 'mkdir -p out && cp hello.txt out/hello.txt',
          files: { 'out/hello.txt': '/app/hello.txt' },
          base: '${base}',
          cmd: ['/app/hello.txt'],
        },
      }`
    const nsFile = path.join(repo.work, NS, 'namespace.ts')
    const text = fs.readFileSync(nsFile, 'utf8')
    const extra = `images: {
    'custom-demo': {
      context: 'src/builders',
      build: {
        kind: 'custom',
        // a typed zx function: build however you like, then push exactly \`ref\`
        run: async ({ $, ref, log }) => {
          log('packing hello.txt')
          await $\`tar -cf /tmp/nsops-custom-layer-\${process.pid}.tar hello.txt\`
          await $\`${craneBin} append --oci-empty-base --new_layer /tmp/nsops-custom-layer-\${process.pid}.tar --new_tag \${ref}\`
          await $\`rm -f /tmp/nsops-custom-layer-\${process.pid}.tar\`
        },
      },
    },
    'custom-nopush': {
      context: 'src/builders',
      build: { kind: 'custom', run: async ({ $ }) => { await $\`true\` } },
    },
    'oci-demo': ${binary('oci:bases/base-oci')},
    'tar-demo': ${binary('tarball:bases/base.tar')},
    'scratch-demo': ${binary('scratch')},
    'ko-demo': { context: 'src/logdemo', build: { kind: 'ko' } },
`
    assert.ok(text.includes('  images: {\n'), 'observability has images:')
    // a function: `$\`` in a replacement string would mean "the text before the match"
    fs.writeFileSync(
      nsFile,
      text.replace('  images: {\n', () => `  ${extra}`),
    )
  })
  after(() => {
    if (repo) fs.rmSync(repo.root, { recursive: true, force: true })
    fs.rmSync(stateDir, { recursive: true, force: true })
  })

  const build = (...images: string[]) =>
    exec('npx', ['just', 'build', 'observability', ...images], { cwd: repo.work, env, maxBuffer: 16 << 20 }).then(
      ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
      (e: { code: number; stdout: string; stderr: string }) => e,
    )
  const refOf = (stdout: string, image: string) => {
    const m = new RegExp(`${host.replace(/\./g, '\\.')}/observability/${image}@sha256:[0-9a-f]{64}`).exec(stdout)
    assert.ok(m, `no reference for ${image} in:\n${stdout}`)
    return m[0]
  }

  it('custom: the zx function pushes ref, nsops reads the digest it pushed; its log is the build output', async () => {
    const r = await build('custom-demo')
    assert.equal(r.code, 0, r.stderr)
    const ref = refOf(r.stdout + r.stderr, 'custom-demo')
    assert.equal(ref.split('@')[1], (await crane(['digest', `${host}/observability/custom-demo:dev`])).stdout.trim())
    assert.equal((await imageFiles(ref, repo.root))['hello.txt'], 'hello from the build\n')
    assert.match(r.stderr, /packing hello\.txt/)
  })

  it('custom: a function that pushes nothing is refused by name (exit 1), saying it must push ref', async () => {
    const r = await build('custom-nopush')
    assert.equal(r.code, 1)
    assert.match(
      r.stderr,
      new RegExp(
        `image custom-nopush: the custom build finished but ${host}/observability/custom-nopush:dev is not in the registry`,
      ),
    )
    assert.match(r.stderr, /images\.custom-nopush\.build\.run must push exactly `ref`/)
  })

  it('binary on a base from a local OCI layout and from a tarball: the base layer, then the build files', async () => {
    const r = await build('oci-demo', 'tar-demo')
    assert.equal(r.code, 0, r.stderr)
    for (const image of ['oci-demo', 'tar-demo']) {
      const ref = refOf(r.stdout + r.stderr, image)
      const m = JSON.parse((await crane(['manifest', ref])).stdout) as Manifest
      assert.equal(m.layers.length, 2, `${image}: the base's layer and the build's`)
      assert.equal(m.layers[0].digest, baseLayer, `${image} starts from the local base`)
      const files = await imageFiles(ref, repo.root)
      assert.equal(files['etc-base.txt'], 'from the local base\n')
      assert.equal(files['app/hello.txt'], 'hello from the build\n')
    }
    assert.match(r.stderr, /pushing the local base oci:bases\/base-oci to .*\/nsops-base\/base-oci:/)
    assert.match(r.stderr, /pushing the local base tarball:bases\/base\.tar to .*\/nsops-base\/base-tar:/)
  })

  it('binary on scratch: one layer, only the build files, the platform and cmd set', async () => {
    const r = await build('scratch-demo')
    assert.equal(r.code, 0, r.stderr)
    const ref = refOf(r.stdout + r.stderr, 'scratch-demo')
    const m = JSON.parse((await crane(['manifest', ref])).stdout) as Manifest
    assert.equal(m.layers.length, 1)
    assert.deepEqual(
      Object.keys(await imageFiles(ref, repo.root)).sort(),
      ['app', 'app/hello.txt'], // nothing but the build's file and its folder
    )
    const config = JSON.parse((await crane(['config', ref])).stdout) as {
      os: string
      architecture: string
      config: { Cmd?: string[] }
    }
    assert.equal(config.os, 'linux')
    assert.deepEqual(config.config.Cmd, ['/app/hello.txt'])
  })

  it("ko: logdemo's main package onto scratch, offline (ko's own default base would need the internet)", async () => {
    const r = await build('ko-demo')
    assert.equal(r.code, 0, r.stderr)
    const ref = refOf(r.stdout + r.stderr, 'ko-demo')
    const files = await imageFiles(ref, repo.root)
    assert.ok(
      files['/ko-app/logdemo'] ?? files['ko-app/logdemo'],
      `the binary at /ko-app/logdemo: ${Object.keys(files).join(', ')}`,
    )
    const config = JSON.parse((await crane(['config', ref])).stdout) as { config: { Entrypoint?: string[] } }
    assert.deepEqual(config.config.Entrypoint, ['/ko-app/logdemo'])
  })
})
