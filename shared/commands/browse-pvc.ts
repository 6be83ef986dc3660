// `just browse-pvc NS PVC`: a shell in a throwaway pod that mounts the PVC at /data — the way
// to look at what an app wrote (config, a database file) without touching the app's own pod.
// The pod is deleted when the shell ends, on Ctrl-C, SIGTERM or a closed terminal, and it
// ends itself after an hour in any case (activeDeadlineSeconds), should this process die.
import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type { V1Pod } from '@kubernetes/client-node'
import { SIM_CONTEXT } from '../cluster/sim/index.ts'
import { parseCommand } from '../core/cli.ts'
import type { Environment, NamespaceConfig } from '../config/namespace-config.ts'
import { NsopsError } from '../core/errors.ts'
import { c, log, spinner } from '../core/output.ts'
import { apiMessage, connect, ensureReachable, isApiError, type Kube } from '../kube/client.ts'
import { guardContext } from '../kube/guard.ts'
import { resolveTarget, targetOptions } from '../kube/target.ts'
import { toolPath } from '../tools/provision.ts'

export const BROWSE_LABEL = 'nsops.dev/browse-pvc'

const usage = (ns: string) => `
Usage: just browse-pvc ${ns} PVC [--env dev|prod] [--image IMAGE] [--read-only]

Starts a pod in the namespace that mounts the PersistentVolumeClaim PVC at /data, opens a shell
in it (kubectl exec -it … sh, in /data), and deletes the pod when the shell ends (exit, Ctrl-D,
Ctrl-C, a closed terminal). On the sim cluster pods run nothing (kwok only simulates them): the
pod is made with the PVC mounted and deleted again, and it says so — there is no shell to open.
Like every write it runs only against a local or allow-listed context.

  --env ENV        which of the namespace's namespaces (default dev: ${ns}-dev as namespace.ts says)
  --image IMAGE    the pod's image (default busybox:1.37; it needs a shell)
  --read-only      mount the PVC read-only
  --kubeconfig FILE  --context NAME   which cluster (default: $KUBECONFIG, else the one \`just cluster-up\` chose)
`

async function deletePod(kube: Kube, name: string, namespace: string): Promise<void> {
  try {
    await kube.core.deleteNamespacedPod({ name, namespace, gracePeriodSeconds: 0 })
  } catch (err) {
    if (!isApiError(err, 404)) throw err
  }
}

async function waitRunning(kube: Kube, name: string, namespace: string, timeoutMs = 120_000): Promise<V1Pod> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const pod = await kube.core.readNamespacedPod({ name, namespace })
    if (pod.status?.phase === 'Running') return pod
    if (pod.status?.phase === 'Failed' || pod.status?.phase === 'Succeeded')
      throw new NsopsError(`the pod ${name} ended (${pod.status.phase}) before a shell could open.`, {
        hint: `kubectl -n ${namespace} describe pod ${name}`,
      })
    if (Date.now() > end) {
      const why = pod.status?.conditions?.find((x) => x.status !== 'True')?.message ?? pod.status?.phase
      throw new NsopsError(`the pod ${name} is not running after ${timeoutMs / 1000} s (${why}).`, {
        hint: 'a ReadWriteOnce volume attached to another node keeps it Pending; `just dashboard` shows the PVC.',
      })
    }
    await new Promise((r) => setTimeout(r, 250)) // polling the pod's phase; the API has no wait call
  }
}

export async function browsePvc(ns: NamespaceConfig, argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(argv, {
    usage: usage(ns.name),
    allowPositionals: true,
    options: {
      env: { type: 'string' },
      image: { type: 'string' },
      'read-only': { type: 'boolean' },
      ...targetOptions,
    },
  })
  const [pvc, ...extra] = positionals as string[]
  if (!pvc || extra.length) throw new NsopsError('name one PVC.', { hint: `just browse-pvc ${ns.name} PVC` })
  const env = (values.env ?? 'dev') as Environment
  const namespace = ns.namespaces[env]
  if (!namespace) throw new NsopsError(`--env ${env} is not one of dev, prod.`, { hint: 'see --help' })
  const kube = connect(resolveTarget(values))
  guardContext(kube.context, kube.server, `start a pod in ${namespace}`)
  await ensureReachable(kube)
  try {
    await kube.core.readNamespacedPersistentVolumeClaim({ name: pvc, namespace })
  } catch (err) {
    if (!isApiError(err, 404)) throw new NsopsError(`reading PVC ${namespace}/${pvc}: ${apiMessage(err)}`)
    const list = await kube.core.listNamespacedPersistentVolumeClaim({ namespace }).catch(() => undefined)
    const names = list?.items.map((x) => x.metadata?.name).filter(Boolean) ?? []
    throw new NsopsError(`no PVC ${pvc} in namespace ${namespace}.`, {
      hint: names.length ? `PVCs there: ${names.join(', ')}.` : `${namespace} has no PVC (is the dev loop running?).`,
    })
  }
  const name = `browse-${pvc}`.slice(0, 50).replace(/-+$/, '') + `-${randomUUID().slice(0, 5)}`
  const pod: V1Pod = {
    metadata: { name, namespace, labels: { [BROWSE_LABEL]: pvc, 'app.kubernetes.io/managed-by': 'nsops' } },
    spec: {
      restartPolicy: 'Never',
      activeDeadlineSeconds: 3600,
      terminationGracePeriodSeconds: 0,
      containers: [
        {
          name: 'browse',
          image: values.image ?? 'busybox:1.37',
          command: ['sh', '-c', 'sleep 3600'],
          workingDir: '/data',
          volumeMounts: [{ name: 'data', mountPath: '/data', readOnly: values['read-only'] ?? false }],
        },
      ],
      volumes: [{ name: 'data', persistentVolumeClaim: { claimName: pvc, readOnly: values['read-only'] ?? false } }],
    },
  }
  let cleaned: Promise<void> | undefined
  const cleanup = () => (cleaned ??= deletePod(kube, name, namespace))
  // Until the shell runs, Ctrl-C is ours too: waiting for a pod that cannot start (a volume
  // attached elsewhere) is where a person gives up. Installed before the pod is made, so no
  // moment leaves it behind, and kept (not once): a Ctrl-C reaches this process from the
  // terminal and again through npx and just, and the second must not cut the delete short.
  const onSignal = (sig: NodeJS.Signals) => {
    if (cleaned) return
    void cleanup()
      .then(() => log.info(c.dim(`deleted pod ${namespace}/${name}`)))
      .finally(() => process.exit(sig === 'SIGINT' ? 130 : 143))
  }
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, onSignal)
  await kube.core.createNamespacedPod({ namespace, body: pod })
  try {
    const s = spinner(`starting pod ${namespace}/${name} with PVC ${pvc} at /data`)
    try {
      await waitRunning(kube, name, namespace)
      s.succeed(`pod ${namespace}/${name} runs with PVC ${pvc} at /data`)
    } catch (err) {
      s.fail(`pod ${namespace}/${name} did not start`)
      throw err
    }
    if (kube.context === SIM_CONTEXT) {
      log.warn(
        'on the sim cluster pods run nothing (kwok simulates them): the pod mounted the PVC, but there is no shell to open in it. ' +
          'On kind, k3d or a real cluster this opens sh in /data.',
      )
      return 0
    }
    // kubectl exec -it: the terminal, resizing and Ctrl-C inside the shell work as kubectl does them
    const kubectl = await toolPath('kubectl')
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-browse-'))
    const kubeconfig = path.join(dir, 'kubeconfig')
    const kc = JSON.parse(kube.kc.exportConfig()) as { 'current-context'?: string }
    kc['current-context'] = kube.context
    fs.writeFileSync(kubeconfig, JSON.stringify(kc), { mode: 0o600 })
    log.info(c.dim(`shell in ${namespace}/${name}, PVC ${pvc} at /data; exit (or Ctrl-D) deletes the pod`))
    try {
      const code = await new Promise<number>((resolve, reject) => {
        const child = spawn(
          kubectl,
          ['--kubeconfig', kubeconfig, 'exec', '-it', '-n', namespace, name, '--', 'sh', '-c', 'cd /data && exec sh'],
          { stdio: 'inherit' },
        )
        // Ctrl-C belongs to the shell inside; this process waits for kubectl to end
        process.off('SIGINT', onSignal)
        process.on('SIGINT', () => {})
        child.on('error', reject)
        child.on('exit', (code) => resolve(code ?? 1))
      })
      return code
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  } finally {
    if (!cleaned) {
      await cleanup()
      log.info(c.dim(`deleted pod ${namespace}/${name}`))
    }
  }
}
