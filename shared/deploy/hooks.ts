// The namespace's deploy hooks (namespace.ts `hooks`): beforeCommit between validation and
// the commit (e.g. `sops --encrypt`), afterDeploy once Flux applied the push and the
// workloads are healthy (e.g. a smoke test). They run against the prod cluster with env
// 'prod' and no dev context guard: deploy is meant for prod. What beforeCommit changes is
// found by comparing the working tree before and after it, because a hook may write any file
// by any means (zx, a tool, a rename) and git status is what the commit will see.
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { simpleGit } from 'simple-git'
import { NsopsError, errorMessage } from '../core/errors.ts'
import type { Kube } from '../kube/client.ts'
import type { TaskRun } from '../tasks/run.ts'
import type { HookName } from '../config/task-types.ts'
import { isUnder } from './preflight.ts'

/** A hook's result in the deploy report (`hooks[]` of --json). */
export interface HookReport {
  hook: Extract<HookName, 'beforeCommit' | 'afterDeploy'>
  ok: boolean
  ms: number
  at: string
  exitCode?: number
  error?: string
  /** its log: the commands it ran (`$ …`) and their output */
  output: string[]
  /** beforeCommit: the files it changed under the namespace's folder (repo-relative) */
  files?: string[]
}

export function hookReport(hook: HookReport['hook'], run: TaskRun, files?: string[]): HookReport {
  return {
    hook,
    ok: run.ok,
    ms: run.ms,
    at: run.at,
    ...(run.exitCode !== undefined ? { exitCode: run.exitCode } : {}),
    ...(run.error ? { error: run.error } : {}),
    output: run.lines,
    ...(files ? { files } : {}),
  }
}

/** What git status shows of the working tree: each dirty path with a hash of its content, and HEAD. */
export interface TreeSnapshot {
  head: string
  files: Map<string, string>
}

export async function snapshotTree(root: string): Promise<TreeSnapshot> {
  const g = simpleGit({ baseDir: root })
  const head = (await g.raw(['rev-parse', '-q', '--verify', 'HEAD']).catch(() => '')).trim()
  // -z: paths as they are (no quoting); every untracked file, not just its folder
  const out = await g.raw(['status', '--porcelain=v1', '-z', '--untracked-files=all', '--no-renames'])
  const files = new Map<string, string>()
  for (const entry of out.split('\0')) {
    if (entry.length < 4) continue
    const file = entry.slice(3)
    files.set(file, `${entry.slice(0, 2)} ${contentHash(path.join(root, file))}`)
  }
  return { head, files }
}

function contentHash(file: string): string {
  try {
    return createHash('sha1').update(fs.readFileSync(file)).digest('hex')
  } catch {
    return 'absent'
  }
}

/** The repo-relative paths whose state differs between two snapshots, sorted. */
export function changedBetween(before: TreeSnapshot, after: TreeSnapshot): string[] {
  const paths = new Set([...before.files.keys(), ...after.files.keys()])
  return [...paths].filter((p) => before.files.get(p) !== after.files.get(p)).sort()
}

/**
 * Splits what beforeCommit changed into the namespace's own files and the rest; throws when
 * it changed anything else (or made a commit): a deploy of one namespace commits only its
 * folder, so those changes would be left behind or ride along unvalidated.
 */
export function beforeCommitChanges(before: TreeSnapshot, after: TreeSnapshot, nsDir: string, ns: string): string[] {
  const changed = changedBetween(before, after)
  const outside = changed.filter((f) => !isUnder(f, nsDir))
  if (after.head !== before.head) {
    throw new NsopsError(
      `the beforeCommit hook of ${ns} made a commit itself (HEAD moved from ${before.head.slice(0, 7)} to ${after.head.slice(0, 7)}); a deploy commits only its own changes under ${nsDir}/, so nothing was committed or pushed.`,
      {
        hint: `make the hook only write files (the deploy commits them), undo its commit (\`git reset --soft HEAD~1\` keeps the changes), then run again.`,
      },
    )
  }
  if (outside.length) {
    throw new NsopsError(
      `the beforeCommit hook of ${ns} changed files outside ${nsDir}/ (${outside.slice(0, 5).join(', ')}${outside.length > 5 ? ', …' : ''}), which a deploy of ${ns} does not commit, so nothing was committed or pushed.`,
      {
        hint: `make the hook write only under ${nsDir}/; \`git status\` shows what it changed (undo it with \`git restore\` or by hand), then run again.`,
      },
    )
  }
  return changed
}

/** A kube client for a hook's context even when the cluster does not answer (--push-only offline). */
export function hookKube(kube: Kube | undefined, make: () => Kube): Kube {
  if (kube) return kube
  try {
    return make()
  } catch (err) {
    throw new NsopsError(
      `the beforeCommit hook needs a kube client, and no kubeconfig could be loaded (${errorMessage(err)}); nothing was committed or pushed.`,
      {
        hint: 'pass --kubeconfig/--context, or run `just cluster-up`; then run again.',
      },
    )
  }
}
