// Tanka's chartfile.yaml (`tk tool charts`): the Helm charts a project vendors, each pinned to
// one version. Same schema as Tanka's pkg/helm/spec.go, read strictly (unknown keys are
// errors, as Tanka's UnmarshalStrict), and every error names the file and line.
import fs from 'node:fs/promises'
import path from 'node:path'
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml'
import { NsopsError } from '../core/errors.ts'

export const CHARTFILE_NAME = 'chartfile.yaml'
export const DEFAULT_CHART_DIR = 'charts'

export interface ChartRepository {
  name: string
  url: string
}

export interface ChartRequirement {
  /** as written: `repo/name` */
  chart: string
  /** the repository part of `chart` */
  repository: string
  /** the chart's name in the repository (the part after the slash) */
  name: string
  /** the pinned version, matched exactly against the repository index */
  version: string
  /** the directory under the charts directory it is unpacked into; defaults to `name` */
  directory: string
  /** 1-based line of the entry in the chartfile, for messages */
  line: number
}

export interface Chartfile {
  /** absolute path of the file */
  path: string
  version: 1
  repositories: ChartRepository[]
  requires: ChartRequirement[]
  /** where charts are unpacked, as written (relative to the chartfile's directory); default `charts` */
  directory: string
}

const TOP_KEYS = ['version', 'repositories', 'requires', 'directory']
const REPO_KEYS = ['name', 'url']
// Tanka accepts these; refusing them loudly beats vendoring without the credentials they imply.
const REPO_KEYS_UNSUPPORTED = ['caFile', 'certFile', 'keyFile', 'username', 'password']
const REQUIRE_KEYS = ['chart', 'version', 'directory']
// A chart or directory name becomes a path segment: no separators, no dot-dot, no leading dot.
const SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/
const REPO_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/

export async function loadChartfile(file: string): Promise<Chartfile> {
  const abs = path.resolve(file)
  let text: string
  try {
    text = await fs.readFile(abs, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new NsopsError(`No chartfile at ${abs}.`, {
        hint: `Create one (Tanka's format: version: 1, repositories: [{name, url}], requires: [{chart: repo/name, version: x.y.z}]) or pass the right path.`,
      })
    }
    throw new NsopsError(`Cannot read the chartfile ${abs}: ${(err as Error).message}`, { cause: err })
  }
  return parseChartfile(text, abs)
}

/** Parse and validate a chartfile's text; `file` is used for messages and as `path`. */
export function parseChartfile(text: string, file: string): Chartfile {
  const lines = new LineCounter()
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true })
  if (doc.errors.length > 0) {
    const e = doc.errors[0]
    const pos = e.linePos?.[0]
    const where = pos ? `${file}:${pos.line}:${pos.col}` : file
    const source = pos ? text.split('\n')[pos.line - 1]?.trimEnd() : undefined
    const near = source ? ` (line ${pos!.line}: ${JSON.stringify(source)})` : ''
    throw new NsopsError(`${where}: malformed YAML: ${e.message.split(' at line ')[0].split('\n')[0]}${near}.`, {
      hint: 'Fix the YAML syntax at that line (indentation, a missing colon or bracket, a duplicated key).',
    })
  }
  const v = new Validator(file, lines, doc)
  return v.chartfile()
}

class Validator {
  constructor(
    private readonly file: string,
    private readonly lines: LineCounter,
    private readonly doc: Document,
  ) {}

  fail(node: Node | null | undefined, msg: string, hint?: string): never {
    const offset = node?.range?.[0]
    const where = offset === undefined ? this.file : `${this.file}:${this.lines.linePos(offset).line}`
    throw new NsopsError(`${where}: ${msg}`, {
      hint:
        hint ??
        `The chartfile format is Tanka's: version: 1, repositories: [{name, url}], requires: [{chart: repo/name, version: x.y.z}], directory (default ${DEFAULT_CHART_DIR}).`,
    })
  }

  line(node: Node | null | undefined): number {
    const offset = node?.range?.[0]
    return offset === undefined ? 0 : this.lines.linePos(offset).line
  }

  chartfile(): Chartfile {
    const root = this.doc.contents
    const out: Chartfile = { path: this.file, version: 1, repositories: [], requires: [], directory: DEFAULT_CHART_DIR }
    if (root === null || (isScalar(root) && root.value === null)) return out
    if (!isMap(root)) this.fail(root, 'the chartfile must be a mapping with version, repositories and requires.')
    const fields = this.fields(root, TOP_KEYS, [], 'the chartfile')

    const version = fields.get('version')
    if (version && !(isScalar(version) && version.value === 1)) {
      this.fail(
        version,
        `unsupported chartfile version ${JSON.stringify(scalarValue(version))}; only version 1 is known.`,
      )
    }
    const dir = fields.get('directory')
    if (dir) {
      const d = this.string(dir, 'directory')
      if (d === '') this.fail(dir, 'directory must not be empty.')
      out.directory = d
    }

    const repos = fields.get('repositories')
    if (repos && !(isScalar(repos) && repos.value === null)) {
      if (!isSeq(repos)) this.fail(repos, 'repositories must be a list of {name, url}.')
      repos.items.forEach((item, i) => out.repositories.push(this.repository(item as Node, i, out.repositories)))
    }

    const requires = fields.get('requires')
    if (requires && !(isScalar(requires) && requires.value === null)) {
      if (!isSeq(requires)) this.fail(requires, 'requires must be a list of {chart: repo/name, version}.')
      requires.items.forEach((item, i) => out.requires.push(this.requirement(item as Node, i, out)))
    }
    return out
  }

  repository(node: Node, i: number, seen: ChartRepository[]): ChartRepository {
    const what = `repositories[${i}]`
    if (!isMap(node)) this.fail(node, `${what} must be a mapping with name and url.`)
    const fields = this.fields(node, REPO_KEYS, REPO_KEYS_UNSUPPORTED, what)
    const name = this.required(node, fields, 'name', what)
    const url = this.required(node, fields, 'url', what)
    if (!REPO_NAME.test(name))
      this.fail(
        fields.get('name'),
        `${what}: repository name ${JSON.stringify(name)} may only hold letters, digits, '.', '_' and '-'.`,
      )
    if (seen.some((r) => r.name === name))
      this.fail(fields.get('name'), `${what}: repository ${JSON.stringify(name)} is listed twice.`)
    let parsed: URL
    try {
      parsed = new URL(url)
    } catch {
      this.fail(
        fields.get('url'),
        `${what}: ${JSON.stringify(url)} is not a URL.`,
        'Use the repository URL as for `helm repo add`, e.g. https://charts.bitnami.com/bitnami.',
      )
    }
    if (!['http:', 'https:', 'oci:'].includes(parsed.protocol)) {
      this.fail(
        fields.get('url'),
        `${what}: unsupported URL scheme ${parsed.protocol} in ${url}; use http(s):// (or oci://).`,
      )
    }
    return { name, url }
  }

  requirement(node: Node, i: number, cf: Chartfile): ChartRequirement {
    const what = `requires[${i}]`
    if (!isMap(node)) this.fail(node, `${what} must be a mapping with chart and version.`)
    const fields = this.fields(node, REQUIRE_KEYS, [], what)
    const chart = this.required(node, fields, 'chart', what)
    const chartNode = fields.get('chart')
    const slash = chart.indexOf('/')
    const repository = chart.slice(0, slash)
    const name = chart.slice(slash + 1)
    if (slash <= 0 || !SEGMENT.test(name)) {
      this.fail(chartNode, `${what}: chart ${JSON.stringify(chart)} must be written repo/name (e.g. bitnami/redis).`)
    }
    if (!cf.repositories.some((r) => r.name === repository)) {
      const known = cf.repositories.map((r) => r.name).join(', ') || 'none'
      this.fail(
        chartNode,
        `${what}: chart ${chart} names repository ${JSON.stringify(repository)}, which is not under repositories (known: ${known}).`,
        `Add {name: ${repository}, url: ...} to repositories, or fix the repository part of the chart.`,
      )
    }
    const versionNode = fields.get('version')
    if (!versionNode) this.fail(node, `${what}: chart ${chart} has no version; every chart is pinned to one version.`)
    if (isScalar(versionNode) && typeof versionNode.value === 'number') {
      this.fail(
        versionNode,
        `${what}: the version of ${chart} reads as the number ${String(versionNode.value)}; quote it ("${versionNode.source ?? String(versionNode.value)}").`,
      )
    }
    const version = this.string(versionNode, `${what}.version`)
    if (version === '' || /\s/.test(version))
      this.fail(versionNode, `${what}: the version of ${chart} must be one exact version such as 18.19.4.`)
    let directory = name
    const dirNode = fields.get('directory')
    if (dirNode) {
      directory = this.string(dirNode, `${what}.directory`)
      if (!SEGMENT.test(directory))
        this.fail(
          dirNode,
          `${what}: directory ${JSON.stringify(directory)} must be a plain directory name (no '/', no leading dot).`,
        )
    }
    const clash = cf.requires.find((r) => r.directory === directory)
    if (clash) {
      this.fail(
        node,
        `${what}: ${chart} ${version} would be unpacked into ${directory}/, as ${clash.chart} ${clash.version} (line ${clash.line}) is.`,
        'Give one of them its own `directory:`.',
      )
    }
    return { chart, repository, name, version, directory, line: this.line(node) }
  }

  fields(map: Node, known: string[], unsupported: string[], what: string): Map<string, Node | null> {
    const out = new Map<string, Node | null>()
    if (!isMap(map)) return out
    for (const pair of map.items) {
      const keyNode = pair.key as Node | null
      const key = isScalar(keyNode) ? String(keyNode.value) : ''
      if (unsupported.includes(key)) {
        this.fail(
          keyNode,
          `${what}: ${key} is not supported yet by nsops' chart vendoring.`,
          'Vendor from a repository reachable without credentials or client certificates, or vendor that chart with `tk tool charts vendor`.',
        )
      }
      if (!known.includes(key))
        this.fail(keyNode, `${what}: unknown key ${JSON.stringify(key)} (expected ${known.join(', ')}).`)
      out.set(key, pair.value as Node | null)
    }
    return out
  }

  required(map: Node, fields: Map<string, Node | null>, key: string, what: string): string {
    const node = fields.get(key)
    if (!node) this.fail(map, `${what}: ${key} is missing.`)
    const s = this.string(node, `${what}.${key}`)
    if (s === '') this.fail(node, `${what}: ${key} must not be empty.`)
    return s
  }

  string(node: Node | null | undefined, what: string): string {
    if (!isScalar(node) || typeof node.value !== 'string') this.fail(node, `${what} must be a string.`)
    return (node.value as string).trim()
  }
}

function scalarValue(node: Node): unknown {
  return isScalar(node) ? node.value : node.toJSON()
}
