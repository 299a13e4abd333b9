// unpack reads each byte of a bundle once: large blobs are streamed to the
// registry while they are hashed, the rest is verified meanwhile, and nothing
// is committed until all of it checked out. These check the part a user cares
// about: a bundle with one bad byte, wherever it is, leaves no blob in the
// registry's storage (not just no tag), and every upload session is cancelled.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { makeBlobBundle, type BlobBundle } from './support/blobbundle.js';
import { runAirlock } from './support/cli.js';
import { startFaultProxy } from './support/faultproxy.js';
import { makeTempDir, removeTempDir } from './support/proc.js';
import { startRegistry, type TestRegistry } from './support/registry.js';
import { flip, rewrite } from './support/tamper.js';

const MiB = 1024 * 1024;
let dir: string;
let b: BlobBundle;

before(async () => {
  dir = await makeTempDir('airlock-onepass-');
  // Two layers over the streaming threshold (1 MiB), one under it.
  b = await makeBlobBundle(dir, [
    { size: 3 * MiB, seed: 'one' },
    { size: 3 * MiB + 17, seed: 'two' },
    { size: 200_000, seed: 'three' },
  ]);
});

after(async () => {
  await removeTempDir(dir);
});

/** Every file under `root` (relative paths), or [] when it does not exist. */
async function filesUnder(root: string): Promise<string[]> {
  if (!existsSync(root)) return [];
  const out: string[] = [];
  for (const e of await readdir(root, { withFileTypes: true, recursive: true })) if (e.isFile()) out.push(path.relative(root, path.join(e.parentPath, e.name)));
  return out;
}

async function unpackThroughProxy(bundle: string, reg: TestRegistry) {
  const proxy = await startFaultProxy(reg.url);
  try {
    const files = await makeTempDir('airlock-onepass-files-');
    const r = await runAirlock(['unpack', bundle, '--pub', b.pub, '--registry', proxy.host, '--files-dir', files]);
    return { r, requests: [...proxy.stats.requests] };
  } finally {
    await proxy.stop();
  }
}

describe('unpack streams large blobs while it verifies, and commits nothing from a bad bundle', () => {
  it('a good bundle: the large layers go up in PATCH sessions, every blob lands, a rerun pushes nothing', async () => {
    const reg = await startRegistry();
    try {
      const { r, requests } = await unpackThroughProxy(b.bundle, reg);
      assert.equal(r.code, 0, r.stderr);
      const patches = requests.filter((q) => q.method === 'PATCH');
      assert.equal(patches.length, 2, `one PATCH per large layer: ${JSON.stringify(requests.map((q) => `${q.method} ${q.path}`))}`);
      const blobs = await filesUnder(path.join(reg.dataDir, 'docker', 'registry', 'v2', 'blobs'));
      for (const l of b.layers) assert.ok(blobs.some((f) => f.includes(l.digest.slice(7))), `layer ${l.digest} is in the registry's storage`);
      const uploads = (await filesUnder(path.join(reg.dataDir, 'docker', 'registry', 'v2', 'repositories'))).filter((f) => f.includes('_uploads'));
      assert.deepEqual(uploads, [], 'no upload session left open');
      const again = await unpackThroughProxy(b.bundle, reg);
      assert.equal(again.r.code, 0, again.r.stderr);
      assert.deepEqual(again.requests.filter((q) => !['GET', 'HEAD'].includes(q.method)), [], 'a rerun only looks');
    } finally {
      await reg.stop();
    }
  });

  for (const [label, which] of [
    ['the small layer after them (verified beside the streams)', 2],
    ['a large layer (verified by its own stream)', 1],
  ] as const) {
    it(`one byte flipped in ${label}: exit 1 naming the entry; no blob, no layer link, every session cancelled`, async () => {
      const bad = b.layers[which]!;
      const tampered = path.join(dir, `bad-${which}.tar`);
      await rewrite(b.bundle, tampered, (es) => es.map((e) => ({ name: e.name, data: e.name === `blobs/sha256/${bad.digest.slice(7)}` ? flip(e.data) : e.data })));
      const reg = await startRegistry();
      try {
        const { r, requests } = await unpackThroughProxy(tampered, reg);
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stderr, new RegExp(`entry "blobs/sha256/${bad.digest.slice(7)}" is corrupt`));
        assert.ok(requests.some((q) => q.method === 'PATCH'), 'the large layers were being streamed when the bad byte was found');
        assert.equal(requests.filter((q) => q.method === 'PUT').length, 0, 'no upload committed, no manifest or tag put');
        const v2 = path.join(reg.dataDir, 'docker', 'registry', 'v2');
        assert.deepEqual(await filesUnder(path.join(v2, 'blobs')), [], 'no blob in storage');
        // What is left of a cancelled session is the registry's own bookkeeping (hashstates, startedat; distribution#4524),
        // purged by its upload purging: no uploaded bytes, no layer link.
        const left = await filesUnder(path.join(v2, 'repositories'));
        const trace = JSON.stringify(requests.map((q) => `${q.method} ${q.path.split('?')[0]} ${q.status}`));
        assert.deepEqual(left.filter((f) => !/\/_uploads\/[^/]+\/(hashstates\/|startedat$)/.test(f)), [], `no layer link and no uploaded data left: ${trace}`);
        assert.equal(requests.filter((q) => q.method === 'DELETE').length, requests.filter((q) => q.method === 'POST').length, `every session opened was cancelled: ${trace}`);
      } finally {
        await reg.stop();
      }
    });
  }
});
