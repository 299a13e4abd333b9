// A split bundle whose large blobs (over unpack's 1 MiB streaming threshold)
// run across part boundaries, in the shape of issue 19: 4 images, a 6 MiB base
// layer shared by three, one 12 MiB layer, 8 MiB parts. unpack streams those
// blobs to the registry while the pass checks each part against
// BUNDLE.sha256; serve reads them in ranges; sync streams the same blobs from
// its cache. Every one of them must see the right bytes, and a damaged part in
// the middle of a streamed blob must still be refused by name.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Agent, request } from 'undici';
import { BundleReader, type LocatedEntry } from '../src/bundle/reader.js';
import { loadPublicKey } from '../src/sign/keys.js';
import { runAirlock } from './support/cli.js';
import { startFaultProxy } from './support/faultproxy.js';
import { makeTempDir, removeTempDir } from './support/proc.js';
import { startRegistry, type TestRegistry } from './support/registry.js';
import { makeLayer, Seeder, sha256, type PushedImage } from './support/seed.js';
import { startServe } from './support/serve.js';
import { skopeoOk } from './support/skopeo.js';
import { flip } from './support/tamper.js';
import { runOk } from './support/tools.js';

const MiB = 1024 * 1024;
/** unpack's threshold: larger blobs are streamed in upload sessions. */
const STREAMED = 1 * MiB;
const env = { ...process.env, SOURCE_DATE_EPOCH: '1700000000' };

let upstream: TestRegistry;
let seeder: Seeder;
let work: string;
let manifest: string;
let pub: string;
/** BUNDLE of the split build: its parts are parts/b.tar.001, … */
let split: string;
let partNames: string[];
let partSize: number;
const images: Record<string, PushedImage> = {};
/** Every layer by digest. */
const layers = new Map<string, Buffer>();
/** The streamed blobs' entries in the bundle, with where their data starts. */
let streamed: LocatedEntry[];

before(async () => {
  upstream = await startRegistry();
  seeder = new Seeder({ url: upstream.url });
  work = await makeTempDir('airlock-volumes-stream-');
  const base = await makeLayer('split-base', 6 * MiB);
  const big = await makeLayer('split-big', 12 * MiB);
  // The three that share the base each have a layer of their own over the threshold too (5 parts, as reported).
  for (const name of ['one', 'two', 'three']) {
    const own = await makeLayer(`split-${name}`, 5 * MiB);
    images[name] = await seeder.pushImage(`split/${name}`, '1', { layers: [base, own], format: 'oci' });
    layers.set(sha256(own), own);
  }
  images.four = await seeder.pushImage('split/four', '1', { layers: [big], format: 'oci' });
  layers.set(sha256(base), base);
  layers.set(sha256(big), big);
  manifest = path.join(work, 'm.yaml');
  await writeFile(manifest, `apiVersion: airlock/v1\nkind: Bundle\nmetadata:\n  name: split-stream\n  version: "1"\nspec:\n  images:\n${Object.keys(images).map((n) => `    - ${upstream.host}/split/${n}:1\n`).join('')}`);
  assert.equal((await runAirlock(['keygen', '--out', path.join(work, 'k')])).code, 0);
  pub = path.join(work, 'k.pub');
  const common = [manifest, '--key', path.join(work, 'k.key'), '--cache', path.join(work, 'cache')];
  await mkdir(path.join(work, 'parts'));
  split = path.join(work, 'parts', 'b.tar');
  const s = await runAirlock(['build', ...common, '-o', split, '--split-size', '8M'], undefined, { env });
  assert.equal(s.code, 0, s.stderr);
  partNames = (await readdir(path.join(work, 'parts'))).filter((n) => /^b\.tar\.\d+$/.test(n)).sort();
  partSize = (await stat(`${split}.001`)).size;
  const r = await BundleReader.open(split);
  try {
    await r.scan();
    streamed = r.plan().filter((e) => e.kind === 'blob' && e.size > STREAMED).map((e) => r.entry(e.name));
  } finally {
    await r.close();
  }
});

after(async () => {
  await seeder?.close();
  await upstream?.stop();
  if (work) await removeTempDir(work);
});

/** The part boundaries (offsets in the whole bundle) inside an entry's data. */
const boundariesIn = (e: LocatedEntry): number[] => {
  const out: number[] = [];
  for (let b = Math.ceil((e.dataOffset + 1) / partSize) * partSize; b < e.dataOffset + e.size; b += partSize) out.push(b);
  return out;
};
const digestOf = (e: LocatedEntry) => `sha256:${e.name.slice('blobs/sha256/'.length)}`;
const partOf = (offset: number) => partNames[Math.floor(offset / partSize)] ?? '';

/** Every file under `root` (relative paths), or [] when it does not exist. */
async function filesUnder(root: string): Promise<string[]> {
  if (!existsSync(root)) return [];
  const out: string[] = [];
  for (const e of await readdir(root, { withFileTypes: true, recursive: true })) if (e.isFile()) out.push(path.relative(root, path.join(e.parentPath, e.name)));
  return out;
}

/** What skopeo, an independent client, sees at `host`: every image's digest, and every layer fetched whole and hashed. */
async function checkTarget(host: string): Promise<void> {
  for (const [name, img] of Object.entries(images)) {
    const ref = `docker://${host}/split/${name}:1`;
    const digest = (await skopeoOk(['inspect', '--tls-verify=false', '--format', '{{.Digest}}', ref])).toString('utf8').trim();
    assert.equal(digest, img.digest, name);
  }
  const agent = new Agent();
  try {
    for (const [name, img] of Object.entries(images)) {
      for (const l of img.layerDescriptors) {
        const res = await request(`http://${host}/v2/split/${name}/blobs/${l.digest}`, { dispatcher: agent });
        const body = Buffer.from(await res.body.arrayBuffer());
        assert.equal(res.statusCode, 200, `${name} ${l.digest}`);
        assert.equal(sha256(body), l.digest, `${name}: the registry holds the right bytes of ${l.digest}`);
      }
    }
  } finally {
    await agent.close();
  }
}

describe('a split bundle whose streamed blobs cross part boundaries', () => {
  it('is the shape of the report: 5 parts that sha256sum -c and verify pass, large blobs across part boundaries', async () => {
    assert.equal(partNames.length, 5, partNames.join(', '));
    assert.equal(partSize, 8 * MiB);
    await runOk('sha256sum', ['-c', 'b.tar.sha256'], { cwd: path.join(work, 'parts') });
    const v = await runAirlock(['verify', split, '--pub', pub]);
    assert.equal(v.code, 0, v.stderr);
    assert.equal(streamed.length, 5, 'the base, three layers of their own, the big layer');
    const across = streamed.filter((e) => boundariesIn(e).length > 0);
    assert.ok(across.length >= 3, `${across.length} streamed blobs cross a part boundary`);
    assert.ok(across.some((e) => e.size > 12 * MiB && boundariesIn(e).length >= 1));
  });

  it('unpack streams them to a real registry, which holds every image with its upstream digest and the right layer bytes', async () => {
    const target = await startRegistry();
    const proxy = await startFaultProxy(target.url);
    try {
      const files = await makeTempDir('airlock-volumes-stream-files-');
      const r = await runAirlock(['unpack', split, '--pub', pub, '--registry', proxy.host, '--files-dir', files]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /reading part 5 of 5: b\.tar\.005/);
      // Each streamed blob went up in an upload session (PATCH), not in one PUT after a pass of its own.
      const patched = new Set(proxy.stats.requests.filter((q) => q.method === 'PATCH').map((q) => /^\/v2\/(.+)\/blobs\/uploads\//.exec(q.path)?.[1]));
      assert.ok(patched.size >= 4, `large blobs streamed into ${[...patched].join(', ')}`);
      await checkTarget(target.host);
    } finally {
      await proxy.stop();
      await target.stop();
    }
  });

  it('a byte damaged in the middle of a streamed blob, inside a part: unpack exits 1 naming that part, and nothing is committed', async () => {
    const dir = await makeTempDir('airlock-volumes-stream-bad-');
    for (const n of [...partNames, 'b.tar.sha256']) await copyFile(path.join(work, 'parts', n), path.join(dir, n));
    // The big layer: its middle byte, in a part it shares with no end of it.
    const e = streamed.reduce((a, b) => (b.size > a.size ? b : a));
    const at = e.dataOffset + Math.floor(e.size / 2);
    const part = partOf(at);
    const p = path.join(dir, part);
    await writeFile(p, flip(await readFile(p), at % partSize));
    const target = await startRegistry();
    const proxy = await startFaultProxy(target.url);
    try {
      const files = await makeTempDir('airlock-volumes-stream-files-');
      const r = await runAirlock(['unpack', path.join(dir, 'b.tar'), '--pub', pub, '--registry', proxy.host, '--files-dir', files]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`part ${part.replaceAll('.', '\\.')} does not match b\\.tar\\.sha256 \\(its sha256 is [a-f0-9]{64}\\): it is damaged`));
      assert.ok(proxy.stats.requests.some((q) => q.method === 'PATCH'), 'the blob was being streamed when the damage was found');
      assert.deepEqual(proxy.stats.requests.filter((q) => q.method === 'PUT'), [], 'no upload committed, no manifest put');
      const v2 = path.join(target.dataDir, 'docker', 'registry', 'v2');
      assert.deepEqual(await filesUnder(path.join(v2, 'blobs')), [], 'no blob in storage');
      assert.deepEqual((await filesUnder(path.join(v2, 'repositories'))).filter((f) => !/\/_uploads\/[^/]+\/(hashstates\/|startedat$)/.test(f)), [], 'no layer link, no uploaded data');
      assert.deepEqual(await readdir(files), [], 'nothing written');
    } finally {
      await proxy.stop();
      await target.stop();
      await removeTempDir(dir);
    }
  });

  it('serve serves every streamed blob byte for byte, and a Range across a part boundary', async () => {
    const served = await startServe(split, pub);
    const agent = new Agent();
    try {
      for (const e of streamed) {
        const digest = digestOf(e);
        const repo = Object.entries(images).find(([, img]) => img.layerDescriptors.some((l) => l.digest === digest))?.[0] ?? '';
        const res = await request(`${served.registry}/v2/split/${repo}/blobs/${digest}`, { dispatcher: agent });
        const body = Buffer.from(await res.body.arrayBuffer());
        assert.equal(res.statusCode, 200, digest);
        assert.ok(body.equals(layers.get(digest) ?? Buffer.alloc(0)), `${digest} served whole`);
        for (const b of boundariesIn(e)) {
          // 1000 bytes either side of where one part ends and the next begins.
          const from = b - e.dataOffset - 1000;
          const ranged = await request(`${served.registry}/v2/split/${repo}/blobs/${digest}`, { dispatcher: agent, headers: { range: `bytes=${from}-${from + 1999}` } });
          const got = Buffer.from(await ranged.body.arrayBuffer());
          assert.equal(ranged.statusCode, 206);
          assert.equal(ranged.headers['content-range'], `bytes ${from}-${from + 1999}/${e.size}`);
          assert.ok(got.equals(layers.get(digest)?.subarray(from, from + 2000) ?? Buffer.alloc(0)), `${digest}: bytes ${from}-${from + 1999} across the end of ${partOf(b - 1)}`);
        }
      }
    } finally {
      await agent.close();
      await served.stop();
    }
  });

  it('sync streams the same large blobs from its cache into a real registry', async () => {
    const target = await startRegistry();
    const proxy = await startFaultProxy(target.url);
    try {
      const files = await makeTempDir('airlock-volumes-stream-files-');
      const r = await runAirlock(['sync', manifest, '--registry', proxy.host, '--files-dir', files, '--cache', path.join(work, 'sync-cache'), '--json']);
      assert.equal(r.code, 0, r.stderr);
      const report = JSON.parse(r.stdout) as { blobsPushed: number; fetched: { blobs: number } };
      assert.ok(report.fetched.blobs >= streamed.length, 'fetched into a cache of its own');
      const patched = new Set(proxy.stats.requests.filter((q) => q.method === 'PATCH').map((q) => /^\/v2\/(.+)\/blobs\/uploads\//.exec(q.path)?.[1]));
      assert.ok(patched.size >= 4, `large blobs streamed into ${[...patched].join(', ')}`);
      await checkTarget(target.host);
    } finally {
      await proxy.stop();
      await target.stop();
    }
  });
});

describe('reading the parts from many places at once while the pass checks them', () => {
  /** Each streamed blob read whole through range() while verify() runs its pass; returns the pass's outcome and each blob's sha256. */
  async function readWhileVerifying(bundle: string): Promise<{ verified: PromiseSettledResult<void>; digests: string[] }> {
    const r = await BundleReader.open(bundle, { pub: await loadPublicKey(pub) });
    try {
      await r.scan();
      const hashOf = async (e: LocatedEntry) => {
        const h = createHash('sha256');
        for await (const c of r.range(e.name, 0, e.size)) h.update(c);
        return `sha256:${h.digest('hex')}`;
      };
      const [verified, ...digests] = await Promise.allSettled([r.verify(), ...streamed.map(hashOf)]);
      return { verified: verified as PromiseSettledResult<void>, digests: digests.map((d) => (d.status === 'fulfilled' ? (d.value as string) : String(d.reason))) };
    } finally {
      await r.close();
    }
  }

  it('the pass checks every part and the other readers get their bytes, whatever they read meanwhile', async () => {
    const { verified, digests } = await readWhileVerifying(split);
    assert.equal(verified.status, 'fulfilled', verified.status === 'rejected' ? String(verified.reason) : '');
    assert.deepEqual(digests, streamed.map(digestOf));
  });

  it('a damaged part is still named by the pass', async () => {
    const dir = await makeTempDir('airlock-volumes-stream-bad-');
    try {
      for (const n of [...partNames, 'b.tar.sha256']) await copyFile(path.join(work, 'parts', n), path.join(dir, n));
      const e = streamed.find((x) => boundariesIn(x).length > 0) as LocatedEntry;
      const at = e.dataOffset + e.size - 10;
      const p = path.join(dir, partOf(at));
      await writeFile(p, flip(await readFile(p), at % partSize));
      const { verified } = await readWhileVerifying(path.join(dir, 'b.tar'));
      assert.equal(verified.status, 'rejected');
      assert.match(String((verified as PromiseRejectedResult).reason), new RegExp(`part ${partOf(at).replaceAll('.', '\\.')} does not match b\\.tar\\.sha256`));
    } finally {
      await removeTempDir(dir);
    }
  });
});
