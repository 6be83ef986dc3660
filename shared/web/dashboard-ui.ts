// `dashboard.ts --web`: the dashboard's model (shared/dashboard/collect.ts, the --json
// schema) on the same page the dev session uses, kept live from watch events and pushed as
// it changes. Read-only but Flux's own actions: reconcile the namespace, and reconcile,
// suspend or resume one of its HelmReleases (web/flux-actions.ts).
import { followDashboard } from '../dashboard/watch.ts'
import type { Kube } from '../kube/client.ts'
import type { Environment, NamespaceConfig } from '../config/namespace-config.ts'
import { pageFluxAction } from './flux-actions.ts'
import { reconcileNamespace } from './reconcile.ts'
import { startPageServer } from './server.ts'

export interface DashboardUi {
  url: string
  token: string
  close(): Promise<void>
}

export async function startDashboardUi(
  kube: Kube,
  ns: NamespaceConfig,
  env: Environment,
  opts: { port?: number; note?: (line: string) => void } = {},
): Promise<DashboardUi> {
  let server: Awaited<ReturnType<typeof startPageServer>> | undefined
  // the feed keeps the latest model and error; the page only renders them
  const changed = () => server?.changed()
  const feed = await followDashboard(kube, ns, env, changed, changed)
  const snapshot = () => ({
    ...(feed.model ?? { schema: 'nsops.dashboard/v1' }),
    ...(feed.error ? { error: `could not refresh: ${feed.error}` } : {}),
  })
  try {
    server = await startPageServer({
      port: opts.port,
      snapshot,
      action: async (body) => {
        if (body.kind) return pageFluxAction(kube, feed.model, body)
        if (body.action !== 'reconcile')
          throw new Error(
            `the dashboard page is read-only; it only offers reconcile (and reconcile, suspend, resume of a HelmRelease), not ${body.action}`,
          )
        return reconcileNamespace(kube, ns)
      },
      note: opts.note,
    })
  } catch (err) {
    feed.stop()
    throw err
  }
  const s = server
  return {
    url: s.url,
    token: s.token,
    async close() {
      feed.stop()
      await s.close()
    },
  }
}
