// A Sigstore-shaped test PKI made with openssl, not with airlock's code: a Fulcio-like root and
// leaf (SAN URI, OIDC issuer in extension 1.3.6.1.4.1.57264.1.8, EKU codeSigning), a Rekor-like
// key signing the SET of a hashedrekord (or dsse) entry, and the trusted_root.json listing them. A
// signature is made as a cosign tag-scheme layer (payload + annotations) or as a Sigstore bundle v0.3.
import { execFileSync } from 'node:child_process';
import { createHash, createPublicKey } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const openssl = (args: string[], input?: Buffer): Buffer => execFileSync('openssl', args, { input, stdio: ['pipe', 'pipe', 'pipe'] });

export interface TestPki {
  dir: string;
  rootPem: string;
  rekorKey: string;
  trustedRoot: Record<string, unknown>;
}

function ecKey(file: string): void {
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file]);
}

/** A self-signed CA and a Rekor key under `dir`, with `name` telling several PKIs apart. */
export function makePki(dir: string, name: string): TestPki {
  const rootKey = path.join(dir, `${name}-root.key`);
  const rootCrt = path.join(dir, `${name}-root.crt`);
  ecKey(rootKey);
  const ext = path.join(dir, `${name}-root.ext`);
  writeFileSync(ext, '[v3]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n');
  openssl(['req', '-x509', '-new', '-key', rootKey, '-subj', `/O=airlock-test/CN=${name}-fulcio`, '-days', '3650', '-sha256', '-config', ext, '-extensions', 'v3', '-out', rootCrt]);
  const rekorKey = path.join(dir, `${name}-rekor.key`);
  ecKey(rekorKey);
  const rekorSpki = createPublicKey(readFileSync(rekorKey)).export({ type: 'spki', format: 'der' });
  const rootPem = readFileSync(rootCrt, 'utf8');
  const since = { start: '2020-01-01T00:00:00Z' };
  const trustedRoot = {
    mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
    tlogs: [
      {
        baseUrl: `https://rekor.${name}.test`,
        hashAlgorithm: 'SHA2_256',
        publicKey: { rawBytes: rekorSpki.toString('base64'), keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor: since },
        logId: { keyId: createHash('sha256').update(rekorSpki).digest('base64') },
      },
    ],
    certificateAuthorities: [
      {
        subject: { organization: 'airlock-test', commonName: `${name}-fulcio` },
        uri: `https://fulcio.${name}.test`,
        certChain: { certificates: [{ rawBytes: pemToDer(rootPem).toString('base64') }] },
        validFor: since,
      },
    ],
    ctlogs: [],
    timestampAuthorities: [],
  };
  return { dir, rootPem, rekorKey, trustedRoot };
}

export interface LeafOptions {
  subject: string;
  issuer: string;
  /** Seconds since the epoch the Rekor SET says the entry was integrated; default now. */
  integratedTime?: number;
  /** Leaf validity in days from now (openssl -days); default 1. */
  days?: number;
}

/** A leaf from `pki`'s root signing `payload`, logged in `pki`'s Rekor: the cosign annotations. */
export function signKeyless(pki: TestPki, name: string, payload: Buffer, o: LeafOptions): Record<string, string> {
  const { key, leafPem } = makeLeaf(pki, name, o);
  const sig = signFile(pki, `${name}.payload`, payload, key);
  const body = Buffer.from(
    JSON.stringify({
      apiVersion: '0.0.1',
      kind: 'hashedrekord',
      spec: {
        data: { hash: { algorithm: 'sha256', value: createHash('sha256').update(payload).digest('hex') } },
        signature: { content: sig.toString('base64'), publicKey: { content: Buffer.from(leafPem).toString('base64') } },
      },
    }),
  ).toString('base64');
  const e = logEntry(pki, name, body, o);
  return {
    'dev.cosignproject.cosign/signature': sig.toString('base64'),
    'dev.sigstore.cosign/certificate': leafPem,
    'dev.sigstore.cosign/chain': pki.rootPem,
    'dev.sigstore.cosign/bundle': JSON.stringify({ SignedEntryTimestamp: e.set.toString('base64'), Payload: { body, integratedTime: e.integratedTime, logIndex: LOG_INDEX, logID: e.logID } }),
  };
}

export const BUNDLE_V03 = 'application/vnd.dev.sigstore.bundle.v0.3+json';
const IN_TOTO = 'application/vnd.in-toto+json';

export interface BundleOptions extends LeafOptions {
  /** The image digest the in-toto statement names, `sha256:<hex>`. */
  digest: string;
  /** The statement subject's name (cosign writes the repository); default `image`. */
  subjectName?: string;
}

/**
 * A Sigstore bundle v0.3 as cosign 3 signs an image (`cosign sign` with the new bundle format): a
 * DSSE envelope over an in-toto Statement v1 naming the digest, predicateType
 * https://sigstore.dev/cosign/sign/v1, signed over the DSSE PAE by a leaf of `pki`, and a Rekor
 * `dsse` v0.0.1 entry with a SET (which dates it) and an inclusion proof (which @sigstore/bundle
 * requires of v0.2 and later) in a one-entry log. Field names as protobuf-specs JSON writes them
 * (int64 as strings, bytes as base64).
 */
export function signBundleV3(pki: TestPki, name: string, o: BundleOptions): Record<string, unknown> {
  const { key, leafPem } = makeLeaf(pki, name, o);
  const statement = Buffer.from(
    JSON.stringify({
      _type: 'https://in-toto.io/Statement/v1',
      subject: [{ name: o.subjectName ?? 'image', digest: { sha256: o.digest.replace(/^sha256:/, '') } }],
      predicateType: 'https://sigstore.dev/cosign/sign/v1',
      predicate: {},
    }),
  );
  const sig = signFile(pki, `${name}.pae`, pae(IN_TOTO, statement), key);
  const envelope = { payload: statement.toString('base64'), payloadType: IN_TOTO, signatures: [{ sig: sig.toString('base64'), keyid: '' }] };
  // Rekor's dsse v0.0.1 body; @sigstore/verify compares its one signature and payloadHash (sha256 of the payload).
  const body = Buffer.from(
    JSON.stringify({
      apiVersion: '0.0.1',
      kind: 'dsse',
      spec: {
        envelopeHash: { algorithm: 'sha256', value: createHash('sha256').update(JSON.stringify(envelope)).digest('hex') },
        payloadHash: { algorithm: 'sha256', value: createHash('sha256').update(statement).digest('hex') },
        signatures: [{ signature: sig.toString('base64'), verifier: Buffer.from(leafPem).toString('base64') }],
      },
    }),
  ).toString('base64');
  const e = logEntry(pki, name, body, o);
  return {
    mediaType: BUNDLE_V03,
    verificationMaterial: {
      certificate: { rawBytes: pemToDer(leafPem).toString('base64') },
      tlogEntries: [
        {
          logIndex: String(LOG_INDEX),
          logId: { keyId: Buffer.from(e.logID, 'hex').toString('base64') },
          kindVersion: { kind: 'dsse', version: '0.0.1' },
          integratedTime: String(e.integratedTime),
          inclusionPromise: { signedEntryTimestamp: e.set.toString('base64') },
          inclusionProof: inclusionProof(pki, name, body, e.logID),
          canonicalizedBody: body,
        },
      ],
    },
    dsseEnvelope: envelope,
  };
}

/**
 * The entry as the only leaf of a log (RFC 6962: root = leaf hash, no proof hashes) and a
 * checkpoint signed by the Rekor-like key as a signed note: the signer's name must appear in the
 * trusted root's baseUrl, its signature is prefixed by the first 4 bytes of the log ID.
 */
function inclusionProof(pki: TestPki, name: string, body: string, logID: string): Record<string, unknown> {
  const rootHash = createHash('sha256').update(Buffer.from([0])).update(Buffer.from(body, 'base64')).digest('base64');
  const origin = `rekor.${nameOf(pki)}.test`;
  const note = `${origin} - 1\n1\n${rootHash}\n`;
  const sig = signFile(pki, `${name}.checkpoint`, Buffer.from(note), pki.rekorKey);
  const hinted = Buffer.concat([Buffer.from(logID, 'hex').subarray(0, 4), sig]).toString('base64');
  return { logIndex: '0', rootHash, treeSize: '1', hashes: [], checkpoint: { envelope: `${note}\n\u2014 ${origin} ${hinted}\n` } };
}

/** DSSE pre-authentication encoding, as the DSSE spec defines it (written here, not taken from src/). */
function pae(type: string, payload: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`DSSEv1 ${Buffer.byteLength(type)} ${type} ${payload.length} `), payload]);
}

const LOG_INDEX = 7;

/** A fresh key and a leaf certificate for it from `pki`'s root: SAN URI, issuer extension .1.8, EKU codeSigning. */
function makeLeaf(pki: TestPki, name: string, o: LeafOptions): { key: string; leafPem: string } {
  const d = pki.dir;
  const key = path.join(d, `${name}.key`);
  ecKey(key);
  const csr = openssl(['req', '-new', '-key', key, '-subj', '/']);
  const ext = path.join(d, `${name}.ext`);
  writeFileSync(
    ext,
    `[v3]\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning\nsubjectAltName=critical,URI:${o.subject}\n` +
      `authorityKeyIdentifier=keyid\n1.3.6.1.4.1.57264.1.8=ASN1:UTF8String:${o.issuer}\n`,
  );
  const leafPem = openssl(
    ['x509', '-req', '-CA', path.join(d, crtName(pki)), '-CAkey', path.join(d, keyName(pki)), '-CAcreateserial', '-days', String(o.days ?? 1), '-sha256', '-extfile', ext, '-extensions', 'v3'],
    csr,
  ).toString('utf8');
  return { key, leafPem };
}

function signFile(pki: TestPki, file: string, data: Buffer, key: string): Buffer {
  const f = path.join(pki.dir, file);
  writeFileSync(f, data);
  return openssl(['dgst', '-sha256', '-sign', key, f]);
}

/** The Rekor-like key's SET over `body`: the canonical JSON (sorted keys, no spaces) of the four fields Rekor signs. */
function logEntry(pki: TestPki, name: string, body: string, o: LeafOptions): { logID: string; integratedTime: number; set: Buffer } {
  const spki = createPublicKey(readFileSync(pki.rekorKey)).export({ type: 'spki', format: 'der' });
  const logID = createHash('sha256').update(spki).digest('hex');
  const integratedTime = o.integratedTime ?? Math.floor(Date.now() / 1000);
  const set = signFile(pki, `${name}.set-data`, Buffer.from(JSON.stringify({ body, integratedTime, logID, logIndex: LOG_INDEX })), pki.rekorKey);
  return { logID, integratedTime, set };
}

const keyName = (pki: TestPki) => `${nameOf(pki)}-root.key`;
const crtName = (pki: TestPki) => `${nameOf(pki)}-root.crt`;
const nameOf = (pki: TestPki) => path.basename(pki.rekorKey).replace(/-rekor\.key$/, '');

function pemToDer(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
}

/**
 * A timestamp authority under `pki`'s root (EKU timeStamping), added to its trusted root; returns
 * a function that timestamps bytes with `openssl ts` (a TimeStampResp, base64), as cosign's
 * rfc3161timestamp annotation carries it.
 */
export function addTsa(pki: TestPki): (data: Buffer) => string {
  const d = pki.dir;
  const name = nameOf(pki);
  const key = path.join(d, `${name}-tsa.key`);
  const crt = path.join(d, `${name}-tsa.crt`);
  ecKey(key);
  const ext = path.join(d, `${name}-tsa.ext`);
  writeFileSync(ext, '[v3]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=critical,timeStamping\nauthorityKeyIdentifier=keyid\n');
  const csr = openssl(['req', '-new', '-key', key, '-subj', `/O=airlock-test/CN=${name}-tsa`]);
  writeFileSync(
    crt,
    openssl(['x509', '-req', '-CA', path.join(d, crtName(pki)), '-CAkey', path.join(d, keyName(pki)), '-CAcreateserial', '-days', '365', '-sha256', '-extfile', ext, '-extensions', 'v3'], csr),
  );
  const serial = path.join(d, `${name}-tsa.serial`);
  writeFileSync(serial, '01\n');
  const cnf = path.join(d, `${name}-tsa.cnf`);
  writeFileSync(
    cnf,
    `[tsa]\ndefault_tsa=tsa1\n[tsa1]\nserial=${serial}\nsigner_cert=${crt}\nsigner_key=${key}\nsigner_digest=sha256\n` +
      'default_policy=1.2.3.4.1\ndigests=sha256\naccuracy=secs:1\nordering=no\ntsa_name=no\ness_cert_id_chain=no\ness_cert_id_alg=sha256\n',
  );
  (pki.trustedRoot.timestampAuthorities as unknown[]).push({
    subject: { organization: 'airlock-test', commonName: `${name}-tsa` },
    uri: `https://tsa.${name}.test`,
    certChain: { certificates: [pemToDer(readFileSync(crt, 'utf8')), pemToDer(pki.rootPem)].map((c) => ({ rawBytes: c.toString('base64') })) },
    validFor: { start: '2020-01-01T00:00:00Z' },
  });
  let n = 0;
  return (data: Buffer) => {
    const dataFile = path.join(d, `${name}-tsa-data-${++n}`);
    writeFileSync(dataFile, data);
    const query = openssl(['ts', '-query', '-data', dataFile, '-sha256', '-cert']);
    const queryFile = `${dataFile}.tsq`;
    writeFileSync(queryFile, query);
    return openssl(['ts', '-reply', '-config', cnf, '-queryfile', queryFile]).toString('base64');
  };
}
