// Issue 20's end-to-end check (SPEC §9): what a publisher attached to an image
// upstream — a tag-scheme signature (the real captured cosign one), an
// attestation, an SBOM referrer found through the fallback tag of distribution
// 2.8, and Sigstore-bundle referrers with and without artifactType — crosses
// with `build` and lands with `unpack` in a fresh distribution 2.8: the same
// bytes under the same tags and digests, and a fallback index that lists every
// referrer so that clients find them on a registry without the referrers API.
// A foreign entry already in the target's fallback index survives; a second
// unpack writes nothing; `sync` lands the same.
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Agent, request } from 'undici';
import { runAirlock } from './support/cli.js';
import { startFaultProxy, type TestFaultProxy } from './support/faultproxy.js';
import { makeTempDir, removeTempDir } from './support/proc.js';
import { startRegistry, type TestRegistry } from './support/registry.js';
import { makeLayer, MediaTypes, Seeder, sha256, type Descriptor } from './support/seed.js';
import { pushSbomReferrer, referrerEntry, seedAttached, tagFor, type SeededAttached, type SeededSet } from './support/seed-attached.js';

const agent = new Agent();
let upstream: TestRegistry;
let work: string;
let set: SeededSet;
let subject: string;
let subjectDescriptor: Descriptor;
let manifest: string;
const stops: Array<() => Promise<void>> = [];

before(async () => {
  upstream = await startRegistry();
  stops.push(() => upstream.stop());
  work = await makeTempDir('airlock-attached-e2e-');
  const seeder = new Seeder({ url: upstream.url });
  const image = await seeder.pushImage('team/app', '1', { layers: [await makeLayer('attached-e2e', 4096)], format: 'oci' });
  subject = image.digest;
  subjectDescriptor = image.descriptor;
  set = await seedAttached(seeder, 'team/app', image.descriptor, { fallback: true });
  manifest = path.join(work, 'm.yaml');
  await writeFile(manifest, `apiVersion: airlock/v1\nkind: Bundle\nmetadata:\n  name: attached-e2e\n  version: "1"\nspec:\n  images:\n    - ${upstream.host}/team/app:1\n`);
  assert.equal((await runAirlock(['keygen', '--out', path.join(work, 'k')])).code, 0);
});
after(async () => {
  for (const stop of stops.reverse()) await stop();
  await agent.close();
  await removeTempDir(work);
});

async function get(url: string, accept: string): Promise<{ status: number; body: Buffer; type?: string }> {
  const r = await request(url, { dispatcher: agent, headers: { accept } });
  const body = Buffer.from(await r.body.arrayBuffer());
  return { status: r.statusCode, body, type: r.headers['content-type'] as string | undefined };
}

const ACCEPT = [MediaTypes.ociManifest, MediaTypes.ociIndex, MediaTypes.dockerManifest].join(', ');

/** Every attached manifest is at the target byte for byte (tag scheme by tag, referrers by digest), with its blobs. */
async function assertLanded(target: TestRegistry, what: string): Promise<void> {
  const repo = `${target.url}/v2/team/app`;
  for (const a of [set.sig, set.att]) {
    const byTag = await get(`${repo}/manifests/${a.tag ?? ''}`, ACCEPT);
    assert.equal(byTag.status, 200, `${what}: ${a.tag ?? ''}`);
    assert.ok(byTag.body.equals(a.manifest), `${what}: ${a.tag ?? ''} is byte-identical`);
  }
  for (const a of [set.sbom, set.bundle, set.bundleNoType]) {
    const byDigest = await get(`${repo}/manifests/${a.digest}`, ACCEPT);
    assert.equal(byDigest.status, 200, `${what}: referrer ${a.digest}`);
    assert.ok(byDigest.body.equals(a.manifest), `${what}: referrer ${a.digest} is byte-identical`);
  }
  for (const a of [set.sig, set.att, set.sbom, set.bundle, set.bundleNoType]) {
    for (const b of a.blobs) {
      const blob = await get(`${repo}/blobs/${b.descriptor.digest}`, '*/*');
      assert.equal(blob.status, 200, `${what}: blob ${b.descriptor.digest}`);
      assert.equal(sha256(blob.body), b.descriptor.digest);
    }
  }
}

/** The target's fallback index for the image: every carried referrer once, with its artifactType; plus `foreign` entries. */
async function fallbackEntries(target: TestRegistry): Promise<Array<{ digest: string; artifactType?: string }>> {
  const r = await get(`${target.url}/v2/team/app/manifests/${tagFor(subject)}`, MediaTypes.ociIndex);
  assert.equal(r.status, 200, 'the fallback index sha256-<hex> is at the target');
  return (JSON.parse(r.body.toString('utf8')) as { manifests: Array<{ digest: string; artifactType?: string }> }).manifests;
}

const referrers = (): SeededAttached[] => [set.sbom, set.bundle, set.bundleNoType];

it('build carries every attached manifest; unpack lands them byte for byte with a fallback index, keeps a foreign entry, and a rerun writes nothing', async () => {
  const bundle = path.join(work, 'b.tar');
  const b = await runAirlock(['build', manifest, '-o', bundle, '--key', path.join(work, 'k.key'), '--cache', path.join(work, 'cache')]);
  assert.equal(b.code, 0, b.stderr);

  const target = await startRegistry();
  stops.push(() => target.stop());
  // Someone else's referrer, already listed in the target's fallback index for the same subject.
  const foreign = await pushSbomReferrer(new Seeder({ url: target.url }), 'team/app', subjectDescriptor, 99);
  const foreignIndex = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [referrerEntry(foreign)] }));
  await new Seeder({ url: target.url }).pushManifest('team/app', tagFor(subject), foreignIndex, MediaTypes.ociIndex);

  const proxy: TestFaultProxy = await startFaultProxy(target.url);
  stops.push(() => proxy.stop());
  await mkdir(path.join(work, 'files'));
  const args = ['unpack', bundle, '--pub', path.join(work, 'k.pub'), '--registry', proxy.host, '--files-dir', path.join(work, 'files')];
  const u = await runAirlock(args);
  assert.equal(u.code, 0, u.stderr);
  await assertLanded(target, 'unpack');

  const entries = await fallbackEntries(target);
  assert.equal(entries[0]?.digest, foreign.digest, "the foreign entry is kept, first, as it was");
  for (const r of referrers()) {
    const listed = entries.filter((e) => e.digest === r.digest);
    assert.equal(listed.length, 1, `referrer ${r.digest} listed once`);
    assert.equal(listed[0]?.artifactType, r.artifactType, `referrer ${r.digest} listed with its artifactType`);
  }
  assert.equal(entries.length, 1 + referrers().length, 'the tag-scheme manifests are not referrers and are not listed');

  proxy.stats.reset();
  const again = await runAirlock(args);
  assert.equal(again.code, 0, again.stderr);
  const writes = proxy.stats.requests.filter((r) => r.method !== 'GET' && r.method !== 'HEAD');
  assert.deepEqual(writes.map((r) => `${r.method} ${r.path}`), [], 'a second unpack writes nothing');
});

it('sync lands the same attached manifests and fallback index as build + unpack', async () => {
  const target = await startRegistry();
  stops.push(() => target.stop());
  await mkdir(path.join(work, 'sync-files'));
  const s = await runAirlock(['sync', manifest, '--registry', target.host, '--files-dir', path.join(work, 'sync-files'), '--cache', path.join(work, 'sync-cache')]);
  assert.equal(s.code, 0, s.stderr);
  await assertLanded(target, 'sync');
  const entries = await fallbackEntries(target);
  assert.deepEqual(entries.map((e) => e.digest).sort(), referrers().map((r) => r.digest).sort());
});
