// `just ci [STEP] [--base REF]`: on any machine, what the shipped workflows do on a pull
// request, step by step: changed → validate → diff → e2e. Each step also runs alone, exits
// 0 (ok) or 1 (failed), and ends with one summary line (`ci <step>: ok|FAILED — …`), so a
// CI log and a local run read the same. Results land in --out (default .nsops/ci).
import fs from 'node:fs'
import path from 'node:path'
import { parseCommand } from '../core/cli.ts'
import { ExitCode, NsopsError, isNsopsError, errorMessage } from '../core/errors.ts'
import { c, duration, log } from '../core/output.ts'
import { repoRoot, stateDir } from '../core/paths.ts'
import type { Changed } from '../ci/changed.ts'

export const CI_STEPS = ['changed', 'validate', 'diff', 'e2e'] as const
type Step = (typeof CI_STEPS)[number]

const usage = `
Usage: just ci [changed|validate|diff|e2e] [--base REF] [--out DIR] [flags]

Without a step, runs all four in order (e2e is skipped when validate failed) and prints one
line per step. Each step compares with the merge base of REF and HEAD: REF is --base, else
NSOPS_CI_BASE (the workflows set it to the pull request's base branch), else the upstream
branch.

  changed    the namespaces and Tanka environments whose files differ from the merge base
             (committed or not); everything when shared/ or k8s/ changed. --json prints them.
  validate   for each changed namespace: kustomize build of overlays/prod, no plaintext
             Secret, strict offline schemas (errors at file:line); for each changed Tanka
             environment: vendor, render, strict schemas
  diff       the rendered per-object diff of each changed namespace between the merge base
             and the working tree (no cluster), chart noise left out, danger signals called
             out; DIR/diff.md (capped for a PR comment, with a marker line), diff-full.md,
             diff.json; appended to $GITHUB_STEP_SUMMARY when that is set
  e2e        cluster-up --flux, dev-up --ci of the changed namespaces (the stack is kept),
             each namespace's checks, then always DIR/e2e: snapshot.json, every sim
             component's log, events and \`kubectl get all\` of each namespace, check logs

  --base REF         the branch the change goes into (e.g. origin/main)
  --out DIR          where results go (default .nsops/ci)
  --timeout DUR      e2e: how long dev-up --ci waits (default 5m)
  --limit N          diff: the Markdown's size cap in characters (default 60000)
  --json             changed: print the selection as JSON on stdout

Exit codes: 0 every step passed · 1 a step failed (or bad input).
`

interface Ctx {
  base?: string
  out: string
  timeout?: string
  limit?: number
  json?: boolean
}

export async function ci(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(argv, {
    usage,
    allowPositionals: true,
    options: {
      base: { type: 'string' },
      out: { type: 'string' },
      timeout: { type: 'string' },
      limit: { type: 'string' },
      json: { type: 'boolean' },
    },
  })
  if (positionals.length > 1 || (positionals[0] && !CI_STEPS.includes(positionals[0] as Step))) {
    throw new NsopsError(`unknown ci step "${positionals.join(' ')}".`, {
      hint: `Steps: ${CI_STEPS.join(', ')} (none: all of them, in that order).`,
    })
  }
  if (values.timeout !== undefined) {
    const { parseDuration } = await import('../core/cli.ts')
    parseDuration(values.timeout)
  }
  const limit = values.limit === undefined ? undefined : Number(values.limit)
  if (limit !== undefined && !(Number.isInteger(limit) && limit >= 1000))
    throw new NsopsError(`--limit ${values.limit} is not a size.`, {
      hint: 'give it in characters, at least 1000 (GitHub comments take 65536).',
    })
  const ctx: Ctx = {
    base: values.base,
    out: path.resolve(values.out ?? path.join(stateDir(), 'ci')),
    timeout: values.timeout,
    limit,
    json: values.json,
  }
  fs.mkdirSync(ctx.out, { recursive: true })
  const step = positionals[0] as Step | undefined
  const started = Date.now()
  const { changedSince, resolveBase, changedSummary } = await import('../ci/changed.ts')
  const { base, source } = await resolveBase(repoRoot, ctx.base)
  const changed = await changedSince(repoRoot, base, source)
  fs.writeFileSync(
    path.join(ctx.out, 'changed.json'),
    `${JSON.stringify({ schema: 'nsops.ci-changed/v1', ...changed }, null, 2)}\n`,
  )
  if (step === 'changed' || !step) {
    if (ctx.json) process.stdout.write(`${JSON.stringify({ schema: 'nsops.ci-changed/v1', ...changed }, null, 2)}\n`)
    else if (step)
      for (const n of [...changed.namespaces, ...changed.tankaEnvironments.map((e) => `tanka/${e}`)])
        process.stdout.write(`${n}\n`)
    summary('changed', true, changedSummary(changed))
    if (step) return ExitCode.ok
  }
  const results: [Step, boolean, number][] = [['changed', true, Date.now() - started]]
  for (const s of (step ? [step] : CI_STEPS.slice(1)) as Exclude<Step, 'changed'>[]) {
    const t0 = Date.now()
    let ok: boolean
    if (s === 'e2e' && results.some(([name, passed]) => name === 'validate' && !passed)) {
      summary('e2e', false, 'skipped: validate failed, so there is nothing sound to apply')
      ok = false
    } else {
      try {
        ok = await STEPS[s](changed, ctx)
      } catch (err) {
        // one step's error is that step's failure: its line says why, the others still run
        ok = false
        summary(s, false, `${errorMessage(err)}${isNsopsError(err) && err.hint ? ` (hint: ${err.hint})` : ''}`)
      }
    }
    results.push([s, ok, Date.now() - t0])
  }
  if (!step) {
    // per-step figures for people and for bench/ci.bench.ts
    fs.writeFileSync(
      path.join(ctx.out, 'ci.json'),
      `${JSON.stringify({ schema: 'nsops.ci/v1', steps: results.map(([s, ok, ms]) => ({ step: s, ok, ms })) }, null, 2)}\n`,
    )
    log.info(c.bold('just ci:'))
    for (const [s, ok, ms] of results)
      log.info(`  ${ok ? c.green('ok    ') : c.red('FAILED')} ${s.padEnd(8)} ${c.dim(duration(ms))}`)
  }
  return results.every(([, ok]) => ok) ? ExitCode.ok : ExitCode.usage
}

function summary(step: Step, ok: boolean, text: string): void {
  const line = `ci ${step}: ${ok ? 'ok' : 'FAILED'} — ${text}`
  if (ok) log.ok(line)
  else log.fail(line)
}

const STEPS: Record<Exclude<Step, 'changed'>, (changed: Changed, ctx: Ctx) => Promise<boolean>> = {
  async validate(changed, ctx) {
    if (!changed.namespaces.length && !changed.tankaEnvironments.length) {
      summary('validate', true, 'nothing changed that renders')
      return true
    }
    const { validateChanged } = await import('../ci/validate.ts')
    const r = await validateChanged(changed.namespaces, changed.tankaEnvironments, (e) => {
      const name = e.kind === 'tanka' ? `tanka/${e.name}` : e.name
      if (e.ok) log.ok(`${name}: ${e.message}`)
      else {
        log.fail(`${name}: ${e.message}`)
        if (e.hint) log.info(`  hint: ${e.hint}`)
      }
    })
    fs.writeFileSync(
      path.join(ctx.out, 'validate.json'),
      `${JSON.stringify({ schema: 'nsops.ci-validate/v1', ...r }, null, 2)}\n`,
    )
    const bad = r.entries.filter((e) => !e.ok)
    summary(
      'validate',
      r.ok,
      r.ok
        ? `${r.entries.length} valid (${r.entries.map((e) => (e.kind === 'tanka' ? `tanka/${e.name}` : e.name)).join(', ')})`
        : `${bad.length} of ${r.entries.length} invalid: ${bad.map((e) => (e.kind === 'tanka' ? `tanka/${e.name}` : e.name)).join(', ')}`,
    )
    return r.ok
  },

  async diff(changed, ctx) {
    const { diffAgainstMergeBase, renderMarkdown, diffSummary } = await import('../ci/diff.ts')
    const d = await diffAgainstMergeBase(repoRoot, changed.namespaces, {
      base: changed.base,
      mergeBase: changed.mergeBase,
      partial: changed.partial,
      files: changed.files,
    })
    const md = renderMarkdown(d, ctx.limit)
    fs.writeFileSync(path.join(ctx.out, 'diff.md'), md)
    fs.writeFileSync(path.join(ctx.out, 'diff-full.md'), renderMarkdown(d, Number.MAX_SAFE_INTEGER))
    fs.writeFileSync(path.join(ctx.out, 'diff.json'), `${JSON.stringify(d, null, 2)}\n`)
    if (process.env.GITHUB_STEP_SUMMARY) fs.appendFileSync(process.env.GITHUB_STEP_SUMMARY, `${md}\n`)
    const { renderDiff } = await import('../apply/diff.ts')
    for (const n of d.namespaces) {
      if (n.error) log.fail(`${n.name}: ${n.error}`)
      else if (n.objects.length) log.info(`${c.bold(n.name)}\n${renderDiff({ objects: n.objects })}`)
    }
    for (const s of d.signals) log.warn(`${s.kind}: ${s.object}: ${s.message.replaceAll('`', '')}`)
    const ok = d.namespaces.every((n) => !n.error)
    summary('diff', ok, `${diffSummary(d)}; ${path.relative(process.cwd(), path.join(ctx.out, 'diff.md'))}, diff.json`)
    return ok
  },

  async e2e(changed, ctx) {
    if (!changed.namespaces.length) {
      fs.rmSync(path.join(ctx.out, 'e2e'), { recursive: true, force: true })
      fs.mkdirSync(path.join(ctx.out, 'e2e'), { recursive: true })
      fs.writeFileSync(
        path.join(ctx.out, 'e2e', 'summary.json'),
        `${JSON.stringify({ schema: 'nsops.ci-e2e/v1', ok: true, skipped: 'no namespace changed' }, null, 2)}\n`,
      )
      summary('e2e', true, 'no namespace changed: nothing to run')
      return true
    }
    const { loadNamespaces } = await import('../config/namespaces.ts')
    const configs = await loadNamespaces(changed.namespaces)
    const { runE2e, e2eSummary } = await import('../ci/e2e.ts')
    const ac = new AbortController()
    // the children see Ctrl-C themselves (same process group) and clean up; we only stop
    // starting new work and still write the artifacts
    const onSignal = () => ac.abort()
    process.once('SIGINT', onSignal)
    process.once('SIGTERM', onSignal)
    try {
      const r = await runE2e({
        namespaces: configs,
        out: ctx.out,
        timeout: ctx.timeout,
        signal: ac.signal,
        onLine: (l) => log.info(l),
      })
      for (const n of r.notes) log.info(c.dim(`note: ${n}`))
      summary('e2e', r.ok, e2eSummary(r, changed.namespaces))
      return r.ok
    } finally {
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
    }
  },
}
