// Readiness probes over HTTP(S) (the sim's apiserver /readyz, a registry's /v2/): one GET that
// says yes or no and never throws, so a caller can poll it until something is up.
import type { ClientRequest, IncomingMessage } from 'node:http'

/**
 * Resolves true when the request `send` starts (with its own timeout) is answered 200;
 * false when it fails or times out (the request is destroyed then).
 */
export function answersOk(send: (onResponse: (res: IncomingMessage) => void) => ClientRequest): Promise<boolean> {
  return new Promise((resolve) => {
    const req = send((res) => {
      res.resume()
      resolve(res.statusCode === 200)
    })
    req.on('error', () => resolve(false))
    req.on('timeout', () => {
      req.destroy()
      resolve(false)
    })
  })
}
