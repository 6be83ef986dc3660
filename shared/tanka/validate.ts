// `tk-validate`, as raibid-ci's CI job: the Jsonnet is formatted, every environment renders,
// the kinds it must hold are there (<root>/validate.yaml), and, when a cluster answers, the
// API server accepts every object in a server-side dry run.
import fs from 'node:fs'
import path from 'node:path'
import YAML from 'yaml'
import { applyObjects } from '../apply/apply.ts'
import { refString } from '../kube/refs.ts'
import { NsopsError, errorMessage } from '../core/errors.ts'
import type { Kube } from '../kube/client.ts'
import type { ManifestObject } from '../kustomize/build.ts'
import { TANKA_FIELD_MANAGER } from './apply.ts'
import { loadEnvironments, shown } from './environments.ts'
import { renderEnvironment, type Engine, type RenderOptions } from './render.ts'
import { formatJsonnet } from './renderer.ts'

export const VALIDATE_FILE = 'validate.yaml'

export interface Expectations {
  /** kinds that must appear at least once */
  kinds: string[]
  /** at least this many objects */
  minObjects: number
}

interface ExpectationsFile extends Partial<Expectations> {
  environments?: Record<string, Partial<Expectations>>
}

export interface EnvironmentReport {
  env: string
  engine?: Engine
  objects: number
  kinds: Record<string, number>
  missingKinds: string[]
  tooFew?: string
  /** the render failed: the message */
  renderError?: string
  /** server-side dry run: rejected objects, `Kind/ns/name: message` */
  rejected: string[]
  dryRun: boolean
}

export interface ValidateReport {
  unformatted: string[]
  environments: EnvironmentReport[]
  /** why the dry run did not happen (no cluster), if it did not */
  noDryRun?: string
  ok: boolean
}

/** What every environment (or one named under `environments:`) must render. */
export function expectationsFor(root: string, env: string): Expectations {
  const file = path.join(root, VALIDATE_FILE)
  if (!fs.existsSync(file)) return { kinds: [], minObjects: 1 }
  let doc: ExpectationsFile
  try {
    doc = (YAML.parse(fs.readFileSync(file, 'utf8')) ?? {}) as ExpectationsFile
  } catch (err) {
    throw new NsopsError(`${shown(file)}: ${errorMessage(err)}`, {
      hint: 'It is YAML: kinds: [Deployment, ...], minObjects: N, environments: {NAME: {kinds, minObjects}}.',
    })
  }
  const own = doc.environments?.[env] ?? {}
  return { kinds: own.kinds ?? doc.kinds ?? [], minObjects: own.minObjects ?? doc.minObjects ?? 1 }
}

export interface TankaValidationOptions extends RenderOptions {
  root: string
  /** a reachable cluster for the server-side dry run; none: skipped */
  kube?: Kube
  noDryRun?: string
  onProgress?: (message: string) => void
}

export async function validateTanka(opts: TankaValidationOptions): Promise<ValidateReport> {
  const progress = opts.onProgress ?? (() => {})
  progress('checking the Jsonnet formatting')
  const { changed } = await formatJsonnet([opts.root], { test: true })
  const report: ValidateReport = {
    unformatted: changed.map(shown),
    environments: [],
    noDryRun: opts.kube ? undefined : opts.noDryRun,
    ok: true,
  }

  for (const env of loadEnvironments(opts.root)) {
    progress(`rendering ${env.name}`)
    const r: EnvironmentReport = { env: env.name, objects: 0, kinds: {}, missingKinds: [], rejected: [], dryRun: false }
    report.environments.push(r)
    let objects
    try {
      const rendered = await renderEnvironment(env, opts)
      r.engine = rendered.engine
      objects = rendered.objects
    } catch (err) {
      r.renderError = errorMessage(err) + (err instanceof NsopsError && err.hint ? ` (${err.hint})` : '')
      continue
    }
    r.objects = objects.length
    for (const o of objects) r.kinds[o.kind] = (r.kinds[o.kind] ?? 0) + 1
    const expected = expectationsFor(opts.root, env.name)
    r.missingKinds = expected.kinds.filter((k) => !r.kinds[k])
    if (objects.length < expected.minObjects)
      r.tooFew = `${objects.length} objects, at least ${expected.minObjects} expected`
    if (opts.kube) {
      progress(`server-side dry run of ${env.name}`)
      const result = await applyObjects(opts.kube, objects as ManifestObject[], {
        dryRun: true,
        fieldManager: TANKA_FIELD_MANAGER,
        namespace: env.spec.spec.namespace,
      })
      r.dryRun = true
      r.rejected = result.failed.map((f) => `${refString(f.ref)}: ${f.message}`)
    }
  }
  report.ok =
    report.unformatted.length === 0 &&
    report.environments.every(
      (e) => !e.renderError && e.missingKinds.length === 0 && !e.tooFew && e.rejected.length === 0,
    )
  return report
}
