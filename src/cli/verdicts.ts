// How a signature verdict (SPEC §9) reads on a terminal: build's summary,
// verify --signatures, unpack and inspect print the same line.
import type { SignatureVerdict } from '../bundle/format.js';

export function verdictLine(v: SignatureVerdict): string {
  const rule = v.rule === 'default' ? 'default' : `rule ${v.rule}`;
  const head = `signature ${v.verdict.padEnd(8)} ${v.ref}`;
  if (v.verdict === 'verified') return `${head}  ${v.signer ?? ''} (${v.format ?? ''}${v.signedAt ? `, signed ${v.signedAt}` : ''}; ${rule})`;
  const why = v.reasons?.length ? `: ${v.reasons[0]}${v.reasons.length > 1 ? ` (and ${v.reasons.length - 1} more)` : ''}` : '';
  return `${head}  ${rule}, ${v.mode}${why}`;
}
