// What a signature signs must name the digest being carried: @sigstore/verify checks the
// signature, never what it is over (DOMAIN "Offline verification"), so this is ours.
import { printable } from '../../util/printable.js';
import { type Reason, reason } from './reasons.js';

const SHA256 = /^sha256:[0-9a-f]{64}$/;

/** The cosign simplesigning payload's `critical.image.docker-manifest-digest` must be `digest`. */
export function checkSimpleSigning(payload: Uint8Array, digest: string): Reason | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(payload).toString('utf8'));
  } catch {
    return reason('malformed', 'the signed payload is not JSON, so it names no image digest');
  }
  const named = (doc as { critical?: { image?: { 'docker-manifest-digest'?: unknown } } } | null)?.critical?.image?.[
    'docker-manifest-digest'
  ];
  if (typeof named !== 'string') {
    return reason('malformed', 'the signed payload has no critical.image.docker-manifest-digest, so it names no image');
  }
  if (named !== digest) {
    return reason('wrong-digest', `the signature is over ${clip(named)}, not over the image being carried (${digest})`);
  }
  return undefined;
}

/** An in-toto statement must list `digest` (its sha256) among its subjects. */
export function checkInToto(payload: Uint8Array, digest: string): Reason | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(payload).toString('utf8'));
  } catch {
    return reason('malformed', 'the signed in-toto statement is not JSON');
  }
  const subjects = (doc as { subject?: unknown } | null)?.subject;
  if (!Array.isArray(subjects) || subjects.length === 0) {
    return reason('malformed', 'the signed in-toto statement has no subject');
  }
  const hex = SHA256.test(digest) ? digest.slice(7) : undefined;
  const named = subjects.map((s) => (s as { digest?: { sha256?: unknown } } | null)?.digest?.sha256);
  if (hex !== undefined && named.includes(hex)) return undefined;
  const listed = named.filter((n): n is string => typeof n === 'string').map((n) => `sha256:${clip(n)}`);
  return reason(
    'wrong-digest',
    `the signed in-toto statement is about ${listed.length ? listed.join(', ') : 'no sha256 digest'}, not the image being carried (${digest})`,
  );
}

// Values from a signature are untrusted: short and escaped in messages.
export function clip(s: string): string {
  const shown = printable(s);
  return shown.length > 80 ? `${shown.slice(0, 80)}…` : shown;
}
