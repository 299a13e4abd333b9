// The walk over a bundle's tar headers reads them ahead (src/bundle/headerahead.ts):
// it must find exactly what reading one header after the other finds, with fewer
// reads where entries are small, and a bundle whose pax headers make every guess
// miss must cost a bounded number of extra reads, not one per window per entry.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { HeaderReadAhead } from '../src/bundle/headerahead.js';
import { BLOCK, headerBlocks, padding } from '../src/bundle/tar.js';
import { readEntryHeader, type RawEntry, type ReadSource } from '../src/bundle/tarread.js';

/** A tar in memory (the writer's own header blocks), and a source over it that counts reads and bytes. */
function tarOf(entries: ReadonlyArray<{ name: string; size: number }>): { bytes: Buffer; source: ReadSource & { reads: number; bytesRead: number } } {
  const chunks: Buffer[] = [];
  for (const e of entries) {
    chunks.push(headerBlocks({ name: e.name, size: e.size, mtime: new Date(0) }), Buffer.alloc(e.size, 7), padding(e.size));
  }
  chunks.push(Buffer.alloc(2 * BLOCK));
  const bytes = Buffer.concat(chunks);
  const source = {
    reads: 0,
    bytesRead: 0,
    read(buffer: Buffer, offset: number, length: number, position: number) {
      source.reads++;
      const n = Math.max(0, Math.min(length, bytes.length - position));
      bytes.copy(buffer, offset, position, position + n);
      source.bytesRead += n;
      return Promise.resolve({ bytesRead: n });
    },
    size: () => Promise.resolve(bytes.length),
  };
  return { bytes, source };
}

/** The walk as BundleReader does it: each header where the one before said, read ahead or not. */
async function walk(src: ReadSource, sizes: readonly number[], ahead: boolean): Promise<Array<RawEntry | undefined>> {
  const headers = ahead ? new HeaderReadAhead(src, sizes) : undefined;
  const out: Array<RawEntry | undefined> = [];
  let offset = 0;
  let overhead = BLOCK;
  for (let i = 0; i <= sizes.length; i++) {
    headers?.expect(i, offset, overhead);
    const got = await readEntryHeader(headers ?? src, offset);
    out.push(got);
    if (!got) break;
    overhead = got.dataOffset - offset;
    offset = got.nextOffset;
  }
  return out;
}

it('4,000 entries of 4 KiB: the same headers as one read each, in under a tenth of the reads', async () => {
  const entries = Array.from({ length: 4000 }, (_, i) => ({ name: `files/f/${i}.bin`, size: 4096 }));
  const sizes = entries.map((e) => e.size);
  const plain = tarOf(entries);
  const ahead = tarOf(entries);
  const want = await walk(plain.source, sizes, false);
  const got = await walk(ahead.source, sizes, true);
  assert.deepEqual(got, want);
  assert.equal(want.length, 4001);
  assert.equal(want.at(-1), undefined, 'the end of the archive is found');
  assert.ok(ahead.source.reads < plain.source.reads / 10, `reads ahead ${ahead.source.reads}, one by one ${plain.source.reads}`);
});

it('mixed sizes and long names (pax headers of several lengths): the same headers, and fewer reads than one by one, bytes bounded by the entries', async () => {
  // Every third name needs a pax header, of a length that varies: the guess (as many header bytes as the entry before) misses often.
  const entries = Array.from({ length: 600 }, (_, i) => ({
    name: i % 3 === 0 ? `files/${'d/'.repeat(60 + (i % 7) * 40)}f${i}.bin` : `files/f${i}.bin`,
    size: [10, 4096, 70_000, 1_500_000, 0, 513][i % 6] as number,
  }));
  const sizes = entries.map((e) => e.size);
  const plain = tarOf(entries);
  const ahead = tarOf(entries);
  const want = await walk(plain.source, sizes, false);
  // A pax header costs two reads more one by one (its block, its data): over 100 here (names over 255 bytes), of 4 lengths.
  assert.ok(plain.source.reads >= want.length + 2 * 100, `pax headers present: ${plain.source.reads} reads for ${want.length} headers`);
  assert.deepEqual(await walk(ahead.source, sizes, true), want);
  // Fewer reads than one by one even so (656 against 887 when written) …
  assert.ok(ahead.source.reads <= plain.source.reads, `reads ahead ${ahead.source.reads}, one by one ${plain.source.reads}`);
  // … and the bytes read ahead are bounded by the entries, not by their sizes (3.8 MB of 300 MB when written).
  assert.ok(ahead.source.bytesRead <= entries.length * 16 * 1024, `bytes read ahead: ${ahead.source.bytesRead}`);
});

it('a damaged header is found where it is, and lastPosition() names it, not a window read ahead beyond it', async () => {
  const entries = Array.from({ length: 50 }, (_, i) => ({ name: `files/f${i}.bin`, size: 1000 }));
  const sizes = entries.map((e) => e.size);
  const { bytes, source } = tarOf(entries);
  const at = 20 * (BLOCK + 1024); // the header of entry 20
  bytes[at + 10] = 0x41; // inside the name: the checksum no longer matches
  const headers = new HeaderReadAhead(source, sizes);
  let offset = 0;
  let failed: Error | undefined;
  for (let i = 0; i < sizes.length && !failed; i++) {
    headers.expect(i, offset, BLOCK);
    try {
      offset = (await readEntryHeader(headers, offset))?.nextOffset ?? offset;
    } catch (err) {
      failed = err as Error;
    }
  }
  assert.match(failed?.message ?? '', new RegExp(`tar header at byte ${at}: bad checksum`));
  assert.equal(headers.lastPosition(), at);
});
