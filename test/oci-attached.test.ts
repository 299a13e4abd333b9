// The pure parts of SPEC §9: tag names, what kind an attached manifest is,
// the descriptor a referrers list carries, and the fallback-index merge.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  AttachedError,
  classifyAttached,
  fallbackTag,
  mergeFallbackIndex,
  parseReferrersIndex,
  referrerDescriptor,
  subjectOf,
  tagSchemeTag,
  type ReferrerDescriptor,
} from '../src/oci/attached.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const EMPTY = 'application/vnd.oci.empty.v1+json';
const digestOf = (s: string) => `sha256:${createHash('sha256').update(s).digest('hex')}`;
const HEX = 'a'.repeat(64);
const D = `sha256:${HEX}`;

function manifest(o: { artifactType?: string; config?: string; layers?: string[]; annotations?: Record<string, string>; subject?: string }): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      ...(o.artifactType && { artifactType: o.artifactType }),
      config: { mediaType: o.config ?? EMPTY, digest: digestOf('{}'), size: 2 },
      layers: (o.layers ?? []).map((mt, i) => ({ mediaType: mt, digest: digestOf(`layer${i}`), size: 10 })),
      ...(o.subject && { subject: { mediaType: OCI_MANIFEST, digest: o.subject, size: 100 } }),
      ...(o.annotations && { annotations: o.annotations }),
    }),
  );
}

const entry = (n: string, artifactType?: string): ReferrerDescriptor => ({ mediaType: OCI_MANIFEST, digest: digestOf(n), size: 100 + n.length, ...(artifactType && { artifactType }) });

describe('tag names', () => {
  it('tag scheme and fallback tag for a digest', () => {
    assert.equal(tagSchemeTag(D, 'sig'), `sha256-${HEX}.sig`);
    assert.equal(tagSchemeTag(D, 'att'), `sha256-${HEX}.att`);
    assert.equal(tagSchemeTag(D, 'sbom'), `sha256-${HEX}.sbom`);
    assert.equal(fallbackTag(D), `sha256-${HEX}`);
  });
  it('a malformed digest is refused, not turned into a tag', () => {
    assert.throws(() => fallbackTag('sha256:../../x'), /invalid digest/);
    assert.throws(() => tagSchemeTag('md5:abc', 'sig'), /invalid digest/);
  });
});

describe('classifyAttached', () => {
  const BUNDLE = 'application/vnd.dev.sigstore.bundle.v0.3+json';
  const cases: Array<[string, Buffer, ReturnType<typeof classifyAttached>, ('sig' | 'att' | 'sbom')?]> = [
    ['cosign .sig (simplesigning layer)', manifest({ config: 'application/vnd.oci.image.config.v1+json', layers: ['application/vnd.dev.cosign.simplesigning.v1+json'] }), 'signature'],
    ['Sigstore bundle, cosign sign predicate', manifest({ artifactType: BUNDLE, layers: [BUNDLE], annotations: { 'dev.sigstore.bundle.predicateType': 'https://sigstore.dev/cosign/sign/v1' } }), 'signature'],
    ['Sigstore bundle, no predicate annotation', manifest({ artifactType: BUNDLE, layers: [BUNDLE] }), 'signature'],
    ['Sigstore bundle, SLSA predicate', manifest({ artifactType: BUNDLE, layers: [BUNDLE], annotations: { 'dev.sigstore.bundle.predicateType': 'https://slsa.dev/provenance/v1' } }), 'attestation'],
    ['cosign 2.5 bundle without artifactType (layer only)', manifest({ layers: [BUNDLE] }), 'signature'],
    ['v0.1 bundle media type with parameter', manifest({ layers: ['application/vnd.dev.sigstore.bundle+json;version=0.1'] }), 'signature'],
    ['.att DSSE envelope', manifest({ config: 'application/vnd.oci.image.config.v1+json', layers: ['application/vnd.dsse.envelope.v1+json'] }), 'attestation'],
    ['in-toto referrer', manifest({ artifactType: 'application/vnd.in-toto+json', layers: ['application/vnd.in-toto+json'] }), 'attestation'],
    ['SPDX JSON referrer', manifest({ artifactType: 'application/spdx+json', layers: ['application/spdx+json'] }), 'sbom'],
    ['CycloneDX referrer', manifest({ artifactType: 'application/vnd.cyclonedx+json', layers: ['application/vnd.cyclonedx+json'] }), 'sbom'],
    ['cosign .sbom text/spdx', manifest({ layers: ['text/spdx'] }), 'sbom'],
    ['syft JSON', manifest({ layers: ['application/vnd.syft+json'] }), 'sbom'],
    ['an unknown artifact', manifest({ artifactType: 'application/vnd.example.thing', layers: ['application/octet-stream'] }), 'other'],
    ['unknown, found under .sbom', manifest({ layers: ['application/octet-stream'] }), 'sbom', 'sbom'],
    ['not JSON at all', Buffer.from('<html>'), 'other'],
    ['not JSON, found under .sig', Buffer.from('[]'), 'signature', 'sig'],
    ['nested 10000 deep', Buffer.from('['.repeat(10000) + ']'.repeat(10000)), 'other'],
  ];
  for (const [name, bytes, kind, suffix] of cases) {
    it(`${name} → ${kind}`, () => assert.equal(classifyAttached(bytes, suffix), kind));
  }
});

describe('referrerDescriptor', () => {
  it('carries the manifest artifactType and annotations', () => {
    const b = manifest({ artifactType: 'application/spdx+json', annotations: { a: 'b' }, subject: D });
    assert.deepEqual(referrerDescriptor(b, digestOf(b.toString())), { mediaType: OCI_MANIFEST, digest: digestOf(b.toString()), size: b.length, artifactType: 'application/spdx+json', annotations: { a: 'b' } });
    assert.equal(subjectOf(b), D);
  });
  it('falls back to config.mediaType without artifactType', () => {
    const b = manifest({ layers: ['application/vnd.dev.sigstore.bundle.v0.3+json'] });
    assert.equal(referrerDescriptor(b, digestOf('x')).artifactType, EMPTY);
    assert.equal(subjectOf(b), undefined);
  });
  it('refuses an index or a shapeless manifest', () => {
    const idx = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] }));
    assert.throws(() => referrerDescriptor(idx, D), (e: Error) => e instanceof AttachedError && /index/.test(e.message));
    assert.throws(() => referrerDescriptor(Buffer.from('{"schemaVersion":2,"mediaType":"' + OCI_MANIFEST + '"}'), D), AttachedError);
  });
});

describe('mergeFallbackIndex', () => {
  it('builds a new index when there is none, each digest once', () => {
    const out = mergeFallbackIndex(undefined, [entry('a', 'x/y'), entry('b'), entry('a', 'x/y')]);
    assert.ok(Buffer.isBuffer(out));
    const doc = JSON.parse(out.toString()) as { schemaVersion: number; mediaType: string; manifests: ReferrerDescriptor[] };
    assert.equal(doc.mediaType, OCI_INDEX);
    assert.deepEqual(doc.manifests, [entry('a', 'x/y'), entry('b')]);
  });
  it('keeps a foreign entry first and as it was, appends ours, and a rerun changes nothing', () => {
    const foreign = { mediaType: OCI_MANIFEST, digest: digestOf('foreign'), size: 7, artifactType: 'application/vnd.foreign', annotations: { 'x-foreign': 'kept' }, 'x-extra': 1 };
    const existing = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [foreign], annotations: { mine: 'no' } }, null, 3));
    const once = mergeFallbackIndex(existing, [entry('a', 'application/spdx+json'), entry('foreign')]);
    assert.ok(Buffer.isBuffer(once));
    const doc = JSON.parse(once.toString()) as { manifests: unknown[]; annotations: unknown };
    assert.deepEqual(doc.manifests, [foreign, entry('a', 'application/spdx+json')]);
    assert.deepEqual(doc.annotations, { mine: 'no' });
    assert.equal(mergeFallbackIndex(once, [entry('a', 'application/spdx+json')]), 'unchanged');
    assert.equal(mergeFallbackIndex(existing, [entry('foreign')]), 'unchanged');
    assert.equal(mergeFallbackIndex(undefined, []), 'unchanged');
  });
  it('is deterministic: the same content gives the same bytes', () => {
    const a = mergeFallbackIndex(undefined, [entry('a'), entry('b')]);
    const b = mergeFallbackIndex(undefined, [entry('a'), entry('b')]);
    assert.ok(Buffer.isBuffer(a) && Buffer.isBuffer(b) && a.equals(b));
  });
  it('refuses to merge into something that is not an OCI index', () => {
    const cases = [
      Buffer.from('not json'),
      Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: {}, layers: [] })),
      Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, digest: 'sha256:xyz', size: 1 }] })),
      Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: 'text/html', digest: D, size: 1 }] })),
      Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, digest: D, size: -1 }] })),
      Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: Array.from({ length: 1001 }, (_, i) => entry(String(i))) })),
      Buffer.from('{"schemaVersion":2,"manifests":' + '['.repeat(100) + ']'.repeat(100) + '}'),
    ];
    for (const c of cases) assert.throws(() => mergeFallbackIndex(c, [entry('a')]), AttachedError, c.toString().slice(0, 80));
  });
  it('parseReferrersIndex reads only the first `keep` entries of a long list, and says how many it lists', () => {
    const list = [...Array.from({ length: 1500 }, (_, i) => entry(String(i))), { digest: 'garbage past the bound' }];
    const got = parseReferrersIndex(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: list })), 'busy', 65);
    assert.equal(got.entries.length, 65);
    assert.equal(got.listed, 1501);
    assert.deepEqual(got.entries[64], entry('64'));
  });
  it('parseReferrersIndex names what it reads', () => {
    assert.throws(() => parseReferrersIndex(Buffer.from('{}'), 'the thing X'), /the thing X has schemaVersion/);
  });
});
