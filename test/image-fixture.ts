// Small images for tests: a one-file layer crane can append, and a reader for what an image holds.
import fs from 'node:fs'
import path from 'node:path'
import { crane } from '../shared/images/crane.ts'

/** A one-file layer (an uncompressed tar) in a fresh folder under `dir`; returns the tar's path. */
export async function layerWith(dir: string, file: string, content: string): Promise<string> {
  const tar = await import('tar')
  const root = fs.mkdtempSync(path.join(dir, 'layer-'))
  fs.writeFileSync(path.join(root, file), content)
  const out = `${root}.tar`
  await tar.c({ file: out, cwd: root, portable: true }, [file])
  return out
}

/** The files of an image's flattened filesystem (crane export), path → content. */
export async function imageFiles(ref: string, dir: string): Promise<Record<string, string>> {
  const tar = await import('tar')
  const exported = fs.mkdtempSync(path.join(dir, 'export-'))
  const file = path.join(exported, 'fs.tar')
  await crane(['export', ref, file])
  const files: Record<string, string> = {}
  await tar.t({
    file,
    onReadEntry: (e) => {
      let text = ''
      e.on('data', (b: Buffer) => (text += b.toString()))
      e.on('end', () => (files[e.path] = text))
    },
  })
  return files
}
