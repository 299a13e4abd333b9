// JSON for stdout. JSON.stringify escapes the C0 controls but writes DEL, the
// C1 controls and the bidirectional / zero-width format characters raw; from
// a hostile bundle those would reach a terminal running `airlock … --json`.
// Written as \uXXXX they decode to the same strings.

// Outside strings JSON text is ASCII, so these only ever match inside one.
const RAW = /[\u007f-\u009f\p{Cf}\p{Zl}\p{Zp}]/gu;

export function jsonText(value: unknown): string {
  const escape = (c: string): string => [...Array(c.length).keys()].map((i) => `\\u${c.charCodeAt(i).toString(16).padStart(4, '0')}`).join('');
  return JSON.stringify(value, null, 2).replace(RAW, escape) + '\n';
}
