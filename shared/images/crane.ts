// go-containerregistry's crane, the pinned one (k8s/versions.yaml): nsops pushes, appends layers
// and reads images back through it rather than speaking the OCI distribution API by hand, so
// auth (~/.docker/config.json, credential helpers), plain HTTP on loopback and manifest
// formats are handled the way ko and most registry tooling handle them.
import { execFile } from 'node:child_process'
import { NsopsError } from '../core/errors.ts'
import { toolPath } from '../tools/provision.ts'

export interface CraneResult {
  stdout: string
  stderr: string
}

/** Runs `crane ARGS…`; a failure is an NsopsError carrying crane's own message. */
export async function crane(
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: Buffer; timeoutMs?: number } = {},
): Promise<CraneResult> {
  const bin = await toolPath('crane')
  return new Promise((resolve, reject) => {
    const child = execFile(
      bin,
      args,
      {
        cwd: opts.cwd,
        env: { ...process.env, ...opts.env },
        maxBuffer: 64 << 20,
        timeout: opts.timeoutMs ?? 300_000,
        encoding: 'buffer',
      },
      (err, stdout, stderr) => {
        const out = { stdout: stdout.toString(), stderr: stderr.toString() }
        if (!err) return resolve(out)
        reject(
          new NsopsError(`crane ${args[0]} failed: ${out.stderr.trim() || err.message}`, {
            hint: 'crane speaks to the registry itself: check that it answers (GET /v2/) and that the reference is right.',
            cause: err,
          }),
        )
      },
    )
    if (opts.input) child.stdin?.end(opts.input)
    else child.stdin?.end()
  })
}

/** The digest (sha256:…) a reference resolves to in its registry. */
export async function imageDigest(ref: string): Promise<string> {
  return (await crane(['digest', ref])).stdout.trim()
}
