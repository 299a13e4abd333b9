// Text from a bundle or a registry (entry names, paths, references, error
// bodies) is hostile: an entry named "\x1b[2K\rOK bundle.tar: signature valid"
// must not reach a terminal raw. printable() escapes every character that
// can move the cursor, erase, recolour, reorder or hide text.

/**
 * Control characters (C0, DEL, C1: \p{Cc}), format characters such as the
 * bidirectional overrides and zero-width marks (\p{Cf}), the line and
 * paragraph separators and unpaired surrogates.
 */
const UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/u;
const UNPRINTABLE_ALL = new RegExp(UNPRINTABLE.source, 'gu');

const SHORT: Record<string, string> = { '\t': '\\t', '\n': '\\n', '\r': '\\r' };

function escape(c: string): string {
  const short = SHORT[c];
  if (short) return short;
  const cp = c.codePointAt(0) ?? 0;
  return cp < 0x100 ? `\\x${cp.toString(16).padStart(2, '0')}` : `\\u{${cp.toString(16)}}`;
}

/**
 * `s` with those characters written as `\n`, `\t`, `\r`, `\xNN` (up to
 * U+00FF) or `\u{NNNN}`; everything else, including non-ASCII letters, is
 * kept. The result holds no character it would escape, so applying it again
 * changes nothing: callers at several layers may each apply it. (A backslash
 * is kept as it is, so a name that spells "\x1b" reads the same as one
 * holding an ESC; this is for messages, not for parsing back.)
 */
export function printable(s: string): string {
  return UNPRINTABLE.test(s) ? s.replace(UNPRINTABLE_ALL, escape) : s;
}

/** Each line escaped, the line breaks kept: for messages that are several lines on purpose. */
export function printableLines(s: string): string {
  return s.split('\n').map(printable).join('\n');
}
