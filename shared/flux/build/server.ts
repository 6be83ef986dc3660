// The flux-build process (shared/tools/flux-build): kustomize-controller's own build code as
// one long-lived child per nsops process, asked one JSON line at a time. Hand-written beside
// kustomize/build.ts's KustomizeServer (same protocol shape) rather than shared with it, so
// the kustomize room stays free of Flux: the two differ in what they are asked.
import { spawn, type ChildProcess } from 'node:child_process'
import { toolPath } from '../../tools/provision.ts'

export interface FluxBuildRequest {
  root: string
  kustomization: Record<string, unknown>
  objects: Record<string, unknown>[]
  strict: boolean
  applied: boolean
  /** objects to substitute only (no build of spec.path) */
  substitute?: Record<string, unknown>[]
}

export interface FluxBuildAnswer {
  id: number
  objects?: unknown[]
  error?: string
}

class FluxBuildServer {
  private readonly child: ChildProcess
  private readonly waiting: { id: number; resolve(a: FluxBuildAnswer): void; reject(e: Error): void }[] = []
  private nextId = 1
  private pending = ''
  private stderr = ''
  exited = false

  constructor(binary: string) {
    // its own process group: a Ctrl-C in the terminal goes to the foreground group, and the
    // dev loop still builds during its cleanup (which of the applied objects are prod's)
    this.child = spawn(binary, ['serve'], { stdio: ['pipe', 'pipe', 'pipe'], detached: true })
    // never what keeps node running: idle, it is unreferenced; EOF on its stdin ends it
    this.child.unref()
    for (const s of [this.child.stdin, this.child.stdout, this.child.stderr] as unknown as { unref?(): void }[])
      s.unref?.()
    this.child.stdout!.setEncoding('utf8')
    this.child.stdout!.on('data', (chunk: string) => this.read(chunk))
    this.child.stderr!.setEncoding('utf8')
    this.child.stderr!.on('data', (chunk: string) => {
      this.stderr = (this.stderr + chunk).slice(-4000)
    })
    this.child.stdin!.on('error', () => {}) // EPIPE when it died: reported by 'exit'
    this.child.on('error', (err) => this.fail(err))
    this.child.on('exit', (code, signal) =>
      this.fail(new Error(`flux-build exited (${signal ?? code})${this.stderr ? `: ${this.stderr.trim()}` : ''}`)),
    )
  }

  build(req: FluxBuildRequest): Promise<FluxBuildAnswer> {
    if (this.exited) return Promise.reject(new Error('flux-build is not running'))
    const id = this.nextId++
    return new Promise((resolve, reject) => {
      if (this.waiting.length === 0) (this.child.stdout as unknown as { ref(): void }).ref()
      this.waiting.push({ id, resolve, reject })
      this.child.stdin!.write(`${JSON.stringify({ id, ...req })}\n`)
    })
  }

  private read(chunk: string): void {
    this.pending += chunk
    let nl = this.pending.indexOf('\n')
    while (nl >= 0) {
      const line = this.pending.slice(0, nl)
      this.pending = this.pending.slice(nl + 1)
      nl = this.pending.indexOf('\n')
      const next = this.waiting.shift()
      if (this.waiting.length === 0) (this.child.stdout as unknown as { unref(): void }).unref()
      if (!next) continue
      try {
        const answer = JSON.parse(line) as FluxBuildAnswer
        if (answer.id !== next.id) throw new Error(`flux-build answered request ${answer.id}, expected ${next.id}`)
        next.resolve(answer)
      } catch (err) {
        next.reject(err as Error)
      }
    }
  }

  private fail(err: Error): void {
    this.exited = true
    if (current?.server === this) current = undefined
    for (const w of this.waiting.splice(0)) w.reject(err)
  }

  stop(): void {
    this.exited = true
    this.child.stdin!.end()
  }
}

let current: { server?: FluxBuildServer; starting: Promise<FluxBuildServer> } | undefined

/** This process's flux-build server, started (and provisioned) on first use. */
export function fluxBuildServer(): Promise<FluxBuildServer> {
  if (current && !current.server?.exited) return current.starting
  const c: NonNullable<typeof current> = {
    starting: toolPath('flux-build').then((bin) => {
      c.server = new FluxBuildServer(bin)
      return c.server
    }),
  }
  current = c
  c.starting.catch(() => {
    if (current === c) current = undefined
  })
  return c.starting
}

/** Starts the server now, for a caller with other work to do before its first build. */
export function warmFluxBuild(): void {
  fluxBuildServer().catch(() => {}) // the build itself reports a server that cannot be had
}

/** Ends this process's flux-build server, if one runs (it also ends when we exit). */
export function stopFluxBuild(): void {
  current?.server?.stop()
  current = undefined
}
