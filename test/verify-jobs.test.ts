// verify and unpack hash entries on threads (--jobs): a flipped byte is named
// by entry (and part, for a split bundle) whichever thread hashed it, with
// --jobs 1 (this thread) as with --jobs 2; serve's first check of an entry
// goes to a thread too; a bundle changed on disk under the threads is refused.
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, readFile, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { defaultJobs } from '../src/bundle/hashpool.js';
import { readRanges, warmBuffers } from '../src/bundle/readahead.js';
import { BundleReader } from '../src/bundle/reader.js';
import { loadPublicKey } from '../src/sign/keys.js';
import { AIRLOCK, runAirlock } from './support/cli.js';
import { startFileServer, type TestFileServer } from './support/fileserver.js';
import { makeTempDir } from './support/proc.js';
import { startRegistry, type TestRegistry } from './support/registry.js';
import { pseudoRandomBytes } from './support/seed.js';
import { splitInto } from './support/tamper.js';
import { readTar } from './support/tarball.js';

let files: TestFileServer;
let target: TestRegistry;
let dir: string;
let bundle: string;
let pub: string;
/** Files of the bundle: each over 1 MiB, so that serve hashes it on a thread too. */
const SIZES = [2_500_000, 3_000_000, 2_200_000, 1_500_000];

before(async () => {
  files = await startFileServer();
  target = await startRegistry();
  dir = await makeTempDir('airlock-jobs-');
  assert.equal((await runAirlock(['keygen', '--out', path.join(dir, 'k')])).code, 0);
  pub = path.join(dir, 'k.pub');
  const lines: string[] = [];
  for (const [i, size] of SIZES.entries()) {
    const data = pseudoRandomBytes(`jobs-${i}`, size);
    await mkdir(path.join(files.root, 'f'), { recursive: true });
    await writeFile(path.join(files.root, 'f', `file${i}.bin`), data);
    lines.push(`    - url: ${files.url}/f/file${i}.bin\n      path: data/file${i}.bin\n      sha256: ${createHash('sha256').update(data).digest('hex')}`);
  }
  await writeFile(path.join(dir, 'm.yaml'), `apiVersion: airlock/v1\nkind: Bundle\nmetadata:\n  name: jobs\n  version: "1"\nspec:\n  images: []\n  files:\n${lines.join('\n')}\n`);
  bundle = path.join(dir, 'b.tar');
  const b = await runAirlock(['build', path.join(dir, 'm.yaml'), '-o', bundle, '--key', path.join(dir, 'k.key'), '--cache', path.join(dir, 'cache')]);
  assert.equal(b.code, 0, b.stderr);
});
after(async () => {
  await files?.stop();
  await target?.stop();
});

/** A copy of the bundle with one byte flipped in the data of entry `name`, `into` bytes in; returns it and the byte's offset. */
async function flipped(name: string, into: number, tag: string): Promise<{ file: string; at: number }> {
  const bytes = await readFile(bundle);
  let offset = 0;
  let at = -1;
  for (const e of await readTar(bundle)) {
    // Each entry: one 512-byte header (names here are short), then its data padded to 512.
    if (e.name === name) at = offset + 512 + into;
    offset += 512 + Math.ceil(e.size / 512) * 512;
  }
  assert.ok(at > 0, `entry ${name} found`);
  bytes[at] = (bytes[at] as number) ^ 0x01;
  const file = path.join(dir, `${tag}.tar`);
  await writeFile(file, bytes);
  return { file, at };
}

const corrupt = (name: string) => new RegExp(`entry "${name.replace(/[.]/g, '\\.')}" is corrupt: its sha256 is [a-f0-9]{64}, bundle\\.json says [a-f0-9]{64}`);

it('the good bundle verifies with --jobs 1, --jobs 2 and the default', async () => {
  for (const jobs of [['--jobs', '1'], ['--jobs', '2'], []]) {
    const r = await runAirlock(['verify', bundle, '--pub', pub, ...jobs]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^OK .*: signature valid .*4 files, [\d.]+ MiB verified$/m);
  }
});

it('--jobs 0, --jobs abc and --jobs 2.5 are usage errors (exit 2) for verify and unpack, before the bundle is read', async () => {
  for (const bad of ['0', 'abc', '2.5', '-1', '100']) {
    const v = await runAirlock(['verify', bundle, '--pub', pub, '--jobs', bad]);
    assert.equal(v.code, 2, v.stderr);
    assert.match(v.stderr, new RegExp(`--jobs ${bad.replace('.', '\\.')}: give a whole number from 1 to 64`));
    const u = await runAirlock(['unpack', bundle, '--pub', pub, '--jobs', bad, '--registry', `${target.host}/x`, '--files-dir', dir]);
    assert.equal(u.code, 2, u.stderr);
    assert.match(u.stderr, /--jobs .*: give a whole number from 1 to 64/);
  }
});

it('a flipped byte is named by its entry with --jobs 1 and --jobs 2, in every entry, by verify and unpack', async () => {
  for (const [i, size] of SIZES.entries()) {
    const name = `files/data/file${i}.bin`;
    const { file } = await flipped(name, Math.floor(size * 0.7), `flip${i}`);
    for (const jobs of ['1', '2']) {
      const v = await runAirlock(['verify', file, '--pub', pub, '--jobs', jobs]);
      assert.equal(v.code, 1, `verify --jobs ${jobs}: ${v.stderr}`);
      assert.match(v.stderr, corrupt(name), `verify --jobs ${jobs}`);
      const dest = path.join(dir, `dest-${i}-${jobs}`);
      await mkdir(dest);
      const u = await runAirlock(['unpack', file, '--pub', pub, '--jobs', jobs, '--registry', `${target.host}/flip${i}`, '--files-dir', dest]);
      assert.equal(u.code, 1, `unpack --jobs ${jobs}: ${u.stderr}`);
      assert.match(u.stderr, corrupt(name), `unpack --jobs ${jobs}`);
    }
  }
});

it('in a split bundle, a flipped byte is named by entry and part with --jobs 1 and --jobs 2, also where the entry goes on past the damaged part', async () => {
  const name = 'files/data/file1.bin';
  // Parts of 1 MB: file1 spans several, and the byte is in one that ends inside it.
  const { file, at } = await flipped(name, 1_200_000, 'flip-split');
  const parts = await splitInto(file, path.join(dir, 'split'), 1_000_000, undefined);
  // The sidecar of the good bundle's parts: the damaged part's line no longer matches.
  const good = await splitInto(bundle, path.join(dir, 'split-good'), 1_000_000);
  await copyFile(`${good}.sha256`, `${parts}.sha256`);
  const part = `b\\.tar\\.${String(Math.floor(at / 1_000_000) + 1).padStart(3, '0')}`;
  for (const jobs of ['1', '2']) {
    const v = await runAirlock(['verify', `${parts}.001`, '--pub', pub, '--jobs', jobs]);
    assert.equal(v.code, 1, `verify --jobs ${jobs}: ${v.stderr}`);
    assert.match(v.stderr, new RegExp(`${corrupt(name).source}; part ${part} does not match b\\.tar\\.sha256`), `verify --jobs ${jobs}`);
    const dest = path.join(dir, `dest-split-${jobs}`);
    await mkdir(dest);
    const u = await runAirlock(['unpack', `${parts}.001`, '--pub', pub, '--jobs', jobs, '--registry', `${target.host}/split${jobs}`, '--files-dir', dest]);
    assert.equal(u.code, 1, `unpack --jobs ${jobs}: ${u.stderr}`);
    assert.match(u.stderr, new RegExp(`${corrupt(name).source}; part ${part} does not match`), `unpack --jobs ${jobs}`);
  }
});

it('with --jobs 2 every entry is hashed on a thread, and so is serve\'s first check of an entry over 1 MiB', async () => {
  const key = await loadPublicKey(pub);
  const { file } = await flipped('files/data/file2.bin', 100, 'flip-reader');
  const r = await BundleReader.open(file, { pub: key, jobs: 2 });
  try {
    await assert.rejects(r.verify(), corrupt('files/data/file2.bin'));
    assert.ok(r.threadJobs >= 3, `entries handed to threads: ${r.threadJobs}`);
  } finally {
    await r.close();
  }
  const s = await BundleReader.open(file, { pub: key });
  try {
    await s.scan();
    await s.verifyEntry('files/data/file0.bin');
    await assert.rejects(s.verifyEntry('files/data/file2.bin'), corrupt('files/data/file2.bin'));
    assert.equal(s.threadJobs, defaultJobs() > 1 ? 2 : 0, 'serve hashes on threads when there is more than one core');
  } finally {
    await s.close();
  }
});

it('threads hash entries while the headers are still being walked, yet a damaged header later on is what is reported, not a corrupt entry before it', async () => {
  // Entry file0 corrupt, and the header of file3 damaged: the walk's verdict comes first, with --jobs 2 as with --jobs 1.
  const { file: flippedFile } = await flipped('files/data/file0.bin', 1000, 'flip-and-header');
  const bytes = await readFile(flippedFile);
  let offset = 0;
  let header = -1;
  for (const e of await readTar(bundle)) {
    if (e.name === 'files/data/file3.bin') header = offset;
    offset += 512 + Math.ceil(e.size / 512) * 512;
  }
  assert.ok(header > 0);
  bytes[header + 5] = (bytes[header + 5] as number) ^ 0x20; // in the name: the checksum no longer matches
  await writeFile(flippedFile, bytes);
  for (const jobs of ['1', '2']) {
    const v = await runAirlock(['verify', flippedFile, '--pub', pub, '--jobs', jobs]);
    assert.equal(v.code, 1, v.stderr);
    assert.match(v.stderr, new RegExp(`tar header at byte ${header}: bad checksum`), `--jobs ${jobs}`);
    assert.doesNotMatch(v.stderr, /is corrupt/, `--jobs ${jobs}`);
  }
  // Without the damaged header, the corrupt entry is named (the threads' finding, reported once the walk is done).
  const { file: only } = await flipped('files/data/file0.bin', 1000, 'flip-only');
  const r = await BundleReader.open(only, { pub: await loadPublicKey(pub), jobs: 2 });
  try {
    await assert.rejects(r.verify(), corrupt('files/data/file0.bin'));
    assert.equal(r.threadJobs, 6, 'every entry went to a thread (oci-layout, index.json and the four files)');
  } finally {
    await r.close();
  }
});

it('verify starts its threads before it reads the bundle, and ends on every early failure all the same (the threads keep a process alive until closed)', async () => {
  await runAirlock(['keygen', '--out', path.join(dir, 'other')]);
  const cases: Array<{ args: string[]; code: number; says: RegExp }> = [
    { args: ['verify', bundle, '--pub', path.join(dir, 'other.pub')], code: 1, says: /does not verify with the public key/ },
    { args: ['verify', bundle, '--pub', path.join(dir, 'missing.pub')], code: 1, says: /cannot read the public key/ },
    { args: ['verify', path.join(dir, 'missing.tar'), '--pub', pub], code: 1, says: /missing\.tar/ },
    { args: ['verify', bundle, '--pub', pub, '--signatures'], code: 2, says: /carries no signature policy/ },
  ];
  for (const c of cases) {
    // --jobs 2: the threads are started early whatever the bundle's size. A process kept alive by them is killed after 60 s: code null.
    const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      execFile(process.execPath, [AIRLOCK, ...c.args, '--jobs', '2'], { timeout: 60_000 }, (err, _stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stderr });
      });
    });
    assert.equal(r.code, c.code, `${c.args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, c.says);
  }
});

it('a bundle that changed on disk after it was opened is refused by the threads, not read', async () => {
  const copy = path.join(dir, 'changed.tar');
  await copyFile(bundle, copy);
  const r = await BundleReader.open(copy, { pub: await loadPublicKey(pub), jobs: 2 });
  try {
    await r.scan();
    await utimes(copy, new Date(), new Date(Date.now() - 3600_000));
    await assert.rejects(r.verify(), /the bundle changed on disk since it was opened \(another file, or written to\); start again/);
  } finally {
    await r.close();
  }
});

it('readRanges yields each range\'s bytes in order, across short reads, gaps and empty ranges, reading in file order', async () => {
  const data = pseudoRandomBytes('ranges', 5_000_000);
  // Short reads (at most 700 000 bytes, as at the end of a part), as a split bundle's source gives them.
  const src = {
    read(buffer: Buffer, offset: number, length: number, position: number) {
      const n = Math.max(0, Math.min(length, 700_000, data.length - position));
      data.copy(buffer, offset, position, position + n);
      return Promise.resolve({ bytesRead: n });
    },
  };
  const ranges = [
    { at: 0, size: 10 },
    { at: 10, size: 0 },
    { at: 512, size: 1_500_000 },
    { at: 1_500_512 + 300, size: 4096 },
    { at: 2_000_000, size: 0 },
    { at: 3_000_000, size: 1_999_999 },
  ];
  const got = ranges.map(() => [] as Buffer[]);
  let last = -1;
  for await (const [k, chunk] of readRanges(src, ranges, () => new Error('short'))) {
    assert.ok(k >= last, 'ranges in order');
    last = k;
    (got[k] as Buffer[]).push(Buffer.from(chunk));
  }
  for (const [k, r] of ranges.entries()) assert.ok(Buffer.concat(got[k] as Buffer[]).equals(data.subarray(r.at, r.at + r.size)), `range ${k}`);
  // Past the end: the range that cannot be read is named.
  await assert.rejects(
    (async () => {
      for await (const chunk of readRanges(src, [{ at: 4_999_000, size: 2000 }], (k, n) => new Error(`range ${k} short after ${n}`))) void chunk;
    })(),
    /range 0 short after 1000/,
  );
});

it('warmBuffers: up to four buffers of 1 MiB, ready before the pass without a byte of the bundle read; readRanges uses them where large enough', async () => {
  const data = pseudoRandomBytes('warm', 3_000_000);
  let reads = 0;
  const src = {
    read(buffer: Buffer, offset: number, length: number, position: number) {
      reads++;
      const n = Math.max(0, Math.min(length, data.length - position));
      data.copy(buffer, offset, position, position + n);
      return Promise.resolve({ bytesRead: n });
    },
  };
  // Enough for three reads of 1 MiB: three buffers (whether their pages were faulted in early, the bench's verify-idle.ts shows).
  const warm = warmBuffers(2_500_000);
  await warm.ready;
  assert.equal(warm.buffers.length, 3);
  for (const b of warm.buffers) assert.equal(b.length, 1024 * 1024);
  // readRanges reads into them (a chunk is a view of one of them) and yields the right bytes.
  const ranges = [{ at: 100, size: 2_800_000 }];
  const chunks: Buffer[] = [];
  for await (const [, chunk] of readRanges(src, ranges, () => new Error('short'), warm.buffers)) {
    assert.ok(warm.buffers.some((b) => b.buffer === chunk.buffer && b.byteOffset === chunk.byteOffset), 'a chunk of a warm buffer');
    chunks.push(Buffer.from(chunk));
  }
  assert.ok(Buffer.concat(chunks).equals(data.subarray(100, 2_800_100)));
  assert.equal(reads, 3);
  // Buffers smaller than the reads are not written past their end: fresh ones are taken.
  const small = [Buffer.alloc(1000), Buffer.alloc(1000)];
  const again: Buffer[] = [];
  for await (const [, chunk] of readRanges(src, ranges, () => new Error('short'), small)) {
    assert.ok(!small.some((b) => b.buffer === chunk.buffer), 'not a small buffer');
    again.push(Buffer.from(chunk));
  }
  assert.ok(Buffer.concat(again).equals(data.subarray(100, 2_800_100)));
  assert.ok(small.every((b) => b.every((x) => x === 0)), 'the small buffers untouched');
  // Little to hash: one buffer.
  assert.equal(warmBuffers(10).buffers.length, 1);
});
