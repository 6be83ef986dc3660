// The dashboard's Flux block: the namespace's own Kustomization(s) and HelmReleases, who
// suspended them, what they applied compared with git HEAD, and stale suspensions or
// per-object holds.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import type { Kube } from '../kube/client.ts'
import type { NamespaceConfig } from '../config/namespace-config.ts'
import { repoRoot } from '../core/paths.ts'
import { findManagers } from '../flux/managing.ts'
import { findObjectHolds } from '../flux/object-hold.ts'
import { fluxStatus } from '../flux/status.ts'

export interface FluxRow {
  kind: string
  name: string
  namespace: string
  ready: 'True' | 'False' | 'Unknown'
  reason?: string
  message?: string
  suspended: boolean
  suspendedBy?: string
  lastAppliedRevision?: string
  gitHead?: string
  inSyncWithHead?: boolean
}

export interface FluxSection {
  objects: FluxRow[]
  stale: string[]
  problems: string[]
  note?: string
}

// one rev-parse, without loading simple-git on the dashboard's start-up path
async function gitHead(): Promise<string | undefined> {
  try {
    return (await promisify(execFile)('git', ['-C', repoRoot, 'rev-parse', 'HEAD'])).stdout.trim()
  } catch {
    return undefined
  }
}

export async function fluxSection(kube: Kube, ns: NamespaceConfig): Promise<FluxSection> {
  const headP = gitHead()
  // the same finder dev and deploy use: its own Kustomization, or the root that includes it
  const m = await findManagers(kube, ns)
  if (m.state !== 'managed') return { objects: [], stale: [], problems: [], note: m.note }
  const objects = [...m.managers.map((x) => x.kustomization), ...m.helmReleases]
  // per-object holds (kustomize.toolkit.fluxcd.io/reconcile: disabled) a dev loop left behind
  const [statuses, head, holds] = await Promise.all([
    fluxStatus(kube, objects),
    headP,
    findObjectHolds(kube, ns).catch(() => []),
  ])
  const rows: FluxRow[] = statuses.map((s) => {
    const applied = s.lastAppliedRevision
    const sha = applied?.split('sha1:')[1] ?? applied
    return {
      kind: s.kind,
      name: s.name,
      namespace: s.namespace,
      ready: s.ready,
      reason: s.reason,
      message: s.message,
      suspended: s.suspended,
      suspendedBy: s.suspended ? s.suspension : undefined,
      lastAppliedRevision: applied,
      gitHead: head,
      inSyncWithHead: head && sha ? head.startsWith(sha) || sha.startsWith(head) : undefined,
    }
  })
  const stale = [
    ...statuses
      .filter((s) => s.staleSuspension)
      .map((s) => `${s.kind}/${s.namespace}/${s.name} (${s.staleSuspension})`),
    ...holds
      .filter((h) => h.stale)
      .map(
        (h) => `${h.ref.kind}/${h.ref.namespace ? `${h.ref.namespace}/` : ''}${h.ref.name} held from Flux (${h.stale})`,
      ),
  ]
  const problems = [
    ...rows
      .filter((r) => !r.suspended && r.ready !== 'True')
      .map((r) => `Flux ${r.kind}/${r.name}: Ready=${r.ready} ${r.reason ?? ''}`.trim()),
    ...stale.map((r) => `stale Flux suspension: ${r}`),
  ]
  return { objects: rows, stale, problems }
}
