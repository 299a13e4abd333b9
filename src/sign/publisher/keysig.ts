// Key signatures are checked with node:crypto, not with @sigstore/verify's key path: that path
// wants a trusted root, a key finder and a timestamp (threshold ≥ 1) even for a plain key, while
// SPEC §9 counts a key signature on its own, offline, with no transparency log. node:crypto takes
// every cosign key type (ECDSA P-256/P-384/P-521, RSA PKCS#1 v1.5, Ed25519) from one SPKI.
import { verify as cryptoVerify, type KeyObject } from 'node:crypto';

/**
 * Whether `signature` (DER for ECDSA, raw for Ed25519/RSA) is `key`'s over exactly `data`. ECDSA
 * keys above P-256 are tried with SHA-256 (what cosign signs with by default) and with the hash
 * of their size (what cosign's default-for-key verifier and sigstore-go pick); RSA keys with
 * SHA-256, -512 and -384 (KMS keys sign with the hash they were made for); all are sound.
 */
export function keyVerifies(key: KeyObject, data: Uint8Array, signature: Uint8Array): boolean {
  return hashesFor(key).some((hash) => {
    try {
      return cryptoVerify(hash, data, key, signature);
    } catch {
      return false; // a signature of the wrong shape for the key is a failed signature
    }
  });
}

function hashesFor(key: KeyObject): (string | null)[] {
  switch (key.asymmetricKeyType) {
    case 'ed25519':
      return [null];
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      if (curve === 'secp384r1') return ['sha256', 'sha384'];
      if (curve === 'secp521r1') return ['sha256', 'sha512'];
      return ['sha256'];
    }
    case 'rsa':
      // cosign signs with SHA-256; a KMS key fixes its own hash (cert-manager's RSA 4096 key in
      // Google Cloud KMS signs PKCS#1 v1.5 with SHA-512), and cosign verifies with the key's hash.
      return ['sha256', 'sha512', 'sha384'];
    default:
      return ['sha256'];
  }
}

/** DSSE pre-authentication encoding: what a DSSE signature is over. */
export function pae(payloadType: string, payload: Uint8Array): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([
    Buffer.from(`DSSEv1 ${type.length} `, 'utf8'),
    type,
    Buffer.from(` ${payload.length} `, 'utf8'),
    payload,
  ]);
}
