// JSON from outside (receipts, bundle.json read unsigned, manifests from a
// registry or a bundle) is checked for nesting before JSON.parse sees it:
// V8 parses any depth, and 30 million nested brackets in a 60 MB file cost
// 25 s and 3 GB before a field check could refuse them. A byte scan that
// counts brackets outside strings costs a few milliseconds per MiB and stops
// at the first level too deep.

/** Nothing airlock reads nests deeper than 6 (an OCI index: index, manifests, entry, platform, os.features); far above. */
export const MAX_JSON_DEPTH = 64;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** Where `bytes` (JSON text) first nests deeper than `max` brackets, as a sentence; undefined when it never does. */
export function jsonDepthProblem(bytes: Uint8Array, max = MAX_JSON_DEPTH): string | undefined {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (inString) {
      if (b === BACKSLASH) i++;
      else if (b === QUOTE) inString = false;
    } else if (b === QUOTE) inString = true;
    else if (b === 0x7b || b === 0x5b) {
      if (++depth > max) return `nests deeper than ${max} levels (at byte ${i})`;
    } else if (b === 0x7d || b === 0x5d) depth--;
  }
  return undefined;
}

/** JSON.parse after the depth check; `error(problem)` is thrown for text too deep or not JSON. */
export function parseUntrustedJson(bytes: Buffer, error: (problem: string) => Error, max = MAX_JSON_DEPTH): unknown {
  const deep = jsonDepthProblem(bytes, max);
  if (deep) throw error(deep);
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    throw error('is not JSON');
  }
}
