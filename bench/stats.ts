// Small helpers shared by the benchmarks: repeat, take the median and p95, print a line.
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]
}

export async function repeat(n: number, fn: () => Promise<number>): Promise<number[]> {
  const out: number[] = []
  for (let i = 0; i < n; i++) out.push(await fn())
  return out
}

export function report(name: string, ms: number[], extra = ''): void {
  const fmt = (x: number) => (x >= 1000 ? `${(x / 1000).toFixed(2)} s` : `${x.toFixed(0)} ms`)
  console.log(
    `${name.padEnd(48)} median ${fmt(median(ms)).padStart(9)}  p95 ${fmt(percentile(ms, 95)).padStart(9)}  n=${ms.length}${extra ? `  ${extra}` : ''}`,
  )
}
