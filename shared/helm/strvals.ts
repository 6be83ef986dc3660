// Helm's `--set` parser (helm.sh/helm/v3 pkg/strvals/parser.go, v3.19.0: the Helm that
// helm-controller v1.4.0 links), ported line for line because helm-controller sets a
// valuesFrom `targetPath` with it: fluxcd/pkg chartutil v1.14.0 ReplacePathValue parses the
// text `<targetPath>=<value>` as one `--set` line. So the value is not taken whole: a comma ends
// it and what follows is parsed as another `key=value` (an error when it has no `=`), `{a,b}`
// is a list, `\` escapes the next character (in the path too: `kubernetes\.io/role`), and the
// value is typed (true/false/null in any case, integers not starting with 0) unless the whole
// value is quoted, which makes it a string (ParseIntoString) after every leading and trailing
// quote is trimmed. Errors are Helm's own words; Go's recovered panics (a key that is a string
// where the path needs a map or a list) are errors too.

export class StrvalsError extends Error {}

/** Go's io.EOF: the end of the line, not an error at the top. */
const EOF = Symbol('EOF')
type Err = StrvalsError | typeof EOF | undefined

/** A Go panic (a failed type assertion), recovered by `key` into an error. */
class Panic extends Error {}

const MAX_INDEX = 65536
const MAX_NESTED_NAME_LEVEL = 30

type Values = Record<string, unknown>
const isMap = (v: unknown): v is Values => typeof v === 'object' && v !== null && !Array.isArray(v)

/**
 * fluxcd/pkg chartutil ReplacePathValue: sets `value` at `path` in `values` (in place) as
 * helm-controller does for a valuesFrom targetPath. Throws StrvalsError with Helm's message.
 */
export function replacePathValue(values: Values, path: string, value: string): void {
  const single = value.startsWith("'") && value.endsWith("'")
  const double = value.startsWith('"') && value.endsWith('"')
  // strings.Trim(value, `'"`): every leading and trailing quote of either kind
  if (single || double) return parseInto(`${path}=${value.replace(/^['"]+|['"]+$/g, '')}`, values, true)
  parseInto(`${path}=${value}`, values, false)
}

/** strvals.ParseInto (`asString`: ParseIntoString). */
export function parseInto(line: string, dest: Values, asString = false): void {
  const p = new Parser(Array.from(line), dest, asString)
  for (;;) {
    const err = p.key(dest, 0)
    if (err === undefined) continue
    if (err === EOF) return
    throw err
  }
}

class Parser {
  private pos = 0
  constructor(
    private readonly runes: string[],
    readonly data: Values,
    private readonly asString: boolean,
  ) {}

  private read(): string | undefined {
    return this.pos < this.runes.length ? this.runes[this.pos++] : undefined
  }
  private unread(): void {
    this.pos--
  }

  /** Runes up to one of `stop` (consumed, returned as last), `\` escaping the next; eof at the end. */
  private until(stop: string): { v: string; last?: string; eof: boolean } {
    let v = ''
    for (;;) {
      const r = this.read()
      if (r === undefined) return { v, eof: true }
      if (stop.includes(r)) return { v, last: r, eof: false }
      if (r === '\\') {
        const next = this.read()
        if (next === undefined) return { v, eof: true }
        v += next
        continue
      }
      v += r
    }
  }

  key(data: Values, nested: number): Err {
    try {
      return this.keyUnsafe(data, nested)
    } catch (e) {
      if (e instanceof Panic) return new StrvalsError(`unable to parse key: ${e.message}`)
      throw e
    }
  }

  private keyUnsafe(data: Values, nested: number): Err {
    const { v: k, last, eof } = this.until('=[,.')
    if (eof) return k.length === 0 ? EOF : new StrvalsError(`key ${q(k)} has no value`)
    if (last === '[') {
      // a list index
      const i = this.keyIndex()
      if (i instanceof StrvalsError) return i
      let list: unknown[] = []
      if (Object.hasOwn(data, k)) list = asList(data[k])
      const [l, err] = this.listItem(list, i, nested)
      set(data, k, l)
      return err
    }
    if (last === '=') {
      const [vl, e] = this.valList()
      if (e === undefined) {
        set(data, k, vl)
        return undefined
      }
      if (e === EOF) {
        set(data, k, '')
        return EOF
      }
      if (e === NOT_LIST) {
        const [rs, e2] = this.val()
        if (e2 !== undefined && e2 !== EOF) return e2
        set(data, k, this.typed(rs))
        return undefined
      }
      return e
    }
    if (last === ',') {
      set(data, k, '')
      return new StrvalsError(`key ${q(k)} has no value (cannot end with ,)`)
    }
    // '.': a nested map
    nested++
    if (nested > MAX_NESTED_NAME_LEVEL)
      return new StrvalsError(
        `value name nested level is greater than maximum supported nested level of ${MAX_NESTED_NAME_LEVEL}`,
      )
    let inner: Values = {}
    if (Object.hasOwn(data, k)) inner = asMap(data[k])
    const e = this.key(inner, nested)
    if (e === undefined && Object.keys(inner).length === 0) return new StrvalsError(`key map ${q(k)} has no value`)
    if (Object.keys(inner).length !== 0) set(data, k, inner)
    return e
  }

  private keyIndex(): number | StrvalsError {
    const { v, eof } = this.until(']')
    if (eof) return new StrvalsError('error parsing index: EOF')
    // strconv.Atoi: an optional sign and decimal digits, within int64
    if (!/^[+-]?\d+$/.test(v))
      return new StrvalsError(`error parsing index: strconv.Atoi: parsing ${q(v)}: invalid syntax`)
    const n = BigInt(v)
    if (n > 2n ** 63n - 1n || n < -(2n ** 63n))
      return new StrvalsError(`error parsing index: strconv.Atoi: parsing ${q(v)}: value out of range`)
    return Number(n)
  }

  private listItem(list: unknown[], i: number, nested: number): [unknown[], Err] {
    if (i < 0) return [list, new StrvalsError(`negative ${i} index not allowed`)]
    const { v: k, last, eof } = this.until('[.=')
    if (k.length > 0) return [list, new StrvalsError(`unexpected data at end of array index: ${q(k)}`)]
    if (eof) return [list, EOF]
    if (last === '=') {
      const [vl, e] = this.valList()
      if (e === undefined) return setIndex(list, i, vl)
      if (e === EOF) return setIndex(list, i, '')
      if (e === NOT_LIST) {
        const [rs, e2] = this.val()
        if (e2 !== undefined && e2 !== EOF) return [list, e2]
        return setIndex(list, i, this.typed(rs))
      }
      return [list, e]
    }
    if (last === '[') {
      // a nested list
      const next = this.keyIndex()
      if (next instanceof StrvalsError) return [list, next]
      let current: unknown[] = []
      if (list.length > i && list[i] !== null && list[i] !== undefined) current = asList(list[i])
      const [l2, err] = this.listItem(current, next, nested)
      if (err !== undefined) return [list, err]
      return setIndex(list, i, l2)
    }
    // '.': a map in the list
    let inner: Values = {}
    if (list.length > i) {
      if (isMap(list[i])) inner = list[i] as Values
      else inner = list[i] = {} // indices out of order: Helm starts an empty map here
    }
    const e = this.key(inner, nested)
    if (e !== undefined) return [list, e]
    return setIndex(list, i, inner)
  }

  /** A value up to the next comma. */
  private val(): [string, Err] {
    const { v, eof } = this.until(',')
    return [v, eof ? EOF : undefined]
  }

  /** `{a,b}`: a list; NOT_LIST when the value does not start with `{`. */
  private valList(): [unknown[], Err | typeof NOT_LIST] {
    const r = this.read()
    if (r === undefined) return [[], EOF]
    if (r !== '{') {
      this.unread()
      return [[], NOT_LIST]
    }
    const list: unknown[] = []
    for (;;) {
      const { v, last, eof } = this.until(',}')
      if (eof) return [list, new StrvalsError("list must terminate with '}'")]
      if (last === '}') {
        // a comma after the list is consumed
        const after = this.read()
        if (after !== undefined && after !== ',') this.unread()
        list.push(this.typed(v))
        return [list, undefined]
      }
      list.push(this.typed(v))
    }
  }

  /** typedVal */
  private typed(val: string): unknown {
    if (this.asString) return val
    if (equalFold(val, 'true')) return true
    if (equalFold(val, 'false')) return false
    if (equalFold(val, 'null')) return null
    if (val === '0') return 0
    // strconv.ParseInt(val, 10, 64) of a value not starting with 0
    if (val.length !== 0 && val[0] !== '0' && /^[+-]?\d+$/.test(val)) {
      const n = BigInt(val)
      // (beyond 2^53 JavaScript numbers lose digits: such values are vanishingly rare in charts)
      if (n <= 2n ** 63n - 1n && n >= -(2n ** 63n)) return Number(n)
    }
    return val
  }
}

const NOT_LIST = Symbol('not a list')

function set(data: Values, key: string, val: unknown): void {
  if (key.length === 0) return
  // a key like any other (a plain assignment of `__proto__` would change the object's prototype)
  Object.defineProperty(data, key, { value: val, writable: true, enumerable: true, configurable: true })
}

/** Go's %q, near enough for the keys of a values path. */
const q = (s: string) => JSON.stringify(s)

function setIndex(list: unknown[], index: number, val: unknown): [unknown[], Err] {
  if (index < 0) return [list, new StrvalsError(`negative ${index} index not allowed`)]
  if (index > MAX_INDEX)
    return [list, new StrvalsError(`index of ${index} is greater than maximum supported index of ${MAX_INDEX}`)]
  if (list.length <= index) {
    const longer: unknown[] = new Array(index + 1).fill(null)
    list.forEach((x, j) => (longer[j] = x))
    list = longer
  }
  list[index] = val
  return [list, undefined]
}

/** Go's `x.([]interface{})`, panicking as Go does when x is something else (nil included). */
function asList(x: unknown): unknown[] {
  if (Array.isArray(x)) return x
  throw new Panic(`interface conversion: interface {} is ${goType(x)}, not []interface {}`)
}

/** Go's `x.(map[string]interface{})`. */
function asMap(x: unknown): Values {
  if (isMap(x)) return x
  throw new Panic(`interface conversion: interface {} is ${goType(x)}, not map[string]interface {}`)
}

function goType(x: unknown): string {
  if (x === null || x === undefined) return 'nil'
  if (Array.isArray(x)) return '[]interface {}'
  if (typeof x === 'string') return 'string'
  if (typeof x === 'boolean') return 'bool'
  if (typeof x === 'number') return Number.isInteger(x) ? 'int64' : 'float64'
  return typeof x
}

/** strings.EqualFold against true/false/null: Unicode simple folding adds ſ for s. */
function equalFold(s: string, word: string): boolean {
  return s.replace(/ſ/g, 's').toLowerCase() === word
}
