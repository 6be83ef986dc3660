// Plaintext Secrets never reach git. A Secret in the repository must be SOPS-encrypted: its
// file carries a top-level `sops:` block and every value under data/stringData is `ENC[…]`
// (Flux decrypts it in the cluster). Checked twice: every file under the namespace's folder
// that git would commit (a plaintext Secret file is a leak even if no overlay uses it,
// whatever its extension), and every Secret the prod overlay builds — after kustomize, so a
// patch that adds a value in clear to an encrypted Secret is caught — each traced back to
// its file exactly by kustomize's origin annotations (as the schema check places errors).
import fs from 'node:fs'
import path from 'node:path'
import { simpleGit } from 'simple-git'
import { LineCounter, parseAllDocuments } from 'yaml'
import { NsopsError } from '../core/errors.ts'
import { docValue } from '../core/yaml-guard.ts'
import type { ManifestObject } from '../kustomize/build.ts'
import { KUSTOMIZATION_FILES } from '../kustomize/files.ts'
import { originKey, originsOf } from '../schema/origin.ts'

export interface PlaintextSecret {
  /** the Secret's name (as built, when it comes from the build) */
  secret: string
  /** repo-relative file that holds the plaintext; absent when its source is outside the namespace */
  file?: string
  line?: number
  /** why it counts as plaintext */
  why: string
}

const KUSTOMIZATION_NAMES = new Set(KUSTOMIZATION_FILES)
const MANIFEST = /\.(ya?ml|json)$/
/** a file of another extension is read when it is this small; any file is parsed only when it names the kind Secret */
const OTHER_MAX_BYTES = 2 * 1024 * 1024
const NAMES_SECRET = /kind["']?\s*:\s*["']?Secret\b/

type Obj = Record<string, unknown>

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** An ENC[…] value as sops writes it (`ENC[AES256_GCM,data:…,iv:…,tag:…,type:str]`). */
const encrypted = (v: unknown) => typeof v === 'string' && v.startsWith('ENC[')

/**
 * Why a Secret object would put a value into git in clear, or undefined when it would not
 * (SOPS-encrypted, or no values at all).
 */
export function plaintextReason(secret: Obj): string | undefined {
  const values: [string, unknown][] = []
  for (const field of ['data', 'stringData']) {
    const map = secret[field]
    if (isObj(map)) for (const [k, v] of Object.entries(map)) values.push([`${field}.${k}`, v])
  }
  if (values.length === 0) return undefined
  if (!isObj(secret.sops)) return 'it is not SOPS-encrypted (no top-level `sops:` block)'
  const clear = values.filter(([, v]) => !encrypted(v)).map(([k]) => k)
  if (clear.length > 0)
    return `${clear.join(', ')} ${clear.length === 1 ? 'is' : 'are'} not encrypted (not ENC[…]; check encrypted_regex in .sops.yaml)`
  return undefined
}

/** A SOPS-encrypted Secret as kustomize passes it through: only Flux can decrypt it. */
export function isSopsSecret(obj: Obj): boolean {
  return obj.kind === 'Secret' && isObj(obj.sops)
}

/** A file sops encrypted, in any of its formats (YAML/JSON `sops` key, dotenv/INI `sops_*` lines). */
export function isSopsFile(text: string): boolean {
  return /ENC\[AES256_GCM,/.test(text) && /"sops"\s*:|(^|\n)\s*(sops\s*:|sops_version=|sops_mac=|\[sops\])/.test(text)
}

interface FileSecret {
  name: string
  file: string
  line: number
  why?: string
}
interface Generator {
  name: string
  file: string
  line: number
  why?: string
  sourceFile?: string
}

/** Files under the folder that git would commit: tracked or untracked, never ignored. */
async function committableFiles(repoDir: string, nsDir: string): Promise<string[]> {
  const out = await simpleGit({ baseDir: repoDir }).raw([
    'ls-files',
    '-z',
    '--cached',
    '--others',
    '--exclude-standard',
    '--',
    `:(literal)${nsDir}`,
  ])
  return [...new Set(out.split('\0').filter(Boolean))].filter((f) => fs.existsSync(path.join(repoDir, f))).sort()
}

function documents(text: string, file: string): { value: unknown; line: number }[] {
  const lines = new LineCounter()
  const docs = parseAllDocuments(text, { lineCounter: lines })
  if (!Array.isArray(docs)) return []
  // a file that does not parse is kustomize's to report (with file:line) if an overlay uses it
  return docs
    .filter((d) => d.errors.length === 0)
    .map((d) => ({
      value: docValue(d, file),
      line: lines.linePos(d.contents?.range[0] ?? d.range[0]).line,
    }))
}

function generatorSources(entry: Obj): string[] {
  const list = (v: unknown) =>
    Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : typeof v === 'string' ? [v] : []
  // `files` entries may be `key=path`
  return [...list(entry.files).map((f) => f.slice(f.indexOf('=') + 1)), ...list(entry.envs), ...list(entry.env)]
}

function scanKustomization(repoDir: string, file: string, value: Obj, line: number): Generator[] {
  const gens = Array.isArray(value.secretGenerator) ? value.secretGenerator.filter(isObj) : []
  return gens.map((g) => {
    const name = typeof g.name === 'string' ? g.name : '(unnamed)'
    const literals = Array.isArray(g.literals) ? g.literals.length : 0
    if (literals > 0)
      return {
        name,
        file,
        line,
        why: `its secretGenerator "${name}" has ${literals} literal value${literals === 1 ? '' : 's'} in clear`,
      }
    for (const src of generatorSources(g)) {
      const rel = path.posix.normalize(path.posix.join(path.posix.dirname(file), src))
      const abs = path.join(repoDir, rel)
      if (fs.existsSync(abs) && !isSopsFile(fs.readFileSync(abs, 'utf8'))) {
        return {
          name,
          file: rel,
          line: 1,
          sourceFile: rel,
          why: `secretGenerator "${name}" in ${file} reads it, and it is not SOPS-encrypted`,
        }
      }
    }
    return { name, file, line }
  })
}

/**
 * Refuses a YAML alias bomb under the namespace's folder before kustomize reads it (kustomize
 * expands it: gigabytes in seconds). Only files that hold both an anchor and an alias are
 * parsed; the yaml library's alias limit finds the bomb, named with its file.
 */
export async function refuseAliasBombs(repoDir: string, nsDir: string): Promise<void> {
  for (const file of await committableFiles(repoDir, nsDir)) {
    if (!MANIFEST.test(file)) continue
    const abs = path.join(repoDir, file)
    if (fs.statSync(abs).size > OTHER_MAX_BYTES * 32) continue
    const text = fs.readFileSync(abs, 'utf8')
    if (!/&[\w-]/.test(text) || !/\*[\w-]/.test(text)) continue
    documents(text, file)
  }
}

/** Every Secret and secretGenerator under the namespace's folder, plaintext or not. */
async function scanFolder(repoDir: string, nsDir: string): Promise<{ secrets: FileSecret[]; generators: Generator[] }> {
  const secrets: FileSecret[] = []
  const generators: Generator[] = []
  for (const file of await committableFiles(repoDir, nsDir)) {
    const base = path.posix.basename(file)
    const abs = path.join(repoDir, file)
    // kustomize reads any file listed under resources, whatever its name ends with
    const other = !MANIFEST.test(base) && !KUSTOMIZATION_NAMES.has(base)
    if (other && fs.statSync(abs).size > OTHER_MAX_BYTES) continue
    const text = fs.readFileSync(abs, 'utf8')
    // only a file that names the kind is parsed (a 50 MB manifest of ConfigMaps is not); a
    // Secret spelled otherwise (an alias, a patch) is still judged as built, below
    if (!KUSTOMIZATION_NAMES.has(base) && !NAMES_SECRET.test(text)) continue
    for (const { value, line } of documents(text, file)) {
      if (!isObj(value)) continue
      if (KUSTOMIZATION_NAMES.has(base)) {
        generators.push(...scanKustomization(repoDir, file, value, line))
        continue
      }
      if (value.kind !== 'Secret') continue
      const meta = isObj(value.metadata) ? value.metadata : {}
      secrets.push({
        name: typeof meta.name === 'string' ? meta.name : '(unnamed)',
        file,
        line,
        why: plaintextReason(value),
      })
    }
  }
  return { secrets, generators }
}

/**
 * Why a Secret a generator made holds a value in clear: generators write `data` only, from
 * their sources (judged file by file above), so `stringData` was added by a patch; a `data`
 * value is clear unless it decodes to an ENC[…] value or a whole SOPS file (sops_* keys are
 * the metadata an encrypted dotenv file carries).
 */
function generatedReason(secret: Obj): string | undefined {
  const clear: string[] = []
  if (isObj(secret.stringData)) clear.push(...Object.keys(secret.stringData).map((k) => `stringData.${k}`))
  if (isObj(secret.data))
    for (const [k, v] of Object.entries(secret.data)) {
      if (k.startsWith('sops_')) continue
      const text = typeof v === 'string' ? Buffer.from(v, 'base64').toString('utf8') : ''
      if (!encrypted(text) && !isSopsFile(text)) clear.push(`data.${k}`)
    }
  if (clear.length === 0) return undefined
  return `${clear.join(', ')} ${clear.length === 1 ? 'is' : 'are'} in clear as the prod overlay builds it`
}

/** The line of the Secret document in `file` the built object comes from (its name, else the only Secret). */
function secretLine(repoDir: string, file: string, built: string): number | undefined {
  let docs: { value: unknown; line: number }[]
  try {
    docs = documents(fs.readFileSync(path.join(repoDir, file), 'utf8'), file)
  } catch {
    return undefined
  }
  const secrets = docs.filter((d) => isObj(d.value) && d.value.kind === 'Secret')
  const named = secrets.filter((d) => {
    const meta = (d.value as Obj).metadata
    return isObj(meta) && typeof meta.name === 'string' && built.includes(meta.name)
  })
  return (named.length === 1 ? named[0] : secrets.length === 1 ? secrets[0] : undefined)?.line
}

/**
 * The plaintext Secrets of a namespace: in its committable files (`nsDir` relative to
 * `repoDir`) and among the `built` objects of its prod overlay (`overlayDir`, default
 * `<nsDir>/overlays/prod`). Empty when all is encrypted.
 */
export async function findPlaintextSecrets(
  repoDir: string,
  nsDir: string,
  built: ManifestObject[],
  overlayDir = path.join(repoDir, nsDir, 'overlays', 'prod'),
): Promise<PlaintextSecret[]> {
  const { secrets, generators } = await scanFolder(repoDir, nsDir)
  const found: PlaintextSecret[] = []
  const seen = new Set<string>()
  const add = (p: PlaintextSecret) => {
    const key = `${p.file ?? ''}|${p.line ?? ''}|${p.why}`
    if (!seen.has(key)) {
      seen.add(key)
      found.push(p)
    }
  }
  for (const s of secrets) if (s.why) add({ secret: s.name, file: s.file, line: s.line, why: s.why })
  for (const g of generators) if (g.why) add({ secret: g.name, file: g.file, line: g.line, why: g.why })

  // every built Secret, as kustomize leaves it (patches applied), traced to its file
  const builtSecrets = built.filter((o) => o.kind === 'Secret')
  if (builtSecrets.length === 0) return found
  const origins = await originsOf(overlayDir)
  for (const obj of builtSecrets) {
    const name = obj.metadata.name
    const o = origins.get(originKey(obj))
    const why = o?.generator ? generatedReason(obj) : plaintextReason(obj)
    if (!why) continue
    const file = o ? path.relative(repoDir, o.file).split(path.sep).join('/') : undefined
    const inside = file !== undefined && (file === nsDir || file.startsWith(`${nsDir}/`))
    if (!inside) {
      add({
        secret: name,
        why: `the prod overlay builds it in clear from outside ${nsDir}/ (${file ?? 'a remote or shared base'}), so it cannot be shown to be encrypted`,
      })
      continue
    }
    // already named, from its own file (or its generator's kustomization)
    if (found.some((p) => p.file === file && (p.secret === name || (o?.generator && name.startsWith(p.secret)))))
      continue
    const fromFile = secrets.find((s) => s.file === file && !s.why)
    add({
      secret: name,
      file,
      line: o?.generator
        ? generators.find((g) => g.file === file && name.startsWith(g.name))?.line
        : secretLine(repoDir, file, name),
      why:
        fromFile || o?.generator
          ? `${why.replace(/ \(not ENC.*\)$/, '')}: the file is encrypted, so a patch in the overlay adds it in clear`
          : why,
    })
  }
  return found
}

export function plaintextSecretsError(found: PlaintextSecret[], nsDir: string): NsopsError {
  const lines = found.map(
    (p) => `${p.file ? `${p.file}${p.line ? `:${p.line}` : ''}` : `(outside ${nsDir}/)`}: Secret ${p.secret}: ${p.why}`,
  )
  return new NsopsError(
    `refusing to deploy: ${found.length === 1 ? 'a Secret would be' : `${found.length} Secrets would be`} committed in plaintext. Nothing was committed or pushed.\n  ${lines.join('\n  ')}`,
    {
      hint:
        'encrypt each file in place with SOPS (`sops --encrypt --in-place FILE`, rules in .sops.yaml; Flux decrypts it in the cluster), ' +
        'or keep the Secret out of git (create it in the cluster, or use an ExternalSecret); then run again.',
    },
  )
}
