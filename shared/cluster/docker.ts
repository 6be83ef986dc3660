// kind and k3d need a Docker engine that answers, not just the docker client.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'

const run = promisify(execFile)

export async function commandExists(cmd: string): Promise<boolean> {
  try {
    await run('sh', ['-c', `command -v ${cmd}`])
    return true
  } catch {
    return false
  }
}

export async function dockerEngineAnswers(): Promise<{ ok: true } | { ok: false; reason: string }> {
  if (!(await commandExists('docker'))) return { ok: false, reason: 'the docker client is not installed' }
  try {
    await run('docker', ['info', '--format', '{{.ServerVersion}}'], { timeout: 5000 })
    return { ok: true }
  } catch {
    return { ok: false, reason: 'no Docker engine answers (`docker info` fails)' }
  }
}
