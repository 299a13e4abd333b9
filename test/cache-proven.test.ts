// The content store hashes what it downloads; a cold build then copies that
// file into the bundle without hashing it again, but only while it is the very
// file this process verified. These check that rule on a real store, and that
// a build still refuses a cache entry changed behind its back.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, rename, stat, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { ContentStore } from '../src/cache/store.js';
import { runAirlock } from './support/cli.js';
import { makeTempDir, removeTempDir } from './support/proc.js';
import { startUpstream } from './support/upstream.js';

const bytes = Buffer.from('a layer, more or less '.repeat(5000));
const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
const source = { open: async () => ({ body: Readable.from([bytes.subarray(0, 40000), bytes.subarray(40000)]), offset: 0, size: bytes.length }) };

test('content this process verified into the store is proven while unchanged; a change or another process is not', async () => {
  const dir = await makeTempDir('airlock-proven-');
  try {
    const store = new ContentStore(dir);
    await store.init();
    const got = await store.ingest({ what: 'test blob', expected: digest, size: bytes.length, source });
    assert.equal(got.digest, digest);
    const fh = await store.open(digest);
    try {
      assert.equal(await store.provenByThisRun(digest, fh), true, 'just verified and renamed into place');
    } finally {
      await fh.close();
    }

    const later = new ContentStore(dir);
    await later.init();
    const fh2 = await later.open(digest);
    try {
      assert.equal(await later.provenByThisRun(digest, fh2), false, 'a store that did not hash it (a later run) must hash it again');
    } finally {
      await fh2.close();
    }

    // Same size, other bytes, written in place (its mtime moved on explicitly: file
    // times are coarser than a fast test), then replaced by another file.
    const file = store.pathOf(digest);
    await writeFile(file, Buffer.alloc(bytes.length, 0x41));
    const { mtime } = await stat(file);
    await utimes(file, mtime, new Date(mtime.getTime() + 1000));
    const fh3 = await store.open(digest);
    try {
      assert.equal(await store.provenByThisRun(digest, fh3), false, 'rewritten in place after it was verified');
    } finally {
      await fh3.close();
    }
    await writeFile(`${file}.other`, bytes);
    await rename(`${file}.other`, file);
    const fh4 = await store.open(digest);
    try {
      assert.equal(await store.provenByThisRun(digest, fh4), false, 'replaced by another file, even with the right bytes');
    } finally {
      await fh4.close();
    }
  } finally {
    await removeTempDir(dir);
  }
});

test('a build refuses a cache entry changed behind its back, removes it, and the next build fetches it anew', async () => {
  const up = await startUpstream();
  const dir = await makeTempDir('airlock-proven-build-');
  try {
    const k = await runAirlock(['keygen', '--out', path.join(dir, 'k')]);
    assert.equal(k.code, 0, k.stderr);
    const manifest = path.join(dir, 'airlock.yaml');
    await writeFile(manifest, up.manifest());
    const cache = path.join(dir, 'cache');
    const buildTo = (out: string) => runAirlock(['build', manifest, '-o', path.join(dir, out), '--key', path.join(dir, 'k.key'), '--cache', cache]);
    const first = await buildTo('one.tar');
    assert.equal(first.code, 0, first.stderr);

    // The largest cached blob, its bytes flipped in place (same size): a later run never proved it.
    const blobs = path.join(cache, 'blobs', 'sha256');
    const sizes = await Promise.all((await readdir(blobs)).map(async (n) => ({ n, size: (await stat(path.join(blobs, n))).size })));
    const victim = sizes.sort((a, b) => b.size - a.size)[0]!;
    const bytes = await readFile(path.join(blobs, victim.n));
    bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
    await writeFile(path.join(blobs, victim.n), bytes);

    const second = await buildTo('two.tar');
    assert.equal(second.code, 1, second.stderr);
    assert.match(second.stderr, new RegExp(`cache entry sha256:${victim.n}.*removed; run the build again`));
    assert.equal(existsSync(path.join(dir, 'two.tar')), false, 'no bundle from a bad cache');
    assert.equal(existsSync(path.join(blobs, victim.n)), false, 'the bad entry is gone');

    const third = await buildTo('three.tar');
    assert.equal(third.code, 0, third.stderr);
    const v = await runAirlock(['verify', path.join(dir, 'three.tar'), '--pub', path.join(dir, 'k.pub')]);
    assert.equal(v.code, 0, v.stderr);
  } finally {
    await up.stop();
    await removeTempDir(dir);
  }
});
