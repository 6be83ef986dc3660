// Flux for one namespace: install the CRDs, find what manages the namespace, hold it (a
// suspension, or per object) with an ownership marker, reconcile and wait, and summarise their status.
export { installFluxCrds, fluxCrdBundle, CRD_LABEL, type FluxCrdInstall, type FluxCrdBundle } from './crds.ts'
export { fluxKinds, fluxRefString, fluxRefOf, getFlux, conditionOf, isSuspended, FLUX_FIELD_MANAGER, type FluxKind, type FluxRef, type FluxObject } from './kinds.ts'
export { findManagers, manages, inventoryRefs, pathBuilds, ROOT_KUSTOMIZATION, type Manager, type FluxManagement, type ManagedScope } from './managing.ts'
export {
  suspendFor, resumeOwned, refreshOwned, takeOverStale, keepOwned, findKeptSuspensions, untouchedSince, findStaleSuspensions, resumeStale, currentOwner, staleReason, markerOf, parseMarker, isOwner, describeSuspension,
  suspendedBy, SUSPENDED_BY, MARKER_MAX_AGE_MS,
  type SuspensionOwner, type SuspensionMarker, type SuspendedBy, type SuspendResult, type ResumeResult, type StaleSuspension, type StaleOptions,
} from './suspend.ts'
export {
  holdObjects, releaseObjects, refreshObjects, findObjectHolds, releaseFound, requestReconcile, excludedFromFlux, annotationIsOurs,
  RECONCILE_ANNOTATION, SSA_ANNOTATION, HELD_BY, HOLD_LABEL, HOLD_FIELD_MANAGER,
  type ObjectHoldResult, type ObjectReleaseResult, type HeldObject,
} from './object-hold.ts'
export { reconcile, reconcileSource, revisionMatches, requestToken, handledSince, REQUESTED_AT, type ReconcileOptions, type ReconcileResult } from './reconcile.ts'
export { fluxStatus, summarizeFlux, sourceOf, type FluxStatusRow } from './status.ts'
export { readyIsCurrent, isReadyNow, stalledFailure, retryingFailure, fetchFailure, isSourceKind, type Readiness } from './readiness.ts'
