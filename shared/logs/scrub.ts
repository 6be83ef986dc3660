// Secret values never leave nsops in clear: every path that shows or writes container output
// (`just logs`, the dev session's log feed, its --output-snapshot) passes each line through a
// scrubber that knows the values of the namespace's Secrets and replaces them by [redacted] —
// in the forms they take in a log: as they are, line by line, base64-encoded, and escaped
// inside a JSON string. When the Secrets cannot be read, the scrubber says so (`unreadable`)
// and the caller fails closed: it withholds the lines or stops, and says why on screen.
import { makeInformer, type V1Secret } from '@kubernetes/client-node'
import type { Kube } from '../kube/client.ts'

/** Values shorter than this are not scrubbed: "true", "8080" would blank half a log. */
export const MIN_SECRET_LENGTH = 6

export const REDACTED = '[redacted]'

/** The forms a value takes in a log line: itself, each of its lines, base64, JSON-escaped. */
export function secretForms(value: string): string[] {
  const out = new Set<string>()
  for (const v of [value, ...value.split('\n')].map((x) => x.trim())) {
    if (v.length < MIN_SECRET_LENGTH) continue
    out.add(v)
    out.add(Buffer.from(v, 'utf8').toString('base64'))
    out.add(Buffer.from(v, 'utf8').toString('base64').replace(/=+$/, ''))
    out.add(JSON.stringify(v).slice(1, -1))
  }
  // the whole value with its newlines, base64 and JSON-escaped (a certificate, a key file)
  if (value.trim().length >= MIN_SECRET_LENGTH) {
    out.add(Buffer.from(value, 'utf8').toString('base64').replace(/=+$/, ''))
    out.add(JSON.stringify(value).slice(1, -1))
  }
  return [...out].filter((v) => v.length >= MIN_SECRET_LENGTH)
}

/** The decoded values of a Secret. */
export function secretValues(s: V1Secret): string[] {
  return [
    ...Object.values(s.data ?? {}).map((v) => Buffer.from(v, 'base64').toString('utf8')),
    ...Object.values(s.stringData ?? {}),
  ]
}

export class Scrubber {
  private readonly byKey = new Map<string, string[]>()
  private re: RegExp | undefined
  /** why the Secrets could not be read; lines must then not be shown as they are */
  unreadable: string | undefined

  set(key: string, values: string[]): void {
    this.byKey.set(key, values.flatMap(secretForms))
    this.rebuild()
  }

  delete(key: string): void {
    this.byKey.delete(key)
    this.rebuild()
  }

  scrub(line: string): string {
    return this.re ? line.replace(this.re, REDACTED) : line
  }

  private rebuild(): void {
    // the longest first, so a value is replaced whole and not a part of it
    const all = [...new Set([...this.byKey.values()].flat())].sort((a, b) => b.length - a.length)
    this.re = all.length
      ? new RegExp(all.map((v) => v.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'g')
      : undefined
  }
}

/** One read of a namespace's Secrets into a scrubber; `unreadable` set (not thrown) when they cannot be listed. */
export async function readSecrets(kube: Kube, namespace: string, into = new Scrubber()): Promise<Scrubber> {
  try {
    const list = await kube.core.listNamespacedSecret({ namespace })
    for (const s of list.items) into.set(`${namespace}/${s.metadata?.name}`, secretValues(s))
    into.unreadable = undefined
  } catch (err) {
    into.unreadable = unreadableReason(namespace, err)
  }
  return into
}

function unreadableReason(namespace: string, err: unknown): string {
  const code = (err as { code?: number }).code
  const why = code === 403 ? 'not allowed to list them (403)' : String((err as Error)?.message ?? err).split('\n')[0]
  return `the Secrets of ${namespace} cannot be read (${why}), so their values could not be scrubbed from the logs`
}

/**
 * Keeps a scrubber current with a namespace's Secrets (a watch); resolves once they are known.
 * When the first list fails, `unreadable` says why; it is cleared once a list succeeds.
 */
export async function watchSecrets(
  kube: Kube,
  namespace: string,
  scrubber: Scrubber,
  signal: AbortSignal,
): Promise<{ stop(): Promise<void> }> {
  // one list first: the watch below retries in the background and would not say it failed
  await readSecrets(kube, namespace, scrubber)
  if (scrubber.unreadable) return { stop: () => Promise.resolve() }
  const informer = makeInformer(kube.kc, `/api/v1/namespaces/${namespace}/secrets`, () =>
    kube.core.listNamespacedSecret({ namespace }),
  )
  const set = (s: V1Secret) => {
    scrubber.unreadable = undefined
    scrubber.set(`${namespace}/${s.metadata?.name}`, secretValues(s))
  }
  informer.on('add', set)
  informer.on('update', set)
  informer.on('delete', (s) => scrubber.delete(`${namespace}/${s.metadata?.name}`))
  let stopped = false
  let retry: NodeJS.Timeout | undefined
  informer.on('error', () => {
    if (signal.aborted || stopped) return
    retry = setTimeout(() => void informer.start().catch(() => {}), 1000)
  })
  await informer.start().catch(() => {
    /* the list above answered: a failing watch is retried on 'error' */
  })
  return {
    async stop() {
      stopped = true
      clearTimeout(retry)
      try {
        await informer.stop()
      } catch {
        /* closed */
      }
    },
  }
}
