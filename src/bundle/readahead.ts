// Positioned reads one chunk ahead: the next chunk is read (libuv's thread
// pool) while the caller hashes or writes this one. Two buffers take turns, so
// each chunk stays valid until the one after it is taken. Used where a whole
// entry is read front to back: the tar writer's copies, the reader's verify,
// and the bytes a split bundle's verifying pass reads for its part hashes
// alone. At most one read is in flight, always the next one: a source that
// must see its reads in order (the pass) gets them in order.
import { randomFill } from 'node:crypto';
import { close, closeSync, constants, fstatSync, openSync, read } from 'node:fs';

const CHUNK = 1024 * 1024;

export interface PositionedRead {
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
}

/** Bytes [at, at + size) of `src`; a source that ends early is `short(bytesGot)`. */
export async function* readAhead(src: PositionedRead, at: number, size: number, short: (got: number) => Error, buffers: [Buffer, Buffer] = [Buffer.allocUnsafe(CHUNK), Buffer.allocUnsafe(CHUNK)]): AsyncGenerator<Buffer> {
  const readAt = (buf: Buffer, pos: number) => {
    const p = src.read(buf, 0, Math.min(buf.length, size - pos), at + pos).then(({ bytesRead }) => buf.subarray(0, bytesRead));
    p.catch(() => undefined); // awaited below; a failure meanwhile is not unhandled
    return p;
  };
  let pos = 0;
  let turn = 0;
  let next = size > 0 ? readAt(buffers[0], 0) : undefined;
  while (next) {
    const chunk = await next;
    if (chunk.length === 0) throw short(pos);
    pos += chunk.length;
    turn ^= 1;
    next = pos < size ? readAt(buffers[turn as 0 | 1], pos) : undefined;
    yield chunk;
  }
}

export interface ByteRange {
  readonly at: number;
  readonly size: number;
}

/** Bytes between two ranges read rather than skipped: a tar header and padding are under 1 KiB; a streamed blob is not. */
const MAX_GAP = 64 * 1024;
/** Buffers in turn: one with the caller, the rest being read. */
const DEPTH = 4;

/**
 * The bytes of `ranges` (in file order, not overlapping), as [range index,
 * chunk] in order: the verifying pass of every entry, so that the hash never
 * waits for a read while bytes remain. Reads are up to 1 MiB and cross from
 * one range into the next (a run of small entries is one read, not one each);
 * DEPTH - 1 are in flight while the caller has a chunk, each into a buffer of
 * its own, so a chunk stays valid until the caller asks for the next. Reads
 * are issued in file order, and a short read (the end of a part) is completed
 * by a read of its own after it: the pass (./parts.ts) takes bytes it is not
 * asked for itself and never counts a byte twice. A chunk comes from one read,
 * so it never spans two parts. A source that ends early is `short(range, bytesGot)`.
 * `buffers` (from warmBuffers) are used where large enough, fresh ones otherwise.
 */
export async function* readRanges(src: PositionedRead, ranges: readonly ByteRange[], short: (range: number, got: number) => Error, buffers: readonly Buffer[] = []): AsyncGenerator<[number, Buffer]> {
  const reads = planReads(ranges);
  const largest = reads.reduce((n, r) => Math.max(n, r.len), 0);
  const bufferFor = (i: number) => {
    const given = buffers[i];
    return given && given.length >= largest ? given : Buffer.allocUnsafe(largest);
  };
  const issue = (buf: Buffer, r: PlannedRead) => {
    const p = src.read(buf, 0, r.len, r.pos).then(({ bytesRead }) => bytesRead);
    p.catch(() => undefined); // awaited in turn; a failure meanwhile is not unhandled
    return { p, buf, r };
  };
  const inFlight: Array<ReturnType<typeof issue>> = [];
  let next = 0;
  while (next < reads.length && inFlight.length < DEPTH) inFlight.push(issue(bufferFor(inFlight.length), reads[next++] as PlannedRead));
  let first = 0; // the first range not wholly yielded yet
  /** The first range from `i` on that ends after `pos`. */
  const after = (i: number, pos: number) => {
    while (i < ranges.length && (ranges[i] as ByteRange).at + (ranges[i] as ByteRange).size <= pos) i++;
    return i;
  };
  for (let head = inFlight.shift(); head; head = inFlight.shift()) {
    const { buf, r } = head;
    let got = 0;
    let n = await head.p;
    for (;;) {
      if (n === 0) {
        first = after(first, r.pos + got);
        throw short(first, Math.max(0, r.pos + got - (ranges[first]?.at ?? 0)));
      }
      // The ranges within bytes [r.pos + got, r.pos + got + n) of the file.
      const from = r.pos + got;
      const to = from + n;
      for (let i = first; i < ranges.length; i++) {
        const range = ranges[i] as ByteRange;
        if (range.at >= to) break;
        const a = Math.max(range.at, from);
        const b = Math.min(range.at + range.size, to);
        if (b > a) yield [i, buf.subarray(a - r.pos, b - r.pos)];
      }
      got += n;
      first = after(first, r.pos + got);
      if (got === r.len) break;
      n = (await src.read(buf, got, r.len - got, r.pos + got)).bytesRead;
    }
    // The caller is done with every chunk of `buf`: it takes the next read.
    if (next < reads.length) inFlight.push(issue(buf, reads[next++] as PlannedRead));
  }
}

interface PlannedRead {
  readonly pos: number;
  readonly len: number;
}

/** Reads of up to CHUNK bytes covering `ranges`, through gaps up to MAX_GAP. */
function planReads(ranges: readonly ByteRange[]): PlannedRead[] {
  const out: PlannedRead[] = [];
  let start = -1;
  let end = -1;
  for (const r of ranges) {
    if (r.size === 0) continue;
    if (start >= 0 && r.at - end > MAX_GAP) {
      cut(start, end);
      start = -1;
    }
    if (start < 0) start = r.at;
    end = r.at + r.size;
  }
  if (start >= 0) cut(start, end);
  return out;

  function cut(from: number, to: number): void {
    for (let pos = from; pos < to; pos += CHUNK) out.push({ pos, len: Math.min(CHUNK, to - pos) });
  }
}

/**
 * Buffers for a readRanges over `bytes` bytes to come, each written once now on
 * libuv's pool. The first write to a fresh buffer costs a page fault per 4 KiB,
 * and on a VM that is dear: 3–6 ms per MiB measured here, during which the first
 * reads of the pass did not come back and the main thread waited. Called before
 * the walk over the headers, the faults are taken on the pool while the main
 * thread walks. The writing is a read of /dev/zero, not of the bundle (whose
 * bytes the pass reads once, as it promises); where there is none,
 * crypto.randomFill, which also fills on the pool but did less well: main-thread
 * idle in the pass, medians of 8 (4 KiB entries / 64 KiB): nothing done 15.8% /
 * 6.7%, randomFill 14.7% / 3.6%, /dev/zero 0.0% / 1.0%. `ready` settles (never
 * rejects) when the buffers may be used.
 */
export function warmBuffers(bytes: number): { buffers: Buffer[]; ready: Promise<void> } {
  const buffers: Buffer[] = [];
  const writes: Array<Promise<unknown>> = [];
  const zero = zeroDevice();
  for (let i = 0; i < DEPTH && i * CHUNK < bytes; i++) {
    const buf = Buffer.allocUnsafe(CHUNK);
    const len = Math.min(CHUNK, bytes);
    buffers.push(buf);
    writes.push(new Promise<void>((resolve) => (zero === undefined ? randomFill(buf, 0, len, () => resolve()) : read(zero, buf, 0, len, null, () => resolve()))));
  }
  const ready = Promise.all(writes).then(() => {
    if (zero !== undefined) close(zero, () => undefined);
  });
  return { buffers, ready };
}

/** An fd of /dev/zero when it is the character device it should be (a FIFO there would never end a read), else undefined. */
function zeroDevice(): number | undefined {
  let fd: number | undefined;
  try {
    fd = openSync('/dev/zero', constants.O_RDONLY | constants.O_NONBLOCK);
    if (fstatSync(fd).isCharacterDevice()) return fd;
  } catch {
    // none here: randomFill does it
  }
  if (fd !== undefined) closeSync(fd);
  return undefined;
}
