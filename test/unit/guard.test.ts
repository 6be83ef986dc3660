import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { describe, it } from 'node:test'
import { NsopsError } from '../../shared/core/errors.ts'
import { allowedContexts, guardContext, isAllowedContext } from '../../shared/kube/guard.ts'

describe('context guard', () => {
  it('allows known local contexts', () => {
    for (const ctx of [
      'nsops-sim',
      'kind-dev',
      'k3d-nsops',
      'docker-desktop',
      'minikube',
      'rancher-desktop',
      'orbstack',
    ]) {
      assert.ok(isAllowedContext(ctx, []), ctx)
    }
  })

  it('refuses anything else, naming the context, its server and how to allow it', () => {
    assert.equal(isAllowedContext('kubernetes-admin@talos00', []), false)
    assert.equal(isAllowedContext('kindly-prod', []), false) // a prefix match needs the dash
    assert.throws(
      () => guardContext('admin@prod', 'https://10.0.0.5:6443', 'apply the dev overlay', []),
      (err: unknown) => {
        assert.ok(err instanceof NsopsError)
        assert.match(err.message, /admin@prod.*https:\/\/10\.0\.0\.5:6443.*might be production/)
        assert.match(err.hint ?? '', /allowed-contexts\.yaml|NSOPS_ALLOW_CONTEXTS/)
        return true
      },
    )
  })

  it('allows contexts on the repo allow-list and from NSOPS_ALLOW_CONTEXTS', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-guard-'))
    const file = path.join(dir, 'allowed.yaml')
    fs.writeFileSync(file, 'contexts:\n  - homelab-dev\n')
    const saved = process.env.NSOPS_ALLOW_CONTEXTS
    process.env.NSOPS_ALLOW_CONTEXTS = 'staging-a, staging-b'
    try {
      const list = allowedContexts(file)
      assert.deepEqual(list, ['homelab-dev', 'staging-a', 'staging-b'])
      assert.doesNotThrow(() => guardContext('homelab-dev', 'https://x', 'apply', list))
      assert.throws(() => guardContext('homelab-prod', 'https://x', 'apply', list), /homelab-prod/)
    } finally {
      if (saved === undefined) delete process.env.NSOPS_ALLOW_CONTEXTS
      else process.env.NSOPS_ALLOW_CONTEXTS = saved
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})
