// Dry runs kept between drift runs. A server-side dry run answers with a function of what is
// sent (the object, the field manager, force), the live object as it is (its uid and
// resourceVersion: any write to it moves the version), how the server defaults that kind (its
// OpenAPI schema: `/openapi/v3` names each group-version's document by a content hash, a CRD's
// included, and an API server upgrade changes them) and what mutating admission does to it.
//
// - Mutating admission is only known for certain when nothing mutates the kind: an object any
//   mutating webhook or mutating admission policy could match (by its rules' groups, resources
//   and operations; selectors ignored) is always asked again, since a webhook's answer can
//   change with no change the API shows (a Kyverno policy edited).
// - The server acts on a changed schema or admission configuration a moment after the API
//   shows it (a deleted policy still mutated dry runs for over a second on the sim), so an
//   answer is only kept or reused under a schema hash and admission configuration that have
//   not changed for SETTLE_MS: the first runs after a change ask everything.
// - A refused dry run is never kept, nor a Secret's (its values).
// - When a part of the key cannot be read (no /openapi/v3, admission configuration we may not
//   list), nothing is kept or reused. NSOPS_DRIFT_CACHE=0 (or NSOPS_BUILD_CACHE=0) turns it off.
//
// With all that, a repeat drift of a namespace nothing changed in asks the server for none of
// its dry runs: they are what a fresh `just drift` mostly waits on (bench/drift.bench.ts).
import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import {
  aggregatedDiscovery,
  groupVersionPath,
  resourceFor,
  resourcePath,
  rest,
  type LiveObject,
} from '../kube/rest.ts'
import type { Kube } from '../kube/client.ts'
import type { ManifestObject } from '../kube/refs.ts'
import { cacheDir } from '../core/paths.ts'
import { writePrivateFile } from '../core/private-files.ts'
import { buildCacheEnabled } from '../kustomize/build-cache.ts'

/** What a dry run answered, without the server's own fields (stripNoise): git's side of a compare. */
export type Answer = Record<string, unknown>

export interface DryRunOptions {
  fieldManager: string
  force: boolean
}

const ADMISSION_GROUP = 'admissionregistration.k8s.io'

interface ServerState {
  /** OpenAPI document URL (with its hash) per group-version path, e.g. `apis/apps/v1` */
  schemas: Record<string, string>
  /** what mutating admission may act on */
  mutated: AdmissionRule[]
  /** every mutating admission configuration, as kind/name@resourceVersion */
  admission: string
}

/** A mutating webhook's or policy's rule, as far as telling whether it may touch a kind goes. */
interface AdmissionRule {
  apiGroups?: string[]
  resources?: string[]
  operations?: string[]
}

/** How long a schema hash and the admission configuration stay unchanged before answers under them are kept. */
const SETTLE_MS = 10_000

/** The file: when each server state (schema hash and admission configuration) was first seen, and the answers. */
interface Kept {
  seen: Record<string, number>
  answers: Record<string, Answer>
}

/** The dry runs of one namespace on one cluster, in one file. */
export class DryRunCache {
  private readonly file: string
  private readonly state: Promise<ServerState | undefined>
  private readonly kept: Promise<Kept>
  /** what the file holds after this run: the states seen and the answers used or made in it */
  private readonly next: Kept = { seen: {}, answers: {} }
  private changed = false

  /** Starts reading what the key needs (three or four requests) and the file, in the background. */
  constructor(
    private readonly kube: Kube,
    namespace: string,
  ) {
    const id = crypto.createHash('sha256').update(`${kube.server} ${namespace}`).digest('hex').slice(0, 32)
    this.file = path.join(cacheDir(), 'drift-dry-runs', `${id}.json`)
    this.state = buildCacheEnabled() ? serverState(kube).catch(() => undefined) : Promise.resolve(undefined)
    this.kept = this.state.then((s) => (s ? readKept(this.file) : { seen: {}, answers: {} }))
  }

  /** The key of a dry run of `obj` against `live`, when its answer may be kept and reused now. */
  private async key(obj: ManifestObject, live: LiveObject, opts: DryRunOptions): Promise<string | undefined> {
    if (obj.kind === 'Secret' || !live.metadata.uid || !live.metadata.resourceVersion) return undefined
    const state = await this.state
    const schema = state?.schemas[groupVersionPath(obj.apiVersion).slice(1)]
    if (!state || !schema) return undefined
    const resource = await resourceFor(this.kube, obj.apiVersion, obj.kind)
    if (!resource || state.mutated.some((r) => mayMutate(r, obj.apiVersion, resource.name))) return undefined
    const server = `${schema} ${state.admission}`
    const { seen } = await this.kept
    const since = seen[server] ?? this.next.seen[server] ?? Date.now()
    if (this.next.seen[server] === undefined) {
      this.next.seen[server] = since
      if (seen[server] === undefined) this.changed = true
    }
    if (Date.now() - since < SETTLE_MS) return undefined
    return crypto
      .createHash('sha256')
      .update(
        JSON.stringify([obj, opts.fieldManager, opts.force, live.metadata.uid, live.metadata.resourceVersion, server]),
      )
      .digest('hex')
      .slice(0, 32)
  }

  /** The answer a dry run of `obj` against `live` gave before, when nothing it depends on changed. */
  async get(obj: ManifestObject, live: LiveObject, opts: DryRunOptions): Promise<Answer | undefined> {
    const key = await this.key(obj, live, opts)
    if (!key) return undefined
    const hit = (await this.kept).answers[key]
    if (!hit) return undefined
    this.next.answers[key] = hit
    // the caller cuts ignored fields out of its copy
    return structuredClone(hit)
  }

  /** Keeps the answer a dry run of `obj` against `live` (as the dry run saw it) gave. */
  async put(obj: ManifestObject, live: LiveObject, opts: DryRunOptions, answer: Answer): Promise<void> {
    const key = await this.key(obj, live, opts)
    if (!key) return
    this.next.answers[key] = structuredClone(answer)
    this.changed = true
  }

  /**
   * Writes what this run saw and used (only that: what the namespace no longer has drops out),
   * when it differs. A cache that cannot be written only makes the next run slower.
   */
  async save(): Promise<void> {
    if (!this.changed || !(await this.state)) return
    try {
      const tmp = `${this.file}.${process.pid}.tmp`
      writePrivateFile(tmp, JSON.stringify(this.next))
      fs.renameSync(tmp, this.file)
    } catch {
      /* only slower */
    }
  }
}

function readKept(file: string): Kept {
  try {
    const data = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<Kept>
    return { seen: data.seen ?? {}, answers: data.answers ?? {} }
  } catch {
    return { seen: {}, answers: {} }
  }
}

async function serverState(kube: Kube): Promise<ServerState | undefined> {
  const [index, admission] = await Promise.all([
    rest<{ paths?: Record<string, { serverRelativeURL?: string }> }>(kube, 'GET', '/openapi/v3'),
    mutatingAdmission(kube),
  ])
  if (!index.paths || !admission) return undefined
  const schemas: Record<string, string> = {}
  for (const [gv, p] of Object.entries(index.paths)) if (p.serverRelativeURL) schemas[gv] = p.serverRelativeURL
  return { schemas, ...admission }
}

interface AdmissionObject extends LiveObject {
  /** MutatingWebhookConfiguration */
  webhooks?: { rules?: AdmissionRule[] }[]
  /** MutatingAdmissionPolicy */
  spec?: { matchConstraints?: { resourceRules?: AdmissionRule[] } }
}

/**
 * Every mutating admission configuration the server has (MutatingWebhookConfiguration, and
 * MutatingAdmissionPolicy and its bindings where served, in whichever version serves each):
 * their rules and one string naming them all; undefined when discovery or a list cannot be had.
 */
async function mutatingAdmission(kube: Kube): Promise<Omit<ServerState, 'schemas'> | undefined> {
  const discovery = await aggregatedDiscovery(kube, { reuse: true })
  if (!discovery) return undefined
  const kinds = new Map<string, { apiVersion: string; resource: { name: string; namespaced: boolean } }>()
  for (const g of discovery.groups)
    for (const v of g.versions) {
      if (!v.apiVersion.startsWith(`${ADMISSION_GROUP}/`)) continue
      for (const r of v.resources)
        if (r.kind.startsWith('Mutating') && (r.verbs ?? []).includes('list') && !kinds.has(r.kind))
          kinds.set(r.kind, { apiVersion: v.apiVersion, resource: r })
    }
  const mutated: AdmissionRule[] = []
  const names: string[] = []
  await Promise.all(
    [...kinds].map(async ([kind, { apiVersion, resource }]) => {
      const list = await rest<{ items?: AdmissionObject[] }>(kube, 'GET', resourcePath(apiVersion, resource))
      for (const o of list.items ?? []) {
        names.push(`${kind}/${o.metadata.name}@${o.metadata.resourceVersion}`)
        for (const w of o.webhooks ?? []) mutated.push(...(w.rules ?? [{}]))
        // a webhook or policy without rules is taken as matching everything; bindings only narrow
        if (kind === 'MutatingAdmissionPolicy') mutated.push(...(o.spec?.matchConstraints?.resourceRules ?? [{}]))
      }
    }),
  )
  return { mutated, admission: names.sort().join(' ') }
}

/** Whether a rule may match an update of the kind `resource` of `apiVersion` serves (a rule without a field matches all). */
function mayMutate(rule: AdmissionRule, apiVersion: string, resource: string): boolean {
  const group = apiVersion.includes('/') ? apiVersion.split('/')[0] : ''
  const any = (list: string[] | undefined, ...values: string[]) =>
    list === undefined || list.some((x) => x === '*' || values.includes(x))
  return (
    any(rule.apiGroups, group) &&
    any(rule.resources, resource, `${resource}/*`, '*/*') &&
    any(rule.operations, 'UPDATE')
  )
}
