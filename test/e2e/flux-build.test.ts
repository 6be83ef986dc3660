// The headline case through the user's door (`npx just …` in a clone of this repo):
// arr-stack's Flux Kustomization gets postBuild.substitute { SONARR_TZ: Europe/Berlin }, the
// prod overlay a configMapGenerator with TZ=${SONARR_TZ:=Etc/UTC} and a patch with
// replicas: ${SONARR_REPLICAS:=1}. Flux applies that without complaint; so must validate,
// ci diff and render, with the values Flux applies (the builder equals the controller: see
// test/integration/flux-build-matrix.test.ts). An unset variable fails naming the
// Kustomization and the variable.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { after, before, describe, it } from 'node:test'
import YAML from 'yaml'
import { ciRepo, type CiRepo } from '../ci-fixture.ts'
import { git } from '../git-fixture.ts'

const run = promisify(execFile)

async function just(work: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, CI: '1', NO_COLOR: '1' }
  for (const k of Object.keys(env)) if (k.startsWith('NSOPS_') || k.startsWith('GITHUB_')) delete env[k]
  delete env.NODE_OPTIONS
  try {
    const { stdout, stderr } = await run('npx', ['just', ...args], {
      cwd: work,
      env,
      maxBuffer: 64 << 20,
      timeout: 300_000,
    })
    return { code: 0, stdout, stderr }
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string }
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }
  }
}

const KS = 'k8s/flux/arr-stack.yaml'
const PROD = 'namespaces/arr-stack/overlays/prod/kustomization.yaml'

function headline(work: string, extraLiteral = ''): void {
  fs.appendFileSync(path.join(work, KS), '  postBuild:\n    substitute:\n      SONARR_TZ: Europe/Berlin\n')
  fs.appendFileSync(
    path.join(work, PROD),
    `configMapGenerator:
  - name: sonarr-env
    literals:
      - TZ=\${SONARR_TZ:=Etc/UTC}${extraLiteral}
patches:
  - target: { kind: Deployment, name: sonarr }
    patch: |
      apiVersion: apps/v1
      kind: Deployment
      metadata: { name: sonarr }
      spec:
        replicas: \${SONARR_REPLICAS:=1}
`,
  )
}

describe('post-build substitution through just validate, just ci diff and just render (the issue headline)', () => {
  let r: CiRepo
  before(() => {
    r = ciRepo()
  })
  after(() => fs.rmSync(r.root, { recursive: true, force: true }))

  it('validates, renders and diffs what Flux applies: TZ Europe/Berlin, replicas 1, the generated name Flux creates', async () => {
    headline(r.work)
    git(r.work, 'commit', '-qam', 'sonarr: TZ and replicas from Flux variables')

    const v = await just(r.work, ['validate', 'arr-stack', '--offline'])
    assert.equal(v.code, 0, v.stderr)
    assert.match(
      v.stderr,
      /arr-stack: Flux Kustomization flux-system\/arr-stack \(k8s\/flux\/arr-stack\.yaml\) builds \(\d+ objects\); all \d+ objects pass strict schema validation/,
    )

    const rendered = await just(r.work, ['render', 'arr-stack'])
    assert.equal(rendered.code, 0, rendered.stderr)
    const objects = YAML.parseAllDocuments(rendered.stdout).map((d) => d.toJS()) as {
      kind: string
      metadata: { name: string; namespace?: string }
      data?: Record<string, string>
      spec?: { replicas?: unknown }
    }[]
    const env = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('sonarr-env-'))
    assert.ok(env, 'the generated ConfigMap')
    assert.equal(env.data?.TZ, 'Europe/Berlin')
    assert.equal(env.metadata.namespace, 'arr-stack')
    const sonarr = objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'sonarr')
    assert.equal(sonarr?.spec?.replicas, 1, 'an integer, as Flux applies it')

    const d = await just(r.work, ['ci', 'diff', '--out', r.out])
    assert.equal(d.code, 0, d.stderr)
    const json = JSON.parse(fs.readFileSync(path.join(r.out, 'diff.json'), 'utf8')) as {
      namespaces: {
        name: string
        error?: string
        objects: { action: string; ref: { kind: string; name: string }; diff?: string }[]
      }[]
    }
    const arr = json.namespaces.find((n) => n.name === 'arr-stack')!
    assert.equal(arr.error, undefined)
    const added = arr.objects.find((o) => o.ref.kind === 'ConfigMap' && o.ref.name.startsWith('sonarr-env-'))
    assert.equal(added?.action, 'create')
    assert.equal(added?.ref.name, env.metadata.name, 'the name Flux creates (hashed before substitution)')
    assert.match(added?.diff ?? '', /TZ: Europe\/Berlin/)
    assert.doesNotMatch(JSON.stringify(json), /\$\{SONARR/, 'no variable left unsubstituted')
  })

  it('an unset variable (strict, the controller default) fails validate naming the Kustomization and the variable', async () => {
    git(r.work, 'reset', '-q', '--hard', 'origin/main')
    headline(r.work, '\n      - MODE=${SONARR_MODE}')
    const v = await just(r.work, ['validate', 'arr-stack', '--offline'])
    assert.equal(v.code, 1, v.stderr)
    assert.match(
      v.stderr,
      /arr-stack: Flux Kustomization flux-system\/arr-stack \(k8s\/flux\/arr-stack\.yaml\): variable SONARR_MODE is not set in ConfigMap sonarr-env-\w+/,
    )
    assert.match(v.stderr, /hint: Set SONARR_MODE in spec\.postBuild\.substitute/)
    assert.doesNotMatch(v.stderr, /at .*\.ts:\d+/, 'no stack without --debug')
  })
})
