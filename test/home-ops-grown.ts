// test/fixtures/home-ops grown to 60 apps in 6 namespaces (10 each), as a big home-ops
// repository is: each app a copy of sonarr (ks.yaml with the volsync component,
// postBuild.substitute, dependsOn the app before it), under its own name; the roots
// (kubernetes/flux) as in the fixture. The flux-build bench renders it; the changed-only ci
// test changes one app in it.
import fs from 'node:fs'
import path from 'node:path'
import { repoRoot } from '../shared/core/paths.ts'

export const NAMESPACES = ['default', 'media', 'home', 'network', 'observability', 'security']
export const PER_NS = 10

/** The fixture grown to 60 apps: its files, each app folder copied under new names. */
export function growHomeOps(dir: string): { apps: { ns: string; name: string }[] } {
  const fixture = path.join(repoRoot, 'test/fixtures/home-ops')
  fs.cpSync(path.join(fixture, 'kubernetes/flux'), path.join(dir, 'kubernetes/flux'), { recursive: true })
  fs.cpSync(path.join(fixture, 'kubernetes/components'), path.join(dir, 'kubernetes/components'), { recursive: true })
  const template = path.join(fixture, 'kubernetes/apps/default/sonarr')
  const apps: { ns: string; name: string }[] = []
  for (const ns of NAMESPACES) {
    const names: string[] = []
    for (let i = 0; i < PER_NS; i++) {
      const name = `${ns}-app${i}`
      names.push(name)
      apps.push({ ns, name })
      const to = path.join(dir, 'kubernetes/apps', ns, name)
      fs.cpSync(template, to, { recursive: true })
      for (const f of ['ks.yaml', 'app/kustomization.yaml', 'app/deployment.yaml']) {
        const p = path.join(to, f)
        let text = fs.readFileSync(p, 'utf8').replaceAll('sonarr', name).replaceAll('apps/default/', `apps/${ns}/`)
        text = text.replace('targetNamespace: default', `targetNamespace: ${ns}`)
        // a chain inside each namespace: app<i> depends on app<i-1>
        text = text.replace('- name: prowlarr', i ? `- name: ${ns}-app${i - 1}` : '- name: cluster-vars')
        fs.writeFileSync(p, text)
      }
    }
    fs.writeFileSync(
      path.join(dir, 'kubernetes/apps', ns, 'kustomization.yaml'),
      `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - namespace.yaml\n${names.map((n) => `  - ${n}/ks.yaml`).join('\n')}\n`,
    )
    fs.writeFileSync(
      path.join(dir, 'kubernetes/apps', ns, 'namespace.yaml'),
      `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${ns}\n`,
    )
  }
  fs.writeFileSync(
    path.join(dir, 'kubernetes/apps/kustomization.yaml'),
    `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n${NAMESPACES.map((n) => `  - ${n}`).join('\n')}\n`,
  )
  return { apps }
}
