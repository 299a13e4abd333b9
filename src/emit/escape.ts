// Names in the emitted files come from the bundle (which another tool may have
// written), from upstream registries and from flags: none may add a line, a key
// or Markdown structure to what they land in. YAML values go through the yaml
// library; these cover the rest.
import { printable } from '../util/printable.js';

/**
 * Text for a `#` comment in YAML or TOML: every line break (including the NEL,
 * U+2028 and U+2029 that PyYAML, hence Ansible and Kubespray, reads as one) and
 * every other control character written as an escape, so the comment stays one line.
 */
export function commentText(s: string): string {
  return printable(s);
}

/**
 * A Markdown code span showing `s` literally: escaped to one line, fenced with
 * more backticks than any run inside it, padded when it starts or ends with one.
 */
export function mdCode(s: string): string {
  const t = printable(s);
  const longest = Math.max(0, ...(t.match(/`+/g) ?? []).map((r) => r.length));
  const fence = '`'.repeat(longest + 1);
  const pad = t.startsWith('`') || t.endsWith('`') || t === '' ? ' ' : '';
  return `${fence}${pad}${t}${pad}${fence}`;
}

/** A TOML basic string: quotes, backslashes and every control character escaped (JSON leaves DEL raw, TOML does not allow it). */
export function tomlString(s: string): string {
  // eslint-disable-next-line no-control-regex -- escaping control characters is the point
  return `"${s.replace(/[\\"\x00-\x1f\x7f]/g, (c) => (c === '\\' || c === '"' ? `\\${c}` : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`))}"`;
}

const HTML: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/**
 * Text for HTML, in an element or a quoted attribute value (SVG's too): the
 * markup characters as entities, and every control, format and line-separator
 * character written out visibly as printable() does, so a name from upstream
 * shows what it holds and never becomes markup, a script or a hidden reordering.
 */
export function htmlText(s: string): string {
  return printable(s).replace(/[&<>"']/g, (c) => HTML[c]!);
}
