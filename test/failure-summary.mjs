// A node:test reporter that prints, after everything ran, each failure with its location and
// error. The TAP stream above it stays as it is; this puts the reason a run failed at the end
// of the output, where a CI log's tail shows it (a failed `before` hook otherwise appears only
// as "cancelled" subtests, its error far up in the stream).
export default async function* failureSummary(source) {
  const failures = []
  for await (const event of source) {
    if (event.type !== 'test:fail') continue
    const { name, file, line, details } = event.data
    const err = details?.error
    const cause = err?.cause ?? err
    const text = cause instanceof Error ? (cause.stack ?? cause.message) : String(cause?.message ?? cause)
    failures.push({ name, where: file ? `${file}:${line}` : '', kind: err?.failureType, text })
  }
  if (failures.length === 0) return
  yield `\n# ${failures.length} failed:\n`
  for (const f of failures) {
    yield `#\n# ✖ ${f.name}${f.where ? `  (${f.where})` : ''}\n`
    if (f.kind === 'cancelledByParent') {
      yield '#   cancelled: its suite failed first (see below or above)\n'
      continue
    }
    // node's own frames say nothing about the failure
    for (const l of f.text
      .split('\n')
      .filter((l) => !/\(node:|at node:/.test(l))
      .slice(0, 12))
      yield `#   ${l}\n`
  }
}
