// `just logs NS [APP]`: follow the logs of an app's pods (or every pod of the namespace),
// stern-like, through the LogFollower that the dev loop and the web page subscribe to too.
// The values of the namespace's Secrets are scrubbed from every line (shared/logs/scrub.ts);
// when they cannot be read, nothing is shown unless --unscrubbed says to show lines as they are.
import { parseCommand, parseDuration } from '../core/cli.ts'
import { ExitCode, NsopsError } from '../core/errors.ts'
import type { Environment, NamespaceConfig } from '../config/namespace-config.ts'
import { c, log, setJsonMode } from '../core/output.ts'
import { resolveTarget, targetOptions } from '../kube/target.ts'
import type { LogLine } from '../logs/follower.ts'
import { Scrubber, watchSecrets } from '../logs/scrub.ts'
import { checkScriptFolder } from '../config/namespaces.ts'

const usage = (ns: string) => `
Usage: just logs ${ns} [APP] [flags]
       ./namespaces/${ns}/logs.ts [APP] [flags]

Follow every container of APP's pods (pods labelled app.kubernetes.io/name=APP; no APP: every
pod of the namespace). A restarted container or a replaced pod is picked up by itself, with no
line shown twice or lost. Lines are prefixed with pod and container only when more than one
could have written them.

  --env ENV          dev or prod namespace (default: dev)
  --since DUR        only lines newer than DUR (Go duration: 30s, 5m, 1h)
  --tail N           only the last N lines of each container (then follow)
  --include REGEX    only lines matching REGEX (repeatable: any of them)
  --exclude REGEX    no line matching REGEX (repeatable)
  --previous         the previous (restarted) run of each container, then exit
  -o json, --json    JSON lines: {"ts","pod","container","line"}
  --unscrubbed       show lines even when the namespace's Secrets cannot be read to scrub
                     their values (they are [redacted] otherwise; without this flag, nothing
                     is shown then)
  --kubeconfig FILE  --context NAME   which cluster (default: $KUBECONFIG, else the one \`just cluster-up\` chose)
`

const palette = [c.cyan, c.green, c.magenta, c.yellow, c.blue, c.red]

/** The same pod always gets the same colour (by a hash of its name). */
function colourOf(pod: string): (s: string) => string {
  let h = 0
  for (const ch of pod) h = (h * 31 + ch.charCodeAt(0)) >>> 0
  return palette[h % palette.length]
}

function regexes(flag: string, values: string[] | undefined): RegExp[] {
  return (values ?? []).map((v) => {
    try {
      return new RegExp(v)
    } catch (err) {
      throw new NsopsError(`${flag} ${JSON.stringify(v)} is not a regular expression: ${(err as Error).message}.`, {
        hint: `e.g. ${flag} 'GET /api' or ${flag} '(?i)error'`,
      })
    }
  })
}

export async function logs(ns: NamespaceConfig, argv: string[]): Promise<number> {
  checkScriptFolder(ns)
  const { values, positionals } = parseCommand(argv, {
    usage: usage(ns.name),
    allowPositionals: true,
    options: {
      env: { type: 'string' },
      since: { type: 'string' },
      tail: { type: 'string' },
      include: { type: 'string', multiple: true },
      exclude: { type: 'string', multiple: true },
      previous: { type: 'boolean' },
      json: { type: 'boolean' },
      unscrubbed: { type: 'boolean' },
      ...targetOptions,
    },
  })
  if (positionals.length > 1)
    throw new NsopsError(`one APP at most, not ${positionals.join(' ')}.`, { hint: `Usage:\n${usage(ns.name)}` })
  const app = positionals[0]
  if (app && !ns.apps.some((a) => a.name === app)) {
    throw new NsopsError(`${ns.name} has no app "${app}".`, {
      hint: `Its apps: ${ns.apps.map((a) => a.name).join(', ')}. No APP follows every pod of the namespace.`,
    })
  }
  if (values.env && values.env !== 'dev' && values.env !== 'prod')
    throw new NsopsError(`--env must be dev or prod, not "${values.env}".`)
  const sinceMs = values.since !== undefined ? parseDuration(values.since, '--since') : undefined
  let tail: number | undefined
  if (values.tail !== undefined) {
    tail = Number(values.tail)
    if (!Number.isInteger(tail) || tail < 0)
      throw new NsopsError(`--tail must be a whole number of lines, not ${JSON.stringify(values.tail)}.`, {
        hint: 'e.g. --tail 100',
      })
  }
  if (values.previous && (sinceMs !== undefined || tail !== undefined)) {
    throw new NsopsError('--previous shows a whole previous run; it does not combine with --since or --tail.')
  }
  const include = regexes('--include', values.include)
  const exclude = regexes('--exclude', values.exclude)
  if (values.json) setJsonMode(true)

  const env = (values.env as Environment | undefined) ?? 'dev'
  const namespace = ns.namespaces[env]
  const { connect, ensureReachable } = await import('../kube/client.ts')
  const kube = connect(resolveTarget(values))
  await ensureReachable(kube)
  try {
    await kube.core.readNamespace({ name: namespace })
  } catch (err) {
    if ((err as { code?: number }).code !== 404) throw err
    throw new NsopsError(`namespace ${namespace} does not exist on ${kube.context}.`, {
      hint:
        env === 'dev'
          ? `Start the dev loop (\`just dev ${ns.name}\`), or follow prod with --env prod.`
          : `Deploy it (\`just deploy ${ns.name}\`), or follow the dev loop's with --env dev.`,
    })
  }

  const { Shutdown } = await import('../core/signals.ts')
  const { LogFollower } = await import('../logs/follower.ts')
  const shutdown = new Shutdown()
  const scrubber = new Scrubber()
  const secrets = await watchSecrets(kube, namespace, scrubber, shutdown.signal)
  try {
    if (scrubber.unreadable && !values.unscrubbed)
      throw new NsopsError(`${scrubber.unreadable}. No line was shown.`, {
        hint: `ask for the right to list Secrets in ${namespace} (\`kubectl auth can-i list secrets -n ${namespace}\`), or pass --unscrubbed to see the lines as they are (a Secret's value may then show in clear).`,
      })
    if (scrubber.unreadable) log.warn(`${scrubber.unreadable}: lines are shown as they are (--unscrubbed)`)
    const follower = new LogFollower(kube.kc, {
      namespace,
      selector: app ? `app.kubernetes.io/name=${app}` : undefined,
      previous: values.previous,
      sinceMs,
      tail,
      include,
      exclude,
      signal: shutdown.signal,
    })
    let lines = 0
    follower.on('line', (raw) => {
      const l = { ...raw, line: scrubber.scrub(raw.line) }
      lines++
      process.stdout.write(
        values.json
          ? `${JSON.stringify({ ts: l.ts, pod: l.pod, container: l.container, line: l.line })}\n`
          : render(l, follower.containers()),
      )
    })
    const problems: string[] = []
    follower.on('problem', (p) => {
      problems.push(p.message)
      if (!values.previous) log.warn(p.message)
    })
    if (!values.previous && !values.json) {
      follower.on('attach', (t) => log.info(c.dim(`+ ${t.pod} ${t.container}`)))
      follower.on('detach', (t) => log.info(c.dim(`- ${t.pod} ${t.container}`)))
    }
    await follower.done
    if (values.previous && lines === 0 && problems.length) {
      throw new NsopsError(
        `no previous run to show in ${namespace}${app ? ` for ${app}` : ''}: ${problems.join('; ')}.`,
        { hint: 'A container has a previous run once it has restarted (RESTARTS > 0 in the dashboard).' },
      )
    }
    return shutdown.stopping ? shutdown.exitCode : ExitCode.ok
  } finally {
    await secrets.stop()
    shutdown.dispose()
  }
}

/** `pod container line` with only the parts that tell the followed containers apart. */
function render(l: LogLine, followed: { pod: string; container: string }[]): string {
  const pods = new Set(followed.map((f) => f.pod)).add(l.pod)
  const containers = new Set(followed.map((f) => f.container)).add(l.container)
  const colour = colourOf(l.pod)
  const prefix = [
    pods.size > 1 ? colour(l.pod) : '',
    containers.size > 1 ? (pods.size > 1 ? c.dim(l.container) : colour(l.container)) : '',
  ]
    .filter(Boolean)
    .join(' ')
  return prefix ? `${prefix} ${l.line}\n` : `${l.line}\n`
}
