// What a drift baseline build read besides the commit's folders, so that a kept build
// (kustomize/build-cache.ts) is used only while every one of them is as it was:
// - the cluster's objects it looked up (postBuild.substituteFrom's ConfigMaps, a HelmRelease's
//   chart source or valuesFrom that git does not hold), by uid and resourceVersion: any write
//   to one, or its deletion or creation, changes the stamp;
// - kustomize-controller's strict substitution, when the Kustomization substitutes;
// - the target each chart was rendered for (`.Capabilities`: the cluster's version and APIs);
// - each chart's digest, asked of its source the way a render asks (a pinned version from the
//   chart cache, a range from the source).
// What git holds (the HelmRelease, its values, a values ConfigMap beside it) is in the key
// already: the commit's tree ids. A build that read a Secret from the cluster is never kept,
// since what it built may carry the Secret's values and the cache is a file on disk.
import crypto from 'node:crypto'
import type { Kube } from '../kube/client.ts'
import type { ManifestObject } from '../kube/refs.ts'
import { getObject } from '../kube/rest.ts'
import { pullChart, type ChartSource } from '../helm/pull.ts'

/** One object the build looked up in the cluster, and its stamp then (null: it did not exist). */
export interface ObjectInput {
  apiVersion: string
  kind: string
  namespace: string
  name: string
  stamp: string | null
}

export interface BuildInputs {
  objects: ObjectInput[]
  /** kustomize-controller's strict substitution as the build asked it (absent: not asked) */
  strict?: boolean | null
  /** a hash of the render target (absent: nothing rendered) */
  target?: string
  /** each chart pulled from a source (not a folder of the tree), with the digest it resolved to */
  charts: { source: ChartSource; digest: string }[]
}

/** What `check` needs to ask again: the same functions the build used. */
export interface InputSources {
  strict(): Promise<boolean | undefined>
  target(): Promise<unknown>
}

const stampOf = (o: { metadata?: { uid?: string; resourceVersion?: string } } | undefined): string | null =>
  o ? `${o.metadata?.uid ?? ''}/${o.metadata?.resourceVersion ?? ''}` : null

export const targetHash = (target: unknown): string =>
  crypto.createHash('sha256').update(JSON.stringify(target)).digest('hex').slice(0, 32)

/** Collects the inputs while a baseline is built. */
export class InputRecorder {
  private readonly objects = new Map<string, ObjectInput>()
  private readonly charts = new Map<string, { source: ChartSource; digest: string }>()
  private strict?: boolean | null
  private target?: string
  /** a Secret came from the cluster: the build must not be written to disk */
  readSecret = false

  /** Wraps a lookup of cluster objects so that each answer is recorded. */
  looking<R extends { kind: string; namespace: string; name: string }>(
    apiVersionOf: (kind: string) => string | undefined,
    lookup: (ref: R) => Promise<ManifestObject | undefined>,
  ): (ref: R) => Promise<ManifestObject | undefined> {
    return async (ref) => {
      const o = await lookup(ref)
      if (o && ref.kind === 'Secret') this.readSecret = true
      const apiVersion = apiVersionOf(ref.kind)
      if (!apiVersion) return o // a kind the lookup never asks the cluster for
      const input = { apiVersion, kind: ref.kind, namespace: ref.namespace, name: ref.name }
      this.objects.set(JSON.stringify(input), { ...input, stamp: stampOf(o) })
      return o
    }
  }

  sawStrict(strict: boolean | undefined): void {
    this.strict = strict ?? null
  }

  sawTarget(target: unknown): void {
    this.target = targetHash(target)
  }

  sawChart(source: ChartSource, digest: string): void {
    if (source.type !== 'dir') this.charts.set(JSON.stringify(source), { source, digest })
  }

  inputs(): BuildInputs {
    return {
      objects: [...this.objects.values()],
      ...(this.strict !== undefined ? { strict: this.strict } : {}),
      ...(this.target !== undefined ? { target: this.target } : {}),
      charts: [...this.charts.values()],
    }
  }
}

/** Whether every input is as it was when the build was kept; any doubt (a failed read) is a no. */
export async function inputsUnchanged(kube: Kube, inputs: BuildInputs, now: InputSources): Promise<boolean> {
  const checks: Promise<boolean>[] = [
    ...inputs.objects.map(
      async (o) =>
        stampOf(
          await getObject(kube, { apiVersion: o.apiVersion, kind: o.kind, namespace: o.namespace, name: o.name }),
        ) === o.stamp,
    ),
    ...inputs.charts.map(
      async (c) => (await pullChart(c.source, 'a kept drift baseline', { offline: false })).digest === c.digest,
    ),
  ]
  if (inputs.strict !== undefined) checks.push(now.strict().then((s) => (s ?? null) === inputs.strict))
  if (inputs.target !== undefined) checks.push(now.target().then((t) => targetHash(t) === inputs.target))
  try {
    return (await Promise.all(checks)).every(Boolean)
  } catch {
    return false
  }
}
