// Container output on the terminal (shared/logs/sanitize.ts): colours stay, every other
// control sequence a terminal would act on goes, and a line is bounded.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { MAX_LINE, sanitizeLine } from '../../shared/logs/sanitize.ts'

describe('container output on a terminal', () => {
  it('drops OSC (clipboard, title, hyperlink), CSI other than colour, DCS/APC and single escapes', () => {
    assert.equal(sanitizeLine('a\x1b]52;c;Y3VybCBldmlsIHwgc2g=\x07b'), 'ab', 'OSC 52 ended by BEL')
    assert.equal(sanitizeLine('a\x1b]0;title\x1b\\b'), 'ab', 'OSC 0 ended by ST')
    assert.equal(sanitizeLine('\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\'), 'link', 'hyperlinks')
    assert.equal(sanitizeLine('a\x1b]52;c;unterminated'), 'a', 'an unterminated OSC runs to the end')
    assert.equal(sanitizeLine('\x1b[2J\x1b[H\x1b[10;20Hx\x1b[?1049h\x1b[K'), 'x', 'clear, moves, modes')
    assert.equal(sanitizeLine('a\x1bPq#0;1;2\x1b\\b\x1b_apc\x1b\\c'), 'abc', 'DCS and APC strings')
    assert.equal(sanitizeLine('a\x1bcb\x1b7c\x1b(0d'), 'abcd', 'RIS, save cursor, charset')
    assert.equal(sanitizeLine('a\u009b2Jb\u009d0;t\u0007c'), 'abc', '8-bit CSI and OSC')
    assert.equal(sanitizeLine('over\rwrite\x08\x00\x7f'), 'overwrite', 'CR, BS, NUL, DEL')
  })

  it('keeps colours and tabs', () => {
    const coloured = '\x1b[1;31merror\x1b[0m\tdone \x1b[38;5;208mx\x1b[m \x1b[38:2::1:2:3my\x1b[0m'
    assert.equal(sanitizeLine(coloured), coloured)
    assert.equal(sanitizeLine('\x1b[31;1"pz'), 'z', 'a CSI with intermediates is no colour')
  })

  it(`cuts a line past ${MAX_LINE} characters, saying so`, () => {
    const out = sanitizeLine('y'.repeat(100_000))
    assert.equal(out.slice(0, MAX_LINE), 'y'.repeat(MAX_LINE))
    assert.match(out.slice(MAX_LINE), /^\x1b\[0m … \(line cut at 8192 characters\)$/)
  })
})
