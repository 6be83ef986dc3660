// deploy.ts for any namespace: the GitOps deploy (the flow lives in shared/deploy/run.ts).
import { parseCommand, parseDuration } from '../core/cli.ts'
import { ExitCode, NsopsError } from '../core/errors.ts'
import type { NamespaceConfig } from '../config/namespace-config.ts'
import { c, log, setJsonMode } from '../core/output.ts'
import { resolveTarget, targetOptions } from '../kube/target.ts'
import { checkScriptFolder } from '../config/namespaces.ts'

const usage = (ns: string) => `
Usage: ./namespaces/${ns}/deploy.ts [--yes] [--dry-run] [--push-only] [--no-rollback] [--allow-missing-images] [--timeout 5m] [--message MSG] [--json]
       ./namespaces/${ns}/deploy.ts --rollback [--yes]
       just deploy ${ns}   ·   just diff ${ns} (= --dry-run)   ·   just rollback ${ns} (= --rollback)

Ships your changes under namespaces/${ns}/ to the cluster the GitOps way: Flux applies what
is in git, so a deploy is a commit that Flux is then made to apply and watched until healthy.

  1. checks git: a branch that tracks a remote branch, nothing staged outside namespaces/${ns}/
  2. validates: builds overlays/prod, refuses plaintext Secrets (SOPS-encrypt them), checks
     every object strictly against the cluster's OpenAPI schemas (offline: the pinned
     Kubernetes version and the Flux CRDs), errors at file:line, and has the API server
     dry-run the objects whose namespace exists
     and, for a namespace with images: in namespace.ts, refuses when an image the manifests
     name is not in its registry (or the registry cannot be asked: offline, no credentials);
     warns for each HelmRelease whose failed upgrade helm-controller would leave failed (no
     upgrade.remediation.remediateLastFailure: true): step 8's revert could not undo it
  3. refuses before committing when nothing would apply the push: no cluster, no Flux, no
     Kustomization managing ${ns}, one suspended, a dependsOn not Ready, or a GitRepository
     reading another branch or repository than the one pushed to (--push-only skips this)
  4. shows the diff against the live cluster (Secret values masked)
  5. asks before committing (--yes answers for scripts; without a terminal it refuses)
  6. commits only namespaces/${ns}/ and pushes (a rejected push is rebased once, never forced;
     unpushed commits touching other paths are refused)
  7. has Flux fetch the commit and apply it (every Kustomization managing ${ns}), accepting the
     commit or one pushed on top of it, then waits until everything is healthy, failing fast
  8. on failure reverts this deploy's commits (new commits, history is never rewritten),
     pushes that and waits for it too

  --yes              do not ask before committing and pushing
  --dry-run          stop after the diff: nothing is committed or pushed
  --push-only        validate, commit and push, but do not reconcile or verify (exit 4)
  --no-rollback      on failure leave the commit in place (roll back later with just rollback ${ns})
  --allow-missing-images
                     push even when an image the manifests name is not in its registry
                     (release images are your CI's to publish; nsops pushes dev images only)
  --rollback         undo instead: revert the last commit that touched namespaces/${ns}/ as a new
                     commit, push it, reconcile and wait (running it twice re-applies the change)
  --timeout DUR      how long Flux may take to apply and everything to turn healthy (default 5m;
                     Go durations: 90s, 1m30s, 10m); a rollback gets the same again
  --message MSG      the commit subject (default: deploy(${ns}): update …)
  --json, -o json    print a summary of every step as JSON on stdout (schema nsops.deploy/v1;
                     git.pushed and git.remote always say what was pushed where)
  --kubeconfig FILE  --context NAME   which cluster (default: $KUBECONFIG, else the one \`just cluster-up\` chose)

Exit codes: 0 deployed (or nothing to deploy, or a dry run) · 1 nothing was pushed (usage,
refused, validation failed, not confirmed) · 2 failed and rolled back · 3 failed and the
rollback failed too (the message says where every commit is) · 4 pushed but not verified
(--push-only, Flux gave no answer in time, the cluster's API server stopped answering while
it waited: not rolled back, or a failure left in place by --no-rollback) ·
130 interrupted (a local commit is kept; the message says how to continue).
`

export async function deploy(ns: NamespaceConfig, argv: string[]): Promise<number> {
  checkScriptFolder(ns)
  const { values } = parseCommand(argv, {
    usage: usage(ns.name),
    options: {
      yes: { type: 'boolean', short: 'y' },
      'dry-run': { type: 'boolean' },
      'no-rollback': { type: 'boolean' },
      rollback: { type: 'boolean' },
      'push-only': { type: 'boolean' },
      'allow-missing-images': { type: 'boolean' },
      timeout: { type: 'string' },
      message: { type: 'string', short: 'm' },
      json: { type: 'boolean' },
      ...targetOptions,
    },
  })
  if (values['push-only'] && values['dry-run'])
    throw new NsopsError('--push-only and --dry-run contradict each other: one pushes, the other does not.')
  if (values['push-only'] && values['no-rollback'])
    throw new NsopsError('--push-only never rolls back (it does not verify); drop --no-rollback.')
  if (values.rollback && values['no-rollback'])
    throw new NsopsError('--rollback and --no-rollback contradict each other; pick one.')
  if (values.rollback && values.message)
    throw new NsopsError('--message names a deploy commit; a rollback writes its own revert message.')
  if (values.message !== undefined && !values.message.trim())
    throw new NsopsError('--message is empty.', { hint: 'give a commit subject, e.g. --message "sonarr: 2 replicas".' })
  const timeoutMs = values.timeout !== undefined ? parseDuration(values.timeout) : undefined
  if (values.json) setJsonMode(true)

  const { repoRoot } = await import('../core/paths.ts')
  const { runDeploy } = await import('../deploy/run.ts')
  const { interruptOnSigint } = await import('../deploy/interrupt.ts')
  const sigint = interruptOnSigint(() => log.warn('stopping at the next safe point (Ctrl-C again to quit at once)…'))
  try {
    const report = await runDeploy({
      ns,
      repoDir: repoRoot,
      mode: values.rollback ? 'rollback' : 'deploy',
      yes: values.yes,
      dryRun: values['dry-run'],
      rollbackOnFailure: !values['no-rollback'],
      pushOnly: values['push-only'],
      allowMissingImages: values['allow-missing-images'],
      ...(timeoutMs !== undefined ? { timeoutMs } : {}),
      ...(values.message ? { message: values.message } : {}),
      target: resolveTarget(values),
      signal: sigint.signal,
      json: values.json,
    })
    if (values.json) {
      process.stdout.write(`${JSON.stringify(report, null, 2)}\n`)
    } else if (report.exitCode === ExitCode.ok) {
      process.stderr.write(`${c.green('✓')} ${report.summary}\n`)
    } else {
      process.stderr.write(`${c.red('error:')} ${report.summary}\n${report.hint ? `hint: ${report.hint}\n` : ''}`)
    }
    return report.exitCode
  } finally {
    sigint.dispose()
  }
}
