// The one entry point of publisher-signature verification (SPEC §9 "Signature policy", when a
// signature counts). Pure and offline: bytes, an expectation and trust material in, a verdict out.
// Certificates, Rekor entries, SCTs and timestamps go to @sigstore/verify; what it does not check
// (what was signed, a missing timestamp, exact subjects) is checked here.
import { createHash, type KeyObject } from 'node:crypto';
import { bundleFromJSON, ValidationError } from '@sigstore/bundle';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { PolicyError, toSignedEntity, toTrustMaterial, type TrustMaterial, VerificationError, Verifier } from '@sigstore/verify';
import { asBundle, checkSigned, dssePayload, hasTimestamp, isCertificateBased, signedAt } from './bundle.js';
import { ANN, ConversionError, legacyToBundle, type TagSchemeSignature } from './cosign.js';
import { keyVerifies, pae } from './keysig.js';
import { checkSimpleSigning } from './payload.js';
import { type Reason, reason } from './reasons.js';

export type { Reason, ReasonCode } from './reasons.js';
export type { TagSchemeSignature } from './cosign.js';

export type AttachedSignature =
  | ({ format: 'tag-scheme' } & TagSchemeSignature)
  /** `json` is the parsed bundle; `artifact` the signed manifest's bytes, for message-signature bundles. */
  | { format: 'sigstore-bundle'; json: unknown; artifact?: Uint8Array };

export type Identity =
  | { kind: 'key'; key: KeyObject; name: string; fingerprint: string }
  | { kind: 'keyless'; issuer: string; subject?: string; subjectRegExp?: RegExp };

export interface Expectation {
  /** The digest being carried, `sha256:<hex>`. */
  digest: string;
  identity: Identity;
}

/** A parsed trusted root, prepared once and reused for every signature. */
export interface Trust {
  material: TrustMaterial;
  ctlogs: number;
}

export type Signer = { kind: 'key'; name: string; fingerprint: string } | { kind: 'keyless'; issuer: string; subject: string };

export type Verdict =
  | { ok: true; signer: Signer; format: AttachedSignature['format']; signedAt?: string }
  | { ok: false; reason: Reason };

/** `trusted_root.json` (protobuf-specs TrustedRoot) → trust material; throws on a malformed root. */
export function loadTrustedRoot(json: unknown): Trust {
  const root = TrustedRoot.fromJSON(json);
  // No key finder: a bundle naming a key hint is checked by keysig.ts, never through the root.
  return { material: toTrustMaterial(root), ctlogs: root.ctlogs.length };
}

/** As SPEC §9 writes a signer into bundle.json. */
export function signerText(s: Signer): string {
  return s.kind === 'key' ? `key:${s.name} ${s.fingerprint}` : `${s.issuer} ${s.subject}`;
}

export function verifyAttachedSignature(input: AttachedSignature, expectation: Expectation, trust?: Trust): Verdict {
  // A policy without a subject is the caller's bug (the policy loader refuses it), not the signature's.
  if (expectation.identity.kind === 'keyless') subjectPattern(expectation.identity);
  try {
    const r = input.format === 'tag-scheme' ? tagScheme(input, expectation, trust) : sigstoreBundle(input, expectation, trust);
    return 'code' in r ? { ok: false, reason: r } : r;
  } catch (err) {
    // Hostile bytes must yield a verdict, never a crash of the caller's loop over signatures.
    return { ok: false, reason: reason('malformed', `the signature could not be read: ${(err as Error).message}`) };
  }
}

function tagScheme(sig: TagSchemeSignature, exp: Expectation, trust: Trust | undefined): Verdict | Reason {
  const a = sig.annotations;
  const b64 = a[ANN.signature];
  if (b64 === undefined || b64 === '') return reason('malformed', `the signature layer has no ${ANN.signature} annotation`);
  const keyless = a[ANN.certificate] !== undefined;
  if (exp.identity.kind === 'key') {
    if (keyless) return notKeySigned(exp.identity);
    if (!keyVerifies(exp.identity.key, sig.payload, Buffer.from(b64, 'base64'))) return badKeySignature(exp.identity);
    return checkSimpleSigning(sig.payload, exp.digest) ?? keyVerdict(exp.identity, 'tag-scheme');
  }
  if (!keyless) return reason('not-keyless', `the signature was made with a key, not with a certificate from ${exp.identity.issuer}`);
  let json: Record<string, unknown>;
  try {
    json = legacyToBundle(sig);
  } catch (err) {
    if (err instanceof ConversionError) return reason('malformed', `the keyless signature cannot be checked: ${err.message}`);
    throw err;
  }
  const shape = asBundle(json);
  if ('code' in shape) return shape;
  if (!hasTimestamp(shape)) return noTimestamp();
  const lib = keylessCheck(json, sig.payload, exp.identity, trust);
  if ('code' in lib) return lib;
  return checkSimpleSigning(sig.payload, exp.digest) ?? { ok: true, signer: lib, format: 'tag-scheme', signedAt: signedAt(shape) };
}

function sigstoreBundle(input: { json: unknown; artifact?: Uint8Array }, exp: Expectation, trust: Trust | undefined): Verdict | Reason {
  const b = asBundle(input.json);
  if ('code' in b) return b;
  if (exp.identity.kind === 'key') {
    if (isCertificateBased(b)) return notKeySigned(exp.identity);
    const signed = checkSigned(b, exp.digest, input.artifact);
    if (signed) return signed;
    if (!bundleKeyVerifies(b, exp.identity.key, input.artifact)) return badKeySignature(exp.identity);
    return keyVerdict(exp.identity, 'sigstore-bundle');
  }
  if (!isCertificateBased(b)) return reason('not-keyless', `the bundle was signed with a key, not with a certificate from ${exp.identity.issuer}`);
  if (!hasTimestamp(b)) return noTimestamp();
  // What is signed is checked after the signature: a flipped payload byte reads "bad signature".
  const artifact = b.dsseEnvelope === undefined ? input.artifact : undefined;
  if (b.messageSignature !== undefined && artifact === undefined) return checkSigned(b, exp.digest, undefined)!;
  const lib = keylessCheck(input.json, artifact, exp.identity, trust);
  if ('code' in lib) return lib;
  return checkSigned(b, exp.digest, input.artifact) ?? { ok: true, signer: lib, format: 'sigstore-bundle', signedAt: signedAt(b) };
}

function bundleKeyVerifies(b: ReturnType<typeof asBundle> & object, key: KeyObject, artifact: Uint8Array | undefined): boolean {
  if ('code' in b) return false;
  if (b.dsseEnvelope !== undefined) {
    const p = dssePayload(b);
    if ('code' in p) return false;
    const data = pae(p.payloadType, p.payload);
    return (b.dsseEnvelope.signatures ?? []).some((s) => typeof s?.sig === 'string' && keyVerifies(key, data, Buffer.from(s.sig, 'base64')));
  }
  const sig = b.messageSignature?.signature;
  return artifact !== undefined && typeof sig === 'string' && keyVerifies(key, artifact, Buffer.from(sig, 'base64'));
}

function keylessCheck(
  json: unknown,
  artifact: Uint8Array | undefined,
  id: Extract<Identity, { kind: 'keyless' }>,
  trust: Trust | undefined,
): Extract<Signer, { kind: 'keyless' }> | Reason {
  if (!trust) return reason('no-trusted-root', 'a keyless signature needs a Sigstore trusted root, and none was given');
  let bundle;
  try {
    bundle = bundleFromJSON(json);
  } catch (err) {
    // Its message is only "invalid bundle"; the fields (names the library writes) say what to fix.
    if (err instanceof ValidationError && err.fields?.length) return reason('malformed', `the Sigstore bundle is not valid for its media type: check ${err.fields.join(', ')} (missing, empty or not allowed in that version)`);
    throw err;
  }
  const entity = toSignedEntity(bundle, artifact === undefined ? undefined : Buffer.from(artifact));
  // A Rekor entry is not required when a timestamp authority dated the signature (SPEC §9: SET,
  // inclusion proof or TSA); any entry present is still verified. SCTs are required when the
  // root lists CT logs.
  const verifier = new Verifier(trust.material, { tlogThreshold: 0, timestampThreshold: 1, ctlogThreshold: trust.ctlogs > 0 ? 1 : 0 });
  let signer;
  try {
    signer = verifier.verify(entity, {
      subjectAlternativeName: subjectPattern(id),
      extensions: { issuer: id.issuer },
    });
  } catch (err) {
    return libraryReason(err, id);
  }
  return { kind: 'keyless', issuer: id.issuer, subject: signer.identity?.subjectAlternativeName ?? '' };
}

/**
 * The library hands the pattern to String.match: a plain string would be an unanchored regular
 * expression (a prefix, or `.` as any character, would pass). Exact subjects are escaped and
 * anchored; a policy's expression must match the whole subject.
 */
export function subjectPattern(id: { subject?: string; subjectRegExp?: RegExp }): RegExp {
  if (id.subject !== undefined) return new RegExp(`^${id.subject.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'u');
  if (id.subjectRegExp !== undefined) return new RegExp(`^(?:${id.subjectRegExp.source})$`, id.subjectRegExp.flags.replace(/[gy]/g, ''));
  throw new TypeError('a keyless identity needs subject or subjectRegExp');
}

function libraryReason(err: unknown, id: Extract<Identity, { kind: 'keyless' }>): Reason {
  const want = id.subject !== undefined ? id.subject : `/${id.subjectRegExp?.source}/`;
  if (err instanceof PolicyError) {
    if (err.message.startsWith('certificate identity error')) {
      const got = err.message.replace(/^.*, got /, '');
      return reason('wrong-subject', `the certificate's subject ${clipText(got)} is not ${want}`);
    }
    const got = err.message.replace(/^.*, got issuer=/, '');
    return reason('wrong-issuer', `the certificate was issued for ${clipText(got)}, not for ${id.issuer}`);
  }
  if (err instanceof VerificationError) {
    const cause = (err as { cause?: unknown }).cause;
    const detail = cause instanceof Error ? cause.message : err.message;
    const code = String(err.code);
    if (code === 'CERTIFICATE_ERROR') {
      if (/expired at the specified date/.test(detail)) {
        return reason('expired-at-signing', 'the certificate was not valid at the time the signature was timestamped');
      }
      if (/SCT/.test(err.message)) return reason('bad-sct', `the certificate's embedded SCT does not verify against the trusted root's CT logs (${err.message})`);
      return reason('untrusted-root', 'the certificate does not chain to a Fulcio CA of the trusted root (valid at signing time)');
    }
    // TLOG_INCLUSION_PROMISE_ERROR, TLOG_BODY_ERROR, TLOG_MISSING_INCLUSION_ERROR, …
    if (code.startsWith('TLOG')) return reason('bad-tlog-entry', `the Rekor entry does not verify against the trusted root or the signature (${err.message})`);
    if (code.startsWith('TIMESTAMP') || code.startsWith('TSA')) {
      return reason('bad-timestamp', `the signature's timestamp does not verify against the trusted root (${detail})`);
    }
    if (code === 'SIGNATURE_ERROR') {
      return reason('bad-signature', 'the signature does not verify with its certificate\'s key: the payload or the signature was altered');
    }
    if (code === 'PUBLIC_KEY_ERROR') return reason('untrusted-root', err.message);
    return reason('bad-signature', `the signature does not verify (${code}: ${err.message})`);
  }
  throw err;
}

const clipText = (s: string) => (s.length > 120 ? `${s.slice(0, 120)}…` : s).replace(/[\p{Cc}\p{Cf}]/gu, '?');

const noTimestamp = () =>
  reason('no-timestamp', 'the keyless signature carries no timestamp (no Rekor signed entry timestamp, no RFC 3161 timestamp), so nothing shows its certificate was valid when it signed');
const notKeySigned = (k: { name: string }) => reason('not-key-signed', `the signature was made with a Fulcio certificate, not with key ${k.name}`);
const badKeySignature = (k: { name: string; fingerprint: string }) =>
  reason('bad-signature', `the signature does not verify with key ${k.name} (${k.fingerprint}): made with another key, or the payload or the signature was altered`);
const keyVerdict = (k: { name: string; fingerprint: string }, format: AttachedSignature['format']): Verdict => ({
  ok: true,
  signer: { kind: 'key', name: k.name, fingerprint: k.fingerprint },
  format,
});

export const sha256Of = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
