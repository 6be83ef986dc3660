// `just validate [NS...]`: what deploy checks before it commits, for one or every namespace:
// overlays/prod builds, no plaintext Secret, and (when a cluster answers) the API server
// accepts every object in a server-side dry run. Nothing is changed.
import path from 'node:path'
import { parseCommand } from '../cli.ts'
import { errorMessage, ExitCode } from '../errors.ts'
import { c, log } from '../output.ts'
import { repoRoot } from '../paths.ts'
import { resolveTarget, targetOptions } from '../target.ts'

const usage = `
Usage: just validate [NS...] [--offline]

Validates the prod overlay of each namespace (default: all) the way \`just deploy\` does before
it commits: kustomize build, plaintext Secret check (SOPS-encrypt Secrets), and a server-side
dry run of every object when a cluster answers (--offline skips it). Exits 1 if any fails.

  --offline          build and Secret check only
  --kubeconfig FILE  --context NAME   which cluster (default: the one \`just cluster-up\` chose)
`

export async function validate(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(argv, { usage, options: { offline: { type: 'boolean' }, ...targetOptions }, allowPositionals: true })
  const { loadNamespaces } = await import('../namespaces.ts')
  const configs = await loadNamespaces(positionals)
  const { buildKustomization } = await import('../kustomize.ts')
  const { findPlaintextSecrets } = await import('../deploy/secrets.ts')
  const { serverDryRun } = await import('../deploy/validate.ts')
  let kube: import('../kube.ts').Kube | undefined
  if (!values.offline) {
    const { connect, ensureReachable } = await import('../kube.ts')
    try {
      kube = connect(resolveTarget(values))
      await ensureReachable(kube, 3000)
    } catch (err) {
      log.warn(`no server-side dry run: ${errorMessage(err).split('\n')[0]}`)
      kube = undefined
    }
  }
  let failed = 0
  for (const ns of configs) {
    const rel = path.relative(repoRoot, ns.paths.overlays.prod)
    try {
      const objects = await buildKustomization(ns.paths.overlays.prod)
      const secrets = await findPlaintextSecrets(repoRoot, path.relative(repoRoot, ns.paths.root), objects)
      if (secrets.length) throw new Error(`plaintext Secret(s): ${secrets.map((s) => `Secret ${s.secret}${s.file ? ` (${s.file}${s.line ? `:${s.line}` : ""})` : ""}`).join(', ')} (SOPS-encrypt them)`)
      let note = 'offline: build and Secret check only'
      if (kube) {
        const v = await serverDryRun(kube, objects, ns.namespaces.prod)
        if (v.rejected.length) throw new Error(v.rejected.map((r) => `${r.object}: ${r.message}`).join('; '))
        note = `the API server (${kube.context}) accepts ${v.accepted} object(s)${v.notValidated.length ? `, ${v.notValidated.length} not validated` : ''}`
      }
      log.ok(`${ns.name}: ${rel} builds (${objects.length} objects); ${note}`)
    } catch (err) {
      failed++
      log.fail(`${ns.name}: ${errorMessage(err)}`)
    }
  }
  if (failed) log.info(c.red(`${failed} of ${configs.length} namespace(s) failed validation`))
  return failed ? ExitCode.usage : ExitCode.ok
}
