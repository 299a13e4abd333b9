// A Sigstore trusted root (trusted_root.json: Fulcio CAs, Rekor keys, CT log
// keys, timestamp authorities). Checked here only for its shape, so that a
// wrong file (a TUF targets.json, a PEM, a truncated download) is named when
// the policy loads; the certificates and keys in it are checked by @sigstore
// when signatures are verified.
import { parseUntrustedJson } from '../util/json.js';

export const TRUSTED_ROOT_MEDIA_TYPE = 'application/vnd.dev.sigstore.trustedroot+json;version=0.1';
const LISTS = ['certificateAuthorities', 'tlogs', 'ctlogs', 'timestampAuthorities'] as const;
/** public-good nests 5 deep (certificateAuthorities, entry, certChain, certificates, entry). */
const MAX_DEPTH = 16;

class ShapeError extends Error {}

/** The parsed trusted root, or why it is not one (sentences). */
export function parseTrustedRoot(bytes: Buffer): { json: Record<string, unknown> } | { problems: string[] } {
  let json: unknown;
  try {
    json = parseUntrustedJson(bytes, (problem) => new ShapeError(problem), MAX_DEPTH);
  } catch (err) {
    if (err instanceof ShapeError) return { problems: [`${err.message}; give a Sigstore trusted_root.json`] };
    throw err;
  }
  if (!json || typeof json !== 'object' || Array.isArray(json)) return { problems: ['is not a JSON object; give a Sigstore trusted_root.json'] };
  const root = json as Record<string, unknown>;
  const problems: string[] = [];
  if (root.mediaType !== TRUSTED_ROOT_MEDIA_TYPE) {
    const got = typeof root.mediaType === 'string' ? `"${root.mediaType.slice(0, 100)}"` : 'none';
    problems.push(`has mediaType ${got}, not "${TRUSTED_ROOT_MEDIA_TYPE}"; give a Sigstore trusted_root.json (cosign trusted-root create, or the one the Sigstore TUF repository publishes)`);
  }
  for (const key of LISTS) {
    const value = root[key];
    if (value === undefined) continue;
    if (!Array.isArray(value) || !value.every((e) => e && typeof e === 'object' && !Array.isArray(e))) problems.push(`"${key}" must be a list of objects`);
  }
  if (!Array.isArray(root.certificateAuthorities) && !Array.isArray(root.tlogs)) {
    problems.push('lists no certificateAuthorities and no tlogs: nothing to verify a keyless signature against');
  }
  return problems.length ? { problems } : { json: root };
}
