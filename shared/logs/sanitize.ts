// Container output is shown on the user's terminal, so it is not trusted with the terminal's
// control sequences: a line keeps its colours (SGR: ESC [ … m) and loses everything else a
// terminal would act on — OSC (window title, OSC 52 clipboard writes, hyperlinks), other CSI
// (cursor moves, clearing the screen, mode switches), DCS/APC/PM/SOS strings, single-char
// escapes, 8-bit C1 controls, and C0 controls but tab (a carriage return would let a line
// overwrite what is shown before it). And a line is bounded: past MAX_LINE characters it is
// cut, saying so. Hand-written: strip-ansi and friends strip colours too, which the views keep.

/** characters of one line shown at most */
export const MAX_LINE = 8192

// ESC-introduced strings ended by BEL or ST (ESC \ or 8-bit 0x9c): OSC ], DCS P, SOS X, PM ^, APC _
// (an unterminated one runs to the end of the line: it is dropped whole)
const STRING_SEQ = /(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[\s\S]*?(?:\x07|\x1b\\|\x9c|$)/g
// CSI: ESC [ or 8-bit 0x9b, parameters, intermediates, a final byte
const CSI = /(?:\x1b\[|\x9b)([\x30-\x3f]*)([\x20-\x2f]*)([\x40-\x7e]?)/g
// C0 controls but tab and ESC (handled above), DEL, and C1 controls left over
const CONTROLS = /[\x00-\x08\x0a-\x1a\x1c-\x1f\x7f-\x9f]/g

/** One line of container output, safe to print: colours kept, other control sequences dropped, length bounded. */
export function sanitizeLine(line: string): string {
  let out = line
    .replace(STRING_SEQ, '')
    // keep SGR (colours) only: a final byte `m` with plain numeric parameters
    .replace(CSI, (seq: string, params: string, inter: string, final: string) =>
      final === 'm' && inter === '' && /^[\d;:]*$/.test(params) ? `\x1b[${params}m` : '',
    )
  // what is left of ESC after the SGR kept: protect the kept ones, drop the rest
  out = out.replace(/\x1b(?!\[[\d;:]*m)[\x20-\x2f]*[\x30-\x7e]?/g, '')
  out = out.replace(CONTROLS, '')
  if (out.length > MAX_LINE) out = `${out.slice(0, MAX_LINE)}\x1b[0m … (line cut at ${MAX_LINE} characters)`
  return out
}
