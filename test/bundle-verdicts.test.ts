// bundle.json's `policy` and `signatures[]` (SPEC §9) are hostile input like
// the rest of it: a reader refuses what build never writes, naming the field,
// before inspect prints it or the inside reads a policy from it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseIndex } from '../src/bundle/reader.js';

const d = (c: string) => `sha256:${c.repeat(64)}`;
const IMG = d('a');
const POLICY = d('b');
const KEY = d('c');
const ROOT = d('e');

function index(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    schemaVersion: 1,
    name: 'n',
    version: '',
    created: '2026-01-01T00:00:00.000Z',
    tool: 'airlock test',
    signer: { fingerprint: 'sha256:x' },
    images: [{ ref: 'quay.io/org/app:1', digest: IMG, mediaType: 'application/vnd.oci.image.manifest.v1+json', kind: 'image', platforms: [], size: 10 }],
    files: [],
    blobs: [
      { digest: IMG, size: 10 },
      { digest: POLICY, size: 300 },
      { digest: KEY, size: 178 },
      { digest: ROOT, size: 5000 },
    ],
    layout: { 'oci-layout': { sha256: '0'.repeat(64), size: 30 }, 'index.json': { sha256: '0'.repeat(64), size: 300 } },
    policy: {
      name: 'policy.yaml',
      digest: POLICY,
      size: 300,
      files: [
        { path: 'keys/team.pub', role: 'key', digest: KEY, size: 178 },
        { path: 'trusted_root.json', role: 'trusted-root', digest: ROOT, size: 5000 },
      ],
    },
    signatures: [{ ref: 'quay.io/org/app:1', digest: IMG, rule: 0, mode: 'enforce', verdict: 'verified', signer: 'key:team sha256:00', format: 'tag-scheme' }],
    ...over,
  };
}

const parse = (v: unknown) => parseIndex(Buffer.from(JSON.stringify(v)));
const refused = (v: unknown, re: RegExp) => assert.throws(() => parse(v), (err: Error) => re.test(err.message), `expected ${re}`);

test('a bundle.json with a policy and verdicts as build writes them is read', () => {
  const i = parse(index());
  assert.equal(i.policy?.files.length, 2);
  assert.equal(i.signatures?.[0]?.verdict, 'verified');
});

test('verdicts that do not match images[] one for one are refused', () => {
  refused(index({ signatures: [] }), /signatures lists 0 verdicts for 1 images/);
  const [v] = index().signatures as Array<Record<string, unknown>>;
  refused(index({ signatures: [{ ...v, ref: 'quay.io/org/other:1' }] }), /signatures\[0\] \(quay\.io\/org\/app:1\) names another image than images\[0\]/);
  refused(index({ signatures: [{ ...v, digest: POLICY }] }), /names another image/);
  refused(index({ signatures: [{ ...v, verdict: 'trusted' }] }), /verdict is not one of verified, unsigned, failed, skipped/);
  refused(index({ signatures: [{ ...v, signer: undefined }] }), /a signer goes with a verified verdict, and only with one/);
  refused(index({ signatures: [{ ...v, verdict: 'failed' }] }), /a signer goes with a verified verdict/);
  refused(index({ signatures: [{ ...v, rule: -1 }] }), /rule is not a rule index or default/);
  refused(index({ signatures: [{ ...v, mode: 'audit' }] }), /mode is not enforce, warn or skip/);
  refused(index({ signatures: [{ ...v, format: 'gpg' }] }), /format is not tag-scheme or sigstore-bundle/);
  refused(index({ signatures: [{ ...v, signer: 'x'.repeat(5000) }] }), /signer is not a short text/);
  refused(index({ signatures: [{ ...v, signedAt: 'yesterday' }] }), /signedAt is not a time/);
  refused(index({ signatures: [{ ...v, verdict: 'failed', signer: undefined, reasons: Array(65).fill('r') }] }), /reasons is not a list of at most 64 short texts/);
  refused(index({ signatures: [{ ...v, trusted: true }] }), /has an unknown field "trusted"/);
});

test('a policy whose files are not blobs in the tar, or named twice, is refused', () => {
  const p = index().policy as Record<string, unknown> & { files: Array<Record<string, unknown>> };
  refused(index({ policy: { ...p, digest: d('f') } }), /policy: sha256:f{64} of 300 bytes is not one of the blobs in the tar/);
  refused(index({ policy: { ...p, size: 301 } }), /is not one of the blobs in the tar/);
  // External: held by a base, not readable from this bundle alone.
  const blobs = (index().blobs as Array<Record<string, unknown>>).map((b) => (b.digest === KEY ? { ...b, external: true, from: { base: 0 } } : b));
  refused(index({ blobs, bases: [{ kind: 'bundle', name: 'b', version: '', sha256: '1'.repeat(64) }] }), /policy\.files\[0\]: sha256:c{64} of 178 bytes is not one of the blobs in the tar/);
  refused(index({ policy: { ...p, files: [p.files[0], p.files[0]] } }), /keys\/team\.pub is listed twice/);
  refused(index({ policy: { ...p, files: [p.files[1], { ...p.files[1], path: 'b.json' }] } }), /two trusted roots/);
  refused(index({ policy: { ...p, files: [{ ...p.files[0], role: 'script' }] } }), /role is not key or trusted-root/);
  refused(index({ policy: { ...p, name: '../../etc/passwd' } }), /policy\.name is not a file name/);
  refused(index({ policy: { ...p, files: [{ ...p.files[0], path: 'a\u001b[2Jb' }] } }), /path is not a path/);
  refused(index({ policy: { ...p, extra: 1 } }), /policy has an unknown field "extra"/);
});
