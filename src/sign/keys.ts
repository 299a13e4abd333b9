// ECDSA P-256 signing keys and signatures over bundle.json. The signature is
// DER (what openssl and cosign verify-blob expect), carried as base64.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { open, rm } from 'node:fs/promises';
import { READ_BOUNDS, readRegular } from '../fsx/safe.js';
import { sha256Hex } from '../oci/digest.js';

export class KeyError extends Error {
  readonly exitCode = 1;
  constructor(message: string) {
    super(message);
    this.name = 'KeyError';
  }
}

/**
 * Writes PREFIX.key (PKCS#8 PEM, AES-256 encrypted when a password is given,
 * mode 0600) and PREFIX.pub (SPKI PEM); never overwrites, never follows a link
 * already at either name, and refuses a folder that would leave the private
 * key readable by group or others.
 */
export async function keygen(prefix: string, password?: string): Promise<{ keyFile: string; pubFile: string; fingerprint: string }> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem', ...(password ? { cipher: 'aes-256-cbc', passphrase: password } : {}) });
  const pubPem = publicKey.export({ type: 'spki', format: 'pem' });
  const keyFile = `${prefix}.key`;
  const pubFile = `${prefix}.pub`;
  await writeNew(keyFile, keyPem, 0o600, { private: true });
  try {
    await writeNew(pubFile, pubPem, 0o644);
  } catch (err) {
    // Do not leave half a key pair behind.
    await rm(keyFile, { force: true });
    throw err;
  }
  return { keyFile, pubFile, fingerprint: fingerprint(publicKey) };
}

/**
 * Creates `file` (O_CREAT|O_EXCL: no overwrite, and a symbolic link at that
 * name is not followed) and writes `text`. For a private key the mode the file
 * really got is checked before a byte is written: a file system that ignores
 * Unix permissions (vfat, some network or Windows mounts) or a folder forcing
 * wider ones gets the file removed and an error.
 */
async function writeNew(file: string, text: string | Buffer, mode: number, opts: { private?: boolean } = {}): Promise<void> {
  let fh;
  try {
    fh = await open(file, 'wx', mode);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new KeyError(`${file} already exists; refusing to overwrite it (choose another --out)`);
    throw err;
  }
  let refused: KeyError | undefined;
  try {
    const actual = (await fh.stat()).mode & 0o777;
    if (opts.private && actual & 0o077) {
      refused = new KeyError(
        `${file} would be readable by group or others: it got mode 0${actual.toString(8)} where 0600 was asked (this folder or file system does not keep Unix permissions); ` +
          'not writing a private key there: choose an --out on a local file system',
      );
    } else await fh.writeFile(text);
  } finally {
    await fh.close();
  }
  if (refused) {
    await rm(file, { force: true });
    throw refused;
  }
}

export async function loadPrivateKey(file: string, password = process.env.AIRLOCK_KEY_PASSWORD): Promise<KeyObject> {
  let pem: Buffer;
  try {
    pem = await readRegular(file, { ...READ_BOUNDS.key, follow: true });
  } catch (err) {
    throw new KeyError(`cannot read the signing key ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}; make one with airlock keygen`);
  }
  if (!password && pem.includes('-----BEGIN ENCRYPTED PRIVATE KEY-----')) {
    throw new KeyError(`cannot decrypt ${file}: it is encrypted; set AIRLOCK_KEY_PASSWORD`);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem', ...(password ? { passphrase: password } : {}) });
  } catch (err) {
    const msg = (err as Error).message;
    if (/passphrase|decrypt|bad decrypt/i.test(msg)) {
      throw new KeyError(`cannot decrypt ${file}: ${password ? 'wrong AIRLOCK_KEY_PASSWORD' : 'it is encrypted; set AIRLOCK_KEY_PASSWORD'}`);
    }
    throw new KeyError(`${file} is not a PEM private key (${msg})`);
  }
  checkP256(key, file);
  return key;
}

export async function loadPublicKey(file: string): Promise<KeyObject> {
  let pem: Buffer;
  try {
    pem = await readRegular(file, { ...READ_BOUNDS.key, follow: true });
  } catch (err) {
    throw new KeyError(`cannot read the public key ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let key: KeyObject;
  try {
    key = createPublicKey({ key: pem, format: 'pem' });
  } catch (err) {
    throw new KeyError(`${file} is not a PEM public key (${(err as Error).message})`);
  }
  checkP256(key, file);
  return key;
}

function checkP256(key: KeyObject, file: string): void {
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new KeyError(`${file} is not an ECDSA P-256 key (${key.asymmetricKeyType ?? 'unknown'} ${key.asymmetricKeyDetails?.namedCurve ?? ''}); make one with airlock keygen`);
  }
}

/**
 * base64 of the DER ECDSA-SHA256 signature over `data`. The nonce is derived
 * from the key and message (RFC 6979), so the same bundle.json signed with the
 * same key gives the same bytes, which reproducible bundles need; OpenSSL 3.0
 * in Node 20 only makes random nonces, hence @noble/curves for this step,
 * loaded here: only build signs, and loading it costs every other command ~50 ms.
 */
export async function signBytes(data: Buffer, key: KeyObject): Promise<string> {
  const { p256 } = await import('@noble/curves/p256');
  // noble precomputes 8-bit windows of the base point on first use (~120 ms here) to make
  // many signatures fast; a build makes one, and with 4-bit windows its first costs ~20 ms.
  p256.ProjectivePoint.BASE._setWindowSize(4);
  const jwk = key.export({ format: 'jwk' });
  if (!jwk.d) throw new KeyError('signing needs a private key');
  const digest = createHash('sha256').update(data).digest();
  const sig = p256.sign(digest, Buffer.from(jwk.d, 'base64url'), { lowS: false }).toDERRawBytes();
  const der = Buffer.from(sig);
  // Belt and braces: never hand out a signature the platform's own verifier rejects.
  if (!cryptoVerify('sha256', data, { key: createPublicKey(key), dsaEncoding: 'der' }, der)) throw new KeyError('internal error: the signature does not verify');
  return der.toString('base64');
}

export function verifyBytes(data: Buffer, signatureBase64: string, key: KeyObject): boolean {
  const sig = Buffer.from(signatureBase64.trim(), 'base64');
  if (sig.length === 0) return false;
  try {
    return cryptoVerify('sha256', data, { key, dsaEncoding: 'der' }, sig);
  } catch {
    return false;
  }
}

/** sha256 of the SPKI DER: what `inspect` shows as the signer. */
export function fingerprint(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return `sha256:${sha256Hex(pub.export({ type: 'spki', format: 'der' }))}`;
}
