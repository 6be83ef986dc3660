// `just init`: adopt an existing Flux repository (home-ops' kubernetes/apps/<ns>/<app>/ks.yaml,
// the seed homelab's one Kustomization per namespace, flux2's example clusters/<name>/ + apps/)
// without moving its files: the namespaces its Flux tree applies, each with a thin
// namespaces/<ns>/namespace.ts whose layout names its Flux Kustomizations, and the standard
// scripts. It asks nothing: what it cannot infer it refuses, saying why and what to do.
// Existing files are never overwritten.
import fs from 'node:fs'
import path from 'node:path'
import { parseCommand } from '../core/cli.ts'
import { ExitCode, NsopsError } from '../core/errors.ts'
import { c, log } from '../core/output.ts'
import { repoRoot } from '../core/paths.ts'
import { namespacesDir } from '../config/namespaces.ts'
import { adoptableNamespaces, type AdoptableNamespace } from '../flux/build/adopt.ts'
import { fluxTreeOf } from '../flux/build/index.ts'
import { scriptFiles } from './new-namespace.ts'

const usage = `
Usage: just init [NS…] [--dry-run]

Adopts this Flux repository as it is laid out: finds the Kubernetes namespaces its Flux tree
applies (from the root Kustomizations: flux bootstrap's flux-system, clusters/<name>/,
home-ops' kubernetes/flux/cluster/ks.yaml) and the Flux Kustomizations that apply each, and
writes namespaces/<ns>/namespace.ts (its layout names those Kustomizations) with dev.ts,
dashboard.ts, deploy.ts and drift.ts. No file of yours moves; no existing file is overwritten.

  NS…        only these namespaces (default: every one found)
  --dry-run  say what would be written, write nothing

A namespace whose objects come only from a Kustomization that also applies other namespaces
is not adopted (the message says why and what to do); Flux's own (flux-system) is left out.
Exit codes: 0 adopted (or already there) · 1 nothing could be adopted.
`

/** A thin namespace.ts: the layout, the Kubernetes namespaces and dev overrides to start from. */
export function namespaceFile(found: AdoptableNamespace): string {
  const ns = found.namespace
  const oneLine = `    kustomizations: [${found.entries.map((e) => `'${e}'`).join(', ')}],`
  const list =
    oneLine.length <= 120
      ? oneLine
      : `    kustomizations: [\n${found.entries.map((e) => `      '${e}',`).join('\n')}\n    ],`
  const names = found.nodes.map((n) => n.kustomization.metadata.name).join(', ')
  const dev = found.devOverlay
    ? `    // the dev loop builds the repository's own dev overlay (substituted as prod is) into ${ns}-dev\n    dev: { overlay: '${found.devOverlay}' },`
    : `    // the dev loop applies prod's build into ${ns}-dev with these changes (there is no dev overlay)\n    dev: { replicas: 1 },`
  return `// ${ns}: written by \`just init\` from this repository's Flux tree. Its objects stay where they are;
// layout names the Flux Kustomizations that apply it (shared/config/namespace-config.ts describes each field).
import { defineNamespace } from '../../shared/config/namespace-config.ts'

export default defineNamespace({
  name: '${ns}',
  description: 'Applied by Flux Kustomization${found.nodes.length > 1 ? 's' : ''} ${names}.',
  namespaces: { dev: '${ns}-dev', prod: '${ns}' },
  layout: {
${list}${found.root ? `\n    // what deploy commits and the dev loop watches: the folder that holds its sources\n    root: '${found.root}',` : ''}
${dev}
  },
})
`
}

export async function init(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(argv, {
    usage,
    options: { 'dry-run': { type: 'boolean' } },
    allowPositionals: true,
  })
  const tree = await fluxTreeOf(repoRoot)
  if (!tree.nodes.size)
    throw new NsopsError(`no Flux Kustomization in ${repoRoot}: nothing to adopt.`, {
      hint: 'run `just init` at the root of a Flux repository (one with clusters/<name>/flux-system, kubernetes/flux/, or Kustomizations of kustomize.toolkit.fluxcd.io), or start one with `just new-namespace NAME`.',
    })
  const { found, refused } = await adoptableNamespaces(tree)
  const wanted = positionals.length ? new Set(positionals) : undefined
  if (wanted) {
    const known = new Set([...found.map((f) => f.namespace), ...refused.map((r) => r.namespace)])
    const unknown = [...wanted].filter((n) => !known.has(n))
    if (unknown.length)
      throw new NsopsError(`the Flux tree applies no namespace ${unknown.join(', ')}.`, {
        hint: `It applies: ${[...known].join(', ') || 'none'}.`,
      })
  }
  const adopt = found.filter((f) => !wanted || wanted.has(f.namespace))
  const refuse = refused.filter((r) => !wanted || wanted.has(r.namespace))
  const dry = Boolean(values['dry-run'])
  let wrote = 0
  for (const f of adopt) {
    const dir = path.join(namespacesDir, f.namespace)
    const files: Record<string, string> = { 'namespace.ts': namespaceFile(f), ...scriptFiles(f.namespace) }
    const made: string[] = []
    const kept: string[] = []
    for (const [rel, text] of Object.entries(files)) {
      const file = path.join(dir, rel)
      if (fs.existsSync(file)) {
        kept.push(rel)
        continue
      }
      made.push(rel)
      if (dry) continue
      fs.mkdirSync(dir, { recursive: true })
      fs.writeFileSync(file, text, { mode: rel === 'namespace.ts' ? 0o644 : 0o755 })
    }
    wrote += made.length
    const what = `${f.nodes.length} Flux Kustomization${f.nodes.length > 1 ? 's' : ''} (${f.entries.join(', ')})`
    const rel = path.relative(repoRoot, dir)
    if (made.length)
      log.ok(
        `${dry ? 'would write' : 'wrote'} ${rel}/: ${made.join(', ')} — ${what}${kept.length ? `; kept ${kept.join(', ')} as they are` : ''}`,
      )
    else log.info(`${rel}/ is there already (kept as it is) — ${what}`)
  }
  for (const r of refuse) {
    log.warn(`${r.namespace}: not adopted: ${r.why}`)
    log.info(`  hint: ${r.hint}`)
  }
  if (!adopt.length) {
    throw new NsopsError(
      refuse.length
        ? `no namespace could be adopted (${refuse.map((r) => r.namespace).join(', ')}: see above).`
        : `the Flux tree (${[...tree.nodes.keys()].join(', ')}) applies no namespace of its own (only flux-system or cluster-wide objects).`,
      {
        hint:
          refuse[0]?.hint ??
          'add a Flux Kustomization per namespace (with targetNamespace), then run `just init` again.',
      },
    )
  }
  if (!dry && wrote)
    log.info(
      `next: ${c.bold('just validate')} builds what Flux applies to each; ${c.bold(`just dev ${adopt[0].namespace}`)} runs it in ${adopt[0].namespace}-dev`,
    )
  return ExitCode.ok
}
