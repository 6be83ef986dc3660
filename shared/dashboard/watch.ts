// --watch: the dashboard redrawn whenever a watch on the namespace reports a change
// (debounced), not on a timer. A whole frame is written at once over the previous one in
// the alternate screen, so nothing flickers.
import { Watch } from '@kubernetes/client-node'
import type { Kube } from '../kube.ts'
import type { Environment, NamespaceConfig } from '../namespace-config.ts'
import { collect } from './collect.ts'
import { renderDashboard } from './render.ts'

const paths = (ns: string) => [
  `/api/v1/namespaces/${ns}/pods`,
  `/apis/apps/v1/namespaces/${ns}/deployments`,
  `/apis/apps/v1/namespaces/${ns}/statefulsets`,
  `/apis/apps/v1/namespaces/${ns}/daemonsets`,
  `/api/v1/namespaces/${ns}/persistentvolumeclaims`,
  `/api/v1/namespaces/${ns}/events`,
]

export async function watchDashboard(kube: Kube, ns: NamespaceConfig, env: Environment): Promise<number> {
  const out = process.stdout
  const namespace = ns.namespaces[env]
  let timer: NodeJS.Timeout | undefined
  let drawing = false
  let again = false
  const draw = async () => {
    if (drawing) { again = true; return }
    drawing = true
    try {
      const frame = renderDashboard(await collect(kube, ns, env)).split('\n').map((l) => `${l}\x1b[K`).join('\n')
      out.write(`\x1b[H${frame}\n\x1b[2m(watching; Ctrl-C to quit)\x1b[0m\x1b[K\x1b[J`)
    } catch (err) {
      out.write(`\x1b[H\x1b[Jcould not refresh: ${(err as Error).message}\x1b[K`)
    } finally {
      drawing = false
      if (again) { again = false; schedule() }
    }
  }
  const schedule = () => { clearTimeout(timer); timer = setTimeout(() => void draw(), 150) }

  const watch = new Watch(kube.kc)
  const controllers: AbortController[] = []
  const start = async (p: string) => {
    const ac = await watch.watch(p, {}, () => schedule(), () => setTimeout(() => void start(p).catch(() => {}), 1000))
    controllers.push(ac)
  }
  out.write('\x1b[?1049h\x1b[?25l') // alternate screen, hide cursor
  const restore = () => out.write('\x1b[?25h\x1b[?1049l')
  await draw()
  await Promise.all(paths(namespace).map(start))
  await new Promise<void>((resolve) => {
    for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => resolve())
  })
  for (const ac of controllers) ac.abort()
  clearTimeout(timer)
  restore()
  return 0
}
