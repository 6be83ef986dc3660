// What kustomize-controller v1.9.5 honours on a live object (fluxcd/pkg/ssa v0.76.2
// shouldSkipApply: label or annotation, value case-insensitive) and what makes a
// `reconcile: disabled` ours (our field manager wrote it), without a cluster.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  annotationIsOurs,
  excludedFromFlux,
  HOLD_FIELD_MANAGER,
  RECONCILE_ANNOTATION,
  SSA_ANNOTATION,
} from '../../shared/flux/index.ts'

const managed = (manager: string) => ({
  manager,
  fieldsV1: { 'f:metadata': { 'f:annotations': { [`f:${RECONCILE_ANNOTATION}`]: {} } } },
})

describe('per-object Flux hold', () => {
  it('sees every exclusion kustomize-controller honours: reconcile disabled or ssa Ignore, annotation or label, any case', () => {
    assert.equal(excludedFromFlux({ metadata: {} }), undefined)
    assert.equal(
      excludedFromFlux({ metadata: { annotations: { [RECONCILE_ANNOTATION]: 'Disabled' } } }),
      `${RECONCILE_ANNOTATION}: Disabled`,
    )
    assert.equal(
      excludedFromFlux({ metadata: { labels: { [RECONCILE_ANNOTATION]: 'disabled' } } }),
      `${RECONCILE_ANNOTATION}: disabled`,
    )
    assert.equal(
      excludedFromFlux({ metadata: { annotations: { [SSA_ANNOTATION]: 'ignore' } } }),
      `${SSA_ANNOTATION}: ignore`,
    )
    assert.equal(
      excludedFromFlux({
        metadata: { annotations: { [SSA_ANNOTATION]: 'IfNotPresent', [RECONCILE_ANNOTATION]: 'enabled' } },
      }),
      undefined,
    )
  })

  it('calls the annotation ours only while our field manager wrote it last', () => {
    const ann = { [RECONCILE_ANNOTATION]: 'disabled' }
    assert.equal(
      annotationIsOurs({ metadata: { annotations: ann, managedFields: [managed(HOLD_FIELD_MANAGER)] } }),
      true,
    )
    // removed and set again with kubectl annotate: kubectl-annotate manages it now
    assert.equal(
      annotationIsOurs({ metadata: { annotations: ann, managedFields: [managed('kubectl-annotate')] } }),
      false,
    )
    assert.equal(
      annotationIsOurs({
        metadata: { annotations: { [RECONCILE_ANNOTATION]: 'Disabled' }, managedFields: [managed(HOLD_FIELD_MANAGER)] },
      }),
      false,
    )
    assert.equal(annotationIsOurs({ metadata: { managedFields: [managed(HOLD_FIELD_MANAGER)] } }), false)
  })
})
