// The parts of a split bundle (SPEC §7) read as one: positioned reads cross
// part boundaries. With BUNDLE.sha256 beside them, each part is checked
// against its line during the one pass that verifies every entry (verify,
// unpack), not in a pass of its own. Only reads through the pass's own reader
// (beginPass) move it: other readers (unpack's streamed uploads, serve) read
// wherever and whenever they like, and a part hash must never see their bytes
// out of order or twice. The pass reads the archive front to back, one read at
// a time; the bytes it is not asked for (tar headers, padding, entries that
// other readers hash, the end) it reads itself, so that every part is hashed
// whole as the pass leaves it. Readers that never read every byte (inspect,
// serve, --base) rely on the signed entry digests, as they do for a whole
// bundle. After a failure, damagedParts hashes the part where it was found
// (one part: cheap) to say which part is damaged.
import { createHash, type Hash } from 'node:crypto';
import { printable } from '../util/printable.js';
import { HandlePool } from './handles.js';
import { readAhead, type PositionedRead } from './readahead.js';
import type { CheckedPart, Part, PositionedSource } from './source.js';
import type { Segment } from './hashpool.js';
import { BundleError } from './tarread.js';

const CHUNK = 1024 * 1024;

/** A part that does not hash to its line in BUNDLE.sha256: the message names it already. */
export class PartMismatchError extends BundleError {
  constructor(
    message: string,
    /** Where the part ends in the bundle: the damage is before. */
    readonly end: number,
  ) {
    super(message);
  }
}

interface Pass {
  /** Every byte before this has been taken by the pass. */
  pos: number;
  /** The part `pos` is in (-1 before the first byte). */
  part: number;
  hash?: Hash;
  /** The pass's reads, one after another: each starts where the one before left the pass. */
  queue: Promise<unknown>;
}

export class PartsSource implements PositionedSource {
  private readonly starts: number[] = [];
  private readonly total: number;
  private readonly pool: HandlePool;
  private pass: Pass | undefined;
  /** Parts that hashed to their line during the pass. */
  private readonly good = new Set<number>();
  /** Where the last read began: to tell which part a tar error was found in. */
  private last = 0;
  onPart?: (part: Part, index: number) => void;

  constructor(
    readonly parts: readonly CheckedPart[],
    /** BUNDLE.sha256: part name → hex; undefined when there is none. */
    private readonly listed: ReadonlyMap<string, string> | undefined,
    private readonly sidecarName: string,
    maxOpen?: number,
  ) {
    let at = 0;
    for (const p of parts) {
      this.starts.push(at);
      at += p.size;
    }
    this.total = at;
    this.pool = new HandlePool(parts, maxOpen);
  }

  async read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }> {
    if (length === 0) return { bytesRead: 0 };
    this.last = position;
    if (position >= this.total) {
      const last = this.parts[this.parts.length - 1];
      const n = this.parts.length;
      throw new BundleError(`the bundle is truncated: the archive goes on after the last part ${printable(last?.name ?? '?')} (${this.total} bytes in ${n} part${n === 1 ? '' : 's'}): a part after it is missing, or a part is short`);
    }
    const i = this.partAt(position);
    const part = this.parts[i] as CheckedPart;
    const n = Math.min(length, part.size - (position - (this.starts[i] ?? 0)));
    return { bytesRead: await this.readPart(i, buffer, offset, n, position) };
  }

  size() {
    return Promise.resolve(this.total);
  }

  async stamp() {
    return (await Promise.all(this.parts.map((_p, i) => this.pool.stamp(i)))).join('/');
  }

  checkArchiveEnd(end: number): void {
    for (const [i, p] of this.parts.entries()) {
      if ((this.starts[i] ?? 0) >= end) throw new BundleError(`part ${printable(p.name)} is extra: it follows the end of the archive (which ends in an earlier part); remove it`);
    }
  }

  beginPass(): PositionedRead {
    const pass: Pass = { pos: 0, part: -1, queue: Promise.resolve() };
    this.pass = pass;
    return { read: (buffer, offset, length, position) => this.inPass(pass, () => this.passRead(pass, buffer, offset, length, position)) };
  }

  async endPass(): Promise<void> {
    const pass = this.pass;
    if (!pass) return;
    try {
      await this.inPass(pass, () => this.passTo(pass, this.total));
    } finally {
      if (this.pass === pass) this.pass = undefined;
    }
  }

  stopPass(): void {
    this.pass = undefined;
  }

  async damagedParts(from: number, to: number): Promise<string | undefined> {
    if (!this.listed || this.total === 0) return undefined;
    const out: string[] = [];
    const first = this.partAt(Math.min(from, this.total - 1));
    const end = Math.max(to, from + 1);
    for (let i = first; i < this.parts.length && (this.starts[i] ?? 0) < end; i++) {
      if (this.good.has(i)) continue;
      const actual = await this.hashPart(i);
      const problem = this.mismatch(i, actual);
      if (problem) out.push(problem);
    }
    return out.length ? out.join('; ') : undefined;
  }

  checksParts(): boolean {
    return this.listed !== undefined;
  }

  segments(at: number, size: number): Segment[] {
    const out: Segment[] = [];
    for (let pos = at; pos < at + size; ) {
      const i = this.partAt(pos);
      const part = this.parts[i] as CheckedPart;
      const start = this.starts[i] ?? 0;
      if (pos >= this.total) throw new BundleError(`the bundle is truncated: the archive goes on after the last part ${printable(part.name)}`);
      const len = Math.min(at + size, start + part.size) - pos;
      out.push({ path: part.path, part: part.name, stamp: part.stamp, pos: pos - start, len });
      pos += len;
    }
    return out;
  }

  lastPosition(): number {
    return this.last;
  }

  close() {
    return this.pool.close();
  }

  /** The index of the part holding byte `pos` (< total). */
  private partAt(pos: number): number {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((this.starts[mid] ?? 0) <= pos) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  private async readPart(i: number, buffer: Buffer, offset: number, length: number, position: number): Promise<number> {
    const part = this.parts[i] as CheckedPart;
    const { bytesRead } = await this.pool.with(i, (fh) => fh.read(buffer, offset, length, position - (this.starts[i] ?? 0)));
    if (bytesRead === 0) throw new BundleError(`part ${printable(part.name)} is shorter than when it was opened (${part.size} bytes); it changed on disk`);
    return bytesRead;
  }

  /** Runs `fn` after the pass's earlier reads; throws once the pass was ended or stopped. */
  private inPass<T>(pass: Pass, fn: () => Promise<T>): Promise<T> {
    const run = pass.queue.then(() => {
      if (this.pass !== pass) throw new BundleError('internal error: a read in a pass that was ended');
      return fn();
    });
    pass.queue = run.catch(() => undefined);
    return run;
  }

  /** A read of the pass: the bytes from where the pass got to up to `position` are taken first, then these. */
  private async passRead(pass: Pass, buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }> {
    // Before where the pass got to: read again, not taken again.
    if (position < pass.pos) return this.read(buffer, offset, length, position);
    await this.passTo(pass, position);
    // On across part ends up to `length` (or the end of the last part): a short read would leave the
    // caller to read the rest again after the pass's next read had taken it (readRanges has reads queued).
    let done = 0;
    while (done < length && position + done < this.total) {
      const { bytesRead } = await this.read(buffer, offset + done, length - done, position + done);
      // Taken here, one part at a time, before the caller can reuse the buffer.
      this.take(pass, this.listed ? buffer.subarray(offset + done, offset + done + bytesRead) : bytesRead);
      done += bytesRead;
    }
    if (done === 0 && length > 0) return this.read(buffer, offset, length, position);
    return { bytesRead: done };
  }

  /** Moves the pass to `to`: the bytes in between are read and hashed (only counted when there is no BUNDLE.sha256). */
  private async passTo(pass: Pass, to: number): Promise<void> {
    if (!this.listed) {
      // Nothing to hash: the count moves part by part (for onPart).
      while (pass.pos < to) {
        const i = this.partAt(pass.pos);
        this.take(pass, Math.min(to, (this.starts[i] ?? 0) + (this.parts[i] as CheckedPart).size) - pass.pos);
      }
      return;
    }
    if (pass.pos >= to) return;
    // Each read stays within one part (read() stops at its end, and throws rather than come back empty), so each chunk is taken whole.
    const from = pass.pos;
    for await (const chunk of readAhead(this, from, to - from, (got) => new BundleError(`the bundle ends at byte ${from + got}`))) this.take(pass, chunk);
  }

  /** The pass takes the next bytes (or, with no hashing, a count of them), all in one part. */
  private take(pass: Pass, bytes: Buffer | number): void {
    const i = this.partAt(pass.pos);
    const part = this.parts[i] as CheckedPart;
    if (i !== pass.part) {
      pass.part = i;
      if (this.listed) pass.hash = createHash('sha256');
      this.onPart?.(part, i);
    }
    if (typeof bytes === 'number') pass.pos += bytes;
    else {
      pass.hash?.update(bytes);
      pass.pos += bytes.length;
    }
    if (pass.hash && pass.pos === (this.starts[i] ?? 0) + part.size) {
      const problem = this.mismatch(i, pass.hash.digest('hex'));
      delete pass.hash;
      if (problem) {
        // The pass ends here: reads queued behind this one (read ahead) do not go on into the next part.
        if (this.pass === pass) this.pass = undefined;
        throw new PartMismatchError(problem, pass.pos);
      }
      this.good.add(i);
    }
  }

  private mismatch(i: number, actual: string): string | undefined {
    const name = (this.parts[i] as CheckedPart).name;
    if (actual === this.listed?.get(name)) return undefined;
    return `part ${printable(name)} does not match ${printable(this.sidecarName)} (its sha256 is ${actual}): it is damaged, short, or swapped with another part`;
  }

  private async hashPart(i: number): Promise<string> {
    const part = this.parts[i] as CheckedPart;
    const start = this.starts[i] ?? 0;
    const h = createHash('sha256');
    const buf = Buffer.allocUnsafe(Math.min(CHUNK, Math.max(part.size, 1)));
    for (let pos = 0; pos < part.size; ) {
      const n = await this.readPart(i, buf, 0, Math.min(buf.length, part.size - pos), start + pos);
      h.update(buf.subarray(0, n));
      pos += n;
    }
    return h.digest('hex');
  }
}
