// The bundle's tar writer, read back by GNU tar and by tar-stream.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { appendFile, mkdir, open, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { headerBlocks, TarWriter } from '../src/bundle/tar.js';
import { checkEnd, readEntryHeader } from '../src/bundle/tarread.js';
import { openSource } from '../src/bundle/source.js';
import { makeTempDir } from './support/proc.js';
import { readTar } from './support/tarball.js';
import { runOk } from './support/tools.js';

const MTIME = new Date(1767225600_000);

test('names of every length, including ones that need a pax record, read back by GNU tar and tar-stream', async () => {
  const dir = await makeTempDir('airlock-tar-');
  const names = [
    'bundle.json',
    `files/${'a'.repeat(94)}`, // exactly 100
    `files/${'b'.repeat(95)}`, // 101: ustar prefix split
    `files/falco/driver/8.1.0+driver/x86_64/${'c'.repeat(120)}.ko`, // last part > 100: pax path
    `files/${'d/'.repeat(100)}e`, // prefix would exceed 155: pax path
    'files/ünïcode/plugin.zip', // non-ASCII: pax path
  ];
  const tarFile = path.join(dir, 't.tar');
  const out = await open(tarFile, 'w');
  const w = new TarWriter(out);
  const contents = names.map((n, i) => Buffer.alloc(i * 700 + 1, i + 1));
  for (const [i, n] of names.entries()) {
    if (i % 2) await w.addBuffer(n, contents[i]!, MTIME);
    else {
      const src = path.join(dir, `src${i}`);
      await writeFile(src, contents[i]!);
      const fh = await open(src, 'r');
      const hex = await w.addFile(n, fh, contents[i]!.length, MTIME);
      await fh.close();
      assert.equal(hex, createHash('sha256').update(contents[i]!).digest('hex'));
    }
  }
  const sum = await w.finish();
  await out.close();
  const whole = await readFile(tarFile);
  assert.equal(sum, createHash('sha256').update(whole).digest('hex'), 'the running hash is the hash of the file');
  assert.equal(whole.length % 512, 0);

  const listed = (await runOk('tar', ['-tf', tarFile])).stdout.toString('utf8').trimEnd().split('\n');
  assert.deepEqual(listed, names);
  const viaLib = await readTar(tarFile);
  assert.deepEqual(viaLib.map((e) => e.name), names);
  for (const [i, e] of viaLib.entries()) {
    assert.ok(e.data.equals(contents[i]!), e.name);
    assert.equal(e.mtime.getTime(), MTIME.getTime());
  }
  const x = path.join(dir, 'x');
  await mkdir(x);
  await runOk('tar', ['-xf', tarFile, '-C', x]);
  const back = await readFile(path.join(x, names[3]!));
  assert.ok(back.equals(contents[3]!));
});

test('a header block is 512 bytes with a valid checksum', () => {
  const h = headerBlocks({ name: 'oci-layout', size: 31, mtime: MTIME });
  assert.equal(h.length, 512);
  const stored = parseInt(h.subarray(148, 154).toString('ascii'), 8);
  const copy = Buffer.from(h);
  copy.fill(' ', 148, 156);
  assert.equal(stored, copy.reduce((s, b) => s + b, 0));
  assert.equal(h.subarray(257, 263).toString('ascii'), 'ustar\0');
});

test('a source shorter than the size promised is an error', async () => {
  const dir = await makeTempDir('airlock-tar-');
  const src = path.join(dir, 's');
  await writeFile(src, Buffer.alloc(10));
  const out = await open(path.join(dir, 't.tar'), 'w');
  const fh = await open(src, 'r');
  await assert.rejects(new TarWriter(out).addFile('x', fh, 20, MTIME), /source ended after 10 of 20 bytes/);
  await assert.rejects(new TarWriter(out).addFile('x', fh, 5, MTIME), /source is longer than 5 bytes/);
  await fh.close();
  await out.close();
});

/** Walks a tar with the bundle reader's strict header reader, then checks what follows the end. */
async function strictWalk(file: string): Promise<Array<{ name: string; size: number }>> {
  const fh = await openSource(file);
  try {
    const out: Array<{ name: string; size: number }> = [];
    let offset = 0;
    for (let e = await readEntryHeader(fh, 0); e; e = await readEntryHeader(fh, offset)) {
      out.push({ name: e.name, size: e.size });
      offset = e.nextOffset;
    }
    await checkEnd(fh, offset);
    return out;
  } finally {
    await fh.close();
  }
}

test('the strict reader takes what airlock writes and what GNU tar writes as pax (records, zero padding to 10240), and nothing after the end', async () => {
  const dir = await makeTempDir('airlock-tar-');
  const names = ['bundle.json', `files/${'b'.repeat(95)}`, `files/${'d/'.repeat(100)}e`, 'files/ünïcode/plugin.zip'];
  const ours = path.join(dir, 'ours.tar');
  const out = await open(ours, 'w');
  const w = new TarWriter(out);
  for (const [i, n] of names.entries()) await w.addBuffer(n, Buffer.alloc(i * 300, 1), MTIME);
  await w.finish();
  await out.close();
  assert.deepEqual(await strictWalk(ours), names.map((name, i) => ({ name, size: i * 300 })));

  // GNU tar --format=pax: path, mtime, atime and ctime records with fractional times.
  const src = path.join(dir, 'src');
  const gnuNames = [`a/${'x'.repeat(120)}`, 'a/ünï', 'a/plain'];
  await mkdir(path.join(src, 'a'), { recursive: true });
  for (const [i, n] of gnuNames.entries()) await writeFile(path.join(src, n), Buffer.alloc(1000 * i + 1, 2));
  const gnu = path.join(dir, 'gnu.tar');
  await runOk('tar', ['--format=pax', '-cf', gnu, '-C', src, ...gnuNames]);
  const gnuBytes = await readFile(gnu);
  assert.equal(gnuBytes.length % 10240, 0);
  assert.ok(gnuBytes.includes(' atime='), 'GNU tar wrote pax records');
  assert.deepEqual(await strictWalk(gnu), gnuNames.map((name, i) => ({ name, size: 1000 * i + 1 })));

  for (const file of [ours, gnu]) {
    await appendFile(file, Buffer.from([0x0a]));
    await assert.rejects(strictWalk(file), /trailing data after the end-of-archive marker at byte \d+: non-zero bytes \(0a\) at byte \d+/);
  }
});
