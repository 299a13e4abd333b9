// airlock build carries what is attached to its images (SPEC §9): against a
// real distribution 2.8 (no referrers API: the referrers come from the
// fallback tag) seeded with a real captured cosign .sig, an in-toto .att, an
// SPDX referrer, Sigstore-bundle referrers with and without artifactType, and
// a referrer on a child of an index; and against a front over distribution 2.8
// that has the referrers API. A fault proxy in front counts the requests.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { access, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { BundleAttached, BundleIndex } from '../src/bundle/format.js';
import { runAirlock } from './support/cli.js';
import { startFaultProxy, type TestFaultProxy } from './support/faultproxy.js';
import { makeTempDir, removeTempDir } from './support/proc.js';
import { startReferrersFront, type ReferrersFront } from './support/referrers-registry.js';
import { startRegistry, type TestRegistry } from './support/registry.js';
import { makeLayer, Seeder, type PushedImage } from './support/seed.js';
import { pushFallbackIndex, pushRealSignature, pushSbomReferrer, referrerEntry, seedAttached, tagFor, type SeededAttached, type SeededSet } from './support/seed-attached.js';
import { entry, readTar, type TarEntry } from './support/tarball.js';

let reg: TestRegistry;
let proxy: TestFaultProxy;
let frontReg: TestRegistry;
let front: ReferrersFront;
let work: string;
let key: string;
let app: PushedImage;
let seeded: SeededSet;
let child: PushedImage;
let childSbom: SeededAttached;
let multiDigest: string;
let frontApp: PushedImage;
let frontSeeded: SeededSet;
let first: { file: string; index: BundleIndex; tar: TarEntry[] };
let filteredIndex: string;
let filteredChild: PushedImage;
let filteredChildSbom: SeededAttached;
let badSbom: SeededAttached;

const EPOCH = { ...process.env, SOURCE_DATE_EPOCH: '1767225600' };

function manifestYaml(host: string, images: string[], extra = ''): string {
  return `apiVersion: airlock/v1
kind: Bundle
metadata:
  name: attached-test
spec:${extra}
  registries:
    "${host}": {plainHttp: true}
  images:
${images.map((i) => `    - ${host}/${i}\n`).join('')}`;
}

async function build(name: string, yaml: string, args: string[] = []): Promise<{ code: number | null; stdout: string; stderr: string; file: string; index?: BundleIndex; tar?: TarEntry[] }> {
  const m = path.join(work, `${name}.yaml`);
  await writeFile(m, yaml);
  const file = path.join(work, `${name}.tar`);
  const r = await runAirlock(['build', m, '-o', file, '--key', key, '--cache', path.join(work, `cache-${name}`), ...args], undefined, { env: EPOCH });
  if (r.code !== 0) return { ...r, file };
  const tar = await readTar(file);
  return { ...r, file, tar, index: JSON.parse(entry(tar, 'bundle.json').data.toString('utf8')) as BundleIndex };
}

const blobEntry = (tar: TarEntry[], digest: string) => tar.find((e) => e.name === `blobs/sha256/${digest.slice(7)}`);

/** The seeded manifest and each of its blobs are in the tar byte for byte. */
function assertCarried(tar: TarEntry[], s: SeededAttached): void {
  assert.ok(blobEntry(tar, s.digest)?.data.equals(s.manifest), `${s.digest}: manifest bytes in the bundle differ from what was seeded`);
  for (const b of s.blobs) assert.ok(blobEntry(tar, b.descriptor.digest)?.data.equals(b.bytes), `${b.descriptor.digest}: blob bytes differ`);
}

const discoveryRequests = (p: TestFaultProxy) => p.stats.requests.filter((r) => /\/referrers\/|\/manifests\/sha256-/.test(r.path));

before(async () => {
  [reg, frontReg] = await Promise.all([startRegistry(), startRegistry()]);
  proxy = await startFaultProxy(reg.url);
  front = await startReferrersFront(frontReg.url);
  work = await makeTempDir('airlock-build-attached-');
  assert.equal((await runAirlock(['keygen', '--out', path.join(work, 'k')])).code, 0);
  key = path.join(work, 'k.key');

  const s = new Seeder({ url: reg.url });
  app = await s.pushImage('signed/app', '1', { layers: [await makeLayer('signed-app', 40_000)], format: 'oci' });
  // The real .sig signs another image: it is carried byte for byte all the same (verifying it is the policy's job).
  seeded = await seedAttached(s, 'signed/app', app.descriptor, { fallback: true });
  // An index whose amd64 child has an SBOM referrer, listed in the child's fallback index.
  child = await s.pushImage('multi/app', undefined, { layers: [await makeLayer('multi-amd64', 20_000)], format: 'oci', platform: { os: 'linux', architecture: 'amd64' } });
  const arm = await s.pushImage('multi/app', undefined, { layers: [await makeLayer('multi-arm64', 20_000)], format: 'oci', platform: { os: 'linux', architecture: 'arm64' } });
  multiDigest = (await s.pushIndex('multi/app', '1', [child.descriptor, arm.descriptor], 'oci')).digest;
  childSbom = await pushSbomReferrer(s, 'multi/app', child.descriptor, 7);
  await pushFallbackIndex(s, 'multi/app', child.digest, [referrerEntry(childSbom)]);
  // An index signed as a whole, with an SBOM on its amd64 child: built with a platform filter.
  filteredChild = await s.pushImage('filtered/app', undefined, { layers: [await makeLayer('filtered-amd64', 5_000)], format: 'oci', platform: { os: 'linux', architecture: 'amd64' } });
  const filteredArm = await s.pushImage('filtered/app', undefined, { layers: [await makeLayer('filtered-arm64', 5_000)], format: 'oci', platform: { os: 'linux', architecture: 'arm64' } });
  filteredIndex = (await s.pushIndex('filtered/app', '1', [filteredChild.descriptor, filteredArm.descriptor], 'oci')).digest;
  await pushRealSignature(s, 'filtered/app', filteredIndex);
  filteredChildSbom = await pushSbomReferrer(s, 'filtered/app', filteredChild.descriptor, 8);
  await pushFallbackIndex(s, 'filtered/app', filteredChild.digest, [referrerEntry(filteredChildSbom)]);
  // An SBOM whose layer the registry serves with other bytes (changed on its disk, same size).
  const bad = await s.pushImage('bad/app', '1', { layers: [await makeLayer('bad-app', 5_000)], format: 'oci' });
  badSbom = await pushSbomReferrer(s, 'bad/app', bad.descriptor, 9);
  await pushFallbackIndex(s, 'bad/app', bad.digest, [referrerEntry(badSbom)]);
  await s.close();

  const f = new Seeder({ url: front.url });
  frontApp = await f.pushImage('signed/app', '1', { layers: [await makeLayer('front-app', 10_000)], format: 'oci' });
  frontSeeded = await seedAttached(f, 'signed/app', frontApp.descriptor, { fallback: false });
  await f.close();

  const r = await build('first', manifestYaml(proxy.host, ['signed/app:1', 'multi/app:1']));
  assert.equal(r.code, 0, r.stderr);
  first = { file: r.file, index: r.index!, tar: r.tar! };
});

after(async () => {
  await proxy?.stop();
  await front?.stop();
  await Promise.all([reg?.stop(), frontReg?.stop()]);
  if (work) await removeTempDir(work);
});

describe('build carries attached manifests', () => {
  it('lists every seeded kind in bundle.json attached[] with its kind, tag, artifactType and subject', () => {
    const repo = `${proxy.host}/signed/app`;
    const want = (s: SeededAttached, kind: BundleAttached['kind'], subject: string, repository: string): Partial<BundleAttached> => ({
      subject,
      repository,
      digest: s.digest,
      kind,
      ...(s.tag && { tag: s.tag }),
      artifactType: s.artifactType,
      mediaType: s.mediaType,
    });
    const got = (first.index.attached ?? []).map((a) => ({ subject: a.subject, repository: a.repository, digest: a.digest, kind: a.kind, ...(a.tag && { tag: a.tag }), artifactType: a.artifactType, mediaType: a.mediaType }));
    const expected = [
      want(seeded.sig, 'signature', app.digest, repo),
      want(seeded.att, 'attestation', app.digest, repo),
      want(seeded.sbom, 'sbom', app.digest, repo),
      want(seeded.bundle, 'signature', app.digest, repo),
      want(seeded.bundleNoType, 'signature', app.digest, repo),
      want(childSbom, 'sbom', child.digest, `${proxy.host}/multi/app`),
    ];
    const key = (a: Partial<BundleAttached>) => `${a.digest}`;
    assert.deepEqual([...got].sort((a, b) => key(a).localeCompare(key(b))), [...expected].sort((a, b) => key(a).localeCompare(key(b))));
    // The tag-scheme names are the cosign ones.
    assert.equal(seeded.sig.tag, tagFor(app.digest, 'sig'));
    // Sizes: the manifest and its blobs.
    for (const a of first.index.attached ?? []) {
      const s = [seeded.sig, seeded.att, seeded.sbom, seeded.bundle, seeded.bundleNoType, childSbom].find((x) => x.digest === a.digest)!;
      assert.equal(a.size, s.manifest.length + s.blobs.reduce((n, b) => n + b.descriptor.size, 0), a.digest);
    }
  });

  it('holds each attached manifest and its blobs byte-identical to what was seeded, the index kept whole', () => {
    for (const s of [seeded.sig, seeded.att, seeded.sbom, seeded.bundle, seeded.bundleNoType, childSbom]) assertCarried(first.tar, s);
    assert.equal(first.index.images.find((i) => i.ref.endsWith('multi/app:1'))?.digest, multiDigest);
  });

  it('verifies, and inspect lists them under their images', async () => {
    const v = await runAirlock(['verify', first.file, '--pub', path.join(work, 'k.pub')]);
    assert.equal(v.code, 0, v.stderr);
    const i = await runAirlock(['inspect', first.file, '--json']);
    assert.equal(i.code, 0, i.stderr);
    const placed = (JSON.parse(i.stdout) as { attached: Array<{ digest: string; image?: string }> }).attached;
    assert.equal(placed.find((p) => p.digest === childSbom.digest)?.image, `${proxy.host}/multi/app:1`);
    assert.equal(placed.find((p) => p.digest === seeded.sig.digest)?.image, `${proxy.host}/signed/app:1`);
  });

  it('--no-attached sends no discovery request and carries none', async () => {
    proxy.stats.reset();
    const r = await build('none', manifestYaml(proxy.host, ['signed/app:1', 'multi/app:1']), ['--no-attached']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(discoveryRequests(proxy), []);
    assert.equal(r.index?.attached, undefined);
    assert.equal(blobEntry(r.tar!, seeded.sig.digest), undefined);
  });

  it('spec.attached: false does the same', async () => {
    proxy.stats.reset();
    const r = await build('spec-off', manifestYaml(proxy.host, ['signed/app:1'], '\n  attached: false'));
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(discoveryRequests(proxy), []);
    assert.equal(r.index?.attached, undefined);
  });

  it('a delta against the first bundle carries no attached bytes again', async () => {
    const r = await build('delta', manifestYaml(proxy.host, ['signed/app:1', 'multi/app:1']), ['--base', first.file]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.index?.attached?.length, 6);
    for (const s of [seeded.sig, seeded.att, seeded.sbom, seeded.bundle, seeded.bundleNoType, childSbom]) {
      for (const d of [s.digest, ...s.blobs.map((b) => b.descriptor.digest)]) {
        assert.equal(r.index?.blobs.find((b) => b.digest === d)?.external, true, `${d} is marked external`);
        assert.equal(blobEntry(r.tar!, d), undefined, `${d} is not in the delta's tar`);
      }
    }
  });

  it('a failed lookup (not "none there") is a warning naming the subject; the image is carried without them', async () => {
    proxy.addRule({ kind: 'status', status: 403, match: new RegExp(`/v2/signed/app/manifests/${tagFor(app.digest, 'att')}`), times: 100 });
    try {
      const m = path.join(work, 'warn.yaml');
      await writeFile(m, manifestYaml(proxy.host, ['signed/app:1']));
      const r = await runAirlock(['build', m, '-o', path.join(work, 'warn.tar'), '--key', key, '--cache', path.join(work, 'cache-warn'), '--json'], undefined, { env: EPOCH });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, new RegExp(`warning: .*signed/app@${app.digest}`));
      const json = JSON.parse(r.stdout) as { warnings?: string[]; attached?: number };
      assert.ok(json.warnings?.some((w) => w.includes(`signed/app@${app.digest}`)), JSON.stringify(json.warnings));
      const index = JSON.parse(entry(await readTar(path.join(work, 'warn.tar')), 'bundle.json').data.toString('utf8')) as BundleIndex;
      assert.equal(index.attached, undefined);
      assert.equal(index.images.length, 1);
    } finally {
      proxy.clearRules();
    }
  });

  it('a blob of an attached manifest that does not match its digest fails the build like any blob', async () => {
    const layer = badSbom.blobs[1]!;
    const hex = layer.descriptor.digest.slice(7);
    const data = path.join(reg.dataDir, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
    const changed = Buffer.from(layer.bytes);
    changed[changed.length - 2]! ^= 0x20;
    await writeFile(data, changed);
    const r = await build('bad', manifestYaml(proxy.host, ['bad/app:1']));
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`bad/app.*${hex.slice(0, 12)}`));
    await assert.rejects(access(r.file), 'no bundle is written');
  });

  it('with a platform filter, what is attached to the upstream index is left out with a warning; a kept child keeps its own', async () => {
    const r = await build('filtered', manifestYaml(proxy.host, ['filtered/app:1']), ['--platform', 'linux/amd64']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`warning: .*filtered/app:1: 1 signature.*upstream index ${filteredIndex}.*platform filter`));
    assert.deepEqual(
      (r.index?.attached ?? []).map((a) => [a.subject, a.digest]),
      [[filteredChild.digest, filteredChildSbom.digest]],
    );
    assertCarried(r.tar!, filteredChildSbom);
    const v = await runAirlock(['verify', r.file, '--pub', path.join(work, 'k.pub')]);
    assert.equal(v.code, 0, v.stderr);
  });

  it('sync looks for them as build does, and with --no-attached sends no lookup', async () => {
    const target = await startRegistry();
    try {
      const m = path.join(work, 'sync.yaml');
      await writeFile(m, manifestYaml(proxy.host, ['signed/app:1', 'multi/app:1']));
      await mkdir(path.join(work, 'sync-files'));
      const args = (cache: string) => ['sync', m, '--registry', target.host, '--files-dir', path.join(work, 'sync-files'), '--cache', path.join(work, cache)];
      proxy.stats.reset();
      const off = await runAirlock([...args('cache-sync-off'), '--no-attached']);
      assert.equal(off.code, 0, off.stderr);
      assert.deepEqual(discoveryRequests(proxy), []);
      proxy.stats.reset();
      const on = await runAirlock(args('cache-sync-on'));
      assert.equal(on.code, 0, on.stderr);
      const asked = discoveryRequests(proxy).map((r) => r.path);
      for (const subject of [app.digest, child.digest, multiDigest]) assert.ok(asked.some((p) => p.includes(tagFor(subject, 'sig'))), `${subject}: its .sig was looked for`);
    } finally {
      await target.stop();
    }
  });

  it('reads the referrers API where the registry has it, and never asks for the fallback tag there', async () => {
    front.requests.length = 0;
    const r = await build('front', manifestYaml(front.host, ['signed/app:1']));
    assert.equal(r.code, 0, r.stderr);
    assert.ok(front.requests.some((q) => q.method === 'GET' && q.path.startsWith(`/v2/signed/app/referrers/${frontApp.digest}`) && q.status === 200));
    assert.deepEqual(
      front.requests.filter((q) => q.path === `/v2/signed/app/manifests/${tagFor(frontApp.digest)}`),
      [],
    );
    assert.deepEqual((r.index?.attached ?? []).map((a) => a.digest).sort(), [frontSeeded.sig, frontSeeded.att, frontSeeded.sbom, frontSeeded.bundle, frontSeeded.bundleNoType].map((s) => s.digest).sort());
    for (const s of [frontSeeded.sig, frontSeeded.sbom, frontSeeded.bundle]) assertCarried(r.tar!, s);
  });
});
