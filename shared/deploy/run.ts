// The GitOps deploy of one namespace, step by step (DESIGN.md "Deploy"): preflight → build →
// plaintext-Secret check → server-side dry run → diff → confirm → commit (only the
// namespace's folder) → push → Flux reconcile → health → roll back on failure (rollback.ts,
// also `--rollback`). Nothing is committed before validation passes and the user (or --yes)
// agreed; after the push every way out says which commit is where.
import path from 'node:path'
import { NsopsError, ExitCode } from '../core/errors.ts'
import { fluxRefString, type FluxObject, type Manager } from '../flux/index.ts'
import { openRepo, shortSha, type PushResult, type Repo } from '../git/repo.ts'
import { connect, type Kube } from '../kube/client.ts'
import { chartsLine, namespaceCharts, publishCharts } from '../images/charts.ts'
import { refreshChartSources } from '../flux/helm-release.ts'
import type { ManifestObject } from '../kustomize/build.ts'
import {
  buildProd,
  clusterVars,
  forgetFluxTrees,
  strictInCluster,
  type HelmRenderOptions,
  type ProdBuild,
  type ProdBuildOptions,
  type RenderedRelease,
} from '../flux/build/index.ts'
import { duration, log } from '../core/output.ts'
import { renderTarget } from '../schema/index.ts'
import { changeCount, diffAgainstCluster, renderDeployDiff, type DeployDiff } from './diff.ts'
import {
  clause,
  confirmStep,
  declined,
  fluxStep,
  DeploySteps,
  inRepo,
  plural,
  rolloutStep,
  verdictFor,
  type Cluster,
  type DeployOptions,
} from './flow.ts'
import { asFluxAppliesByPart } from './flux-target.ts'
import { throwIfInterrupted } from './interrupt.ts'
import { beforeCommitChanges, changedBetween, hookKube, hookReport, snapshotTree, type TreeSnapshot } from './hooks.ts'
import { failedWithoutRollback, pushedUnverified, type Failure, type FailureFacts } from './outcome.ts'
import { isUnder, lastCommits, preflight, type Preflight } from './preflight.ts'
import type { DeployReport } from './report.ts'
import { autoRollback, rollbackFlow } from './rollback.ts'
import { remediationWarnings } from './releases.ts'
import { checkImagesPresent, imageUses, registryOf, type ImagePresence } from '../images/presence.ts'
import { findPlaintextSecrets, plaintextSecretsError, refuseAliasBombs } from './secrets.ts'
import { validateBuild, validationSummary } from './validate.ts'
import { hookFailure, runHook } from '../tasks/run.ts'

export { DEFAULT_TIMEOUT_MS, type DeployOptions, type Logger } from './flow.ts'

export async function runDeploy(opts: DeployOptions): Promise<DeployReport> {
  const f = new DeploySteps(opts)
  try {
    return await (opts.mode === 'rollback' ? rollbackFlow(f) : deployFlow(f))
  } catch (err) {
    return f.finish(verdictFor(f, err))
  }
}

function defaultMessage(ns: string, nsDir: string, changed: string[]): string {
  const rel = changed.map((f) => f.slice(nsDir.length + 1))
  const subject = `deploy(${ns}): ${rel.length === 1 ? `update ${rel[0]}` : `update ${plural(rel.length, 'file')}`}`
  return rel.length > 1 ? `${subject}\n\n${rel.map((r) => `- ${r}`).join('\n')}` : subject
}

/**
 * The git checks. A dry run only reads, so what would stop a push (no upstream, a detached
 * HEAD, unrelated staged files) is a warning there and the diff is still shown.
 */
async function preflightStep(f: DeploySteps, repo: Repo): Promise<{ pf?: Preflight; problem?: string }> {
  return f.step<{ pf?: Preflight; problem?: string }>('preflight', 'Checking the git state', async () => {
    let p: Preflight
    try {
      p = await preflight(repo, f.nsDir)
      // a deploy of one namespace pushes that namespace only: another's commit would ride
      // along unvalidated, and a rollback would revert it whole
      const outside = p.unpushed.filter((u) => u.files.some((file) => !file.startsWith(`${f.nsDir}/`)))
      if (outside.length) {
        const files = [...new Set(outside.flatMap((u) => u.files.filter((file) => !file.startsWith(`${f.nsDir}/`))))]
        throw new NsopsError(
          `${plural(outside.length, 'local commit')} not pushed yet ${outside.length === 1 ? 'changes' : 'change'} files outside ${f.nsDir}/ (${outside.map((u) => `${shortSha(u.sha)} "${u.subject}"`).join(', ')}: ${files.slice(0, 5).join(', ')}${files.length > 5 ? ', …' : ''}). A deploy of ${f.ns.name} pushes only its own commits, so nothing was committed or pushed.`,
          {
            hint: `push ${outside.length === 1 ? 'that commit' : 'those commits'} first (\`git push\`, or deploy the namespace ${outside.length === 1 ? 'it belongs' : 'they belong'} to), or move ${outside.length === 1 ? 'it' : 'them'} to another branch; then run again.`,
          },
        )
      }
    } catch (err) {
      if (!f.opts.dryRun || !(err instanceof NsopsError)) throw err
      return {
        value: { problem: clause(err.message) },
        status: 'warning' as const,
        message: `a deploy would be refused: ${clause(err.message)}`,
      }
    }
    f.remote = `${p.upstream.remote}/${p.upstream.remoteBranch}`
    f.remoteBranch = p.upstream.remoteBranch
    f.report.git.branch = p.branch
    f.report.git.upstream = f.remote
    const url = await repo.remoteUrl(p.upstream.remote)
    f.report.git.remote = { name: p.upstream.remote, url: url ?? '' }
    const parts = [
      p.changed.length
        ? `${plural(p.changed.length, 'changed file')} under ${f.nsDir}/`
        : `no uncommitted changes under ${f.nsDir}/`,
      p.unpushed.length
        ? `${plural(p.unpushed.length, 'local commit')} not pushed to ${f.remote}`
        : `up to date with ${f.remote}`,
    ]
    return {
      value: { pf: p },
      message: `on ${p.branch} → ${f.remote}; ${parts.join(', ')}`,
      detail: { branch: p.branch, upstream: f.remote, head: p.head, changed: p.changed, unpushed: p.unpushed },
    }
  })
}

async function validateSteps(
  f: DeploySteps,
  repoDir: string,
): Promise<{ objects: ManifestObject[]; rendered: ManifestObject[]; cluster: Cluster; built: ProdBuild }> {
  // the cluster first: substituteFrom is read from it, as kustomize-controller reads it
  const cluster = await f.cluster()
  const step = await f.step('build', `Building what Flux applies to ${f.ns.name}`, async () => {
    await refuseAliasBombs(repoDir, f.nsDir)
    // the namespace's Flux Kustomization(s) as kustomize-controller builds them (post-build
    // substitution included); overlays/prod when none applies it; its HelmReleases rendered
    const built = await buildProd(f.ns, repoDir, { reuse: true, helm: await helmOptions(), ...(await varsOf(cluster)) })
    const rendered = releaseObjects(built.releases)
    const warnings = remediationWarnings(built.releases)
    return {
      value: { objects: built.objects, rendered, built, warnings },
      message: `${built.label} builds: ${plural(built.objects.length, 'object')}${built.releases.length ? `; ${plural(built.releases.length, 'HelmRelease')} rendered: ${plural(rendered.length, 'object')}` : ''}`,
      detail: {
        objects: built.objects.length,
        kustomizations: built.kustomizations.map((k) => k.id),
        ...(built.releases.length
          ? {
              releases: built.releases.map((r) => ({
                id: r.id,
                chart: `${r.chart.name}@${r.chart.version}`,
                digest: r.chart.digest,
                objects: r.objects.length,
              })),
            }
          : {}),
        ...(warnings.length ? { warnings } : {}),
      },
    }
  })
  const { objects, rendered, built, warnings } = step
  // a HelmRelease whose failed upgrade helm-controller leaves failed: the rollback below could
  // not undo it in time
  for (const w of warnings) f.log.warn(w)
  await f.step('secrets', 'Checking for plaintext Secrets', async () => {
    await refusePlaintextSecrets(f, repoDir, objects)
    const secrets = objects.filter((o) => o.kind === 'Secret').length
    return {
      value: undefined,
      message: secrets ? `${plural(secrets, 'Secret')}, all SOPS-encrypted` : 'no plaintext Secret',
    }
  })
  await imagesStep(f, objects)
  throwIfInterrupted(f.opts.signal)
  await f.step(
    'validate',
    cluster.kube ? 'Validating (schemas, server-side dry run)' : 'Validating (schemas, offline)',
    async () => {
      const v = await validateProd(f, repoDir, cluster.kube, [...objects, ...rendered])
      return {
        value: undefined,
        ...(cluster.kube ? {} : { status: 'warning' as const }),
        message: `${validationSummary(v)}${cluster.kube ? '' : `: no cluster answers (${clause(cluster.offline)})`}`,
        detail: {
          schemas: v.schema.source,
          checked: v.schema.checked,
          ...(v.server
            ? { context: cluster.kube?.context, accepted: v.server.accepted, notValidated: v.server.notValidated }
            : { offline: true, reason: cluster.offline }),
        },
      }
    },
  )
  return { objects, rendered, cluster, built }
}

/**
 * Whose inventories the diff prunes from: the managing Kustomizations the prod build builds
 * (a layout's, one per app); none: the primary one only (another's inventory holds objects
 * this build never had).
 */
function pruners(managers: Manager[], parts: ProdBuild['parts']): FluxObject[] {
  const built = new Set(parts.flatMap((p) => (p.node ? [p.node.id] : [])))
  return managers
    .filter((m) => !m.root && built.has(`${m.kustomization.metadata.namespace}/${m.kustomization.metadata.name}`))
    .map((m) => m.kustomization)
}

/** Refuses the build when a Secret in it is not SOPS-encrypted (the error says which and where). */
async function refusePlaintextSecrets(f: DeploySteps, repoDir: string, objects: ManifestObject[]): Promise<void> {
  const found = await findPlaintextSecrets(repoDir, f.nsDir, objects, path.join(repoDir, f.overlayDir))
  if (found.length > 0) throw plaintextSecretsError(found, f.nsDir)
}

/** The prod objects checked against the schemas, and by the API server's dry run when a cluster answers. */
function validateProd(f: DeploySteps, repoDir: string, kube: Kube | undefined, objects: ManifestObject[]) {
  return validateBuild(objects, {
    kube,
    overlayDir: path.join(repoDir, f.overlayDir),
    nsDir: path.join(repoDir, f.nsDir),
    repoDir,
    namespace: f.ns.namespaces.prod,
  })
}

/** HelmReleases rendered offline for the pinned target; warnings (a skipped remote $ref) as lines on stderr. */
async function helmOptions(): Promise<HelmRenderOptions> {
  return { ...(await renderTarget()), warn: (m) => log.warn(m) }
}

/**
 * Connected: substituteFrom ConfigMaps and Secrets the repository does not build (made by SOPS,
 * by hand) are read from the cluster, and substitution is as strict as its kustomize-controller.
 * A Secret's values go into the build only, never into a message.
 */
async function varsOf(cluster: Cluster): Promise<Pick<ProdBuildOptions, 'vars' | 'strict'>> {
  if (!cluster.kube) return {}
  const strict = await strictInCluster(cluster.kube).catch(() => undefined)
  return { vars: clusterVars(cluster.kube), ...(strict === undefined ? {} : { strict }) }
}

/** What the releases apply, hooks included (helm runs them; validation checks them too). */
function releaseObjects(releases: RenderedRelease[]): ManifestObject[] {
  return releases.flatMap((r) => [...r.objects, ...r.hooks])
}

/**
 * A namespace that builds images checks that every image its prod manifests name is in its
 * registry (konflate's "images missing from their registry"): nsops pushes dev images only,
 * release images are the user's CI's, and a manifest naming a tag CI never published would
 * only fail at the pull. Refused unless --allow-missing-images; a dry run warns.
 */
async function imagesStep(f: DeploySteps, objects: ManifestObject[]): Promise<void> {
  if (Object.keys(f.ns.images).length === 0) return
  const uses = imageUses(objects)
  if (f.opts.allowMissingImages) {
    f.skip(
      'images',
      `images not checked against their registries (--allow-missing-images): ${plural(uses.length, 'reference')}`,
    )
    return
  }
  await f.step('images', `Checking that ${plural(uses.length, 'image')} exist in their registries`, async () => {
    const checked = await checkImagesPresent(uses)
    const missing = checked.filter((c) => c.state === 'missing')
    const unchecked = checked.filter((c) => c.state === 'unchecked')
    const detail = { images: checked }
    if (missing.length || unchecked.length) {
      const line = (c: ImagePresence) =>
        `${c.ref} (${c.objects.join(', ')}): ${c.state === 'missing' ? 'not in' : 'could not ask'} ${registryOf(c.ref)}: ${'reason' in c ? c.reason : ''}`
      const parts = [
        missing.length
          ? `${plural(missing.length, 'image')} the prod manifests name ${missing.length === 1 ? 'is' : 'are'} missing from ${missing.length === 1 ? 'its registry' : 'their registries'}:\n  ${missing.map(line).join('\n  ')}`
          : '',
        unchecked.length
          ? `${plural(unchecked.length, 'image')} could not be checked (the registry did not answer or refused to say; offline?):\n  ${unchecked.map(line).join('\n  ')}`
          : '',
      ].filter(Boolean)
      const message = `${parts.join('\n')}\nA cluster could not pull ${missing.length + unchecked.length === 1 ? 'it' : 'them'}${f.opts.dryRun ? '' : ', so nothing was committed or pushed'}.`
      const hint =
        `release images are your CI's to build and push (nsops pushes dev images only): publish the tag, or fix the reference in ${f.overlayDir}/kustomization.yaml (\`images:\`); ` +
        `${unchecked.length ? 'reach the registry (network, `docker login`/credentials) and run again, ' : ''}or pass --allow-missing-images to push anyway.`
      if (f.opts.dryRun)
        return {
          value: undefined,
          status: 'warning' as const,
          message: `a deploy would be refused: ${message}`,
          detail,
        }
      throw new NsopsError(message, { hint })
    }
    return {
      value: undefined,
      message: `${plural(checked.length, 'image')} found in ${plural(new Set(checked.map((c) => registryOf(c.ref))).size, 'registry').replace(/registrys$/, 'registries')}`,
      detail,
    }
  })
}

/** Runs beforeCommit and returns the files it changed under the namespace's folder. */
async function beforeCommitStep(f: DeploySteps, repo: Repo, cluster: Cluster): Promise<string[]> {
  const kube = hookKube(cluster.kube, () => connect(f.opts.target ?? {}))
  return f.step('before-commit', 'Running the beforeCommit hook', async (progress) => {
    const before = await snapshotTree(repo.root)
    const ran = await runHook('beforeCommit', { files: pendingFiles(before, f.nsDir) }, hookOptions(f, kube, progress))
    if (!ran) return { value: [], message: 'no beforeCommit hook' }
    throwIfInterrupted(f.opts.signal)
    if (!ran.run.ok) {
      f.report.hooks = [...(f.report.hooks ?? []), hookReport('beforeCommit', ran.run)]
      throw hookFailure('beforeCommit', ran.run, 'nothing was committed or pushed', f.ns.name)
    }
    const after = await snapshotTree(repo.root)
    let changed: string[]
    try {
      changed = beforeCommitChanges(before, after, f.nsDir, f.ns.name)
    } finally {
      f.report.hooks = [...(f.report.hooks ?? []), hookReport('beforeCommit', ran.run, changedBetween(before, after))]
    }
    return {
      value: changed,
      message: `beforeCommit ran in ${duration(ran.run.ms)}${changed.length ? `: changed ${changed.map((c) => c.slice(f.nsDir.length + 1)).join(', ')}` : ', changed nothing'}`,
      detail: { ms: ran.run.ms, files: changed },
    }
  })
}

/** What is about to be committed (changed, new or deleted under the folder), relative to the folder: the hook's cwd. */
function pendingFiles(s: TreeSnapshot, nsDir: string): string[] {
  return [...s.files.keys()]
    .filter((file) => isUnder(file, nsDir))
    .map((file) => file.slice(nsDir.length + 1))
    .sort()
}

function hookOptions(f: DeploySteps, kube: Kube, progress: (text: string) => void) {
  return {
    kube,
    ns: f.ns,
    env: 'prod' as const,
    signal: f.opts.signal,
    // the hook's output as it comes: on a terminal in the spinner, in CI logs as lines
    onLine: (_hook: string, line: string) => progress(line),
  }
}

/** Build, Secret check and validation once more, on what beforeCommit left. */
async function revalidateStep(
  f: DeploySteps,
  repoDir: string,
  cluster: Cluster,
): Promise<{ objects: ManifestObject[]; rendered: ManifestObject[]; built: ProdBuild }> {
  return f.step('revalidate', "Validating again (beforeCommit changed the prod overlay's inputs)", async () => {
    forgetFluxTrees() // beforeCommit changed files: build them afresh
    const built = await buildProd(f.ns, repoDir, { reuse: true, helm: await helmOptions(), ...(await varsOf(cluster)) })
    const objects = built.objects
    const rendered = releaseObjects(built.releases)
    await refusePlaintextSecrets(f, repoDir, objects)
    const v = await validateProd(f, repoDir, cluster.kube, [...objects, ...rendered])
    return {
      value: { objects, rendered, built },
      message: `after beforeCommit: ${plural(objects.length, 'object')}, ${validationSummary(v)}`,
      detail: { objects: objects.length, schemas: v.schema.source, checked: v.schema.checked },
    }
  })
}

/** Runs afterDeploy; its failure as the Failure a rollback starts from, or undefined when it passed (or there is none). */
async function afterDeployStep(f: DeploySteps, kube: Kube, revision: string): Promise<Failure | undefined> {
  if (!f.ns.hooks.afterDeploy) return undefined
  return f.step('after-deploy', 'Running the afterDeploy hook', async (progress) => {
    const ran = await runHook('afterDeploy', { revision }, hookOptions(f, kube, progress))
    throwIfInterrupted(f.opts.signal)
    if (!ran) return { value: undefined, message: 'no afterDeploy hook' }
    f.report.hooks = [...(f.report.hooks ?? []), hookReport('afterDeploy', ran.run)]
    if (ran.run.ok)
      return { value: undefined, message: `afterDeploy passed in ${duration(ran.run.ms)}`, detail: { ms: ran.run.ms } }
    const last = ran.run.lines.filter((l) => !l.startsWith('✖ ')).at(-1)
    const message = `the afterDeploy hook failed (${ran.run.error})${last ? `, its last output: "${last.trim()}"` : ''}; its log is .nsops/tasks/${f.ns.name}/hook-afterDeploy.log`
    return {
      value: { stage: 'after-deploy' as const, message },
      status: 'warning' as const,
      message,
      detail: { ms: ran.run.ms, exitCode: ran.run.exitCode },
    }
  })
}

/**
 * Before the commit: the folder holds what was validated, and the branch is where it was at
 * the preflight. A file saved while the question waited, or a commit made in another
 * terminal, is refused here: it was never built, checked for Secrets nor validated.
 */
async function unchangedSinceValidation(f: DeploySteps, repo: Repo, head: string, validated: string): Promise<void> {
  const [now, headNow] = await Promise.all([repo.folderTree(f.nsDir), repo.headSha()])
  if (now !== validated) {
    const files = (await repo.filesBetween(validated, now)).map((file) => `${f.nsDir}/${file}`)
    throw new NsopsError(
      `${files.length ? files.slice(0, 5).join(', ') + (files.length > 5 ? ', …' : '') : `files under ${f.nsDir}/`} changed after the deploy validated ${f.nsDir}/. What was validated is not what would be committed, so nothing was committed or pushed.`,
      { hint: `run \`just deploy ${f.ns.name}\` again: it validates the files as they are now.` },
    )
  }
  if (headNow !== head)
    throw new NsopsError(
      `the branch moved from ${shortSha(head)} to ${shortSha(headNow)} while the deploy ran (a commit made meanwhile: \`git log ${shortSha(head)}..${shortSha(headNow)}\`). It was not validated, so nothing was committed or pushed.`,
      { hint: `run \`just deploy ${f.ns.name}\` again once the branch is as you want it.` },
    )
}

async function deployFlow(f: DeploySteps): Promise<DeployReport> {
  const { opts } = f
  const repo = await openRepo(opts.repoDir)
  const { pf, problem } = await preflightStep(f, repo)
  if (pf?.nothingToDeploy && !opts.dryRun) {
    const others = pf.unpushed.length
      ? ` (${plural(pf.unpushed.length, 'local commit')} not pushed touch other paths only; a deploy of ${f.ns.name} does not push them)`
      : ''
    return f.finish({
      outcome: 'nothing-to-deploy',
      exitCode: ExitCode.ok,
      summary: `nothing to deploy for ${f.ns.name}: no changes under ${f.nsDir}/ and no unpushed commit touching it${others}.`,
    })
  }
  throwIfInterrupted(opts.signal)
  // what is validated is what is committed and pushed: the folder's tree as the build reads
  // it, and the commit the branch is at; both are checked again after the question
  let validated = pf && !opts.dryRun ? await repo.folderTree(f.nsDir) : ''
  const { objects, rendered, cluster, built: prod } = await validateSteps(f, repo.root)
  throwIfInterrupted(opts.signal)

  if (!cluster.kube && !opts.dryRun && !opts.pushOnly) {
    throw new NsopsError(
      `no cluster answers (${clause(cluster.offline)}), so nothing could confirm that Flux applies the push. The build passed offline validation; nothing was committed or pushed.`,
      {
        hint: 'start or reach the cluster (`just cluster-up`, or --kubeconfig/--context) and run again; or pass --push-only to commit and push without verifying (exit 4).',
      },
    )
  }
  const pushTarget = pf ? { ...pf.upstream, url: f.report.git.remote?.url || undefined } : undefined
  const flux = cluster.kube ? await fluxStep(f, cluster.kube, pushTarget) : undefined
  // beforeCommit runs before the diff and the question, so what is confirmed is what is
  // committed; a dry run changes nothing, so it does not run there
  let built = objects
  let builtParts = prod.parts
  let builtReleases = rendered
  if (f.ns.hooks.beforeCommit && !opts.dryRun && pf) {
    const changed = await beforeCommitStep(f, repo, cluster)
    pf.changed = [...new Set([...pf.changed, ...changed])].sort()
    validated = await repo.folderTree(f.nsDir) // what the hook left, validated again below
    const inputs = f.ns.layout
      ? [f.nsDir]
      : [f.ns.paths.base, f.ns.paths.overlays.prod, f.ns.paths.components].map((d) => inRepo(d, opts.repoDir))
    if (changed.some((file) => inputs.some((d) => isUnder(file, d)))) {
      const again = await revalidateStep(f, repo.root, cluster)
      built = again.objects
      builtParts = again.built.parts
      builtReleases = again.rendered
      await imagesStep(f, built)
    }
  }
  let diff: DeployDiff | undefined
  if (cluster.kube) {
    const kube = cluster.kube
    const objects = built
    const parts = builtParts
    diff = await f.step('diff', 'Diffing against the live cluster', async () => {
      // each object labelled by the Flux Kustomization that builds it, as it applies it
      const d = flux?.found
        ? await diffAgainstCluster(kube, asFluxAppliesByPart(parts, flux.kustomization), {
            namespace: f.ns.namespaces.prod,
            kustomization: flux.kustomization,
            kustomizations: pruners(flux.managers, parts),
            releases: builtReleases.filter((o) => !o.metadata.annotations?.['helm.sh/hook']),
          })
        : await diffAgainstCluster(kube, objects, {
            namespace: f.ns.namespaces.prod,
            releases: builtReleases.filter((o) => !o.metadata.annotations?.['helm.sh/hook']),
          })
      const n = changeCount(d)
      return {
        value: d,
        message: n ? `${plural(n, 'object')} would change` : 'the cluster already matches overlays/prod',
        detail: { objects: d.objects, notDiffed: d.notDiffed },
      }
    })
    // after the step: a spinner on stderr would garble the diff on stdout
    if (!opts.json) (opts.out ?? process.stdout).write(`${renderDeployDiff(diff)}\n`)
  } else {
    f.skip('diff', 'no diff: no cluster answers to compare with')
  }
  throwIfInterrupted(opts.signal)
  if (opts.dryRun) {
    const notes = [
      diff
        ? changeCount(diff)
          ? `${plural(changeCount(diff), 'object')} would change`
          : 'no change in the cluster'
        : '',
      pf?.nothingToDeploy
        ? `nothing to commit under ${f.nsDir}/, so the diff is the drift between git and the cluster`
        : '',
      problem ? `a deploy would be refused: ${problem}` : '',
    ].filter(Boolean)
    return f.finish({
      outcome: 'dry-run',
      exitCode: ExitCode.ok,
      summary: `dry run: nothing was committed or pushed${notes.length ? ` (${notes.join('; ')})` : ''}.`,
    })
  }
  // outside a dry run preflightStep throws instead of leaving pf unset
  if (!pf) throw new Error('preflight gave no result')

  const message = opts.message ?? defaultMessage(f.ns.name, f.nsDir, pf.changed)
  const toPush = pf.unpushed
  const plan = [
    pf.changed.length
      ? `commit ${plural(pf.changed.length, 'file')} under ${f.nsDir}/ as "${message.split('\n')[0]}"`
      : undefined,
    `push ${pf.branch} to ${f.remote}${toPush.length ? ` (with ${plural(toPush.length, 'local commit')} not pushed yet: ${toPush.map((u) => `${shortSha(u.sha)} ${u.subject}`).join('; ')})` : ''}`,
    opts.pushOnly
      ? 'do not verify (--push-only): Flux applies it at its next interval'
      : flux?.found
        ? `reconcile ${flux.managers.map((m) => fluxRefString(m.kustomization)).join(', ')}, wait up to ${duration(f.timeoutMs)} for health${opts.rollbackOnFailure === false ? '' : ', roll back on failure'}`
        : `no Flux Kustomization to reconcile: the push will not be verified`,
  ].filter(Boolean) as string[]
  if (!(await confirmStep(f, `Deploy ${f.ns.name}`, plan, 'Commit and push?', `deploying ${f.ns.name}`)))
    return f.finish(declined('committed or pushed'))

  await unchangedSinceValidation(f, repo, pf.head, validated)

  // from here on, every way out says where the commits are
  let committed: string | undefined
  if (pf.changed.length) {
    f.phase = 'committing'
    committed = await f.step('commit', `Committing ${f.nsDir}/`, async () => {
      const r = await repo.commitPaths([f.nsDir], message)
      if (!r.committed)
        return {
          value: undefined,
          status: 'warning' as const,
          message: `nothing to commit under ${f.nsDir}/ after all (the changes cancel out)`,
        }
      // a file saved in the instant between the check above and `git commit` would be in it
      const [tree, parent] = await Promise.all([repo.treeAt(r.sha, f.nsDir), repo.parentOf(r.sha)])
      if (tree !== validated || parent !== pf.head)
        throw new NsopsError(
          `the commit ${shortSha(r.sha)} holds other files under ${f.nsDir}/ than were validated (${(await repo.filesBetween(validated, tree)).join(', ') || 'its parent moved'}): it is kept locally and nothing was pushed.`,
          {
            hint: `look at it with \`git show ${shortSha(r.sha)}\`, undo it with \`git reset HEAD~1\` if it is not what you want, then run the deploy again.`,
          },
        )
      return {
        value: r.sha,
        message: `committed ${shortSha(r.sha)}: ${plural(r.files.length, 'file')}`,
        detail: { sha: r.sha, files: r.files },
      }
    })
    if (committed) f.report.git.committed = committed
    f.phase = 'committed'
  }
  throwIfInterrupted(opts.signal)
  const commitsToPush = (committed ? 1 : 0) + toPush.length
  if (commitsToPush === 0) {
    f.phase = 'before-commit'
    return f.finish({
      outcome: 'nothing-to-deploy',
      exitCode: ExitCode.ok,
      summary: `nothing to deploy for ${f.ns.name}: the changes under ${f.nsDir}/ cancel out.`,
    })
  }

  // the charts the namespace folder holds go to the cluster's registry before Flux asks for
  // them (a local cluster that advertises one; an unchanged chart costs one manifest GET)
  const charts = cluster.kube ? namespaceCharts(f.ns.paths.root) : []
  if (cluster.kube && charts.length) {
    const kube = cluster.kube
    await f.step('charts', 'Publishing the charts of the namespace', async () => {
      const r = await publishCharts(kube, charts)
      // a chart re-pushed under the same tag: prod's OCIRepositories fetch its new digest now
      await refreshChartSources(
        kube,
        f.ns.namespaces.prod,
        r.charts.filter((ch) => !ch.unchanged).map((ch) => ch.name),
      )
      return r.registry
        ? { value: undefined, message: chartsLine(r.charts), detail: { charts: r.charts } }
        : {
            value: undefined,
            status: 'skipped' as const,
            message:
              'the cluster advertises no registry (KEP-1755): its OCIRepositories read the charts from where they say',
          }
    })
  }

  f.phase = 'pushing'
  let pushed: PushResult
  try {
    pushed = await f.step('push', `Pushing to ${f.remote}`, async () => {
      // exactly what was validated: a commit made on top meanwhile does not ride along
      const r = await repo.push(committed ?? pf.head)
      const notes = [
        r.rebased ? 'rebased onto new commits from the remote first' : '',
        r.overtaken ? `someone pushed ${shortSha(r.remoteSha)} on top right after` : '',
      ].filter(Boolean)
      return {
        value: r,
        message: `pushed ${shortSha(r.localSha)} to ${f.remote}${notes.length ? ` (${notes.join('; ')})` : ''}`,
        detail: { ...r },
      }
    })
  } catch (err) {
    // a push that git refused pushed nothing; git.ts says where the commit is (kept locally)
    if (!(err instanceof NsopsError)) throw err
    return f.finish({
      outcome: 'failed',
      exitCode: ExitCode.usage,
      summary: err.message,
      ...(err.hint ? { hint: err.hint } : {}),
    })
  }
  // a rebase gives the commits new SHAs: ours are the newest `commitsToPush` of HEAD
  f.report.git.pushed = [pushed.localSha]
  f.phase = 'pushed'
  const ours = await lastCommits(repo.root, f.nsDir, commitsToPush, pushed.localSha)
  f.report.git.pushed = ours.map((o) => o.sha)
  throwIfInterrupted(opts.signal)

  // pushed and kept, with no verdict from Flux: why not, and what to do
  const unverified = (message: string, hint: string) =>
    f.finish(pushedUnverified(f.ns.name, f.remote, f.report.git.pushed, message, hint))
  if (opts.pushOnly) {
    return unverified(
      'not verified, as asked (--push-only)',
      `Flux applies it at its next interval; watch it with \`just dashboard ${f.ns.name}\`.`,
    )
  }
  if (!cluster.kube) {
    return unverified(
      `no cluster answered (${clause(cluster.offline)})`,
      `Flux applies it at its next interval; check it with \`just dashboard ${f.ns.name}\` once the cluster answers.`,
    )
  }
  if (!flux?.found) {
    const missing = flux && !flux.found ? flux : undefined
    return unverified(missing?.reason ?? 'Flux was not found', missing?.hint ?? '')
  }

  const result = await rolloutStep(f, 'reconcile', cluster.kube, flux, pushed.localSha)
  if (result.noAnswer) {
    // no verdict on the change, only on the cluster: it stays pushed and is not rolled back
    // (a revert could not be confirmed either, and Flux applies the commit once the API is back)
    return unverified(
      result.message,
      `check that the cluster answers (\`kubectl --context ${cluster.kube.context} get --raw /readyz\`); once it does, Flux applies the commit at its next interval (\`flux reconcile kustomization ${f.ns.flux.kustomization} -n ${f.ns.flux.namespace} --with-source\` asks now): watch it with \`just dashboard ${f.ns.name}\`.`,
    )
  }
  // a failing afterDeploy (a smoke test) counts as a failed health check: same rollback
  const smoke = result.ok ? await afterDeployStep(f, cluster.kube, pushed.localSha) : undefined
  if (result.ok && !smoke) {
    return f.finish({
      outcome: 'deployed',
      exitCode: ExitCode.ok,
      summary: `deployed ${f.ns.name}: ${result.message}.`,
    })
  }
  const facts: FailureFacts = {
    ns: f.ns.name,
    kustomization: f.ns.flux.kustomization,
    remote: f.remote,
    deployed: f.report.git.pushed,
    failure: smoke ?? { stage: result.stage, message: result.message },
  }
  if (opts.rollbackOnFailure === false) {
    await f.fluxLine(cluster.kube)
    return f.finish(failedWithoutRollback(facts))
  }
  return autoRollback(
    f,
    repo,
    cluster.kube,
    flux,
    facts,
    ours.filter((o) => o.touchesNamespace).map((o) => o.sha),
  )
}
