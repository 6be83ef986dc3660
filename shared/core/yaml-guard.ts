// YAML that expands without end: a document whose aliases refer to anchors that refer to
// anchors ("billion laughs") would take all memory when turned into values. The yaml library
// stops it (its maxAliasCount) with a bare ReferenceError that names no file; this turns
// that into one NsopsError naming the file, for every place nsops reads a user's YAML itself.
import type { Document } from 'yaml'
import { NsopsError } from './errors.ts'

/** Whether an error is the yaml library's refusal of an alias bomb. */
export function isAliasBomb(err: unknown): boolean {
  return err instanceof ReferenceError && /alias/i.test(err.message)
}

export function aliasBombError(file: string, err: unknown): NsopsError {
  return new NsopsError(
    `${file}: its YAML aliases (*name) expand too far to be read (${(err as Error).message.toLowerCase()}). nsops stopped reading it.`,
    {
      hint: 'write the values out, or use fewer aliases of anchors (&name) that themselves hold aliases; kustomize refuses such a file too.',
      cause: err,
    },
  )
}

/** A parsed document's value; an alias bomb is an NsopsError naming `file`. */
export function docValue(doc: Document.Parsed, file: string): unknown {
  try {
    return doc.toJS()
  } catch (err) {
    if (isAliasBomb(err)) throw aliasBombError(file, err)
    throw err
  }
}
