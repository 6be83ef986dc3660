// A Kubernetes Event as nsops hands it on (the dev loop's snapshot, the dev page's events pane).
import type { CoreV1Event } from '@kubernetes/client-node'

export interface EventRow {
  type?: string
  reason?: string
  /** Kind/name of the object it is about */
  object: string
  message?: string
  count?: number
  last?: Date
}

export function eventRow(e: CoreV1Event): EventRow {
  return {
    type: e.type,
    reason: e.reason,
    object: `${e.involvedObject?.kind}/${e.involvedObject?.name}`,
    message: e.message,
    count: e.count,
    last: e.lastTimestamp ?? e.eventTime,
  }
}
