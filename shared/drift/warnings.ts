// Changes a re-apply cannot make: the API server refuses to change immutable fields (the
// apply fails, or with the Kustomization's `spec.force: true` Flux deletes and recreates the
// object), and a PersistentVolumeClaim never shrinks. Flagged per changed field, so a reader
// knows before resuming Flux that this one will not simply be put back.
import type { ObjectRef } from '../kube/refs.ts'
import { under, type FieldChange } from './fields.ts'

const IMMUTABLE: Record<string, string[]> = {
  Deployment: ['/spec/selector'],
  DaemonSet: ['/spec/selector'],
  ReplicaSet: ['/spec/selector'],
  StatefulSet: ['/spec/selector', '/spec/volumeClaimTemplates', '/spec/serviceName', '/spec/podManagementPolicy'],
  Job: ['/spec/template', '/spec/selector', '/spec/completions'],
  Service: ['/spec/clusterIP', '/spec/clusterIPs'],
}

const BINARY: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 }
const DECIMAL: Record<string, number> = {
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
}

/** A Kubernetes quantity (`10Gi`, `500M`, `1.5`, `2e3`) as a number, or undefined. */
export function parseQuantity(q: unknown): number | undefined {
  if (typeof q === 'number') return q
  if (typeof q !== 'string') return undefined
  const m = /^([+-]?(?:\d+\.?\d*|\.\d+))(?:(Ki|Mi|Gi|Ti|Pi|Ei)|([eE][+-]?\d+)|(n|u|m|k|M|G|T|P|E)?)$/.exec(q.trim())
  if (!m) return undefined
  const n = Number(m[1])
  if (m[2]) return n * BINARY[m[2]]
  if (m[3]) return Number(`${m[1]}${m[3]}`)
  return n * DECIMAL[m[4] ?? '']
}

export function immutableWarnings(ref: ObjectRef, changes: FieldChange[]): string[] {
  const out: string[] = []
  for (const prefix of IMMUTABLE[ref.kind] ?? []) {
    const hit = changes.filter((ch) => under(ch.path, prefix) && ch.live !== undefined)
    if (hit.length)
      out.push(
        `${prefix} is immutable: a re-apply cannot change it (Flux fails, or with spec.force deletes and recreates ${ref.kind}/${ref.name})`,
      )
  }
  if (ref.kind === 'PersistentVolumeClaim') {
    const size = changes.find((ch) => ch.path === '/spec/resources/requests/storage')
    const git = parseQuantity(size?.git)
    const live = parseQuantity(size?.live)
    if (git !== undefined && live !== undefined && git < live) {
      out.push(
        `git asks for ${String(size!.git)} but the claim is ${String(size!.live)}: a PersistentVolumeClaim cannot shrink, so the apply will fail`,
      )
    }
  }
  return out
}
