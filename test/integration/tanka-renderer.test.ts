// nsops' Tanka-compatible renderer (tanka/renderer, the real binary as provisioned) on small
// Tanka projects written to a temp dir: Tanka's import paths and `import "tk"`, its native
// functions, helmTemplate running the pinned helm on a chart directory, errors with their
// file:line:column, and `tk fmt` semantics.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { after, before, describe, it } from 'node:test'
import { NsopsError } from '../../shared/core/errors.ts'
import { cacheDir, repoRoot } from '../../shared/core/paths.ts'
import { loadEnvironment } from '../../shared/tanka/environments.ts'
import { evaluateEnvironment, formatJsonnet, rendererBinary } from '../../shared/tanka/renderer.ts'

const run = promisify(execFile)

describe('tanka renderer', () => {
  let root: string
  let renderer: string

  /** Writes files (path → content) under the project root. */
  function write(files: Record<string, string>): void {
    for (const [rel, content] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true })
      fs.writeFileSync(path.join(root, rel), content)
    }
  }

  /** A fresh environment `name` with this main.jsonnet. */
  function env(name: string, main: string, spec: object = { namespace: 'team-a' }) {
    write({
      [`environments/${name}/spec.json`]: JSON.stringify({
        apiVersion: 'tanka.dev/v1alpha1',
        kind: 'Environment',
        metadata: { name: `environments/${name}` },
        spec,
      }),
      [`environments/${name}/main.jsonnet`]: main,
    })
    return loadEnvironment(name, root)
  }

  async function evalMain(name: string, main: string): Promise<Record<string, unknown>> {
    return (await evaluateEnvironment(env(name, main), { renderer })) as Record<string, unknown>
  }

  async function failure(p: Promise<unknown>): Promise<NsopsError> {
    const err = await p.then(
      () => undefined,
      (e: unknown) => e,
    )
    assert.ok(err instanceof NsopsError, `expected an NsopsError, got ${String(err)}`)
    return err
  }

  before(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-tanka-renderer-'))
    renderer = await rendererBinary()
    write({
      'jsonnetfile.json': '{"version": 1, "dependencies": []}\n',
      'lib/helm.libsonnet': fs.readFileSync(path.join(repoRoot, 'tanka', 'lib', 'helm.libsonnet'), 'utf8'),
      // the same name at every level of Tanka's jpath: which one wins shows the order
      'vendor/where.libsonnet': "'root vendor'",
      'lib/where.libsonnet': "'lib'",
      'vendor/only-vendor.libsonnet': "'root vendor'",
      'environments/order/vendor/only-vendor.libsonnet': "'env vendor'",
      'environments/order/where.libsonnet': "'env dir'",
      'vendor/lib-or-vendor.libsonnet': "'root vendor'",
      'lib/lib-or-vendor.libsonnet': "'lib'",
      // a chart: values, the release namespace, a CRD in crds/, a required value
      'charts/web/Chart.yaml': 'apiVersion: v2\nname: web\nversion: 1.0.0\n',
      'charts/web/values.yaml': 'replicas: 1\nmessage: default\nimage: nginx:1.27\n',
      'charts/web/crds/widgets.yaml':
        'apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets.example.com\nspec:\n  group: example.com\n  names: {kind: Widget, plural: widgets}\n  scope: Namespaced\n  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object}}}]\n',
      'charts/web/templates/configmap.yaml':
        '# rendered first\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-cfg\n  namespace: {{ .Release.Namespace }}\ndata:\n  message: {{ .Values.message | quote }}\n  replicas: {{ .Values.replicas | quote }}\n',
      'charts/web/templates/deployment.yaml':
        'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\nspec:\n  replicas: {{ .Values.replicas }}\n  selector: {matchLabels: {app: {{ .Release.Name }}}}\n  template:\n    metadata: {labels: {app: {{ .Release.Name }}}}\n    spec:\n      containers: [{name: web, image: {{ required "image is required" .Values.image | quote }}}]\n',
      'charts/web/templates/empty.yaml': '{{- if false }}\nkind: Nothing\n{{- end }}\n',
    })
  })

  after(() => {
    if (root) fs.rmSync(root, { recursive: true, force: true })
  })

  it('is cached under a hash of its sources in the tool cache', () => {
    const dir = path.join(repoRoot, 'tanka', 'renderer')
    const hash = createHash('sha256')
    for (const f of fs
      .readdirSync(dir)
      .filter((f) => f.endsWith('.go') || f === 'go.mod' || f === 'go.sum')
      .sort()) {
      hash
        .update(`${f}\0`)
        .update(fs.readFileSync(path.join(dir, f)))
        .update('\0')
    }
    assert.equal(
      renderer,
      path.join(cacheDir(), 'tools', 'tanka-renderer', hash.digest('hex').slice(0, 16), 'tanka-renderer'),
    )
  })

  it('resolves imports as tk: the environment dir, then lib/, then <env>/vendor, then vendor/', async () => {
    const out = await evalMain(
      'order',
      "{ where:: import 'where.libsonnet', onlyVendor:: import 'only-vendor.libsonnet', libOrVendor:: import 'lib-or-vendor.libsonnet', cm: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' }, data: { a: $.where, b: $.onlyVendor, c: $.libOrVendor } } }\n",
    )
    assert.deepEqual((out.cm as { data: unknown }).data, { a: 'env dir', b: 'env vendor', c: 'lib' })
  })

  it('serves import "tk" with the environment as tk sets it', async () => {
    const out = await evalMain(
      'tkenv',
      "{ env:: (import 'tk').env, cm: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' }, data: { name: $.env.metadata.name, entry: $.env.metadata.namespace, ns: $.env.spec.namespace, server: $.env.spec.apiServer } } }\n",
    )
    assert.deepEqual((out.cm as { data: unknown }).data, {
      name: 'environments/tkenv',
      entry: 'environments/tkenv/main.jsonnet',
      ns: 'team-a',
      server: 'https://',
    })
  })

  it("provides Tanka's native functions with Tanka's semantics", async () => {
    const out = await evalMain(
      'natives',
      `{
  data:: {
    parseYaml: std.native('parseYaml')('a: 1\\n---\\n- x\\n- 2\\n'),
    parseJson: std.native('parseJson')('{"a": [1, true, null]}'),
    manifestJson: std.native('manifestJsonFromJson')('{"b": 1, "a": [2]}', 4),
    manifestYaml: std.native('manifestYamlFromJson')('{"b": 1, "a": {"c": "d"}}'),
    sha256: std.native('sha256')('abc'),
    escape: std.native('escapeStringRegex')('a.b*c'),
    match: [std.native('regexMatch')('^ca+t$', 'caaat'), std.native('regexMatch')('^dog', 'cat')],
    subst: std.native('regexSubst')('(\\\\w+)@(\\\\w+)', 'me@host you@there', '$2:$1'),
  },
  out: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'n' }, data: { json: std.manifestJsonMinified($.data) } },
}
`,
    )
    const got = JSON.parse((out.out as { data: { json: string } }).data.json) as Record<string, unknown>
    assert.deepEqual(got.parseYaml, [{ a: 1 }, ['x', 2]])
    assert.deepEqual(got.parseJson, { a: [1, true, null] })
    assert.equal(got.manifestJson, '{\n    "b": 1,\n    "a": [\n        2\n    ]\n}\n')
    assert.equal(got.manifestYaml, 'a:\n    c: d\nb: 1\n')
    assert.equal(got.sha256, 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')
    assert.equal(got.escape, 'a\\.b\\*c')
    assert.deepEqual(got.match, [true, false])
    assert.equal(got.subst, 'host:me there:you')
  })

  it('helmTemplate renders a chart relative to the calling file, with values, namespace and CRDs, keyed like Tanka (sprig snakecase)', async () => {
    const out = await evalMain(
      'helm',
      "local helm = (import 'helm.libsonnet').new(std.thisFile);\n{ web: helm.template('shop', '../../charts/web', { namespace: 'team-a', values: { replicas: 3, message: 'hi' } }) }\n",
    )
    const web = out.web as Record<
      string,
      {
        kind: string
        metadata: { name: string; namespace?: string }
        data?: Record<string, string>
        spec?: { replicas?: number }
      }
    >
    assert.deepEqual(Object.keys(web).sort(), [
      'config_map_shop_cfg',
      'custom_resource_definition_widgets.example.com',
      'deployment_shop',
    ])
    assert.deepEqual(web.config_map_shop_cfg.data, { message: 'hi', replicas: '3' })
    assert.equal(web.config_map_shop_cfg.metadata.namespace, 'team-a')
    assert.equal(web.deployment_shop.spec?.replicas, 3)
  })

  it('helmTemplate leaves CRDs out with includeCrds: false and keys objects by nameFormat', async () => {
    const out = await evalMain(
      'helm-opts',
      "{ web: std.native('helmTemplate')('shop', '../../charts/web', { calledFrom: std.thisFile, includeCrds: false, nameFormat: '{{ .metadata.name }}-{{ .kind | lower }}' }) }\n",
    )
    assert.deepEqual(Object.keys(out.web as object).sort(), ['shop-cfg-configmap', 'shop-deployment'])
  })

  it('helmTemplate says what helm said when the chart does not render', async () => {
    const err = await failure(
      evalMain(
        'helm-fails',
        "local helm = (import 'helm.libsonnet').new(std.thisFile);\n{\n  web: helm.template('shop', '../../charts/web', { values: { image: null } }),\n}\n",
      ),
    )
    assert.match(
      err.message,
      /helm\.libsonnet:\d+:\d+: helmTemplate: helm template shop .*charts\/web failed: .*image is required/,
    )
  })

  it('helmTemplate refuses a call without calledFrom, as Tanka does', async () => {
    const err = await failure(
      evalMain('helm-nocaller', "{\n  web: std.native('helmTemplate')('shop', './charts/web', {}),\n}\n"),
    )
    assert.match(
      err.message,
      /environments\/helm-nocaller\/main\.jsonnet:2:8: helmTemplate: 'opts\.calledFrom' is unset or empty/,
    )
  })

  it("reports a syntax error with file:line:column and the parser's message", async () => {
    const err = await failure(
      evalMain('syntax', "{\n  a: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a' } }\n  b: 2,\n}\n"),
    )
    assert.match(err.message, /environments\/syntax\/main\.jsonnet:3:3: Expected a comma before next field/)
    assert.match(err.hint ?? '', /a syntax error/)
  })

  it('reports an error raised in a library at its innermost location', async () => {
    write({
      'lib/checks.libsonnet':
        "{\n  positive(n):: if n > 0 then n else error 'replicas must be positive, got ' + n,\n}\n",
    })
    const err = await failure(
      evalMain(
        'lib-error',
        "local checks = import 'checks.libsonnet';\n{ d: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a' }, data: { r: std.toString(checks.positive(-1)) } } }\n",
      ),
    )
    assert.match(err.message, /lib\/checks\.libsonnet:2:\d+: replicas must be positive, got -1$/)
  })

  it('formats like jsonnetfmt: --test lists unformatted files and changes nothing, a run rewrites them, vendor/ is left alone', async () => {
    const dir = fs.mkdtempSync(path.join(root, 'fmt-'))
    fs.writeFileSync(path.join(dir, 'ugly.jsonnet'), '{a:1,\n    b: "x"}\n')
    fs.writeFileSync(path.join(dir, 'fine.libsonnet'), '{\n  a: 1,\n}\n')
    fs.mkdirSync(path.join(dir, 'vendor'))
    fs.writeFileSync(path.join(dir, 'vendor', 'theirs.libsonnet'), '{x:1}\n')
    assert.deepEqual((await formatJsonnet([dir], { test: true, renderer })).changed, [path.join(dir, 'ugly.jsonnet')])
    assert.equal(fs.readFileSync(path.join(dir, 'ugly.jsonnet'), 'utf8'), '{a:1,\n    b: "x"}\n')
    // the binary's own exit code, as the CI job sees it
    const direct = await run(renderer, ['fmt', '--test', dir]).then(
      () => 0,
      (e: { code: number }) => e.code,
    )
    assert.equal(direct, 1)
    await formatJsonnet([dir], { renderer })
    assert.equal(fs.readFileSync(path.join(dir, 'ugly.jsonnet'), 'utf8'), "{\n  a: 1,\n  b: 'x',\n}\n")
    assert.equal(fs.readFileSync(path.join(dir, 'vendor', 'theirs.libsonnet'), 'utf8'), '{x:1}\n')
    assert.deepEqual((await formatJsonnet([dir], { test: true, renderer })).changed, [])
  })

  it('refuses to format a file that does not parse, naming file:line:column', async () => {
    const dir = fs.mkdtempSync(path.join(root, 'fmt-bad-'))
    fs.writeFileSync(path.join(dir, 'bad.jsonnet'), '{\n  a: 1\n  b: 2\n}\n')
    const err = await failure(formatJsonnet([dir], { test: true, renderer }))
    assert.match(err.message, /bad\.jsonnet:3:3: Expected a comma before next field/)
  })
})
