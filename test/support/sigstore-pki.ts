// A Sigstore-shaped test PKI made with openssl, not with airlock's code: a Fulcio-like root and
// leaf (SAN URI, OIDC issuer in extension 1.3.6.1.4.1.57264.1.8, EKU codeSigning), a Rekor-like
// key signing the SET of a hashedrekord entry, and the trusted_root.json listing them. Each
// signature it makes is a cosign tag-scheme layer (payload + annotations).
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
  const payloadFile = path.join(d, `${name}.payload`);
  writeFileSync(payloadFile, payload);
  const sig = openssl(['dgst', '-sha256', '-sign', key, payloadFile]);
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
  const spki = createPublicKey(readFileSync(pki.rekorKey)).export({ type: 'spki', format: 'der' });
  const logID = createHash('sha256').update(spki).digest('hex');
  const integratedTime = o.integratedTime ?? Math.floor(Date.now() / 1000);
  // Rekor signs the canonical JSON (sorted keys, no spaces) of these four fields.
  const setData = path.join(d, `${name}.set-data`);
  writeFileSync(setData, JSON.stringify({ body, integratedTime, logID, logIndex: 7 }));
  const set = openssl(['dgst', '-sha256', '-sign', pki.rekorKey, setData]);
  return {
    'dev.cosignproject.cosign/signature': sig.toString('base64'),
    'dev.sigstore.cosign/certificate': leafPem,
    'dev.sigstore.cosign/chain': pki.rootPem,
    'dev.sigstore.cosign/bundle': JSON.stringify({ SignedEntryTimestamp: set.toString('base64'), Payload: { body, integratedTime, logIndex: 7, logID } }),
  };
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
