// Publisher signatures (SPEC §9 "Signature policy", issue 21): the verification core on its own,
// offline. Key signatures are made by openssl, not by airlock; keyless ones are real captured
// signatures checked against their own trust material (test/fixtures/sigstore/README.md).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fingerprint } from '../src/sign/keys.js';
import {
  type AttachedSignature,
  type Identity,
  loadTrustedRoot,
  sha256Of,
  type Trust,
  verifyAttachedSignature,
} from '../src/sign/publisher/verify.js';
import { makeTempDir, removeTempDir } from './support/proc.js';
import { addTsa, makePki, signBundleV3, signKeyless, type TestPki } from './support/sigstore-pki.js';

const FIX = path.resolve(import.meta.dirname, 'fixtures/sigstore');
const PUBLIC_GOOD = path.join(FIX, 'trusted_root.public-good.json');

const DIGEST = `sha256:${'ab'.repeat(32)}`;
const simplesigning = (digest: string) =>
  Buffer.from(
    JSON.stringify({
      critical: { identity: { 'docker-reference': 'registry.example.com/team/app' }, image: { 'docker-manifest-digest': digest }, type: 'cosign container image signature' },
      optional: null,
    }),
  );

const flip = (b: Buffer, at: number): Buffer => {
  const c = Buffer.from(b);
  c[at] = c[at]! ^ 0x01;
  return c;
};

describe('key signatures made with openssl', () => {
  let dir: string;
  before(async () => {
    dir = await makeTempDir('airlock-pubsig-');
  });
  after(async () => removeTempDir(dir));

  const kinds: { name: string; genArgs: string[]; sign: (key: string, data: string, out: string) => string[] }[] = [
    { name: 'ecdsa-p256', genArgs: ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'], sign: (k, d, o) => ['dgst', '-sha256', '-sign', k, '-out', o, d] },
    { name: 'ecdsa-p384', genArgs: ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384'], sign: (k, d, o) => ['dgst', '-sha256', '-sign', k, '-out', o, d] },
    { name: 'rsa-3072', genArgs: ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:3072'], sign: (k, d, o) => ['dgst', '-sha256', '-sign', k, '-out', o, d] },
    // cert-manager signs with an RSA 4096 Cloud KMS key that fixes SHA-512 (docs/signatures.md).
    { name: 'rsa-4096-sha512', genArgs: ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:4096'], sign: (k, d, o) => ['dgst', '-sha512', '-sign', k, '-out', o, d] },
    { name: 'ed25519', genArgs: ['-algorithm', 'ED25519'], sign: (k, d, o) => ['pkeyutl', '-sign', '-rawin', '-inkey', k, '-in', d, '-out', o] },
  ];

  for (const kind of kinds) {
    it(`${kind.name}: verifies; a flipped byte in the payload, the signature or the expected digest fails with its own reason`, async () => {
      const key = path.join(dir, `${kind.name}.key`);
      const pub = path.join(dir, `${kind.name}.pub`);
      execFileSync('openssl', ['genpkey', ...kind.genArgs, '-out', key], { stdio: 'pipe' });
      execFileSync('openssl', ['pkey', '-in', key, '-pubout', '-out', pub]);
      const payload = simplesigning(DIGEST);
      const data = path.join(dir, `${kind.name}.payload`);
      const sigFile = path.join(dir, `${kind.name}.sig`);
      await writeFile(data, payload);
      execFileSync('openssl', kind.sign(key, data, sigFile));
      const sig = await readFile(sigFile);
      const publicKey = createPublicKey(await readFile(pub));
      const id: Identity = { kind: 'key', key: publicKey, name: 'welkin', fingerprint: fingerprint(publicKey) };
      const layer = (p: Buffer, s: Buffer): AttachedSignature => ({
        format: 'tag-scheme',
        payload: p,
        annotations: { 'dev.cosignproject.cosign/signature': s.toString('base64') },
      });

      const ok = verifyAttachedSignature(layer(payload, sig), { digest: DIGEST, identity: id });
      assert.deepEqual(ok, { ok: true, signer: { kind: 'key', name: 'welkin', fingerprint: fingerprint(publicKey) }, format: 'tag-scheme' });

      // The byte inside the digest's hex: the payload still parses, only the signature fails.
      const at = payload.indexOf(Buffer.from('abab')) + 1;
      const badPayload = verifyAttachedSignature(layer(flip(payload, at), sig), { digest: DIGEST, identity: id });
      assert.equal(badPayload.ok, false);
      assert.equal(!badPayload.ok && badPayload.reason.code, 'bad-signature');
      assert.match(!badPayload.ok ? badPayload.reason.message : '', /does not verify with key welkin \(sha256:[0-9a-f]{64}\)/);

      const badSig = verifyAttachedSignature(layer(payload, flip(sig, sig.length - 5)), { digest: DIGEST, identity: id });
      assert.equal(!badSig.ok && badSig.reason.code, 'bad-signature');

      const other = `sha256:${'ab'.repeat(31)}aa`;
      const badDigest = verifyAttachedSignature(layer(payload, sig), { digest: other, identity: id });
      assert.equal(!badDigest.ok && badDigest.reason.code, 'wrong-digest');
      assert.match(!badDigest.ok ? badDigest.reason.message : '', new RegExp(`over ${DIGEST}, not over the image being carried \\(${other}\\)`));
    });
  }

  it('a Sigstore bundle with a DSSE in-toto statement signed by the key (openssl over the PAE) verifies; another subject or a flipped signature byte fails', async () => {
    const key = path.join(dir, 'dsse.key');
    execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key], { stdio: 'pipe' });
    const publicKey = createPublicKey(await readFile(key));
    const statement = Buffer.from(
      JSON.stringify({ _type: 'https://in-toto.io/Statement/v1', subject: [{ name: 'registry.example.com/team/app', digest: { sha256: DIGEST.slice(7) } }], predicateType: 'https://slsa.dev/provenance/v1', predicate: {} }),
    );
    const type = 'application/vnd.in-toto+json';
    const paeFile = path.join(dir, 'dsse.pae');
    await writeFile(paeFile, Buffer.concat([Buffer.from(`DSSEv1 ${type.length} ${type} ${statement.length} `), statement]));
    const sig = execFileSync('openssl', ['dgst', '-sha256', '-sign', key, paeFile]);
    const bundle = (s: Buffer) => ({
      mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
      verificationMaterial: { publicKey: { hint: 'welkin' }, tlogEntries: [] },
      dsseEnvelope: { payload: statement.toString('base64'), payloadType: type, signatures: [{ sig: s.toString('base64'), keyid: '' }] },
    });
    const id: Identity = { kind: 'key', key: publicKey, name: 'welkin', fingerprint: fingerprint(publicKey) };
    const ok = verifyAttachedSignature({ format: 'sigstore-bundle', json: bundle(sig) }, { digest: DIGEST, identity: id });
    assert.equal(ok.ok && ok.format, 'sigstore-bundle');
    const other = verifyAttachedSignature({ format: 'sigstore-bundle', json: bundle(sig) }, { digest: `sha256:${'cd'.repeat(32)}`, identity: id });
    assert.equal(!other.ok && other.reason.code, 'wrong-digest');
    const flipped = verifyAttachedSignature({ format: 'sigstore-bundle', json: bundle(flip(sig, sig.length - 3)) }, { digest: DIGEST, identity: id });
    assert.equal(!flipped.ok && flipped.reason.code, 'bad-signature');
  });

  it('a keyless signature under a key rule is refused as not made with the key', () => {
    const sig = captured();
    const { publicKey } = { publicKey: createPublicKey(execFileSync('openssl', ['pkey', '-pubout'], { input: execFileSync('openssl', ['genpkey', '-algorithm', 'ED25519']) })) };
    const v = verifyAttachedSignature(sig, { digest: CAPTURED_DIGEST, identity: { kind: 'key', key: publicKey as KeyObject, name: 'welkin', fingerprint: 'sha256:00' } });
    assert.equal(!v.ok && v.reason.code, 'not-key-signed');
  });
});

// containers/image's captured cosign keyless signature (2023, Fulcio certificate with the older
// issuer extension 1.3.6.1.4.1.57264.1.1, an SCT, a Rekor SET), over the manifest beside it.
const CAPTURED_DIGEST = sha256Of(readFileSync(path.join(FIX, 'cosign-fulcio-rekor-valid.manifest.json')));
function captured(): AttachedSignature & { format: 'tag-scheme' } {
  const raw = readFileSync(path.join(FIX, 'cosign-fulcio-rekor-valid.signature-1'));
  const doc = JSON.parse(raw.subarray(raw.indexOf(0x0a) + 1).toString('utf8')) as { payload: string; annotations: Record<string, string> };
  return { format: 'tag-scheme', payload: Buffer.from(doc.payload, 'base64'), annotations: doc.annotations };
}
const GITHUB = 'https://github.com/login/oauth';

describe('real captured keyless signatures', () => {
  let publicGood: Trust;
  before(() => {
    publicGood = loadTrustedRoot(JSON.parse(readFileSync(PUBLIC_GOOD, 'utf8')));
  });

  it('the tag-scheme signature verifies with its issuer (old extension) and exact subject, converted to a v0.1 bundle', () => {
    const v = verifyAttachedSignature(captured(), { digest: CAPTURED_DIGEST, identity: { kind: 'keyless', issuer: GITHUB, subject: 'mitr@redhat.com' } }, publicGood);
    assert.deepEqual(v, {
      ok: true,
      signer: { kind: 'keyless', issuer: GITHUB, subject: 'mitr@redhat.com' },
      format: 'tag-scheme',
      signedAt: '2023-01-20T20:51:33.000Z',
    });
    const re = verifyAttachedSignature(captured(), { digest: CAPTURED_DIGEST, identity: { kind: 'keyless', issuer: GITHUB, subjectRegExp: /[a-z]+@redhat\.com/ } }, publicGood);
    assert.equal(re.ok, true);
  });

  it('a subject that is a prefix (or a regular expression matching a part) of the true one is refused', () => {
    for (const id of [{ subject: 'mitr@redhat.co' }, { subject: 'mitr@redhat' }, { subject: 'itr@redhat.com' }, { subjectRegExp: /mitr/ }, { subject: 'mitr@redhat.c.m' }]) {
      const v = verifyAttachedSignature(captured(), { digest: CAPTURED_DIGEST, identity: { kind: 'keyless', issuer: GITHUB, ...id } }, publicGood);
      assert.equal(!v.ok && v.reason.code, 'wrong-subject', JSON.stringify(id));
      assert.match(!v.ok ? v.reason.message : '', /subject mitr@redhat\.com is not/);
    }
  });

  it('a wrong issuer, a wrong digest, a missing timestamp, a foreign trusted root and no trusted root are each refused with their own reason', () => {
    const id = { kind: 'keyless' as const, issuer: GITHUB, subject: 'mitr@redhat.com' };
    const wrongIssuer = verifyAttachedSignature(captured(), { digest: CAPTURED_DIGEST, identity: { ...id, issuer: 'https://accounts.google.com' } }, publicGood);
    assert.equal(!wrongIssuer.ok && wrongIssuer.reason.code, 'wrong-issuer');
    assert.match(!wrongIssuer.ok ? wrongIssuer.reason.message : '', /issued for https:\/\/github\.com\/login\/oauth, not for https:\/\/accounts\.google\.com/);

    const wrongDigest = verifyAttachedSignature(captured(), { digest: DIGEST, identity: id }, publicGood);
    assert.equal(!wrongDigest.ok && wrongDigest.reason.code, 'wrong-digest');

    const noSet = captured();
    const { 'dev.sigstore.cosign/bundle': _set, ...rest } = noSet.annotations;
    const noTs = verifyAttachedSignature({ ...noSet, annotations: rest }, { digest: CAPTURED_DIGEST, identity: id }, publicGood);
    assert.equal(!noTs.ok && noTs.reason.code, 'no-timestamp');

    const foreign = loadTrustedRoot(JSON.parse(readFileSync(path.join(FIX, 'trusted_root_pgi.json'), 'utf8')));
    const untrusted = verifyAttachedSignature(captured(), { digest: CAPTURED_DIGEST, identity: id }, withoutCAs(foreign));
    assert.equal(!untrusted.ok && untrusted.reason.code, 'untrusted-root');

    const none = verifyAttachedSignature(captured(), { digest: CAPTURED_DIGEST, identity: id });
    assert.equal(!none.ok && none.reason.code, 'no-trusted-root');
  });

  it("sigstore/cosign's v0.3 DSSE bundle verifies against its own trusted root and names its in-toto subject", () => {
    const json = JSON.parse(readFileSync(path.join(FIX, 'oci-attestation.sigstore.json'), 'utf8')) as unknown;
    const trust = loadTrustedRoot(JSON.parse(readFileSync(path.join(FIX, 'trusted_root_pgi.json'), 'utf8')));
    const subject = 'sha256:732112270d7e59418a8c080b134b24cabd67d250d0d0147a97ed95ba5c280aa4';
    const id = { kind: 'keyless' as const, issuer: GITHUB, subject: 'cody@soyland.com' };
    const v = verifyAttachedSignature({ format: 'sigstore-bundle', json }, { digest: subject, identity: id }, trust);
    assert.deepEqual(v, { ok: true, signer: { kind: 'keyless', issuer: GITHUB, subject: 'cody@soyland.com' }, format: 'sigstore-bundle', signedAt: '2025-02-28T19:18:11.000Z' });

    const other = verifyAttachedSignature({ format: 'sigstore-bundle', json }, { digest: CAPTURED_DIGEST, identity: id }, trust);
    assert.equal(!other.ok && other.reason.code, 'wrong-digest');
    assert.match(!other.ok ? other.reason.message : '', /in-toto statement is about sha256:7321/);

    const prefix = verifyAttachedSignature({ format: 'sigstore-bundle', json }, { digest: subject, identity: { ...id, subject: 'cody@soyland' } }, trust);
    assert.equal(!prefix.ok && prefix.reason.code, 'wrong-subject');

    // Without a timestamp the bundle is refused before @sigstore/verify sees it; an inclusion proof
    // alone gives the library no signing time either.
    const b = json as { verificationMaterial: { tlogEntries: Record<string, unknown>[] } };
    const noTlog = { ...b, verificationMaterial: { ...b.verificationMaterial, tlogEntries: [] } };
    const proofOnly = { ...b, verificationMaterial: { ...b.verificationMaterial, tlogEntries: b.verificationMaterial.tlogEntries.map(({ inclusionPromise: _p, ...e }) => e) } };
    for (const bad of [noTlog, proofOnly]) {
      const v2 = verifyAttachedSignature({ format: 'sigstore-bundle', json: bad }, { digest: subject, identity: id }, trust);
      assert.equal(!v2.ok && v2.reason.code, 'no-timestamp');
    }

    const unknown = verifyAttachedSignature({ format: 'sigstore-bundle', json: { ...(json as object), mediaType: 'application/vnd.example+json' } }, { digest: subject, identity: id }, trust);
    assert.equal(!unknown.ok && unknown.reason.code, 'unknown-format');
  });
});

/** The same root with no Fulcio CA: the certificate then chains to nothing trusted. */
function withoutCAs(t: Trust): Trust {
  return { ...t, material: { ...t.material, certificateAuthorities: [] } };
}

describe('keyless signatures from a test PKI made with openssl', () => {
  let dir: string;
  let pki: TestPki;
  let other: TestPki;
  const ISSUER = 'https://token.actions.githubusercontent.com';
  const SUBJECT = 'https://github.com/example/app/.github/workflows/release.yml@refs/tags/v1.2.3';
  const payload = simplesigning(DIGEST);
  before(async () => {
    dir = await makeTempDir('airlock-pubsig-pki-');
    pki = makePki(dir, 'good');
    other = makePki(dir, 'other');
  });
  after(async () => removeTempDir(dir));

  const layer = (annotations: Record<string, string>): AttachedSignature => ({ format: 'tag-scheme', payload, annotations });
  const check = (sig: AttachedSignature, id: Partial<Extract<Identity, { kind: 'keyless' }>> = {}, digest = DIGEST, root = pki) =>
    verifyAttachedSignature(sig, { digest, identity: { kind: 'keyless', issuer: ISSUER, subject: SUBJECT, ...id } }, loadTrustedRoot(root.trustedRoot));
  const code = (v: ReturnType<typeof check>) => (v.ok ? 'ok' : v.reason.code);

  it('the right issuer (extension .1.8) and subject verify; exact and anchored expressions both', () => {
    const sig = layer(signKeyless(pki, 'leaf-ok', payload, { subject: SUBJECT, issuer: ISSUER }));
    const v = check(sig);
    assert.equal(v.ok, true, JSON.stringify(v));
    assert.deepEqual(v.ok && v.signer, { kind: 'keyless', issuer: ISSUER, subject: SUBJECT });
    assert.equal(code(check(sig, { subject: undefined, subjectRegExp: /https:\/\/github\.com\/example\/.*/ })), 'ok');
  });

  it('wrong subject, wrong issuer, expired at signing, untrusted root, missing timestamp and a payload naming another digest each fail with their own reason', () => {
    const annotations = signKeyless(pki, 'leaf', payload, { subject: SUBJECT, issuer: ISSUER });
    const sig = layer(annotations);
    assert.equal(code(check(sig, { subject: `${SUBJECT}-rc1` })), 'wrong-subject');
    assert.equal(code(check(sig, { subject: SUBJECT.slice(0, -2) })), 'wrong-subject');
    assert.equal(code(check(sig, { subject: undefined, subjectRegExp: /https:\/\/github\.com\/example\// })), 'wrong-subject');
    assert.equal(code(check(sig, { issuer: 'https://accounts.google.com' })), 'wrong-issuer');
    assert.equal(code(check(sig, {}, `sha256:${'cd'.repeat(32)}`)), 'wrong-digest');
    assert.equal(code(check(sig, {}, DIGEST, other)), 'untrusted-root');
    // A flipped payload byte: the Rekor entry no longer matches what is signed, checked before the signature.
    const altered = verifyAttachedSignature({ format: 'tag-scheme', payload: flip(payload, 20), annotations }, { digest: DIGEST, identity: { kind: 'keyless', issuer: ISSUER, subject: SUBJECT } }, loadTrustedRoot(pki.trustedRoot));
    assert.equal(code(altered), 'bad-tlog-entry');
    const { 'dev.sigstore.cosign/bundle': _set, ...noSet } = annotations;
    assert.equal(code(check(layer(noSet))), 'no-timestamp');
    // Logged (and timestamped by the SET) three days after the one-day certificate ran out.
    const late = layer(signKeyless(pki, 'leaf-late', payload, { subject: SUBJECT, issuer: ISSUER, integratedTime: Math.floor(Date.now() / 1000) + 3 * 86400 }));
    const expired = check(late);
    assert.equal(code(expired), 'expired-at-signing');
    assert.match(!expired.ok ? expired.reason.message : '', /not valid at the time the signature was timestamped/);
  });
  it('an RFC 3161 timestamp from a TSA of the trusted root dates a signature that has no Rekor entry; one from a TSA the root does not list does not', () => {
    const withTsa = makePki(dir, 'tsa');
    const stamp = addTsa(withTsa);
    const foreignStamp = addTsa(other);
    const { 'dev.sigstore.cosign/bundle': _set, ...annotations } = signKeyless(withTsa, 'leaf-tsa', payload, { subject: SUBJECT, issuer: ISSUER });
    const sig = Buffer.from(annotations['dev.cosignproject.cosign/signature']!, 'base64');
    const stamped = (b64: string) => layer({ ...annotations, 'dev.sigstore.cosign/rfc3161timestamp': JSON.stringify({ SignedRFC3161Timestamp: b64 }) });
    const ok = check(stamped(stamp(sig)), {}, DIGEST, withTsa);
    assert.equal(code(ok), 'ok', JSON.stringify(ok));
    const at = ok.ok && ok.signedAt ? Date.parse(ok.signedAt) : NaN;
    assert.ok(Math.abs(at - Date.now()) < 3600_000, `signedAt is the TSA's time: ${ok.ok && ok.signedAt}`);
    assert.equal(code(check(stamped(foreignStamp(sig)), {}, DIGEST, withTsa)), 'bad-timestamp');
    // A timestamp over other bytes (the payload, not the signature) dates nothing.
    assert.equal(code(check(stamped(stamp(payload)), {}, DIGEST, withTsa)), 'bad-timestamp');
  });
});

describe('Sigstore bundle v0.3 from a test PKI, as cosign 3 signs an image (DSSE in-toto, Rekor dsse entry with a SET)', () => {
  let dir: string;
  let pki: TestPki;
  let other: TestPki;
  const ISSUER = 'https://token.actions.githubusercontent.com';
  const SUBJECT = 'https://github.com/example/app/.github/workflows/release.yml@refs/tags/v1.2.3';
  before(async () => {
    dir = await makeTempDir('airlock-pubsig-bundle-');
    pki = makePki(dir, 'good');
    other = makePki(dir, 'other');
  });
  after(async () => removeTempDir(dir));

  const check = (json: unknown, id: Partial<Extract<Identity, { kind: 'keyless' }>> = {}, digest = DIGEST, root = pki) =>
    verifyAttachedSignature({ format: 'sigstore-bundle', json }, { digest, identity: { kind: 'keyless', issuer: ISSUER, subject: SUBJECT, ...id } }, loadTrustedRoot(root.trustedRoot));
  const code = (v: ReturnType<typeof check>) => (v.ok ? 'ok' : v.reason.code);

  it('verifies with the exact issuer and subject, dated by the SET; wrong subject, issuer, digest, root or a flipped signature each fail with their reason', () => {
    const json = signBundleV3(pki, 'bundle-leaf', { digest: DIGEST, subject: SUBJECT, issuer: ISSUER, subjectName: 'registry.example.com/team/app' });
    const v = check(json);
    assert.equal(v.ok, true, JSON.stringify(v));
    assert.deepEqual(v.ok && { signer: v.signer, format: v.format }, { signer: { kind: 'keyless', issuer: ISSUER, subject: SUBJECT }, format: 'sigstore-bundle' });
    assert.ok(v.ok && v.signedAt && Math.abs(Date.parse(v.signedAt) - Date.now()) < 3600_000, `signedAt is the SET's integrated time: ${v.ok && v.signedAt}`);

    assert.equal(code(check(json, { subject: `${SUBJECT}-rc1` })), 'wrong-subject');
    assert.equal(code(check(json, { issuer: 'https://accounts.google.com' })), 'wrong-issuer');
    const otherDigest = check(json, {}, `sha256:${'cd'.repeat(32)}`);
    assert.equal(code(otherDigest), 'wrong-digest');
    assert.match(!otherDigest.ok ? otherDigest.reason.message : '', new RegExp(`in-toto statement is about ${DIGEST}`));
    assert.equal(code(check(json, {}, DIGEST, other)), 'untrusted-root');

    const b = json as { dsseEnvelope: { signatures: { sig: string }[] } };
    const sig = Buffer.from(b.dsseEnvelope.signatures[0]!.sig, 'base64');
    // The Rekor entry names the signature it logged: another one reads as a bad entry, before the signature is checked.
    const flipped = { ...b, dsseEnvelope: { ...b.dsseEnvelope, signatures: [{ sig: flip(sig, sig.length - 3).toString('base64') }] } };
    assert.equal(code(check(flipped)), 'bad-tlog-entry');
    const { tlogEntries, ...material } = (json as { verificationMaterial: { tlogEntries: { inclusionProof: { checkpoint: { envelope: string } } }[] } }).verificationMaterial;
    assert.equal(code(check({ ...json, verificationMaterial: { ...material, tlogEntries: [] } })), 'no-timestamp');
    // The inclusion proof is checked too: a checkpoint for another tree reads as a bad entry.
    const [entry] = tlogEntries;
    const otherTree = { ...entry, inclusionProof: { ...entry!.inclusionProof, checkpoint: { envelope: entry!.inclusionProof.checkpoint.envelope.replace(/\n1\n/, '\n2\n') } } };
    assert.equal(code(check({ ...json, verificationMaterial: { ...material, tlogEntries: [otherTree] } })), 'bad-tlog-entry');
    // A v0.2+ bundle must carry the inclusion proof; the reason names what is missing.
    const { inclusionProof: _p, ...promiseOnly } = entry!;
    const noProof = check({ ...json, verificationMaterial: { ...material, tlogEntries: [promiseOnly] } });
    assert.equal(code(noProof), 'malformed');
    assert.match(!noProof.ok ? noProof.reason.message : '', /verificationMaterial\.tlogEntries\[0\]\.inclusionProof/);
  });
});
