// `just dev-up` on the sim cluster: this repo gets a local remote (`nsops-local`, the
// cluster's own git server) that Flux reads, so `just deploy` works fully offline.
import path from 'node:path'
import { simpleGit } from 'simple-git'
import { NsopsError } from '../errors.ts'
import type { Kube } from '../kube.ts'
import { repoRoot } from '../paths.ts'
import { bootstrapFlux, localGitUrl } from './controllers.ts'

export const LOCAL_REMOTE = 'nsops-local'

export async function bootstrapLocalGitOps(kube: Kube, kubeconfig: string, repoDir = repoRoot): Promise<{ url: string; branch: string; upstreamNote: string }> {
  const url = localGitUrl(path.join(path.dirname(kubeconfig), 'flux'))
  if (!url) throw new NsopsError('the sim cluster runs no git server (its Flux controllers are not started).', { hint: 'Run `just dev-up` or `just cluster-up` again.' })
  const git = simpleGit({ baseDir: repoDir })
  const branch = (await git.revparse(['--abbrev-ref', 'HEAD'])).trim()
  if (branch === 'HEAD') throw new NsopsError('HEAD is detached; Flux follows a branch.', { hint: 'Check out a branch first.' })
  const remotes = await git.getRemotes(true)
  if (remotes.some((r) => r.name === LOCAL_REMOTE)) await git.remote(['set-url', LOCAL_REMOTE, url]) // the port changes per start
  else await git.addRemote(LOCAL_REMOTE, url)
  await git.push(LOCAL_REMOTE, `HEAD:refs/heads/${branch}`)
  await bootstrapFlux(kube, { repoUrl: url, branch })
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
  return { url, branch, upstreamNote }
}
