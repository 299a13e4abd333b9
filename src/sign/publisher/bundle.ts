// Sigstore bundles (v0.1–v0.3) attached as referrers: what they sign and whether they carry a
// timestamp, both checked before @sigstore/verify sees them.
import { createHash } from 'node:crypto';
import { RFC3161Timestamp } from '@sigstore/core';
import { checkInToto, checkSimpleSigning, clip } from './payload.js';
import { type Reason, reason } from './reasons.js';

export const BUNDLE_MEDIA_TYPES = new Set([
  'application/vnd.dev.sigstore.bundle+json;version=0.1',
  'application/vnd.dev.sigstore.bundle+json;version=0.2',
  'application/vnd.dev.sigstore.bundle.v0.3+json',
]);
const IN_TOTO = 'application/vnd.in-toto+json';
const SIMPLESIGNING = 'application/vnd.dev.cosign.simplesigning.v1+json';

interface BundleShape {
  mediaType?: unknown;
  verificationMaterial?: {
    publicKey?: unknown;
    certificate?: unknown;
    x509CertificateChain?: unknown;
    tlogEntries?: { inclusionPromise?: unknown; integratedTime?: unknown }[];
    timestampVerificationData?: { rfc3161Timestamps?: unknown[] };
  };
  dsseEnvelope?: { payload?: unknown; payloadType?: unknown; signatures?: { sig?: unknown }[] };
  messageSignature?: { messageDigest?: { algorithm?: unknown; digest?: unknown }; signature?: unknown };
}

export function asBundle(json: unknown): BundleShape | Reason {
  if (typeof json !== 'object' || json === null) return reason('malformed', 'the Sigstore bundle is not a JSON object');
  const b = json as BundleShape;
  if (typeof b.mediaType !== 'string' || !BUNDLE_MEDIA_TYPES.has(b.mediaType)) {
    const mt = typeof b.mediaType === 'string' ? clip(b.mediaType) : 'none';
    return reason('unknown-format', `the bundle's mediaType (${mt}) is not a Sigstore bundle v0.1, v0.2 or v0.3`);
  }
  return b;
}

export const isCertificateBased = (b: BundleShape): boolean =>
  b.verificationMaterial?.certificate !== undefined || b.verificationMaterial?.x509CertificateChain !== undefined;

/**
 * Whether the bundle carries something @sigstore/verify takes as a signing time: a Rekor entry with
 * a signed entry timestamp (inclusionPromise) or an RFC 3161 timestamp. An inclusion proof alone
 * gives it no time (getTLogTimestamp reads the promise only). A certificate-based bundle without
 * one is refused here, with a reason of its own: in @sigstore/verify 4.1.3 it gets only a generic
 * "expected 1 timestamps, got 0", and with timestampThreshold 0 the library builds no certificate
 * path and calls verifySCTs on nothing (TypeError "reading 'clone'", checked against
 * cosign's v0.3 test bundle with its tlog entries removed). No upstream sigstore/sigstore-js issue
 * for it was found in the issues corpus.
 */
export function hasTimestamp(b: BundleShape): boolean {
  const vm = b.verificationMaterial;
  return (
    (vm?.tlogEntries ?? []).some((e) => e?.inclusionPromise !== undefined) ||
    (vm?.timestampVerificationData?.rfc3161Timestamps ?? []).length > 0
  );
}

/**
 * When it was signed, at the latest: the earliest Rekor integrated time among entries with a
 * promise, else the earliest RFC 3161 time. Read only after @sigstore/verify accepted them.
 */
export function signedAt(b: BundleShape): string | undefined {
  const vm = b.verificationMaterial;
  const times = (vm?.tlogEntries ?? [])
    .filter((e) => e?.inclusionPromise !== undefined)
    .map((e) => Number(e.integratedTime) * 1000)
    .filter((t) => Number.isSafeInteger(t) && t > 0);
  if (times.length === 0) {
    for (const t of vm?.timestampVerificationData?.rfc3161Timestamps ?? []) {
      const der = (t as { signedTimestamp?: unknown } | null)?.signedTimestamp;
      if (typeof der === 'string') times.push(RFC3161Timestamp.parse(Buffer.from(der, 'base64')).signingTime.getTime());
    }
  }
  return times.length ? new Date(Math.min(...times)).toISOString() : undefined;
}

/** What a DSSE envelope carries: its type and payload bytes, or why not. */
export function dssePayload(b: BundleShape): { payloadType: string; payload: Buffer } | Reason {
  const env = b.dsseEnvelope;
  if (typeof env?.payload !== 'string' || typeof env.payloadType !== 'string') {
    return reason('malformed', 'the bundle\'s DSSE envelope has no payload or payloadType');
  }
  return { payloadType: env.payloadType, payload: Buffer.from(env.payload, 'base64') };
}

/**
 * Whether what the bundle signs names `digest`: a DSSE in-toto statement's subject or a DSSE
 * simplesigning payload; a message signature is over an artifact whose bytes the caller gives
 * (the image manifest), which must hash to `digest`.
 */
export function checkSigned(b: BundleShape, digest: string, artifact: Uint8Array | undefined): Reason | undefined {
  if (b.dsseEnvelope !== undefined) {
    const p = dssePayload(b);
    if ('code' in p) return p;
    if (p.payloadType === IN_TOTO) return checkInToto(p.payload, digest);
    if (p.payloadType === SIMPLESIGNING) return checkSimpleSigning(p.payload, digest);
    return reason('unknown-format', `the bundle's DSSE payloadType ${clip(p.payloadType)} is neither in-toto nor cosign simplesigning`);
  }
  if (b.messageSignature !== undefined) {
    if (artifact === undefined) {
      return reason('malformed', 'the bundle is a message signature; checking it needs the signed manifest\'s bytes, which were not given');
    }
    const actual = `sha256:${createHash('sha256').update(artifact).digest('hex')}`;
    if (actual !== digest) return reason('wrong-digest', `the message signature is over ${actual}, not over the image being carried (${digest})`);
    return undefined;
  }
  return reason('unknown-format', 'the bundle holds neither a DSSE envelope nor a message signature');
}
