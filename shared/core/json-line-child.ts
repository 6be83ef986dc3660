// A long-lived helper process asked one JSON line at a time, answered one JSON line each, in
// order (kustomize-server, flux-build): one per nsops process, started on first use, so a dev
// loop that builds on every save pays the helper's start-up once.
import { spawn, type ChildProcess } from 'node:child_process'

type Unrefable = { ref?(): void; unref?(): void }

/** One child: requests go out one per line as `{ id, ...request }` and answers carry the same id. */
export class JsonLineChild<Request extends object, Answer extends { id: number }> {
  private readonly child: ChildProcess
  private readonly waiting: { id: number; resolve(a: Answer): void; reject(e: Error): void }[] = []
  private nextId = 1
  private chunks: string[] = []
  private stderr = ''
  exited = false

  /** `name` is how errors call it ("kustomize-server exited (1): …"). */
  constructor(
    private readonly name: string,
    readonly binary: string,
    args: string[],
  ) {
    // its own process group: a Ctrl-C in the terminal goes to the foreground group, and the
    // dev loop still builds during its cleanup (which of the applied objects are prod's)
    this.child = spawn(binary, args, { stdio: ['pipe', 'pipe', 'pipe'], detached: true })
    // never what keeps node running: idle, the process and its pipes are unreferenced, and
    // EOF on its stdin (our exit, however it happens) ends it
    this.child.unref()
    for (const s of [this.child.stdin, this.child.stdout, this.child.stderr] as unknown as Unrefable[]) s.unref?.()
    this.child.stdout!.setEncoding('utf8')
    this.child.stdout!.on('data', (chunk: string) => this.read(chunk))
    this.child.stderr!.setEncoding('utf8')
    this.child.stderr!.on('data', (chunk: string) => {
      this.stderr = (this.stderr + chunk).slice(-4000)
    })
    this.child.stdin!.on('error', () => {}) // EPIPE when it died: reported by 'exit'
    this.child.on('error', (err) => this.fail(err))
    this.child.on('exit', (code, signal) =>
      this.fail(new Error(`${name} exited (${signal ?? code})${this.stderr ? `: ${this.stderr.trim()}` : ''}`)),
    )
  }

  ask(request: Request): Promise<Answer> {
    if (this.exited) return Promise.reject(new Error(`${this.name} is not running`))
    const id = this.nextId++
    return new Promise((resolve, reject) => {
      if (this.waiting.length === 0) (this.child.stdout as unknown as Unrefable).ref?.() // an answer is due: stay alive for it
      this.waiting.push({ id, resolve, reject })
      this.child.stdin!.write(`${JSON.stringify({ id, ...request })}\n`)
    })
  }

  private read(chunk: string): void {
    let nl = chunk.indexOf('\n')
    while (nl >= 0) {
      this.chunks.push(chunk.slice(0, nl))
      const line = this.chunks.join('')
      this.chunks = []
      chunk = chunk.slice(nl + 1)
      nl = chunk.indexOf('\n')
      const next = this.waiting.shift()
      if (this.waiting.length === 0) (this.child.stdout as unknown as Unrefable).unref?.()
      if (!next) continue
      try {
        const answer = JSON.parse(line) as Answer
        if (answer.id !== next.id) throw new Error(`${this.name} answered request ${answer.id}, expected ${next.id}`)
        next.resolve(answer)
      } catch (err) {
        next.reject(err as Error)
      }
    }
    if (chunk) this.chunks.push(chunk)
  }

  private fail(err: Error): void {
    this.exited = true
    for (const w of this.waiting.splice(0)) w.reject(err)
  }

  stop(): void {
    this.exited = true
    this.child.stdin!.end()
  }
}

/** This process's one child of a kind: started on first use, again after it exited, stopped on demand. */
export interface LazyChild<C> {
  get(): Promise<C>
  /** starts it now, for a caller with other work to do before its first request */
  warm(): void
  /** ends it, if one runs (it also ends by itself when we exit) */
  stop(): void
}

export function lazyChild<C extends { exited: boolean; stop(): void }>(start: () => Promise<C>): LazyChild<C> {
  let current: { child?: C; starting: Promise<C> } | undefined
  const get = (): Promise<C> => {
    if (current && !current.child?.exited) return current.starting
    const c: NonNullable<typeof current> = {
      starting: start().then((child) => {
        c.child = child
        return child
      }),
    }
    current = c
    c.starting.catch(() => {
      if (current === c) current = undefined
    })
    return c.starting
  }
  return {
    get,
    warm: () => {
      get().catch(() => {}) // the request itself reports a child that cannot be had
    },
    stop: () => {
      current?.child?.stop()
      current = undefined
    },
  }
}
