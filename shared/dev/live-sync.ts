// Live sync (Tilt's live_update): saved files go into the running containers of an image's
// pods as a tar stream over `kubectl exec`, then the image's `run` commands run there — no
// rebuild, no restart. The container needs `sh`, `head` and `tar` (Tilt's needs tar and rm):
// on an image without them (scratch) the exec fails and the loop falls back to a full build.
// `head -c N` reads exactly the tar's bytes, so nothing depends on the exec closing stdin
// (kwok's local exec, the sim's, does not). On the sim a container's files are a local folder
// whose path kwok's Exec exports as NSOPS_CONTAINER_ROOT; in a real container it is unset.
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import * as tar from 'tar'
import type { ImageSpec } from '../config/image-types.ts'
import type { Kube } from '../kube/client.ts'
import { imageName } from '../images/rewrite.ts'
import { toolPath } from '../tools/provision.ts'

export interface SyncResult {
  pods: number
  files: number
  ms: number
}

/** Single-quoted for sh. */
const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`

/** Which sync rule covers a file (absolute), if any. */
export function syncRuleFor(image: ImageSpec, file: string): ImageSpec['sync'][number] | undefined {
  return image.sync.find((r) => {
    const rel = path.relative(path.resolve(image.context, r.from), file)
    return rel === '' || !(rel.startsWith('..') || path.isAbsolute(rel))
  })
}

function kubectl(bin: string, kube: Kube, args: string[], input?: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const base = [...(kube.kubeconfigPath ? ['--kubeconfig', kube.kubeconfigPath] : []), '--context', kube.context]
    const child = spawn(bin, [...base, ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (b: Buffer) => (out += b.toString()))
    child.stderr.on('data', (b: Buffer) => (err += b.toString()))
    child.on('error', reject)
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(err.trim() || `kubectl exited ${code}`))))
    child.stdin.end(input)
  })
}

export async function syncFiles(
  kube: Kube,
  opts: {
    namespace: string
    image: ImageSpec
    /** <pull host>/<ns>/<image>: the containers that run this image */
    repository: string
    /** absolute paths of the saved files */
    files: string[]
    onLine: (line: string) => void
  },
): Promise<SyncResult> {
  const t0 = performance.now()
  const bin = await toolPath('kubectl')
  const pods = (await kube.core.listNamespacedPod({ namespace: opts.namespace })).items.filter(
    (p) => p.status?.phase === 'Running' && !p.metadata?.deletionTimestamp,
  )
  const targets = pods.flatMap((p) =>
    (p.spec?.containers ?? [])
      .filter((c) => c.image && imageName(c.image) === opts.repository)
      .map((c) => ({ pod: p.metadata!.name!, container: c.name })),
  )
  if (!targets.length) throw new Error(`no running container of ${opts.repository} in ${opts.namespace} to sync into`)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-sync-'))
  try {
    // one tar per rule: its files relative to `from`, unpacked under `to`
    const byRule = new Map<ImageSpec['sync'][number], string[]>()
    for (const f of opts.files) {
      const rule = syncRuleFor(opts.image, f)
      if (rule && fs.existsSync(f)) byRule.set(rule, [...(byRule.get(rule) ?? []), f])
    }
    let i = 0
    for (const [rule, files] of byRule) {
      const from = path.resolve(opts.image.context, rule.from)
      const file = path.join(dir, `${i++}.tar`)
      const isDir = fs.statSync(from).isDirectory()
      const cwd = isDir ? from : path.dirname(from)
      await tar.c(
        { file, cwd, portable: true },
        files.map((f) => path.relative(cwd, f)),
      )
      const bytes = fs.readFileSync(file)
      const to = isDir ? rule.to : path.posix.dirname(rule.to)
      const script = `R="\${NSOPS_CONTAINER_ROOT:-}"; mkdir -p "$R"${q(to)} && head -c ${bytes.length} | tar -xf - -C "$R"${q(to)}`
      await Promise.all(
        targets.map(async (t) => {
          await kubectl(
            bin,
            kube,
            ['-n', opts.namespace, 'exec', '-i', t.pod, '-c', t.container, '--', 'sh', '-c', script],
            bytes,
          )
          opts.onLine(`synced ${files.length} file(s) to ${t.pod}/${t.container}:${to}`)
        }),
      )
    }
    for (const r of opts.image.run) {
      const rel = opts.files.map((f) => path.relative(opts.image.context, f))
      if (r.trigger && !rel.some((f) => r.trigger!.some((g) => path.matchesGlob(f, g)))) continue
      for (const t of targets) {
        const out = await kubectl(bin, kube, [
          '-n',
          opts.namespace,
          'exec',
          t.pod,
          '-c',
          t.container,
          '--',
          'sh',
          '-c',
          r.cmd,
        ])
        opts.onLine(`ran ${r.cmd} in ${t.pod}/${t.container}${out.trim() ? `: ${out.trim()}` : ''}`)
      }
    }
    return { pods: targets.length, files: opts.files.length, ms: Math.round(performance.now() - t0) }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}
