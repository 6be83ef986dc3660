// Turns what the Jsonnet evaluation reports (the renderer's JSON error, or the text tk and
// go-jsonnet print) into one error a user can act on: file:line:column and the message, and
// for a chart nobody vendored, the command that vendors it.
import path from 'node:path'
import { NsopsError } from '../core/errors.ts'
import { shown, type TankaEnvironment } from './environments.ts'

/** The renderer's `--errors json` report (tanka/renderer/errors.go). */
export interface RenderErrorReport {
  kind: 'static' | 'runtime' | 'usage' | 'internal'
  message: string
  file?: string
  line?: number
  column?: number
  trace?: { file: string; line: number; column: number; name?: string }[]
}

const MISSING_CHART = /helmTemplate: Failed to find a chart at '([^']+)'/

/** Reads the renderer's JSON report from its stderr; falls back to go-jsonnet's text format. */
export function parseRenderError(stderr: string): RenderErrorReport {
  for (const line of stderr.split('\n').reverse()) {
    if (!line.startsWith('{')) continue
    try {
      const report = JSON.parse(line) as RenderErrorReport
      if (report.kind && typeof report.message === 'string') return report
    } catch {
      /* not the report */
    }
  }
  return parseJsonnetText(stderr)
}

/**
 * go-jsonnet's terminal format, as tk prints it:
 *   RUNTIME ERROR: message
 *   \tfile:line:col-col\tframe          (innermost first)
 * or `STATIC ERROR: file:line:col: message`.
 */
export function parseJsonnetText(text: string): RenderErrorReport {
  const lines = text.split('\n')
  const at = lines.findIndex((l) => /(RUNTIME|STATIC) ERROR: /.test(l))
  if (at === -1) return { kind: 'internal', message: text.trim() || 'the evaluation failed without a message' }
  const head = lines[at].slice(lines[at].indexOf('ERROR: ') + 7)
  const loc = /^(\S+?):(\d+):(\d+)(?:-\d+)?:? (.*)$/
  const staticMatch = loc.exec(head)
  if (lines[at].includes('STATIC') && staticMatch) {
    return {
      kind: 'static',
      message: staticMatch[4],
      file: staticMatch[1],
      line: Number(staticMatch[2]),
      column: Number(staticMatch[3]),
    }
  }
  const trace = lines
    .slice(at + 1)
    .map((l) => /^\t(\S+?):\(?(\d+):(\d+)\)?\S*\t?(.*)$/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ file: m[1], line: Number(m[2]), column: Number(m[3]), name: m[4] }))
  const inner = loc.exec(head)
  if (inner)
    return {
      kind: 'runtime',
      message: inner[4],
      file: inner[1],
      line: Number(inner[2]),
      column: Number(inner[3]),
      trace,
    }
  return { kind: 'runtime', message: head, ...(trace.find((f) => f.file) ?? {}), trace }
}

function where(file: string | undefined, line?: number, column?: number): string {
  if (!file) return ''
  return `${shown(file)}:${line ?? 0}:${column ?? 0}`
}

/** The error a user sees for a failed evaluation of `env`. Nothing has been applied at this point. */
export function renderFailure(env: TankaEnvironment, report: RenderErrorReport): NsopsError {
  const missing = MISSING_CHART.exec(report.message)
  if (missing) {
    const chartDir = missing[1]
    // the call in the environment's own files (else the caller of the helm helper) says more than the helper's line
    const trace = report.trace ?? []
    const call =
      trace.find((f) => path.resolve(f.file).startsWith(env.dir + path.sep)) ??
      trace.find((f) => f.file !== trace[0].file) ??
      trace[0]
    const from = call ? ` (used at ${where(call.file, call.line, call.column)})` : ''
    return new NsopsError(
      `the Tanka environment ${env.name} uses the Helm chart ${shown(chartDir)}${from}, but it is not vendored.`,
      {
        hint: `Run \`just tk-vendor\` to fetch the charts pinned in ${shown(path.join(env.root, 'chartfile.yaml'))}; if this chart is not pinned there, add it under \`requires:\` first.`,
      },
    )
  }
  if (report.kind === 'usage' || report.kind === 'internal') {
    return new NsopsError(`rendering the Tanka environment ${env.name} failed: ${report.message}`, {
      hint:
        report.kind === 'internal'
          ? 'Run again with --debug; if it persists, report it with the environment that triggers it.'
          : undefined,
    })
  }
  // an error raised inside the standard library (std.get on a null) has no file of its own:
  // the innermost frame in a file is where to look (a tk older than the renderer reports so)
  const place = report.file ? report : report.trace?.find((f) => f.file)
  const at = where(place?.file, place?.line, place?.column)
  const message = report.message.replace(/^RUNTIME ERROR: /, '')
  return new NsopsError(`${at ? `${at}: ` : ''}${message}`, {
    hint: `The Jsonnet of the Tanka environment ${env.name} does not evaluate (${report.kind === 'static' ? 'a syntax error' : 'an evaluation error'}); fix it at that place. Nothing was applied.`,
  })
}
