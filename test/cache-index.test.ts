// The content cache's lookup tables (index/sha512, index/url, index/derived)
// as someone who can write the cache would plant them: each entry pointing at
// other bytes (or other dates) than the file it names. A build must not sign
// those bytes: it fetches the file anew and the bundle holds upstream's bytes.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmod, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, it } from 'node:test';
import type { BundleIndex } from '../src/bundle/format.js';
import { runAirlock } from './support/cli.js';
import { makeTempDir } from './support/proc.js';
import { entry, readTar } from './support/tarball.js';
import { startUpstream, type SeededFile, type Upstream } from './support/upstream.js';

let up: Upstream;
let dir: string;
let cache: string;
let first: BundleIndex;

const hex = (alg: 'sha256' | 'sha512', b: Buffer) => createHash(alg).update(b).digest('hex');
const other = Buffer.from('other bytes, planted in the cache\n'.repeat(100));

before(async () => {
  up = await startUpstream();
  dir = await makeTempDir('airlock-cache-index-');
  assert.equal((await runAirlock(['keygen', '--out', path.join(dir, 'k')])).code, 0);
  await writeFile(path.join(dir, 'm.yaml'), up.manifest());
  cache = path.join(dir, 'cache');
  first = await build('first.tar');
  // The planted bytes are a good blob of their own: only the table points at them wrongly.
  await writeFile(path.join(cache, 'blobs', 'sha256', hex('sha256', other)), other);
});
after(async () => up?.stop());

async function build(out: string): Promise<BundleIndex> {
  const b = await runAirlock(['build', path.join(dir, 'm.yaml'), '-o', path.join(dir, out), '--key', path.join(dir, 'k.key'), '--cache', cache]);
  assert.equal(b.code, 0, b.stderr);
  const v = await runAirlock(['verify', path.join(dir, out), '--pub', path.join(dir, 'k.pub')]);
  assert.equal(v.code, 0, v.stderr);
  return JSON.parse(entry(await readTar(path.join(dir, out)), 'bundle.json').data.toString('utf8')) as BundleIndex;
}

/** The file's bytes in the bundle and its record in bundle.json are upstream's. */
async function holdsUpstreams(out: string, index: BundleIndex, f: SeededFile): Promise<void> {
  const inTar = entry(await readTar(path.join(dir, out)), `files/${f.landing}`).data;
  assert.ok(inTar.equals(f.bytes), `${f.landing}: the bundle holds upstream's bytes, not the planted ones`);
  assert.equal(index.files.find((x) => x.path === f.landing)?.sha256, f.sha256);
}

it('an index/sha512 entry pointing at other bytes is not believed: the file is fetched anew', async () => {
  const key = path.join(cache, 'index', 'sha512', hex('sha512', up.opensearch.bytes));
  assert.ok(JSON.parse(await readFile(key, 'utf8')), 'the first build recorded the entry');
  await writeFile(key, JSON.stringify({ digest: `sha256:${hex('sha256', other)}`, size: other.length }));
  const index = await build('sha512.tar');
  await holdsUpstreams('sha512.tar', index, up.opensearch);
  assert.deepEqual(JSON.parse(await readFile(key, 'utf8')), { digest: `sha256:${up.opensearch.sha256}`, size: up.opensearch.bytes.length }, 'recorded anew');
});

it('an index/url entry (a file pinned at build) pointing at a damaged file: the file is fetched anew, the build does not fail', async () => {
  const key = path.join(cache, 'index', 'url', await onlyEntry('url', up.driver));
  // Named like content it does not hold: the name is checked, not believed.
  const fake = hex('sha256', Buffer.from('what the name says'));
  await writeFile(path.join(cache, 'blobs', 'sha256', fake), Buffer.alloc(other.length, 0x41));
  await writeFile(key, JSON.stringify({ digest: `sha256:${fake}`, size: other.length }));
  const index = await build('url-damaged.tar');
  await holdsUpstreams('url-damaged.tar', index, up.driver);
});

it('where others can write the tables, an index/url entry and a derived Trivy DB entry are not believed', async () => {
  const url = path.join(cache, 'index', 'url', await onlyEntry('url', up.driver));
  const derived = path.join(cache, 'index', 'derived');
  const dbs = (await readdir(derived)).filter((n) => n.startsWith('trivydb-'));
  assert.ok(dbs.length > 0, 'the first build kept the Trivy DB dates');
  const dates = first.images.filter((i) => i.trivyDb).map((i) => i.trivyDb);
  // What the test registry's DB layer holds (no metadata.json): anything but the planted dates.
  assert.ok(dates.length > 0 && dates.every((d) => d && d.updatedAt !== '2099-01-01T00:00:00.000Z'), JSON.stringify(dates));
  // A cache shared with a group: someone in it planted a driver and fresh-looking DB dates.
  await chmod(path.join(cache, 'index', 'url'), 0o777);
  await chmod(derived, 0o777);
  await writeFile(url, JSON.stringify({ digest: `sha256:${hex('sha256', other)}`, size: other.length }));
  for (const n of dbs) await writeFile(path.join(derived, n), JSON.stringify({ updatedAt: '2099-01-01T00:00:00.000Z', nextUpdate: '2099-01-01T06:00:00.000Z', version: 2 }));
  const index = await build('shared.tar');
  await holdsUpstreams('shared.tar', index, up.driver);
  assert.deepEqual(
    index.images.filter((i) => i.trivyDb).map((i) => i.trivyDb),
    dates,
    'the dates are read from the verified layer again',
  );
});

/** The one url table entry the first build recorded for `f` (named by the URL's sha256). */
async function onlyEntry(table: 'url', f: SeededFile): Promise<string> {
  const names = await readdir(path.join(cache, 'index', table));
  for (const n of names) {
    const e = JSON.parse(await readFile(path.join(cache, 'index', table, n), 'utf8')) as { digest: string };
    if (e.digest === `sha256:${f.sha256}` || names.length === 1) return n;
  }
  throw new Error(`no ${table} entry for ${f.landing} among ${names.join(', ')}`);
}

it('a value derived from stored content comes from bytes that hash to its digest, even when the deriver stops early', async () => {
  const { ContentStore, DigestMismatchError } = await import('../src/cache/store.js');
  const root = await makeTempDir('airlock-derived-');
  const content = Buffer.concat([Buffer.from('head:'), Buffer.alloc(3 * 1024 * 1024, 0x61)]);
  const digest = `sha256:${hex('sha256', content)}`;
  const store = new ContentStore(root);
  await store.init();
  await store.putBuffer(content);
  const firstBytes = async (body: NodeJS.ReadableStream) => {
    for await (const c of body) return (c as Buffer).subarray(0, 5).toString();
    return '';
  };
  // A later run (nothing proven), the tail of the file changed in place: the head still reads "head:".
  const damaged = Buffer.from(content);
  damaged[damaged.length - 1] = 0x62;
  await writeFile(store.pathOf(digest), damaged);
  const later = new ContentStore(root);
  await later.init();
  await assert.rejects(later.derived('test', digest, firstBytes), (err: unknown) => err instanceof DigestMismatchError && /cache entry sha256:[0-9a-f]{64} \(removed/.test((err as Error).message));
  assert.equal(await later.has(digest), false, 'the damaged file is removed');
  assert.deepEqual(await readdir(path.join(root, 'index', 'derived')), [], 'nothing derived from it is kept');
  await later.putBuffer(content);
  assert.equal(await later.derived('test', digest, firstBytes), 'head:');
  assert.deepEqual(await readdir(path.join(root, 'index', 'derived')), [`test-${hex('sha256', content)}`]);
});

it('under umask 002 the folders the cache makes are still the user’s alone: a warm rebuild downloads nothing, pinned files included', async () => {
  const fresh = path.join(dir, 'umask-cache');
  const old = process.umask(0o002);
  try {
    const run = async (out: string) => {
      const b = await runAirlock(['build', path.join(dir, 'm.yaml'), '-o', path.join(dir, out), '--key', path.join(dir, 'k.key'), '--cache', fresh, '--json']);
      assert.equal(b.code, 0, b.stderr);
      return JSON.parse(b.stdout) as { downloadedBytes: number };
    };
    assert.ok((await run('umask-1.tar')).downloadedBytes > 0);
    assert.equal((await run('umask-2.tar')).downloadedBytes, 0);
  } finally {
    process.umask(old);
  }
});
