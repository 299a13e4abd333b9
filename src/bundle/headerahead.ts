// The tar headers of a bundle, read ahead for the walk over them (scan). Read
// one after the other, each header costs a trip through libuv's pool: 4,000
// entries of 4 KiB took 315 ms to walk here, 2,000 of 64 KiB 183 ms (CPU
// profiles of verify). bundle.json gives every entry's size, so where the next
// headers are is known before they are read, except for the pax headers in
// between: the guess is that each entry has as many header bytes as the one
// before. Windows covering the guessed headers are read several at a time,
// nearby ones in one read, and a header read is served from the window that
// holds all of it; what no window holds is read as before. A guess that
// misses costs reads that were not needed; to bound that on a bundle made to
// miss every guess, after a miss one window is read ahead, then two, up to
// DEPTH as guesses hit again. What is served is the file's bytes either way:
// the tar reader's checks are the same.
import { BLOCK } from './tar.js';
import type { ReadSource } from './tarread.js';

/** Windows in flight at most. */
const DEPTH = 8;
/** Guessed headers within this span go in one read. */
const MAX_SPAN = 64 * 1024;
/** Bytes read beyond a guessed header's own: a pax header up to this much larger than the one before still falls inside. */
const SLACK = 2 * BLOCK;

interface Window {
  readonly at: number;
  readonly end: number;
  readonly data: Promise<Buffer | undefined>;
}

export class HeaderReadAhead implements ReadSource {
  private windows: Window[] = [];
  /** Guessed offset of each header not yet passed, from the last anchor. */
  private guess = new Map<number, number>();
  /** The next entry to guess a header for, and where it would be. */
  private nextGuess = 0;
  private nextAt = 0;
  private overhead = BLOCK;
  private depth = 1;
  private last = 0;

  /** `sizes`: the planned entries' sizes, in order. */
  constructor(
    private readonly src: ReadSource,
    private readonly sizes: readonly number[],
  ) {}

  /**
   * The walk is at entry `i`, whose header starts at `offset`; `overhead` is the
   * header bytes (with any pax header) of the entry before. Reads ahead.
   */
  expect(i: number, offset: number, overhead: number): void {
    const guessed = this.guess.get(i);
    if (guessed !== offset || overhead !== this.overhead) {
      // A miss (or the first call): guesses from here, carefully.
      if (guessed !== undefined) this.depth = 1;
      this.windows = [];
      this.guess.clear();
      this.overhead = overhead;
      this.nextGuess = i;
      this.nextAt = offset;
    } else if (this.depth < DEPTH) {
      this.depth++;
    }
    this.guess.delete(i - 1);
    this.windows = this.windows.filter((w) => w.end > offset);
    while (this.windows.length < this.depth && this.nextGuess <= this.sizes.length) this.readWindow();
  }

  /** One read covering the next guessed headers that fit in MAX_SPAN. */
  private readWindow(): void {
    const first = this.nextGuess;
    const at = this.nextAt;
    let end = at;
    while (this.nextGuess <= this.sizes.length) {
      const headerEnd = this.nextAt + this.overhead + SLACK;
      if (this.nextGuess > first && headerEnd - at > MAX_SPAN) break;
      this.guess.set(this.nextGuess, this.nextAt);
      end = headerEnd;
      // The end of the archive (after the last entry) is guessed as a header too: two zero blocks.
      const size = this.sizes[this.nextGuess];
      this.nextGuess++;
      if (size === undefined) break;
      this.nextAt += this.overhead + Math.ceil(size / BLOCK) * BLOCK;
    }
    const buf = Buffer.allocUnsafe(end - at);
    const data = this.src.read(buf, 0, buf.length, at).then(
      ({ bytesRead }) => buf.subarray(0, bytesRead),
      () => undefined, // the read without the window says what is wrong
    );
    this.windows.push({ at, end, data });
  }

  /** Where the last read asked of it began (reads ahead aside). */
  lastPosition(): number {
    return this.last;
  }

  async read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }> {
    this.last = position;
    const w = this.windows.find((x) => x.at <= position && position + length <= x.end);
    const data = w && (await w.data);
    if (w && data && position + length <= w.at + data.length) {
      data.copy(buffer, offset, position - w.at, position - w.at + length);
      return { bytesRead: length };
    }
    return this.src.read(buffer, offset, length, position);
  }

  size(): Promise<number> {
    return this.src.size();
  }
}
