// Where a bundle's bytes come from: one file, or the parts of a split bundle
// (SPEC §7: BUNDLE.001, BUNDLE.002, … written by build --split-size) read as one.
// Every reader path goes through this positioned-read interface, so a split
// bundle is verified, unpacked and served exactly like a whole one.
import { lstat, readdir, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { openInput, READ_BOUNDS, readRegular, UnsafeFileError } from '../fsx/safe.js';
import { printable } from '../util/printable.js';
import { statStamp } from './handles.js';
import { PartsSource } from './parts.js';
import type { Segment } from './hashpool.js';
import type { PositionedRead } from './readahead.js';
import { BundleError } from './tarread.js';

export interface PositionedSource {
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  /** Total bytes. */
  size(): Promise<number>;
  /** Identifies the current state of the file(s): device, inode, size and times of each. */
  stamp(): Promise<string>;
  /** Called by the reader with the offset where the archive ends (after its end marker), before the tail is checked. */
  checkArchiveEnd(end: number): void;
  readonly parts: readonly Part[];
  /** Called when the verifying pass (beginPass … endPass) moves on to another part of a split bundle: for progress. */
  onPart?: (part: Part, index: number) => void;
  /**
   * Starts the pass that reads the archive front to back, and returns its
   * reader: only reads through that move the pass (bytes it skips are read by
   * the pass itself; a read before where it got to is not counted again), so
   * other reads meanwhile, anywhere, change nothing. Each part of a split
   * bundle is checked against BUNDLE.sha256 as the pass leaves it.
   */
  beginPass(): PositionedRead;
  /** Takes the pass to the end of the last part; throws naming the first part that does not match. */
  endPass(): Promise<void>;
  /** Ends the pass where it is (after a failure). */
  stopPass(): void;
  /** After a failure in bytes [from, to): which parts there do not match BUNDLE.sha256, as a sentence; undefined when all do or there is none. */
  damagedParts(from: number, to: number): Promise<string | undefined>;
  /** Where the last read began. */
  lastPosition(): number;
  /** True when the pass checks parts against BUNDLE.sha256 (so it must read every byte). */
  checksParts(): boolean;
  /** Bytes [at, at + size) as ranges of the files that hold them, for a thread that opens them itself (./hashpool.ts). */
  segments(at: number, size: number): Segment[];
  close(): Promise<void>;
}

export interface Part {
  readonly name: string;
  readonly path: string;
  readonly size: number;
}

/** A part (or the whole bundle file) with its state when the bundle was opened. */
export interface CheckedPart extends Part {
  /** statStamp() when the bundle was opened. */
  readonly stamp: string;
}

class FileSource implements PositionedSource {
  private last = 0;
  constructor(
    private readonly fh: FileHandle,
    readonly parts: readonly [CheckedPart],
  ) {}
  read(buffer: Buffer, offset: number, length: number, position: number) {
    this.last = position;
    return this.fh.read(buffer, offset, length, position);
  }
  async size() {
    return (await this.fh.stat()).size;
  }
  async stamp() {
    return statStamp(await this.fh.stat({ bigint: true }));
  }
  checkArchiveEnd(): void {}
  beginPass(): PositionedRead {
    return this;
  }
  endPass(): Promise<void> {
    return Promise.resolve();
  }
  stopPass(): void {}
  damagedParts(): Promise<string | undefined> {
    return Promise.resolve(undefined);
  }
  checksParts(): boolean {
    return false;
  }
  segments(at: number, size: number): Segment[] {
    const { path, stamp } = this.parts[0];
    return [{ path, part: undefined, stamp, pos: at, len: size }];
  }
  lastPosition(): number {
    return this.last;
  }
  close() {
    return this.fh.close();
  }
}

const PART = /^(.*)\.(\d{3,})$/;

export function partName(base: string, n: number): string {
  return `${base}.${String(n).padStart(3, '0')}`;
}

const exists = async (f: string) => (await lstat(f).catch(() => undefined)) !== undefined;

/**
 * Opens BUNDLE or its parts. `file` is BUNDLE or BUNDLE.001. The checks here
 * cost no reading: no part missing, empty, extra or of the wrong size, and with
 * BUNDLE.sha256 beside the parts, it lists exactly the parts found. Whether each
 * part hashes to its line is checked by the verifying pass (./parts.ts).
 */
export async function openSource(file: string): Promise<PositionedSource> {
  const m = PART.exec(file);
  const base = m && m[2] === '001' ? (m[1] as string) : file;
  const first = partName(base, 1);
  const haveBase = await exists(base);
  const haveFirst = await exists(first);
  if (haveBase && haveFirst) throw new BundleError(`both ${printable(base)} and ${printable(first)} exist: a whole bundle and the first part of a split one side by side; remove the one that is not meant`);
  if (!haveFirst) {
    const fh = await openBundleFile(file, '');
    try {
      const st = await fh.stat({ bigint: true });
      return new FileSource(fh, [{ name: path.basename(file), path: file, size: Number(st.size), stamp: statStamp(st) }]);
    } catch (err) {
      await fh.close();
      throw err;
    }
  }
  return openParts(base);
}

async function openParts(base: string): Promise<PositionedSource> {
  const dir = path.dirname(base);
  const baseName = path.basename(base);
  const numbers: number[] = [];
  for (const name of await readdir(dir)) {
    const m = PART.exec(name);
    if (m && m[1] === baseName && (m[2] as string).length === Math.max(3, String(Number(m[2])).length) && Number(m[2]) > 0) numbers.push(Number(m[2]));
  }
  numbers.sort((a, b) => a - b);
  const count = numbers[numbers.length - 1] ?? 0;
  const found = new Set(numbers);
  for (let n = 1; n <= count; n++) if (!found.has(n)) throw new BundleError(`part ${printable(partName(baseName, n))} is missing (${printable(partName(baseName, count))} exists)`);
  const names = numbers.map((n) => partName(baseName, n));
  const listed = await readSidecar(`${base}.sha256`);
  if (listed) {
    for (const n of names) if (!listed.has(n)) throw new BundleError(`part ${printable(n)} is extra: ${printable(baseName)}.sha256 does not list it; remove it`);
    const have = new Set(names);
    for (const n of listed.keys()) if (!have.has(n)) throw new BundleError(`part ${printable(n)} is missing (${printable(baseName)}.sha256 lists it)`);
  }
  // Each part is opened once here (to check it and take its stamp) and again only when a read needs it.
  const parts: CheckedPart[] = [];
  for (const name of names) {
    const p = path.join(dir, name);
    const fh = await openBundleFile(p, 'part ');
    try {
      const st = await fh.stat({ bigint: true });
      parts.push({ name, path: p, size: Number(st.size), stamp: statStamp(st) });
    } finally {
      await fh.close();
    }
  }
  // Every part but the last is exactly the split size: that of the first.
  const size = parts[0]?.size ?? 0;
  for (const [i, p] of parts.entries()) {
    const last = i === parts.length - 1;
    if (p.size === 0) throw new BundleError(`part ${printable(p.name)} is empty`);
    if (!last && p.size < size && p.size >= 1024 && (await endsInZeros(p))) {
      // A part that ends in the end-of-archive marker (two zero blocks, as the writer ends the last part) ends the bundle: what follows is extra.
      throw new BundleError(`part ${printable(parts[i + 1]?.name ?? '')} is extra: it follows the end of the archive, which ends in ${printable(p.name)}; remove it`);
    }
    if (!last && p.size !== size) throw new BundleError(`part ${printable(p.name)} is ${p.size} bytes but ${printable(parts[0]?.name ?? '')} is ${size}: every part but the last is the same size (a part is short or from another split)`);
    if (last && p.size > size) throw new BundleError(`part ${printable(p.name)} is ${p.size} bytes, more than the ${size} of the parts before it: the last part is never larger`);
  }
  return new PartsSource(parts, listed, `${baseName}.sha256`);
}

/**
 * Opens the bundle or a part (`what`: '' or 'part '): a link is followed (the
 * user's own), a FIFO or device refused without blocking, as a BundleError.
 * The bundle's own path heads every message about it already.
 */
export async function openBundleFile(file: string, what: string): Promise<FileHandle> {
  try {
    return await openInput(file, what ? printable(file) : 'the bundle');
  } catch (err) {
    if (!(err instanceof UnsafeFileError)) throw err;
    throw new BundleError(err.code === undefined ? err.message : `cannot open ${what}${printable(file)}: ${err.code}`);
  }
}

async function endsInZeros(p: Part): Promise<boolean> {
  const fh = await openBundleFile(p.path, 'part ');
  try {
    const tail = Buffer.alloc(1024);
    await fh.read(tail, 0, 1024, p.size - 1024);
    return tail.every((b) => b === 0);
  } finally {
    await fh.close();
  }
}

/** BUNDLE.sha256, bounded (READ_BOUNDS.sidecar); undefined when there is none. */
async function readSidecar(file: string): Promise<Map<string, string> | undefined> {
  let bytes: Buffer;
  try {
    bytes = await readRegular(file, { ...READ_BOUNDS.sidecar, follow: true });
  } catch (err) {
    if (!(err instanceof UnsafeFileError)) throw err;
    if (err.code === 'ENOENT') return undefined;
    throw new BundleError(err.code === undefined ? err.message : `cannot read ${printable(file)}: ${err.code}`);
  }
  return parseSidecar(bytes.toString('utf8'), file);
}

/**
 * `sha256sum` lines: hex, two spaces (or space and '*'), a name without
 * folders. A part listed twice is refused (which line would be meant?).
 */
export function parseSidecar(text: string, file: string): Map<string, string> {
  const out = new Map<string, string>();
  const lineOf = new Map<string, number>();
  for (const [i, line] of text.split('\n').entries()) {
    if (line === '') continue;
    const m = /^([a-f0-9]{64}) [ *](\S.*)$/.exec(line);
    if (!m) throw new BundleError(`${printable(file)}: "${printable(line.slice(0, 100))}" is not a sha256sum line`);
    const name = m[2] as string;
    const first = lineOf.get(name);
    if (first !== undefined) throw new BundleError(`${printable(file)} lists part ${printable(name)} twice (lines ${first} and ${i + 1}); keep the one line that is right for it`);
    lineOf.set(name, i + 1);
    out.set(name, m[1] as string);
  }
  return out;
}
