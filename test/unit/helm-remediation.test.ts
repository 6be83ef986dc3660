// Whether helm-controller v1.4.0 rolls a failed upgrade back, read from a HelmRelease's spec as
// its api/v2 UpgradeRemediation does (MustRemediateLastFailure: the field, else retries > 0;
// GetStrategy: rollback unless set; RetriesExhausted never with negative retries; no
// remediation at all under upgrade.strategy RetryOnFailure), and deploy's one warning line per
// HelmRelease that it leaves failed (the revert could not undo it in time).
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { failedUpgradeRemediation } from '../../shared/flux/helm-release.ts'
import { remediationWarnings } from '../../shared/deploy/releases.ts'

const rollsBack = (spec: Parameters<typeof failedUpgradeRemediation>[0]) => failedUpgradeRemediation(spec).rollback

describe('helm-controller v1.4.0 rolls a failed upgrade back', () => {
  it('not by default: retries 0, remediateLastFailure false', () => {
    assert.equal(rollsBack(undefined), false)
    assert.equal(rollsBack({ upgrade: {} }), false)
    assert.equal(rollsBack({ upgrade: { remediation: { retries: 0 } } }), false)
  })
  it('with remediateLastFailure: true (strategy rollback by default)', () => {
    assert.equal(rollsBack({ upgrade: { remediation: { remediateLastFailure: true } } }), true)
    assert.equal(rollsBack({ upgrade: { remediation: { retries: 0, remediateLastFailure: true } } }), true)
  })
  it('with retries > 0, whose remediateLastFailure defaults to true, unless it is set false', () => {
    assert.equal(rollsBack({ upgrade: { remediation: { retries: 3 } } }), true)
    assert.equal(rollsBack({ upgrade: { remediation: { retries: 3, remediateLastFailure: false } } }), false)
  })
  it('with negative retries (unlimited: every failure is remediated)', () => {
    assert.equal(rollsBack({ upgrade: { remediation: { retries: -1 } } }), true)
  })
  it('not with strategy uninstall, nor under upgrade.strategy RetryOnFailure', () => {
    const un = failedUpgradeRemediation({
      upgrade: { remediation: { remediateLastFailure: true, strategy: 'uninstall' } },
    })
    assert.deepEqual([un.rollback, un.instead], [false, 'upgrade.remediation.strategy uninstall uninstalls it instead'])
    assert.equal(
      rollsBack({ upgrade: { strategy: { name: 'RetryOnFailure' }, remediation: { remediateLastFailure: true } } }),
      false,
    )
    assert.equal(
      rollsBack({ upgrade: { strategy: { name: 'RemediateOnFailure' }, remediation: { retries: 1 } } }),
      true,
    )
  })
  it("the timeout the revert would wait out: upgrade.timeout, else spec.timeout, else helm-controller's 5m0s", () => {
    assert.equal(failedUpgradeRemediation({}).timeout, '5m0s')
    assert.equal(failedUpgradeRemediation({ timeout: '20s' }).timeout, '20s')
    assert.equal(failedUpgradeRemediation({ timeout: '20s', upgrade: { timeout: '1m' } }).timeout, '1m')
  })
})

describe("deploy's warning for a HelmRelease whose failed upgrade stays failed", () => {
  const release = (name: string, spec: Record<string, unknown>) => ({
    id: `media/${name}`,
    file: `namespaces/media/base/${name}.yaml`,
    release: { apiVersion: 'helm.toolkit.fluxcd.io/v2', kind: 'HelmRelease', metadata: { name }, spec },
  })
  it('one line per such release, naming it and its file, the timeout and the fix', () => {
    const lines = remediationWarnings([
      release('sonarr', { interval: '1h', timeout: '10m' }),
      release('radarr', { upgrade: { remediation: { remediateLastFailure: true } } }),
    ])
    assert.deepEqual(lines, [
      'HelmRelease media/sonarr (namespaces/media/base/sonarr.yaml): helm-controller does not roll back a failed upgrade of it (no upgrade.remediation.remediateLastFailure: true): the release stays failed, and the revert of a failed deploy waits out its 10m timeout; set upgrade.remediation.remediateLastFailure: true (README, deploy.ts step 6)',
    ])
  })
})
