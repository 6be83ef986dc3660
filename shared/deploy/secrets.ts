// Plaintext Secrets never reach git. A Secret in the repository must be SOPS-encrypted: its
// file carries a top-level `sops:` block and every value under data/stringData is `ENC[…]`
// (Flux decrypts it in the cluster). Checked twice: every file under the namespace's folder
// that git would commit (a plaintext Secret file is a leak even if no overlay uses it), and
// every Secret the prod overlay builds (generators, bases elsewhere), traced back to its file.
import fs from 'node:fs'
import path from 'node:path'
import { simpleGit } from 'simple-git'
import { LineCounter, parseAllDocuments } from 'yaml'
import { NsopsError } from '../core/errors.ts'
import { KUSTOMIZATION_FILES, type ManifestObject } from '../kustomize/build.ts'

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

function documents(text: string): { value: unknown; line: number }[] {
  const lines = new LineCounter()
  const docs = parseAllDocuments(text, { lineCounter: lines })
  if (!Array.isArray(docs)) return []
  // a file that does not parse is kustomize's to report (with file:line) if an overlay uses it
  return docs
    .filter((d) => d.errors.length === 0)
    .map((d) => ({
      value: d.toJS() as unknown,
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

/** Every Secret and secretGenerator under the namespace's folder, plaintext or not. */
async function scanFolder(repoDir: string, nsDir: string): Promise<{ secrets: FileSecret[]; generators: Generator[] }> {
  const secrets: FileSecret[] = []
  const generators: Generator[] = []
  for (const file of await committableFiles(repoDir, nsDir)) {
    const base = path.posix.basename(file)
    if (!MANIFEST.test(base) && !KUSTOMIZATION_NAMES.has(base)) continue
    const text = fs.readFileSync(path.join(repoDir, file), 'utf8')
    for (const { value, line } of documents(text)) {
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

/** The source whose name the built name contains (kustomize adds prefixes, suffixes, hashes); the longest wins. */
function origin<T extends { name: string }>(built: string, sources: T[]): T | undefined {
  return sources
    .filter((s) => built === s.name || built.includes(s.name))
    .sort((a, b) => b.name.length - a.name.length)[0]
}

/**
 * The plaintext Secrets of a namespace: in its committable files (`nsDir` relative to
 * `repoDir`) and among the `built` objects of its prod overlay. Empty when all is encrypted.
 */
export async function findPlaintextSecrets(
  repoDir: string,
  nsDir: string,
  built: ManifestObject[],
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

  for (const obj of built) {
    if (obj.kind !== 'Secret' || isSopsSecret(obj)) continue
    const name = obj.metadata.name
    const fromFile = origin(name, secrets)
    if (fromFile) continue // judged above, file by file (kustomize keeps `sops:`, so an encrypted file builds encrypted)
    const fromGenerator = origin(name, generators)
    if (fromGenerator) continue // a generator over SOPS-encrypted files builds base64 of the encrypted text
    if (!plaintextReason(obj)) continue
    add({
      secret: name,
      why: `the prod overlay builds it from outside ${nsDir}/ (a remote or shared base), so it cannot be shown to be encrypted`,
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
