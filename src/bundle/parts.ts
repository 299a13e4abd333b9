// The parts of a split bundle (SPEC §7) read as one: positioned reads cross
// part boundaries. With BUNDLE.sha256 beside them, each part is checked
// against its line during the one pass that verifies every entry (verify,
// unpack), not in a pass of its own: the pass reads the archive front to
// back, and the bytes it skips (tar headers, padding, the end) are read here
// so that every part is hashed whole as the pass leaves it. Readers that never
// read every byte (inspect, serve, --base) rely on the signed entry digests,
// as they do for a whole bundle. After a failure, damagedParts hashes the part
// where it was found (one part: cheap) to say which part is damaged.
import { createHash, type Hash } from 'node:crypto';
import { printable } from '../util/printable.js';
import { HandlePool } from './handles.js';
import type { Part, PositionedSource } from './source.js';
import { BundleError } from './tarread.js';

const CHUNK = 1024 * 1024;

/** A part that does not hash to its line in BUNDLE.sha256: the message names it already. */
export class PartMismatchError extends BundleError {}

export interface CheckedPart extends Part {
  /** statStamp() when the bundle was opened. */
  readonly stamp: string;
}

interface Pass {
  /** Every byte before this has been taken by the pass. */
  pos: number;
  /** The part `pos` is in (-1 before the first byte). */
  part: number;
  hash?: Hash;
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
    if (this.pass && position > this.pass.pos) await this.passTo(position);
    const i = this.partAt(position);
    const part = this.parts[i] as CheckedPart;
    const n = Math.min(length, part.size - (position - (this.starts[i] ?? 0)));
    const bytesRead = await this.readPart(i, buffer, offset, n, position);
    // Hashed here, before the caller can reuse the buffer.
    const pass = this.pass;
    if (pass && position <= pass.pos && position + bytesRead > pass.pos) this.take(buffer.subarray(offset + pass.pos - position, offset + bytesRead));
    return { bytesRead };
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

  beginPass(): void {
    this.pass = { pos: 0, part: -1 };
  }

  async endPass(): Promise<void> {
    if (!this.pass) return;
    try {
      await this.passTo(this.total);
    } finally {
      this.pass = undefined;
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

  /** Moves the pass to `to`: the bytes in between are read and hashed (only counted when there is no BUNDLE.sha256). */
  private async passTo(to: number): Promise<void> {
    const pass = this.pass as Pass;
    let buf: Buffer | undefined;
    while (pass.pos < to) {
      const i = this.partAt(pass.pos);
      const n = Math.min(to, (this.starts[i] ?? 0) + (this.parts[i] as CheckedPart).size) - pass.pos;
      if (!this.listed) {
        this.take(n);
        continue;
      }
      buf ??= Buffer.allocUnsafe(Math.min(CHUNK, to - pass.pos));
      const bytesRead = await this.readPart(i, buf, 0, Math.min(buf.length, n), pass.pos);
      this.take(buf.subarray(0, bytesRead));
    }
  }

  /** The pass takes the next bytes (or, with no hashing, a count of them), all in one part. */
  private take(bytes: Buffer | number): void {
    const pass = this.pass as Pass;
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
      if (problem) throw new PartMismatchError(problem);
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
