// cosign's tag scheme: one layer of a `sha256-<hex>.sig` manifest per signature, the
// simplesigning payload as the blob, the rest in annotations. A keyless one becomes a v0.1
// Sigstore bundle (DOMAIN "Offline verification") so that @sigstore/verify checks its certificate
// chain, Rekor SET, SCT and timestamp exactly as it checks any bundle.
import { createHash } from 'node:crypto';

export const ANN = {
  signature: 'dev.cosignproject.cosign/signature',
  certificate: 'dev.sigstore.cosign/certificate',
  chain: 'dev.sigstore.cosign/chain',
  rekorBundle: 'dev.sigstore.cosign/bundle',
  rfc3161: 'dev.sigstore.cosign/rfc3161timestamp',
} as const;

export interface TagSchemeSignature {
  /** The layer blob, byte for byte: what was signed. Never re-serialized. */
  payload: Uint8Array;
  annotations: Readonly<Record<string, string>>;
}

/** The DER certificates of a PEM string, in order. */
export function pemCertificates(pem: string): Buffer[] {
  const out: Buffer[] = [];
  for (const m of pem.matchAll(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g)) {
    out.push(Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'));
  }
  return out;
}

export class ConversionError extends Error {}

/**
 * The v0.1 bundle JSON for a keyless tag-scheme signature: leaf + chain as x509CertificateChain,
 * the Rekor SET as tlogEntries[0].inclusionPromise (its Payload.body as canonicalizedBody), an
 * RFC 3161 timestamp when cosign attached one, and messageSignature = {sha256(payload), signature}.
 */
export function legacyToBundle(sig: TagSchemeSignature): Record<string, unknown> {
  const a = sig.annotations;
  const certs = [...pemCertificates(a[ANN.certificate] ?? ''), ...pemCertificates(a[ANN.chain] ?? '')];
  if (certs.length === 0) throw new ConversionError('its certificate annotation holds no PEM certificate');
  const tlogEntries: unknown[] = [];
  const rekor = a[ANN.rekorBundle];
  if (rekor !== undefined) tlogEntries.push(rekorEntry(rekor));
  const verificationMaterial: Record<string, unknown> = {
    x509CertificateChain: { certificates: certs.map((c) => ({ rawBytes: c.toString('base64') })) },
    tlogEntries,
  };
  const rfc3161 = a[ANN.rfc3161];
  if (rfc3161 !== undefined) {
    const signed = field(parseJSON(rfc3161, 'RFC 3161 timestamp'), 'SignedRFC3161Timestamp');
    verificationMaterial.timestampVerificationData = { rfc3161Timestamps: [{ signedTimestamp: signed }] };
  }
  return {
    mediaType: 'application/vnd.dev.sigstore.bundle+json;version=0.1',
    verificationMaterial,
    messageSignature: {
      messageDigest: { algorithm: 'SHA2_256', digest: createHash('sha256').update(sig.payload).digest('base64') },
      signature: a[ANN.signature] ?? '',
    },
  };
}

function rekorEntry(annotation: string): Record<string, unknown> {
  const rb = parseJSON(annotation, 'Rekor bundle');
  const set = field(rb, 'SignedEntryTimestamp');
  const p = (rb as { Payload?: unknown }).Payload;
  const body = field(p, 'body');
  const { integratedTime, logIndex, logID } = (p ?? {}) as Record<string, unknown>;
  if (typeof integratedTime !== 'number' || typeof logIndex !== 'number' || typeof logID !== 'string' || !/^[0-9a-f]{64}$/.test(logID)) {
    throw new ConversionError('its Rekor bundle annotation lacks integratedTime, logIndex or a hex logID');
  }
  const entry = parseJSON(Buffer.from(body, 'base64').toString('utf8'), 'Rekor entry body') as { kind?: unknown; apiVersion?: unknown };
  if (typeof entry.kind !== 'string' || typeof entry.apiVersion !== 'string') {
    throw new ConversionError('its Rekor entry body names no kind and apiVersion');
  }
  return {
    logIndex: String(logIndex),
    logId: { keyId: Buffer.from(logID, 'hex').toString('base64') },
    kindVersion: { kind: entry.kind, version: entry.apiVersion },
    integratedTime: String(integratedTime),
    inclusionPromise: { signedEntryTimestamp: set },
    canonicalizedBody: body,
  };
}

function parseJSON(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new ConversionError(`its ${what} annotation is not JSON`);
  }
}

function field(obj: unknown, name: string): string {
  const v = (obj as Record<string, unknown> | null)?.[name];
  if (typeof v !== 'string') throw new ConversionError(`its annotation has no ${name}`);
  return v;
}
