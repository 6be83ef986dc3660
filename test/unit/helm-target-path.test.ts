// valuesFrom targetPath as helm-controller v1.4.0 sets it: fluxcd/pkg chartutil v1.14.0
// ReplacePathValue, which parses `<targetPath>=<value>` with Helm v3.19.0's --set parser
// (pkg/strvals). The cases are upstream's own: chartutil's TestReplacePathValue and the
// targetPath cases of TestChartValuesFromReferences, and strvals' TestParseSet / TestParseInto
// (what a comma, a dot, brackets, braces, a backslash or quotes do), with their expectations.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { parseInto, replacePathValue, StrvalsError } from '../../shared/helm/strvals.ts'
import { valuesOf } from '../../shared/flux/build/helm-release.ts'
import type { LeafContext } from '../../shared/flux/build/index.ts'
import type { ManifestObject } from '../../shared/kube/refs.ts'

const replaced = (path: string, value: string, into: Record<string, unknown> = {}) => {
  replacePathValue(into, path, value)
  return into
}

describe('chartutil TestReplacePathValue (helm --set formats)', () => {
  it('outer inner', () => assert.deepEqual(replaced('outer.inner', 'value'), { outer: { inner: 'value' } }))
  it('inline list', () => assert.deepEqual(replaced('name', '{a,b,c}'), { name: ['a', 'b', 'c'] }))
  it('with escape', () => assert.deepEqual(replaced('name', 'value1\\,value2'), { name: 'value1,value2' }))
  it('target path with boolean value', () =>
    assert.deepEqual(replaced('merge.at.specific.path', 'true'), { merge: { at: { specific: { path: true } } } }))
  it('target path with set-string behavior', () =>
    assert.deepEqual(replaced('merge.at.specific.path', '"true"'), { merge: { at: { specific: { path: 'true' } } } }))
  it('target path with array item', () =>
    assert.deepEqual(replaced('merge.at[2]', 'value'), { merge: { at: [null, null, 'value'] } }))
  it('dot sequence escaping path', () =>
    assert.deepEqual(replaced('nodeSelector.kubernetes\\.io/role', 'master'), {
      nodeSelector: { 'kubernetes.io/role': 'master' },
    }))
})

describe('what the --set line does to a value helm-controller reads whole from a ConfigMap', () => {
  it('a comma ends the value and starts another key: an error when no = follows', () => {
    assert.throws(
      () => replaced('greeting', 'hello, world'),
      (e) => e instanceof StrvalsError && e.message === 'key " world" has no value',
    )
  })
  it('…and a second key=value after the comma is set too, at the top of the values', () =>
    assert.deepEqual(replaced('a.b', 'x,c=3'), { a: { b: 'x' }, c: 3 }))
  it('a trailing comma is dropped', () => assert.deepEqual(replaced('a', 'x,'), { a: 'x' }))
  it('quotes make it a string, trimmed of every quote at both ends, and a comma still splits it', () => {
    assert.deepEqual(replaced('a', `"'42'"`), { a: '42' })
    assert.deepEqual(replaced('a', "'007'"), { a: '007' })
    assert.throws(() => replaced('a', '"x,y"'), /key "y" has no value/)
    assert.deepEqual(replaced('a', '"{1,2}"'), { a: ['1', '2'] })
  })
  it('typed: true/false/null in any case, integers not starting with 0; floats and 007 stay strings', () =>
    assert.deepEqual(
      {
        ...replaced('t', 'TRUE'),
        ...replaced('f', 'False'),
        ...replaced('n', 'NULL'),
        ...replaced('i', '-12'),
        ...replaced('z', '0'),
        ...replaced('s', '007'),
        ...replaced('x', '1.5'),
        ...replaced('e', ''),
      },
      { t: true, f: false, n: null, i: -12, z: 0, s: '007', x: '1.5', e: '' },
    ))
  it('a trailing newline (a ConfigMap block scalar) is part of the value', () =>
    assert.deepEqual(replaced('a', 'true\n'), { a: 'true\n' }))
  it('a path through a string is an error (Go panics on the type assertion; strvals recovers it)', () =>
    assert.throws(() => replaced('a.b', 'x', { a: 'text' }), /unable to parse key: interface conversion/))
})

describe('strvals TestParseSet / TestParseInto (Helm v3.19.0)', () => {
  const ok: [string, unknown][] = [
    ['name1=null,f=false,t=true', { name1: null, f: false, t: true }],
    ['name1=value1,name2=value2,', { name1: 'value1', name2: 'value2' }],
    ['name1=,name2=value2', { name1: '', name2: 'value2' }],
    ['leading_zeros=00009', { leading_zeros: '00009' }],
    ['long_int=1234567890', { long_int: 1234567890 }],
    ['name1=one\\,two,name2=three\\,four', { name1: 'one,two', name2: 'three,four' }],
    ['name1=one\\=two,name2=three\\=four', { name1: 'one=two', name2: 'three=four' }],
    ['outer.inner1=value,outer.middle.inner=value', { outer: { inner1: 'value', middle: { inner: 'value' } } }],
    ['name1.name2=', { name1: { name2: '' } }],
    ['name1={value1,value2},name2={value1,value2}', { name1: ['value1', 'value2'], name2: ['value1', 'value2'] }],
    ['name1={1021,902}', { name1: [1021, 902] }],
    ['list[0].foo=bar,list[0].hello=world', { list: [{ foo: 'bar', hello: 'world' }] }],
    ['list[0]=foo,list[3]=bar', { list: ['foo', null, null, 'bar'] }],
    ['noval[0]', { noval: [] }],
    ['noval[0]=', { noval: [''] }],
    ['nested[1][1]=1', { nested: [null, [null, 1]] }],
    ['name1.name2[1].foo=bar', { name1: { name2: [null, { foo: 'bar' }] } }],
  ]
  for (const [line, want] of ok)
    it(line, () => {
      const got = {}
      parseInto(line, got)
      assert.deepEqual(got, want)
    })
  const bad = [
    'name1=value1,,,,name2=value2,',
    'name1,name2=',
    'name1,name2=value2\\',
    'name1.name2',
    'name1.=name2',
    'name1={1021,902',
    'list[0].foo=bar,list[-30].hello=world',
    'illegal[0]name.foo=bar',
    ']={}].',
  ]
  for (const line of bad) it(`${line} is an error`, () => assert.throws(() => parseInto(line, {}), StrvalsError))
  it('more than 30 nested names is an error', () =>
    assert.throws(() => parseInto(`${Array.from({ length: 32 }, (_, i) => `name${i + 1}`).join('.')}=value`, {}), {
      message: 'value name nested level is greater than maximum supported nested level of 30',
    }))
  it('ParseInto merges into what is there; ParseIntoString keeps strings', () => {
    const got = { outer: { inner1: 'overwrite', inner2: 'value2' } }
    parseInto('outer.inner1=value1,outer.inner3=value3,outer.inner4=4', got)
    assert.deepEqual(got, { outer: { inner1: 'value1', inner2: 'value2', inner3: 'value3', inner4: 4 } })
    const str = { outer: { inner1: 'overwrite', inner2: 'value2' } }
    parseInto('outer.inner1=1,outer.inner3=3', str, true)
    assert.deepEqual(str, { outer: { inner1: '1', inner2: 'value2', inner3: '3' } })
    const lists = {
      listOuter: [[[{ exited: 'old' }]]],
    }
    parseInto('listOuter[0][1][0].type=listValue', lists)
    parseInto('listOuter[0][0][1].status=alive', lists)
    assert.deepEqual(lists, {
      listOuter: [[[{ exited: 'old' }, { status: 'alive' }], [{ type: 'listValue' }]]],
    })
  })
})

describe('chartutil TestChartValuesFromReferences: targetPath in the values helm-controller computes', () => {
  const cm = (name: string, data: Record<string, string>) =>
    ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'default' }, data }) as ManifestObject
  const secret = (name: string, data: Record<string, string>) =>
    ({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name, namespace: 'default' },
      data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
    }) as ManifestObject
  const values = async (objects: ManifestObject[], spec: Record<string, unknown>) => {
    const hr = {
      apiVersion: 'helm.toolkit.fluxcd.io/v2',
      kind: 'HelmRelease',
      metadata: { name: 'r', namespace: 'default' },
      spec,
    } as ManifestObject
    const before = structuredClone(spec)
    const got = (await valuesOf(hr, { objects } as unknown as LeafContext, 'HelmRelease default/r', () => {})).values
    assert.deepEqual(hr.spec, before, 'the HelmRelease itself is left as it was')
    return got
  }

  it('with target path', async () =>
    assert.deepEqual(
      await values([secret('values', { single: 'value' })], {
        valuesFrom: [{ kind: 'Secret', name: 'values', valuesKey: 'single', targetPath: 'merge.at.specific.path' }],
      }),
      { merge: { at: { specific: { path: 'value' } } } },
    ))

  it('target path precedence over all (it changes the list spec.values holds, in place)', async () =>
    assert.deepEqual(
      await values(
        [
          cm('values', { 'values.yaml': 'flat: value\nnested:\n  configuration:\n  - one\n  - two\n  - three\n' }),
          secret('values', { key: 'value' }),
        ],
        {
          valuesFrom: [
            { kind: 'Secret', name: 'values', valuesKey: 'key', targetPath: 'nested.configuration[0]' },
            { kind: 'ConfigMap', name: 'values' },
          ],
          values: { nested: { configuration: ['list', 'item', 'option'] } },
        },
      ),
      { flat: 'value', nested: { configuration: ['value', 'item', 'option'] } },
    ))

  it('target path for string type array item', async () =>
    assert.deepEqual(
      await values(
        [
          cm('values', { 'values.yaml': 'flat: value\nnested:\n  configuration:\n  - list\n  - item\n  - option\n' }),
          secret('values', { 'values.yaml': 'foo' }),
        ],
        {
          valuesFrom: [
            { kind: 'ConfigMap', name: 'values' },
            { kind: 'Secret', name: 'values', targetPath: 'nested.configuration[1]' },
          ],
          values: { other: 'values' },
        },
      ),
      { flat: 'value', nested: { configuration: ['list', 'foo', 'option'] }, other: 'values' },
    ))

  it('a value helm-controller cannot set fails naming the HelmRelease, the reference, the value and the parse error, with a hint', async () => {
    await assert.rejects(
      values([cm('greeting', { text: 'hello, world' })], {
        valuesFrom: [{ kind: 'ConfigMap', name: 'greeting', valuesKey: 'text', targetPath: 'app.greeting' }],
      }),
      (e: Error & { hint?: string }) => {
        assert.equal(
          e.message,
          'HelmRelease default/r: spec.valuesFrom[0] (ConfigMap default/greeting, key text): helm-controller cannot set targetPath app.greeting to the ConfigMap\'s value "hello, world": key " world" has no value.',
        )
        assert.match(e.hint ?? '', /write it \\, to keep it/)
        return true
      },
    )
    // a Secret's value is never shown, not even the part Helm's error quotes
    await assert.rejects(
      values([secret('token', { token: 'hunter2, more' })], {
        valuesFrom: [{ kind: 'Secret', name: 'token', valuesKey: 'token', targetPath: 'auth.token' }],
      }),
      (e: Error) => {
        assert.match(e.message, /cannot set targetPath auth\.token to the Secret's value: key "…" has no value\.$/)
        assert.doesNotMatch(e.message, /hunter2|more/)
        return true
      },
    )
  })
})
