// Discovery of what is attached to a digest (SPEC §9) against real
// registries: distribution 2.8 (no referrers API: the fallback tag), and the
// same registry behind a front that has the API. Plus the push-side
// primitives: does the target have the API, and the fallback-index update.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Http } from '../src/http/client.js';
import { nextLink, RegistryClient } from '../src/registry/client.js';
import { discoverAttached, MAX_REFERRERS, pushReferrer, targetHasReferrersApi, updateFallbackIndex, type Discovery } from '../src/registry/referrers.js';
import { startFaultProxy, type TestFaultProxy } from './support/faultproxy.js';
import { startReferrersFront, type ReferrersFront } from './support/referrers-registry.js';
import { startRegistry, type TestRegistry } from './support/registry.js';
import { MediaTypes, pseudoRandomBytes, Seeder, sha256, type Descriptor } from './support/seed.js';
import { pushFallbackIndex, pushSbomReferrer, realSignedManifest, referrerEntry, seedAttached, tagFor, type SeededAttached, type SeededSet } from './support/seed-attached.js';

const RETRY = { attempts: 2, baseDelayMs: 10, maxDelayMs: 20 };
const real = realSignedManifest();
const SUBJECT: Descriptor = { mediaType: real.mediaType, digest: real.digest, size: real.bytes.length };
/** A subject that needs no image in the registry: discovery goes by digest. */
const fakeSubject = (name: string): Descriptor => ({ mediaType: MediaTypes.ociManifest, digest: sha256(name), size: 1234 });

let reg28: TestRegistry;
let regFront: TestRegistry;
let front: ReferrersFront;
let proxy: TestFaultProxy;
let http: Http;
let seeded28: SeededSet;
let seededFront: SeededSet;

before(async () => {
  [reg28, regFront] = await Promise.all([startRegistry(), startRegistry()]);
  front = await startReferrersFront(regFront.url);
  proxy = await startFaultProxy(reg28.url);
  http = new Http({ retry: RETRY });
  const s28 = new Seeder({ url: reg28.url });
  const sFront = new Seeder({ url: front.url });
  seeded28 = await seedAttached(s28, 'signed/app', SUBJECT, { fallback: true });
  // The front's repository has a fallback index too, so a test can see it is NOT read while the API answers.
  seededFront = await seedAttached(sFront, 'signed/app', SUBJECT, { fallback: true });
  await Promise.all([s28.close(), sFront.close()]);
});

after(async () => {
  await http?.close();
  await proxy?.stop();
  await front?.stop();
  await Promise.all([reg28?.stop(), regFront?.stop()]);
});

/** The discovered manifests are the seeded ones, byte for byte, with their blobs and kinds. */
function assertFoundAll(d: Discovery, set: SeededSet): void {
  assert.deepEqual(d.warnings, []);
  const expected: Array<[SeededAttached, string]> = [
    [set.sig, 'signature'],
    [set.att, 'attestation'],
    [set.sbom, 'sbom'],
    [set.bundle, 'signature'],
    [set.bundleNoType, 'signature'],
  ];
  assert.deepEqual(
    d.attached.map((a) => a.digest),
    expected.map(([s]) => s.digest),
  );
  for (const [i, [s, kind]] of expected.entries()) {
    const a = d.attached[i];
    assert.ok(a);
    assert.ok(a.bytes.equals(s.manifest), `${s.digest}: bytes differ from what was seeded`);
    assert.equal(a.kind, kind, s.digest);
    assert.equal(a.subject, SUBJECT.digest);
    assert.equal(a.tag, s.tag);
    assert.equal(a.artifactType, s.artifactType);
    assert.deepEqual(
      a.blobs.map((b) => [b.digest, b.size, b.mediaType]),
      s.blobs.map((b) => [b.descriptor.digest, b.descriptor.size, b.descriptor.mediaType]),
    );
  }
  // The real captured signature's layer keeps its cosign annotations.
  const sigLayer = d.attached[0]?.blobs[1];
  assert.ok(sigLayer?.annotations?.['dev.cosignproject.cosign/signature']);
  assert.ok(sigLayer?.annotations?.['dev.sigstore.cosign/bundle']);
}

describe('discovery', () => {
  it('on distribution 2.8 finds the tag scheme and the referrers through the fallback tag', async () => {
    const d = await discoverAttached(new RegistryClient(reg28.host, http), 'signed/app', SUBJECT.digest);
    assert.equal(d.referrersVia, 'fallback');
    assertFoundAll(d, seeded28);
  });

  it('uses the referrers API where the registry has it, and does not read the fallback tag there', async () => {
    front.requests.length = 0;
    const d = await discoverAttached(new RegistryClient(front.host, http), 'signed/app', SUBJECT.digest);
    assert.equal(d.referrersVia, 'api');
    assertFoundAll(d, seededFront);
    const paths = front.requests.map((r) => `${r.method} ${r.path}`);
    assert.ok(paths.includes(`GET /v2/signed/app/referrers/${SUBJECT.digest}`), paths.join('\n'));
    assert.ok(!paths.some((p) => p.endsWith(`/manifests/${tagFor(SUBJECT.digest)}`)), `fallback tag read:\n${paths.join('\n')}`);
  });

  it('does not trust a referrers answer of 200 with application/json: the fallback tag is read', async () => {
    front.requests.length = 0;
    front.referrersContentType = 'application/json';
    try {
      const d = await discoverAttached(new RegistryClient(front.host, http), 'signed/app', SUBJECT.digest);
      assert.equal(d.referrersVia, 'fallback');
      assertFoundAll(d, seededFront);
      assert.ok(front.requests.some((r) => r.method === 'GET' && r.path === `/v2/signed/app/manifests/${tagFor(SUBJECT.digest)}`));
    } finally {
      front.referrersContentType = MediaTypes.ociIndex;
    }
  });

  it('a referrers answer of the right type but a hostile body: a warning naming the subject, the tag scheme still found', async () => {
    front.referrersBody = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [{ mediaType: MediaTypes.ociManifest, digest: 'sha256:../../etc', size: 1 }] }));
    try {
      const d = await discoverAttached(new RegistryClient(front.host, http), 'signed/app', SUBJECT.digest);
      assert.deepEqual(
        d.attached.map((a) => a.tag),
        [tagFor(SUBJECT.digest, 'sig'), tagFor(SUBJECT.digest, 'att')],
      );
      assert.equal(d.warnings.length, 1);
      assert.match(d.warnings[0] ?? '', new RegExp(`referrers answer for ${front.host}/signed/app@${SUBJECT.digest}: entry 0 has digest`));
    } finally {
      front.referrersBody = undefined;
    }
  });

  it('nothing attached: an empty answer, no warning', async () => {
    const none = sha256('nothing attached');
    for (const host of [reg28.host, front.host]) {
      const d = await discoverAttached(new RegistryClient(host, http), 'signed/app', none);
      assert.deepEqual([d.attached, d.warnings], [[], []]);
    }
  });

  it('keeps 64 of 65 referrers (paged by Link) and warns naming the subject', async () => {
    const subject = fakeSubject('many');
    const s = new Seeder({ url: front.url });
    for (let n = 0; n < 65; n++) await pushSbomReferrer(s, 'many/app', subject, n);
    await s.close();
    front.pageSize = 20;
    front.requests.length = 0;
    try {
      const d = await discoverAttached(new RegistryClient(front.host, http), 'many/app', subject.digest);
      assert.equal(d.referrersVia, 'api');
      assert.equal(d.attached.length, MAX_REFERRERS);
      assert.equal(d.warnings.length, 1);
      assert.match(d.warnings[0] ?? '', new RegExp(`many/app@${subject.digest}.*65 attached manifests.*${MAX_REFERRERS}`));
      assert.ok(d.attached.every((a) => a.kind === 'sbom'));
      assert.equal(front.requests.filter((r) => r.path.includes('/referrers/')).length, 4, 'four pages of 20');
      // The 65th was never fetched.
      assert.equal(front.requests.filter((r) => r.method === 'GET' && /\/manifests\/sha256:/.test(r.path)).length, 64);
    } finally {
      front.pageSize = undefined;
    }
  });

  it('keeps at most 16 MiB of attached bytes per subject and warns naming the subject', async () => {
    const subject = fakeSubject('big');
    const s = new Seeder({ url: reg28.url });
    const push = async (n: number, size: number) => {
      const config = await s.pushBlob('big/app', Buffer.from('{}'), MediaTypes.ociEmpty);
      const layer = await s.pushBlob('big/app', pseudoRandomBytes(`big${n}`, size), 'application/octet-stream');
      const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociManifest, artifactType: 'application/vnd.example.big', config, layers: [layer], subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size } }));
      await s.pushManifest('big/app', sha256(bytes), bytes, MediaTypes.ociManifest);
      return { mediaType: MediaTypes.ociManifest, digest: sha256(bytes), size: bytes.length, artifactType: 'application/vnd.example.big' };
    };
    const a = await push(1, 10 * 1024 * 1024);
    const b = await push(2, 7 * 1024 * 1024);
    await pushFallbackIndex(s, 'big/app', subject.digest, [a, b]);
    await s.close();
    const d = await discoverAttached(new RegistryClient(reg28.host, http), 'big/app', subject.digest);
    assert.deepEqual(
      d.attached.map((x) => x.digest),
      [a.digest],
    );
    assert.equal(d.warnings.length, 1);
    assert.match(d.warnings[0] ?? '', new RegExp(`big/app@${subject.digest}.*16 MiB.*1 attached manifest`));
  });

  it('leaves out a fallback entry whose manifest names another subject', async () => {
    const subject = fakeSubject('liar');
    const s = new Seeder({ url: reg28.url });
    const other = await pushSbomReferrer(s, 'liar/app', fakeSubject('someone else'), 1);
    await pushFallbackIndex(s, 'liar/app', subject.digest, [referrerEntry(other)]);
    await s.close();
    const d = await discoverAttached(new RegistryClient(reg28.host, http), 'liar/app', subject.digest);
    assert.deepEqual(d.attached, []);
    assert.match(d.warnings.join('\n'), /does not name .* as its subject; left out/);
  });
});

describe('push side', () => {
  it('tells a target with the referrers API from one without', async () => {
    const subject = fakeSubject('probe');
    const s = new Seeder({ url: reg28.url });
    const sbom28 = await pushSbomReferrer(s, 'probe/app', subject, 9);
    await s.close();
    const c28 = new RegistryClient(reg28.host, http);
    const cFront = new RegistryClient(front.host, http);
    // The same referrer PUT again by digest: distribution 2.8 says nothing about the subject, the front does.
    const put28 = await pushReferrer(c28, 'probe/app', { digest: sbom28.digest, bytes: sbom28.manifest, mediaType: sbom28.mediaType });
    assert.equal(put28.ociSubject, undefined);
    assert.equal(await targetHasReferrersApi(c28, 'probe/app', subject.digest, put28.ociSubject), false);
    const sf = new Seeder({ url: front.url });
    const sbomF = await pushSbomReferrer(sf, 'probe/app', subject, 9);
    await sf.close();
    const putF = await pushReferrer(cFront, 'probe/app', { digest: sbomF.digest, bytes: sbomF.manifest, mediaType: sbomF.mediaType });
    assert.equal(putF.ociSubject, subject.digest);
    assert.equal(await targetHasReferrersApi(cFront, 'probe/app', subject.digest, putF.ociSubject), true);
    assert.equal(await targetHasReferrersApi(cFront, 'probe/app', subject.digest), true);
    front.referrersContentType = 'application/json';
    try {
      assert.equal(await targetHasReferrersApi(cFront, 'probe/app', subject.digest), false);
    } finally {
      front.referrersContentType = MediaTypes.ociIndex;
    }
  });

  it('updates the fallback index on 2.8 once, keeps a foreign entry, and a rerun PUTs nothing', async () => {
    const repo = 'target/app';
    const s = new Seeder({ url: reg28.url });
    // The referrers already pushed (as unpack will have done), and someone else's referrer in the fallback index.
    const set = await seedAttached(s, repo, SUBJECT, { fallback: false });
    const foreign = await pushSbomReferrer(s, repo, SUBJECT, 42);
    await pushFallbackIndex(s, repo, SUBJECT.digest, [referrerEntry(foreign)]);
    const found = await discoverAttached(new RegistryClient(reg28.host, http), 'signed/app', SUBJECT.digest);
    const ours = found.attached.filter((a) => a.tag === undefined).map((a) => a.descriptor);
    assert.equal(ours.length, 3);

    const client = new RegistryClient(proxy.host, http);
    const tagPath = `/v2/${repo}/manifests/${tagFor(SUBJECT.digest)}`;
    proxy.stats.reset();
    assert.equal(await updateFallbackIndex(client, repo, SUBJECT.digest, ours), 'written');
    assert.deepEqual(
      proxy.stats.requests.filter((r) => r.method === 'PUT').map((r) => r.path),
      [tagPath],
    );
    const index = JSON.parse((await s.getManifest(repo, tagFor(SUBJECT.digest))).body.toString('utf8')) as { manifests: Descriptor[] };
    assert.deepEqual(
      index.manifests.map((m) => [m.digest, m.artifactType]),
      [
        [foreign.digest, 'application/spdx+json'],
        [set.sbom.digest, 'application/spdx+json'],
        [set.bundle.digest, 'application/vnd.dev.sigstore.bundle.v0.3+json'],
        [set.bundleNoType.digest, MediaTypes.ociEmpty],
      ],
    );
    proxy.stats.reset();
    assert.equal(await updateFallbackIndex(client, repo, SUBJECT.digest, ours), 'unchanged');
    assert.deepEqual(proxy.stats.requests.map((r) => `${r.method} ${r.path}`), [`GET ${tagPath}`]);
    await s.close();
  });

  it('refuses to overwrite a fallback tag that holds something else', async () => {
    const repo = 'clash/app';
    const subject = fakeSubject('clash');
    const s = new Seeder({ url: reg28.url });
    await s.pushImage(repo, tagFor(subject.digest), { layers: [], format: 'oci' });
    await s.close();
    await assert.rejects(updateFallbackIndex(new RegistryClient(reg28.host, http), repo, subject.digest, [{ mediaType: MediaTypes.ociManifest, digest: sha256('x'), size: 1 }]), /clash\/app:sha256-.*not an OCI index|media type/);
  });
});

describe('Link header', () => {
  it('finds rel="next" in the forms registries send', () => {
    assert.equal(nextLink('</v2/a/referrers/sha256:x?last=b>; rel="next"'), '/v2/a/referrers/sha256:x?last=b');
    assert.equal(nextLink('<https://r.example/v2/a?n=2>; rel=next'), 'https://r.example/v2/a?n=2');
    assert.equal(nextLink('<https://r.example/p0>; rel="prev", <https://r.example/p2>; type="x"; rel="next"'), 'https://r.example/p2');
    assert.equal(nextLink(['<a>; rel="prev"', '<b>; rel="next"']), 'b');
    assert.equal(nextLink('<a>; rel="nextish"'), undefined);
    assert.equal(nextLink(undefined), undefined);
  });

  it('a next page on another origin is not followed', async () => {
    const subject = fakeSubject('foreign-link');
    const s = new Seeder({ url: front.url });
    await pushSbomReferrer(s, 'foreign/app', subject, 1);
    await pushSbomReferrer(s, 'foreign/app', subject, 2);
    await s.close();
    front.pageSize = 1;
    front.nextOrigin = 'http://127.0.0.2:9';
    try {
      const d = await discoverAttached(new RegistryClient(front.host, http), 'foreign/app', subject.digest);
      assert.equal(d.attached.length, 1);
      assert.match(d.warnings.join('\n'), /another origin \(http:\/\/127\.0\.0\.2:9\)/);
    } finally {
      front.pageSize = undefined;
      front.nextOrigin = undefined;
    }
  });
});
