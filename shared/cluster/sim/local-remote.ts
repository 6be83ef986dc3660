// `just dev-up` on the sim cluster: this repo gets a local remote (`nsops-local`, the
// cluster's own git server) that Flux reads, so `just deploy` works fully offline. The
// server's URL normally survives a restart (controllers.ts keeps its port); when it cannot,
// repointLocalGit moves the GitRepositories and remotes that named the old URL to the new one.
import fs from 'node:fs'
import path from 'node:path'
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node'
import { simpleGit } from 'simple-git'
import { NsopsError, errorMessage } from '../../core/errors.ts'
import { fluxKinds, listFlux } from '../../flux/kinds.ts'
import { apiMessage, type Kube } from '../../kube/client.ts'
import { repoRoot } from '../../core/paths.ts'
import { namespaceCharts, publishCharts, type PublishedChart } from '../../images/charts.ts'
import { bootstrapFlux, localGitUrl, previousGitUrls } from './controllers.ts'

export const LOCAL_REMOTE = 'nsops-local'

/** The repositories bootstrapLocalGitOps gave a `nsops-local` remote, recorded in the cluster's Flux state dir. */
const remotesFile = (fluxStateDir: string) => path.join(fluxStateDir, 'local-remotes.json')

function recordedRepos(fluxStateDir: string): string[] {
  try {
    return JSON.parse(fs.readFileSync(remotesFile(fluxStateDir), 'utf8')) as string[]
  } catch {
    return []
  }
}

function recordRepo(fluxStateDir: string, repoDir: string): void {
  const repos = new Set(recordedRepos(fluxStateDir))
  repos.add(path.resolve(repoDir))
  fs.writeFileSync(remotesFile(fluxStateDir), JSON.stringify([...repos], null, 2))
}

export async function bootstrapLocalGitOps(
  kube: Kube,
  kubeconfig: string,
  repoDir = repoRoot,
): Promise<{ url: string; branch: string; upstreamNote: string; charts: PublishedChart[] }> {
  const fluxStateDir = path.join(path.dirname(kubeconfig), 'flux')
  const url = localGitUrl(fluxStateDir)
  if (!url)
    throw new NsopsError('the sim cluster runs no git server (its Flux controllers are not started).', {
      hint: 'Run `just dev-up` or `just cluster-up` again.',
    })
  const git = simpleGit({ baseDir: repoDir })
  const branch = (await git.revparse(['--abbrev-ref', 'HEAD'])).trim()
  if (branch === 'HEAD')
    throw new NsopsError('HEAD is detached; Flux follows a branch.', { hint: 'Check out a branch first.' })
  const remotes = await git.getRemotes(true)
  if (remotes.some((r) => r.name === LOCAL_REMOTE)) await git.remote(['set-url', LOCAL_REMOTE, url])
  else await git.addRemote(LOCAL_REMOTE, url)
  recordRepo(fluxStateDir, repoDir)
  // Flux is pointed at the live server whether or not the push goes through: a push refused
  // because the server holds a commit this clone lacks must not leave the GitRepository on a
  // URL nothing answers (it then follows the server's branch, which `just deploy` rebases onto).
  let pushError: unknown
  try {
    await git.push(LOCAL_REMOTE, `HEAD:refs/heads/${branch}`)
  } catch (err) {
    pushError = err
  }
  // the charts this repository holds go to the cluster's registry before Flux looks for them
  let charts: PublishedChart[] = []
  let chartError: unknown
  try {
    charts = (await publishCharts(kube, repoCharts(repoDir))).charts
  } catch (err) {
    chartError = err
  }
  await bootstrapFlux(kube, { repoUrl: url, branch, repoDir })
  if (chartError)
    throw new NsopsError(`publishing this repository's charts failed: ${errorMessage(chartError)}`, {
      hint: "Flux reads the repository all the same; a HelmRelease of these charts fails until `just dev-up` publishes them (`just cluster-status` shows the registry's log).",
    })
  if (pushError) {
    throw new NsopsError(`pushing ${branch} to ${LOCAL_REMOTE} (${url}) failed: ${errorMessage(pushError)}`, {
      hint:
        `Flux reads ${url} all the same, at the commit the server holds. If the server has commits this clone lacks, ` +
        `\`git pull --rebase ${LOCAL_REMOTE} ${branch}\` and run \`just dev-up\` again.`,
    })
  }
  const upstream = (await git.status()).tracking
  let upstreamNote: string
  if (!upstream) {
    await git.branch(['--set-upstream-to', `${LOCAL_REMOTE}/${branch}`])
    upstreamNote = `${branch} now tracks ${LOCAL_REMOTE}/${branch}, so \`just deploy\` pushes there`
  } else if (upstream.startsWith(`${LOCAL_REMOTE}/`)) {
    upstreamNote = `\`just deploy\` pushes to ${upstream}`
  } else {
    upstreamNote = `${branch} tracks ${upstream}; to deploy to this cluster run \`git branch -u ${LOCAL_REMOTE}/${branch}\``
  }
  return { url, branch, upstreamNote, charts }
}

/** Every namespace's application charts (namespaces/<ns>/charts/<name>) in a repository. */
export function repoCharts(repoDir: string): string[] {
  const root = path.join(repoDir, 'namespaces')
  if (!fs.existsSync(root)) return []
  return fs
    .readdirSync(root)
    .sort()
    .flatMap((ns) => namespaceCharts(path.join(root, ns)))
}

export interface Repointed {
  gitRepositories: string[]
  /** root Kustomizations whose patch keeps their GitRepository on the local server */
  kustomizations: string[]
  remotes: string[]
}

/**
 * After the git server started on another port than before: every GitRepository, root
 * Kustomization patch and recorded `nsops-local` remote that still names one of the server's earlier URLs is moved to
 * the current one. Only those: a GitRepository reading any other server is left alone.
 */
export async function repointLocalGit(kube: Kube, fluxStateDir: string): Promise<Repointed> {
  const url = localGitUrl(fluxStateDir)
  const old = new Set(previousGitUrls(fluxStateDir))
  const done: Repointed = { gitRepositories: [], kustomizations: [], remotes: [] }
  if (!url || old.size === 0) return done
  const kind = fluxKinds.GitRepository
  // right after a restart a CRD's storage may answer 429 "(re)initializing" for a moment: listFlux waits it out
  for (const repo of await listFlux(kube, 'GitRepository')) {
    if (!old.has(repo.spec?.url as string)) continue
    const { namespace, name } = repo.metadata as { namespace: string; name: string }
    try {
      await kube.custom.patchNamespacedCustomObject(
        { ...kind, namespace, name, body: { spec: { url } }, fieldManager: 'nsops-git-server' },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      )
      done.gitRepositories.push(`${namespace}/${name}`)
    } catch (err) {
      throw new NsopsError(`re-pointing GitRepository ${namespace}/${name} at ${url} failed: ${apiMessage(err)}.`, {
        hint: "Run `just dev-up` again; it points the GitRepository at the cluster's git server.",
      })
    }
  }
  // an adopted repository's root Kustomizations carry the URL in a patch that keeps their
  // GitRepository on this server (controllers.ts repositoryBootstrap): moved along
  const ksKind = fluxKinds.Kustomization
  for (const ks of await listFlux(kube, 'Kustomization')) {
    const patches = ks.spec?.patches as { patch: string; target?: Record<string, string> }[] | undefined
    if (!patches?.some((p) => [...old].some((u) => p.patch.includes(u)))) continue
    const { namespace, name } = ks.metadata as { namespace: string; name: string }
    const moved = patches.map((p) => ({ ...p, patch: [...old].reduce((text, u) => text.replaceAll(u, url), p.patch) }))
    try {
      await kube.custom.patchNamespacedCustomObject(
        { ...ksKind, namespace, name, body: { spec: { patches: moved } }, fieldManager: 'nsops-git-server' },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      )
      done.kustomizations.push(`${namespace}/${name}`)
    } catch (err) {
      throw new NsopsError(
        `re-pointing Kustomization ${namespace}/${name}'s patch at ${url} failed: ${apiMessage(err)}.`,
        {
          hint: "Run `just dev-up` again; it points the repository's Flux roots at the cluster's git server.",
        },
      )
    }
  }
  for (const dir of recordedRepos(fluxStateDir)) {
    if (!fs.existsSync(dir)) continue
    const git = simpleGit({ baseDir: dir })
    const remote = (await git.getRemotes(true).catch(() => [])).find((r) => r.name === LOCAL_REMOTE)
    if (!remote || !old.has(remote.refs.push) || remote.refs.push === url) continue
    await git.remote(['set-url', LOCAL_REMOTE, url])
    done.remotes.push(dir)
  }
  return done
}
