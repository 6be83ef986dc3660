// A dev loop in a process of its own, for tests that kill it with SIGKILL:
//   node --import tsx dev-driver.ts KUBECONFIG WORKDIR [HOLD]   (prints READY once started)
import { KubeConfig } from '@kubernetes/client-node'
import { DevLoop } from '../../shared/dev/loop.ts'
import { clientsFor } from '../../shared/kube/client.ts'
import { demoNamespace } from './gitops-fixture.ts'

const [kubeconfig, work, hold] = process.argv.slice(2) as [string, string, 'auto' | 'kustomization' | undefined]
const kc = new KubeConfig()
kc.loadFromFile(kubeconfig)
const loop = new DevLoop(clientsFor(kc, kubeconfig), demoNamespace(work, undefined, hold), { forwards: false })
await loop.start()
console.log('READY')
setInterval(() => {}, 1 << 30)
