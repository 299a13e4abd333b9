// unpack pushes what is attached to the images (SPEC §9 "Pushed inside"):
// tag-scheme manifests by their tag, referrers by digest, the fallback index
// per subject when the target has no referrers API; a rerun writes nothing;
// others' fallback entries are kept; a bad bundle pushes nothing of it.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { runAirlock, type CliResult } from './support/cli.js';
import { startFaultProxy, type ProxiedRequest } from './support/faultproxy.js';
import { makeTempDir, removeTempDir } from './support/proc.js';
import { startRegistry, type TestRegistry } from './support/registry.js';
import { startReferrersFront } from './support/referrers-registry.js';
import { skopeoOk } from './support/skopeo.js';
import { entry, readTar } from './support/tarball.js';
import { flip, rewrite } from './support/tamper.js';
import { Seeder } from './support/seed.js';
import { pushFallbackIndex, pushSbomReferrer, referrerEntry } from './support/seed-attached.js';
import { makeAttachedBundle, OCI_INDEX, SIGSTORE_BUNDLE, SPDX, type AttachedBundle } from './support/attachedbundle.js';
import { loadBase } from '../src/delta/base.js';
import { cosignPayload, signatureManifest } from '../src/sign/countersign.js';
import { parseReceipt } from '../src/delta/receipt.js';
import type { BundleAttached } from '../src/bundle/format.js';

const REPO = 'team/app';
let work: string;
let b: AttachedBundle;
let n = 0;

before(async () => {
  work = await makeTempDir('airlock-unpack-attached-');
  b = await makeAttachedBundle(work, 'attached', { extras: true });
});
after(async () => {
  await removeTempDir(work);
});

interface Report {
  upToDate: boolean;
  attached?: { pushed: Record<string, number>; present: number; fallbackIndexes: { written: number; unchanged: number; notNeeded: number }; referrersFallback: string };
}

async function unpack(bundle: string, host: string, ...extra: string[]): Promise<CliResult & { report?: Report }> {
  const files = path.join(work, `files-${++n}`);
  await mkdir(files);
  const r = await runAirlock(['unpack', bundle, '--pub', b.pub, '--registry', host, '--files-dir', files, '--json', ...extra]);
  return { ...r, ...(r.code === 0 && { report: JSON.parse(r.stdout) as Report }) };
}

/** The bytes of a blob entry of a bundle. */
async function bundleBlob(bundle: string, digest: string): Promise<Buffer> {
  return entry(await readTar(bundle), `blobs/sha256/${digest.slice(7)}`).data;
}

async function get(url: string, ref: string, repo = REPO): Promise<{ status: number; bytes: Buffer }> {
  const res = await fetch(`${url}/v2/${repo}/manifests/${ref}`, { headers: { accept: ['application/vnd.oci.image.manifest.v1+json', OCI_INDEX].join(', ') } });
  return { status: res.status, bytes: Buffer.from(await res.arrayBuffer()) };
}

const fallbackOf = (digest: string) => `sha256-${digest.slice(7)}`;
const puts = (rs: readonly ProxiedRequest[] | ReadonlyArray<{ method: string; path: string }>) => rs.filter((q) => !['GET', 'HEAD'].includes(q.method)).map((q) => `${q.method} ${q.path.split('?')[0]}`);

describe('unpack into distribution 2.8 (no referrers API)', () => {
  let reg: TestRegistry;
  let proxy: Awaited<ReturnType<typeof startFaultProxy>>;
  before(async () => {
    reg = await startRegistry();
    proxy = await startFaultProxy(reg.url);
  });
  after(async () => {
    await proxy?.stop();
    await reg?.stop();
  });

  it('pushes every attached manifest byte for byte, tag-scheme ones by tag, referrers by digest, after their image; writes the fallback index per subject; the receipt lists them', async () => {
    const receipt = path.join(work, 'receipt.json');
    const r = await unpack(b.bundle, proxy.host, '--receipt', receipt);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.report?.attached, { pushed: { signature: 2, attestation: 1, sbom: 1, other: 0 }, present: 0, fallbackIndexes: { written: 2, unchanged: 0, notNeeded: 0 }, referrersFallback: 'auto' });

    for (const a of [b.sig, b.att!]) {
      const want = await bundleBlob(b.bundle, a.digest);
      assert.deepEqual((await get(reg.url, a.tag!)).bytes, want, `${a.tag} by tag`);
      assert.deepEqual(await skopeoOk(['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/${REPO}:${a.tag}`]), want, `skopeo reads ${a.tag}`);
    }
    for (const a of [b.referrer!, b.sbom!]) assert.deepEqual((await get(reg.url, a.digest)).bytes, await bundleBlob(b.bundle, a.digest), `referrer ${a.digest} by digest`);

    for (const [subject, list, type] of [[b.child, [b.referrer!], SIGSTORE_BUNDLE], [b.app, [b.sbom!], SPDX]] as const) {
      const f = await get(reg.url, fallbackOf(subject));
      assert.equal(f.status, 200, `fallback index of ${subject}`);
      const idx = JSON.parse(f.bytes.toString()) as { mediaType: string; manifests: Array<{ digest: string; artifactType?: string; size: number }> };
      assert.equal(idx.mediaType, OCI_INDEX);
      assert.deepEqual(idx.manifests.map((m) => [m.digest, m.artifactType]), list.map((a) => [a.digest, type]));
    }

    // Order: the image's tag before anything attached to it; each referrer before the fallback index listing it.
    const order = puts(proxy.stats.requests);
    const at = (p: string) => order.indexOf(`PUT /v2/${REPO}/manifests/${p}`);
    assert.ok(at('1') >= 0 && at('1') < at(b.sig.tag!) && at('1') < at(b.referrer!.digest), order.join('\n'));
    assert.ok(at(b.referrer!.digest) < at(fallbackOf(b.child)), order.join('\n'));

    const back = parseReceipt(await readFile(receipt));
    const attached = (x: BundleAttached[]) => x.map((a) => a.digest).sort();
    assert.deepEqual(back.attached?.map((a) => a.digest).sort(), attached([b.sig, b.att!, b.referrer!, b.sbom!]));
    assert.ok(back.attached?.every((a) => a.repository === REPO), JSON.stringify(back.attached));
    const sigLayer = (JSON.parse((await bundleBlob(b.bundle, b.sig.digest)).toString()) as { layers: Array<{ digest: string }> }).layers[0]!.digest;
    for (const d of [b.sig.digest, sigLayer, b.referrer!.digest]) assert.ok(back.blobs.some((x) => x.digest === d), `receipt blobs list ${d}`);
  });

  it('a rerun finds it all in place: no PUT of any manifest, tag or fallback index', async (t) => {
    proxy.stats.reset();
    const r = await unpack(b.bundle, proxy.host);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.report?.upToDate, true);
    assert.deepEqual(r.report?.attached?.fallbackIndexes, { written: 0, unchanged: 2, notNeeded: 0 });
    assert.deepEqual(puts(proxy.stats.requests), []);
    // What a rerun costs: one look per image, per attached manifest and per fallback index.
    const looks = proxy.stats.requests.map((q) => `${q.method} ${q.path.split('?')[0]}`);
    t.diagnostic(`rerun: ${looks.length} requests\n${looks.join('\n')}`);
    assert.equal(looks.filter((q) => q.includes('/manifests/')).length, 2 + 4 + 2, looks.join('\n'));
  });

  it('prints a summary line of what was attached', async () => {
    const files = path.join(work, `files-${++n}`);
    await mkdir(files);
    const r = await runAirlock(['unpack', b.bundle, '--pub', b.pub, '--registry', proxy.host, '--files-dir', files]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /attached manifests: 0 pushed, 4 already present; fallback index: 0 written, 2 up to date/);
  });
});

describe('the fallback index at the target', () => {
  it('keeps a foreign entry already there, lists it once, and a rerun writes nothing', async () => {
    const reg = await startRegistry();
    const proxy = await startFaultProxy(reg.url);
    try {
      const seeder = new Seeder({ url: reg.url });
      const childSize = b.index.blobs.find((x) => x.digest === b.child)!.size;
      const foreign = await pushSbomReferrer(seeder, REPO, { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: b.child, size: childSize }, 7);
      await pushFallbackIndex(seeder, REPO, b.child, [referrerEntry(foreign)]);
      const r = await unpack(b.bundle, proxy.host);
      assert.equal(r.code, 0, r.stderr);
      const idx = JSON.parse((await get(reg.url, fallbackOf(b.child))).bytes.toString()) as { manifests: Array<{ digest: string }> };
      assert.deepEqual(idx.manifests.map((m) => m.digest), [foreign.digest, b.referrer!.digest]);
      proxy.stats.reset();
      const again = await unpack(b.bundle, proxy.host);
      assert.equal(again.code, 0, again.stderr);
      assert.deepEqual(puts(proxy.stats.requests), []);
      await seeder.close();
    } finally {
      await proxy.stop();
      await reg.stop();
    }
  });

  it('a fallback tag holding something other than a referrers index: exit 1 naming it before anything is pushed', async () => {
    const reg = await startRegistry();
    const proxy = await startFaultProxy(reg.url);
    try {
      const seeder = new Seeder({ url: reg.url });
      const config = await seeder.pushBlob(REPO, Buffer.from('{}'), 'application/vnd.oci.empty.v1+json');
      await seeder.pushManifest(REPO, fallbackOf(b.child), Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config, layers: [] })), 'application/vnd.oci.image.manifest.v1+json');
      await seeder.close();
      proxy.stats.reset();
      const r = await unpack(b.bundle, proxy.host);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`${proxy.host}/${REPO}:${fallbackOf(b.child)} has media type .*--referrers-fallback never; nothing was pushed`));
      assert.deepEqual(puts(proxy.stats.requests), []);
      // With never, the tag is left alone and the rest goes in.
      const never = await unpack(b.bundle, proxy.host, '--referrers-fallback', 'never');
      assert.equal(never.code, 0, never.stderr);
    } finally {
      await proxy.stop();
      await reg.stop();
    }
  });

  it('--referrers-fallback never on 2.8 writes no fallback tag (the referrers are still pushed); a later auto run writes only those', async () => {
    const reg = await startRegistry();
    try {
      const r = await unpack(b.bundle, reg.host, '--referrers-fallback', 'never');
      assert.equal(r.code, 0, r.stderr);
      assert.equal((await get(reg.url, b.referrer!.digest)).status, 200);
      for (const s of [b.app, b.child]) assert.equal((await get(reg.url, fallbackOf(s))).status, 404);
      // Run again with auto: the quick look sees the fallback indexes missing; they are written, nothing else is.
      const proxy = await startFaultProxy(reg.url);
      try {
        const again = await unpack(b.bundle, proxy.host);
        assert.equal(again.code, 0, again.stderr);
        assert.deepEqual(again.report?.attached?.pushed, { signature: 0, attestation: 0, sbom: 0, other: 0 });
        assert.deepEqual(puts(proxy.stats.requests).sort(), [b.app, b.child].map((s) => `PUT /v2/${REPO}/manifests/${fallbackOf(s)}`).sort());
      } finally {
        await proxy.stop();
      }
    } finally {
      await reg.stop();
    }
  });

  it('with a prefix and --layout host, what is attached goes to the repository of its image there', async () => {
    const reg = await startRegistry();
    try {
      const r = await unpack(b.bundle, `${reg.host}/mirror`, '--layout', 'host');
      assert.equal(r.code, 0, r.stderr);
      const repo = 'mirror/example.com/team/app';
      assert.equal((await get(reg.url, '1', repo)).status, 200);
      assert.deepEqual((await get(reg.url, b.sig.tag!, repo)).bytes, await bundleBlob(b.bundle, b.sig.digest));
      assert.equal((await get(reg.url, b.referrer!.digest, repo)).status, 200);
      assert.equal((await get(reg.url, fallbackOf(b.child), repo)).status, 200);
      assert.equal((await get(reg.url, b.sig.tag!)).status, 404, 'nothing in the flat place');
    } finally {
      await reg.stop();
    }
  });

  it('--referrers-fallback anything else is a usage error, for unpack and sync', async () => {
    const r = await runAirlock(['unpack', b.bundle, '--pub', b.pub, '--registry', '127.0.0.1:9', '--files-dir', work, '--referrers-fallback', 'sometimes']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /--referrers-fallback sometimes: write auto, always or never/);
    // sync takes the same target flags, checked before anything is read.
    const s = await runAirlock(['sync', path.join(work, 'none.yaml'), '--registry', '127.0.0.1:9', '--files-dir', work, '--referrers-fallback', 'sometimes']);
    assert.equal(s.code, 2, s.stderr);
    assert.match(s.stderr, /--referrers-fallback sometimes: write auto, always or never/);
  });
});

describe('a .sig already at the target', () => {
  it("keeps the signatures made there (cosign inside, a countersignature) and appends the carried ones, as cosign does; a rerun writes nothing", async () => {
    const reg = await startRegistry();
    const proxy = await startFaultProxy(reg.url);
    try {
      // Someone signed the app at the target before this bundle came: a cosign .sig with one layer, not the publisher's.
      const theirs = signatureManifest(undefined, { payload: cosignPayload(`${reg.host}/${REPO}`, b.app), signature: 'dGhlaXIgc2lnbmF0dXJl' });
      const seeder = new Seeder({ url: reg.url });
      await seeder.pushBlob(REPO, cosignPayload(`${reg.host}/${REPO}`, b.app), 'application/vnd.dev.cosign.simplesigning.v1+json');
      await seeder.pushBlob(REPO, theirs.config, 'application/vnd.oci.image.config.v1+json');
      await seeder.pushManifest(REPO, b.sig.tag!, theirs.manifest, theirs.mediaType);
      await seeder.close();
      const theirLayers = (JSON.parse(theirs.manifest.toString()) as { layers: unknown[] }).layers;
      const carried = JSON.parse((await bundleBlob(b.bundle, b.sig.digest)).toString()) as { layers: Array<{ digest: string }> };

      const r = await unpack(b.bundle, proxy.host);
      assert.equal(r.code, 0, r.stderr);
      const now = await get(reg.url, b.sig.tag!);
      assert.equal(now.status, 200);
      const m = JSON.parse(now.bytes.toString()) as { layers: unknown[]; config: { digest: string } };
      // Theirs first, byte for byte as JSON, then the carried layer(s) as the bundle has them.
      assert.deepEqual(m.layers, [...theirLayers, ...carried.layers]);
      const config = await fetch(`${reg.url}/v2/${REPO}/blobs/${m.config.digest}`);
      assert.equal(config.status, 200);
      const cfg = (await config.json()) as { rootfs: { diff_ids: string[] }; history: unknown[] };
      assert.deepEqual(cfg.rootfs.diff_ids, [...theirLayers.map((l) => (l as { digest: string }).digest), ...carried.layers.map((l) => l.digest)]);
      assert.equal(cfg.history.length, theirLayers.length + carried.layers.length);
      // The other attached manifests went in as usual; the carried signature's blobs are in the repository.
      assert.equal((await get(reg.url, b.referrer!.digest)).status, 200);
      for (const l of carried.layers) assert.equal((await fetch(`${reg.url}/v2/${REPO}/blobs/${l.digest}`, { method: 'HEAD' })).status, 200);

      proxy.stats.reset();
      const again = await unpack(b.bundle, proxy.host);
      assert.equal(again.code, 0, again.stderr);
      assert.deepEqual(puts(proxy.stats.requests), []);
      assert.ok((await get(reg.url, b.sig.tag!)).bytes.equals(now.bytes), 'the merged .sig unchanged');
    } finally {
      await proxy.stop();
      await reg.stop();
    }
  });

  it('something other than a cosign signature manifest at the .sig tag: exit 1 naming it before anything is pushed, and it is left as it was', async () => {
    const reg = await startRegistry();
    const proxy = await startFaultProxy(reg.url);
    try {
      const seeder = new Seeder({ url: reg.url });
      const config = await seeder.pushBlob(REPO, Buffer.from('{}'), 'application/vnd.oci.empty.v1+json');
      const foreign = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config, layers: [] }));
      await seeder.pushManifest(REPO, b.sig.tag!, foreign, 'application/vnd.oci.image.manifest.v1+json');
      await seeder.close();
      proxy.stats.reset();
      const r = await unpack(b.bundle, proxy.host);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`${proxy.host}/${REPO}:${b.sig.tag!.replace('.', '\\.')}: has a config of type application/vnd\\.oci\\.empty\\.v1\\+json, not an image config; this unpack would add the carried signatures of ${b.app} there, and cannot without overwriting it: remove or retag it; nothing was pushed`));
      assert.deepEqual(puts(proxy.stats.requests), []);
      assert.ok((await get(reg.url, b.sig.tag!)).bytes.equals(foreign), 'left as it was');
    } finally {
      await proxy.stop();
      await reg.stop();
    }
  });
});

describe('unpack into a registry with the referrers API', () => {
  it('auto: the referrers pushed, listed by the API, no fallback tag written; always: written', async () => {
    const reg = await startRegistry();
    const front = await startReferrersFront(reg.url);
    try {
      const r = await unpack(b.bundle, front.host);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(r.report?.attached?.fallbackIndexes, { written: 0, unchanged: 0, notNeeded: 2 });
      assert.deepEqual(puts(front.requests).filter((p) => /manifests\/sha256-[a-f0-9]{64}$/.test(p)), []);
      const listed = await fetch(`${front.url}/v2/${REPO}/referrers/${b.child}`);
      assert.deepEqual(((await listed.json()) as { manifests: Array<{ digest: string }> }).manifests.map((m) => m.digest), [b.referrer!.digest]);
      for (const s of [b.app, b.child]) assert.equal((await get(reg.url, fallbackOf(s))).status, 404);

      const always = await unpack(b.bundle, front.host, '--referrers-fallback', 'always');
      assert.equal(always.code, 0, always.stderr);
      assert.deepEqual(always.report?.attached?.fallbackIndexes, { written: 2, unchanged: 0, notNeeded: 0 });
      for (const [s, a] of [[b.app, b.sbom!], [b.child, b.referrer!]] as const) {
        const idx = JSON.parse((await get(reg.url, fallbackOf(s))).bytes.toString()) as { manifests: Array<{ digest: string }> };
        assert.deepEqual(idx.manifests.map((m) => m.digest), [a.digest]);
      }
    } finally {
      await front.stop();
      await reg.stop();
    }
  });
});

describe('a bad bundle pushes nothing attached', () => {
  it('one byte flipped in an attached blob: exit 1 naming the entry, nothing pushed', async () => {
    const sigLayer = (JSON.parse((await bundleBlob(b.bundle, b.sig.digest)).toString()) as { layers: Array<{ digest: string }> }).layers[0]!.digest;
    const bad = path.join(work, 'bad-sig.tar');
    await rewrite(b.bundle, bad, (es) => es.map((e) => ({ name: e.name, data: e.name === `blobs/sha256/${sigLayer.slice(7)}` ? flip(e.data) : e.data })));
    const reg = await startRegistry();
    const proxy = await startFaultProxy(reg.url);
    try {
      const r = await unpack(bad, proxy.host);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`blobs/sha256/${sigLayer.slice(7)}`));
      assert.deepEqual(puts(proxy.stats.requests).filter((p) => p.startsWith('PUT')), []);
      assert.equal((await get(reg.url, b.sig.tag!)).status, 404);
    } finally {
      await proxy.stop();
      await reg.stop();
    }
  });

  it('a delta whose external attached blob is not at the target: exit 1 naming it, nothing pushed', async () => {
    const base = await loadBase(b.bundle);
    // A new app version: its child changes, so does the referrer on it, but the referrer's config and Sigstore layer are the base's.
    const delta = await makeAttachedBundle(work, 'delta', { bases: [base], version: '2', appSeed: 'v2' });
    const refManifest = JSON.parse((await bundleBlob(delta.bundle, delta.referrer!.digest)).toString()) as { layers: Array<{ digest: string }> };
    const layer = refManifest.layers[0]!.digest;
    assert.ok(delta.index.blobs.find((x) => x.digest === layer)?.external, 'the referrer layer is left to the base');
    const reg = await startRegistry();
    const proxy = await startFaultProxy(reg.url);
    try {
      const r = await unpack(delta.bundle, proxy.host);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`blob ${layer} of the signature referrer ${delta.referrer!.digest} \\(attached to example.com/team/app:1\\)`));
      assert.deepEqual(puts(proxy.stats.requests).filter((p) => p.startsWith('PUT')), []);
    } finally {
      await proxy.stop();
      await reg.stop();
    }
  });
});
