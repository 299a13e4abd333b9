// Public keys named by a policy (`keys: { NAME: FILE }`): the kinds cosign
// signs with, as PEM. A key is checked here, when the policy loads, so that a
// wrong file is a policy problem with its line, not a verification failure
// on the first image.
import { createPublicKey, type KeyObject } from 'node:crypto';
import { fingerprint } from '../sign/keys.js';

const CURVES: Readonly<Record<string, string>> = { prime256v1: 'P-256', secp384r1: 'P-384' };
/** RSA under 2048 bits is breakable and cosign refuses to generate it. */
const MIN_RSA_BITS = 2048;

export interface ParsedKey {
  readonly key: KeyObject;
  readonly fingerprint: string;
  readonly type: string;
}

/** The public key in `pem`, or why it is not one a policy takes (a sentence saying what to give instead). */
export function parsePublicKey(pem: Buffer): ParsedKey | { problem: string } {
  const text = pem.toString('latin1');
  const label = /-----BEGIN ([A-Z0-9 ]+)-----/.exec(text)?.[1];
  if (!label) return { problem: 'is not a PEM public key (no "-----BEGIN PUBLIC KEY-----"); give the cosign .pub file' };
  if (label.includes('PRIVATE')) return { problem: 'is a private key; a policy names public keys only: give the .pub file (cosign public-key --key …)' };
  if (label === 'CERTIFICATE') return { problem: 'is a certificate, not a public key; for keyless signatures write keyless: { issuer, subject } and give the CA in trustedRoot' };
  if (label !== 'PUBLIC KEY' && label !== 'RSA PUBLIC KEY') return { problem: `holds "${label}", not a public key; give the cosign .pub file` };
  let key: KeyObject;
  try {
    key = createPublicKey({ key: text, format: 'pem' });
  } catch (err) {
    return { problem: `is not a readable PEM public key (${(err as Error).message})` };
  }
  const kind = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails ?? {};
  let type: string | undefined;
  if (kind === 'ec') {
    const curve = CURVES[details.namedCurve ?? ''];
    if (!curve) return { problem: `is an ECDSA key on ${details.namedCurve ?? 'an unknown curve'}; cosign keys are on P-256 or P-384` };
    type = `ecdsa ${curve}`;
  } else if (kind === 'rsa') {
    const bits = details.modulusLength ?? 0;
    if (bits < MIN_RSA_BITS) return { problem: `is an RSA key of ${bits} bits; at least ${MIN_RSA_BITS} are required` };
    type = `rsa ${bits}`;
  } else if (kind === 'ed25519') type = 'ed25519';
  else return { problem: `is a${/^[aeiou]/i.test(kind ?? '') ? 'n' : ''} ${kind ?? 'unknown'} key; a policy takes ECDSA P-256/P-384, RSA or Ed25519 keys (what cosign signs with)` };
  return { key, fingerprint: fingerprint(key), type };
}
