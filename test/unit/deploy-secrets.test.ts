// Which Secrets count as plaintext: SOPS-encrypted means a top-level `sops:` block and every
// value ENC[…]; a Secret without values leaks nothing.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { isSopsFile, isSopsSecret, plaintextReason } from '../../shared/deploy/secrets.ts'

const ENC = 'ENC[AES256_GCM,data:q83vAw==,iv:YWJj,tag:ZGVm,type:str]'
const sops = { mac: ENC, lastmodified: '2025-01-01T00:00:00Z', version: '3.9.4' }
const secret = (fields: Record<string, unknown>) => ({
  apiVersion: 'v1',
  kind: 'Secret',
  metadata: { name: 'db' },
  ...fields,
})

describe('deploy: plaintext Secrets', () => {
  it('calls a Secret with values and no sops block plaintext', () => {
    assert.match(plaintextReason(secret({ stringData: { password: 'hunter2' } }))!, /not SOPS-encrypted/)
    assert.match(plaintextReason(secret({ data: { password: 'aHVudGVyMg==' } }))!, /no top-level `sops:` block/)
  })

  it('accepts a Secret whose every value is ENC[…] under a sops block', () => {
    assert.equal(plaintextReason(secret({ data: { password: ENC, user: ENC }, sops })), undefined)
    assert.equal(isSopsSecret(secret({ data: { password: ENC }, sops })), true)
  })

  it('names the values a partial encryption left in clear (encrypted_regex)', () => {
    assert.equal(
      plaintextReason(secret({ data: { password: ENC }, stringData: { user: 'admin' }, sops })),
      'stringData.user is not encrypted (not ENC[…]; check encrypted_regex in .sops.yaml)',
    )
  })

  it('lets a Secret without values through: it holds nothing to leak', () => {
    assert.equal(plaintextReason(secret({ type: 'kubernetes.io/service-account-token' })), undefined)
    assert.equal(isSopsSecret(secret({ data: { a: 'b' } })), false)
  })

  it('recognises SOPS-encrypted files in YAML, JSON and dotenv form', () => {
    assert.equal(isSopsFile(`password: ${ENC}\nsops:\n  version: 3.9.4\n`), true)
    assert.equal(isSopsFile(JSON.stringify({ password: ENC, sops: { version: '3.9.4' } })), true)
    assert.equal(isSopsFile(`PASSWORD=${ENC}\nsops_version=3.9.4\nsops_mac=${ENC}\n`), true)
    assert.equal(isSopsFile('PASSWORD=hunter2\n'), false)
    assert.equal(isSopsFile(`note: ${ENC} is what sops writes\n`), false, 'ENC[…] alone is not a sops file')
  })
})
