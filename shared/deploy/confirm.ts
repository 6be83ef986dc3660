// Asking before anything is committed or pushed. --yes answers for scripts; otherwise we ask
// only on a terminal: without one (CI, a pipe, </dev/null) there is nobody to answer, and a
// prompt would hang or read garbage, so the deploy is refused with what to pass instead.
import readline from 'node:readline'
import { NsopsError } from '../core/errors.ts'
import { Interrupted, throwIfInterrupted } from './interrupt.ts'

export type PromptInput = NodeJS.ReadableStream & { isTTY?: boolean }

export interface ConfirmOptions {
  /** --yes: the answer is yes without asking */
  yes?: boolean
  /** where the answer comes from; default process.stdin */
  input?: PromptInput
  /** where the question goes; default process.stderr (stdout may be data) */
  output?: NodeJS.WritableStream
  signal?: AbortSignal
  /** what is being confirmed, for the refusal without a terminal (e.g. "deploying arr-stack") */
  what?: string
  /** for the refusal without a terminal: what was left undone, and what to pass instead */
  refusal?: { undone: string; hint: string }
}

/** `yes`/`y` (any case) is yes; anything else, an empty line or the end of input is no. */
export function isYes(answer: string): boolean {
  return /^\s*y(es)?\s*$/i.test(answer)
}

export async function confirm(question: string, opts: ConfirmOptions = {}): Promise<boolean> {
  if (opts.yes) return true
  const input = opts.input ?? process.stdin
  const what = opts.what ?? 'this'
  if (!input.isTTY) {
    const refusal = opts.refusal ?? {
      undone: 'nothing was committed or pushed',
      hint: 'pass --yes to confirm without a prompt (scripts, CI), or --dry-run to only see what would change.',
    }
    throw new NsopsError(
      `${what} needs a confirmation, and there is no terminal to ask on (stdin is not a TTY), so ${refusal.undone}.`,
      { hint: refusal.hint },
    )
  }
  throwIfInterrupted(opts.signal)
  const rl = readline.createInterface({ input, output: opts.output ?? process.stderr })
  let interrupted = () => {}
  try {
    return await new Promise<boolean>((resolve, reject) => {
      let settled = false
      const settle = (fn: () => void) => {
        if (!settled) {
          settled = true
          fn()
        }
      }
      interrupted = () => settle(() => reject(new Interrupted()))
      // on a terminal readline takes Ctrl-C itself (raw mode) and reports it here
      rl.on('SIGINT', interrupted)
      opts.signal?.addEventListener('abort', interrupted, { once: true })
      // end of input (Ctrl-D) is a no, never a hang
      rl.on('close', () => settle(() => resolve(false)))
      rl.question(`${question} [y/N] `, (answer) => settle(() => resolve(isYes(answer))))
    })
  } finally {
    opts.signal?.removeEventListener('abort', interrupted)
    rl.close()
  }
}
