// The plaintext-Secret guard judges every Secret as kustomize builds it, each traced to its
// file by kustomize's origin annotations — real kustomize on small trees in a git repo: a
// patch (JSON6902 or strategic merge) that adds stringData in clear to a SOPS-encrypted
// Secret is caught, a plaintext Secret in a non-YAML file listed under resources is caught and
// named by its own file even beside an encrypted Secret whose name it contains, and what is
// encrypted (a Secret file, a generator over an encrypted file) passes.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, describe, it } from 'node:test'
import { findPlaintextSecrets } from '../../shared/deploy/secrets.ts'
import { buildKustomization } from '../../shared/kustomize/build.ts'
import { commitAll, seedRepo, write } from '../git-fixture.ts'

const NS = 'namespaces/shop'
const ENC = 'ENC[AES256_GCM,data:q83vAw==,iv:YWJj,tag:ZGVm,type:str]'
const sopsBlock = `sops:\n  mac: ${ENC}\n  lastmodified: "2025-01-01T00:00:00Z"\n  version: 3.9.4\n`
const encryptedSecret = (name: string) =>
  `apiVersion: v1\nkind: Secret\nmetadata:\n  name: ${name}\ntype: Opaque\ndata:\n  password: ${ENC}\n${sopsBlock}`

describe('the plaintext-Secret guard on the built overlay', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-secrets-built-'))
  after(() => fs.rmSync(tmp, { recursive: true, force: true }))
  let n = 0

  /** A repo with the namespace's files; returns what the guard finds for its prod overlay. */
  async function guard(files: Record<string, string>) {
    const dir = path.join(tmp, `repo-${++n}`)
    fs.mkdirSync(dir)
    seedRepo(dir, { 'README.md': 'x\n' })
    for (const [f, text] of Object.entries(files)) write(dir, `${NS}/${f}`, text)
    commitAll(dir, 'namespace')
    const overlay = path.join(dir, NS, 'overlays/prod')
    const built = await buildKustomization(overlay)
    return findPlaintextSecrets(dir, NS, built, overlay)
  }

  it('passes a SOPS-encrypted Secret and a generator over a SOPS-encrypted file', async () => {
    const found = await guard({
      'base/kustomization.yaml':
        'resources: [secret.yaml]\nsecretGenerator:\n  - name: tls\n    files: [cert.enc.yaml]\n',
      'base/secret.yaml': encryptedSecret('app'),
      'base/cert.enc.yaml': `cert: ${ENC}\n${sopsBlock}`,
      'overlays/prod/kustomization.yaml': 'resources: [../../base]\n',
    })
    assert.deepEqual(found, [])
  })

  it('catches a JSON6902 patch that adds stringData in clear to a SOPS-encrypted Secret', async () => {
    const found = await guard({
      'base/kustomization.yaml': 'resources: [secret.yaml]\n',
      'base/secret.yaml': encryptedSecret('app'),
      'overlays/prod/kustomization.yaml': `resources: [../../base]
patches:
  - target: { kind: Secret, name: app }
    patch: |-
      - op: add
        path: /stringData
        value: { password: hunter2 }
`,
    })
    assert.equal(found.length, 1, JSON.stringify(found))
    assert.equal(found[0].secret, 'app')
    assert.equal(found[0].file, `${NS}/base/secret.yaml`)
    assert.equal(found[0].line, 1)
    assert.match(
      found[0].why,
      /stringData\.password is not encrypted: the file is encrypted, so a patch in the overlay adds it in clear/,
    )
  })

  it('catches a strategic-merge patch file that adds stringData in clear', async () => {
    const found = await guard({
      'base/kustomization.yaml': 'resources: [secret.yaml]\n',
      'base/secret.yaml': encryptedSecret('app'),
      'overlays/prod/kustomization.yaml': 'resources: [../../base]\npatches:\n  - path: add-token.yaml\n',
      'overlays/prod/add-token.yaml':
        'apiVersion: v1\nkind: Secret\nmetadata:\n  name: app\nstringData:\n  token: clear\n',
    })
    // the patch file itself is a plaintext Secret document, and the built Secret holds its value
    assert.deepEqual(
      found.map((f) => f.file),
      [`${NS}/overlays/prod/add-token.yaml`, `${NS}/base/secret.yaml`],
      JSON.stringify(found),
    )
    assert.match(found[1].why, /stringData\.token is not encrypted: the file is encrypted, so a patch/)
  })

  it('catches a plaintext Secret in a non-YAML file under resources, named by its file, beside an encrypted Secret whose name it contains', async () => {
    const found = await guard({
      'base/kustomization.yaml': 'resources: [secret.yaml, token.txt]\n',
      'base/secret.yaml': encryptedSecret('app'),
      'base/token.txt': 'apiVersion: v1\nkind: Secret\nmetadata:\n  name: app-token\nstringData:\n  token: clear\n',
      'overlays/prod/kustomization.yaml': 'resources: [../../base]\nnamePrefix: prod-\n',
    })
    assert.deepEqual(
      found.map((f) => [f.secret, f.file, f.line]),
      [['app-token', `${NS}/base/token.txt`, 1]],
    )
    assert.match(found[0].why, /not SOPS-encrypted/)
  })

  it('catches a patch that adds stringData to a Secret a generator made', async () => {
    const found = await guard({
      'base/kustomization.yaml': 'secretGenerator:\n  - name: tls\n    files: [cert.enc.yaml]\n',
      'base/cert.enc.yaml': `cert: ${ENC}\n${sopsBlock}`,
      'overlays/prod/kustomization.yaml': `resources: [../../base]
patches:
  - target: { kind: Secret }
    patch: |-
      - op: add
        path: /stringData
        value: { extra: clear }
`,
    })
    assert.equal(found.length, 1, JSON.stringify(found))
    assert.equal(found[0].file, `${NS}/base/kustomization.yaml`)
    assert.match(found[0].why, /stringData\.extra is in clear/)
  })
})
