// Wait on one object through a watch, not a poll: every change reaches `decide` as it
// happens. Reconnects on its own when the server ends the stream, and starts over from the
// current state when its resourceVersion has expired (410 Gone).
import { Watch } from '@kubernetes/client-node'
import type { Kube } from '../kube/client.ts'
import type { KubeObject } from '../health/kstatus.ts'

export interface WatchOneOptions {
  /** collection URL, e.g. /apis/kustomize.toolkit.fluxcd.io/v1/namespaces/ns/kustomizations */
  path: string
  name: string
  /** start after this resourceVersion (e.g. from a patch response) so no change is missed */
  resourceVersion?: string
  signal: AbortSignal
}

/**
 * Calls `decide` with every state of the object (null once it is deleted) until it returns
 * something other than undefined, and resolves with that. Without a resourceVersion the
 * watch's initial ADDED event delivers the current state first. Rejects with the signal's
 * reason when aborted.
 */
export function watchOne<T, O extends KubeObject = KubeObject>(
  kube: Kube,
  opts: WatchOneOptions,
  decide: (obj: O | null) => T | undefined,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let rv = opts.resourceVersion
    let current: AbortController | undefined
    let settled = false
    let retryTimer: NodeJS.Timeout | undefined

    const finish = (fn: () => void) => {
      if (settled) return
      settled = true
      clearTimeout(retryTimer)
      opts.signal.removeEventListener('abort', onAbort)
      current?.abort()
      fn()
    }
    const onAbort = () => finish(() => reject(opts.signal.reason))
    if (opts.signal.aborted) return onAbort()
    opts.signal.addEventListener('abort', onAbort)

    const settleOn = (obj: O | null) => {
      let d: T | undefined
      try {
        d = decide(obj)
      } catch (err) {
        return finish(() => reject(err))
      }
      if (d !== undefined) finish(() => resolve(d as T))
    }

    const connect = async () => {
      if (settled) return
      let failed = false
      current = await new Watch(kube.kc).watch(
        opts.path,
        { fieldSelector: `metadata.name=${opts.name}`, resourceVersion: rv, allowWatchBookmarks: true },
        (type: string, obj: O & { code?: number }) => {
          if (settled) return
          if (type === 'ERROR') {
            // 410 Gone: our resourceVersion is too old; a fresh watch starts from the current state
            if (obj?.code === 410) rv = undefined
            failed = true
            current?.abort()
            return
          }
          rv = obj?.metadata?.resourceVersion ?? rv
          if (type === 'BOOKMARK') return
          settleOn(type === 'DELETED' ? null : obj)
        },
        (err: unknown) => {
          if (settled) return
          const code = (err as { statusCode?: number } | null)?.statusCode
          if (code === 401 || code === 403) {
            return finish(() => reject(new Error(`watching ${opts.path} is not allowed (HTTP ${code})`)))
          }
          // the server closes watches after a while; a failure waits a moment before retrying
          retryTimer = setTimeout(
            () => {
              void connect()
            },
            err || failed ? 250 : 0,
          )
        },
      )
      if (settled) current.abort()
    }
    void connect()
  })
}
