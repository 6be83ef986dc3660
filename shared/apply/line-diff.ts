// A small line diff: longest common subsequence over the lines between the common prefix and
// suffix, printed as unified hunks. No diff library is installed and a manifest is a few
// hundred lines, so the quadratic table is cheap; past MAX_CELLS (a huge object rewritten
// throughout) the middle is shown as removed-then-added, which is still a correct diff.

export interface DiffLine {
  op: ' ' | '-' | '+'
  text: string
}

const MAX_CELLS = 4_000_000

export function diffLines(before: readonly string[], after: readonly string[]): DiffLine[] {
  let start = 0
  while (start < before.length && start < after.length && before[start] === after[start]) start++
  let endB = before.length
  let endA = after.length
  while (endB > start && endA > start && before[endB - 1] === after[endA - 1]) {
    endB--
    endA--
  }

  const head = before.slice(0, start).map((text): DiffLine => ({ op: ' ', text }))
  const tail = before.slice(endB).map((text): DiffLine => ({ op: ' ', text }))
  const b = before.slice(start, endB)
  const a = after.slice(start, endA)
  return [...head, ...middle(b, a), ...tail]
}

function middle(b: readonly string[], a: readonly string[]): DiffLine[] {
  const n = b.length
  const m = a.length
  if (n === 0 || m === 0 || (n + 1) * (m + 1) > MAX_CELLS) {
    return [...b.map((text): DiffLine => ({ op: '-', text })), ...a.map((text): DiffLine => ({ op: '+', text }))]
  }
  // lcs[i][j] = length of the LCS of b[i..] and a[j..]
  const width = m + 1
  const lcs = new Uint32Array((n + 1) * width)
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i * width + j] =
        b[i] === a[j] ? lcs[(i + 1) * width + j + 1] + 1 : Math.max(lcs[(i + 1) * width + j], lcs[i * width + j + 1])
    }
  }
  const out: DiffLine[] = []
  let i = 0
  let j = 0
  while (i < n && j < m) {
    if (b[i] === a[j]) {
      out.push({ op: ' ', text: b[i] })
      i++
      j++
    }
    // removals before additions, as unified diffs print a change
    else if (lcs[(i + 1) * width + j] >= lcs[i * width + j + 1]) out.push({ op: '-', text: b[i++] })
    else out.push({ op: '+', text: a[j++] })
  }
  while (i < n) out.push({ op: '-', text: b[i++] })
  while (j < m) out.push({ op: '+', text: a[j++] })
  return out
}

export interface Hunk {
  header: string
  lines: DiffLine[]
}

/** Groups changes with `context` unchanged lines around them, as `diff -u` does. */
export function hunks(lines: readonly DiffLine[], context = 3): Hunk[] {
  const changed = lines.map((l, i) => (l.op === ' ' ? -1 : i)).filter((i) => i >= 0)
  if (changed.length === 0) return []
  const ranges: [number, number][] = []
  for (const i of changed) {
    const from = Math.max(0, i - context)
    const to = Math.min(lines.length, i + context + 1)
    const last = ranges[ranges.length - 1]
    if (last && from <= last[1]) last[1] = Math.max(last[1], to)
    else ranges.push([from, to])
  }
  // line numbers on each side where every range starts
  const oldAt: number[] = []
  const newAt: number[] = []
  let o = 1
  let n = 1
  for (const l of lines) {
    oldAt.push(o)
    newAt.push(n)
    if (l.op !== '+') o++
    if (l.op !== '-') n++
  }
  return ranges.map(([from, to]) => {
    const slice = lines.slice(from, to)
    const oldLen = slice.filter((l) => l.op !== '+').length
    const newLen = slice.filter((l) => l.op !== '-').length
    // diff -u numbers an empty side by the line before it
    const oldStart = oldLen ? oldAt[from] : oldAt[from] - 1
    const newStart = newLen ? newAt[from] : newAt[from] - 1
    return { header: `@@ -${oldStart},${oldLen} +${newStart},${newLen} @@`, lines: slice }
  })
}

/** Unified hunks as plain text (no colour), one line per entry. */
export function unifiedText(lines: readonly DiffLine[], context = 3): string {
  return hunks(lines, context)
    .map((h) => [h.header, ...h.lines.map((l) => `${l.op}${l.text}`)].join('\n'))
    .join('\n')
}
