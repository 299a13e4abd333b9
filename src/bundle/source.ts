// Where a bundle's bytes come from: one file, or the parts of a split bundle
// (SPEC §7: BUNDLE.001, BUNDLE.002, … written by build --split-size) read as one.
// Every reader path goes through this positioned-read interface, so a split
// bundle is verified, unpacked and served exactly like a whole one.
import { createHash } from 'node:crypto';
import { lstat, open, readdir, readFile, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { printable } from '../util/printable.js';
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
  /** Called when reads move on to another part (of a split bundle): for progress. */
  onPart?: (part: Part, index: number) => void;
  close(): Promise<void>;
}

export interface Part {
  readonly name: string;
  readonly path: string;
  readonly size: number;
}

async function fileStamp(fh: FileHandle): Promise<string> {
  const s = await fh.stat({ bigint: true });
  return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
}

class FileSource implements PositionedSource {
  constructor(
    private readonly fh: FileHandle,
    readonly parts: readonly Part[],
  ) {}
  read(buffer: Buffer, offset: number, length: number, position: number) {
    return this.fh.read(buffer, offset, length, position);
  }
  async size() {
    return (await this.fh.stat()).size;
  }
  stamp() {
    return fileStamp(this.fh);
  }
  checkArchiveEnd(): void {}
  close() {
    return this.fh.close();
  }
}

/** The parts of a split bundle read as one: positioned reads cross part boundaries. */
class PartsSource implements PositionedSource {
  private readonly starts: number[] = [];
  private readonly total: number;
  private current = -1;
  onPart?: (part: Part, index: number) => void;
  constructor(
    private readonly handles: FileHandle[],
    readonly parts: readonly Part[],
  ) {
    let at = 0;
    for (const p of parts) {
      this.starts.push(at);
      at += p.size;
    }
    this.total = at;
  }
  async read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }> {
    if (length === 0) return { bytesRead: 0 };
    if (position >= this.total) {
      const last = this.parts[this.parts.length - 1];
      throw new BundleError(`the archive goes on after the last part ${printable(last?.name ?? '?')} (${this.total} bytes in ${this.parts.length} parts): a part after it is missing, or a part is short`);
    }
    let i = this.starts.length - 1;
    while ((this.starts[i] ?? 0) > position) i--;
    const start = this.starts[i] ?? 0;
    const part = this.parts[i] as Part;
    if (i !== this.current) {
      this.current = i;
      this.onPart?.(part, i);
    }
    const n = Math.min(length, part.size - (position - start));
    const { bytesRead } = await (this.handles[i] as FileHandle).read(buffer, offset, n, position - start);
    if (bytesRead === 0) throw new BundleError(`part ${printable(part.name)} is shorter than when it was opened (${part.size} bytes); it changed on disk`);
    return { bytesRead };
  }
  size() {
    return Promise.resolve(this.total);
  }
  async stamp() {
    return (await Promise.all(this.handles.map(fileStamp))).join('/');
  }
  checkArchiveEnd(end: number): void {
    for (const [i, p] of this.parts.entries()) {
      if ((this.starts[i] ?? 0) >= end) throw new BundleError(`part ${printable(p.name)} is extra: it follows the end of the archive (which ends in an earlier part); remove it`);
    }
  }
  async close() {
    await Promise.all(this.handles.map((h) => h.close()));
  }
}

const PART = /^(.*)\.(\d{3,})$/;

export function partName(base: string, n: number): string {
  return `${base}.${String(n).padStart(3, '0')}`;
}

const exists = async (f: string) => (await lstat(f).catch(() => undefined)) !== undefined;

/**
 * Opens BUNDLE or its parts. `file` is BUNDLE or BUNDLE.001. With BUNDLE.sha256
 * beside the parts, it must list exactly the parts found, and each part must
 * hash to its line (a swapped, damaged or short part is named).
 */
export async function openSource(file: string): Promise<PositionedSource> {
  const m = PART.exec(file);
  const base = m && m[2] === '001' ? (m[1] as string) : file;
  const first = partName(base, 1);
  const haveBase = await exists(base);
  const haveFirst = await exists(first);
  if (haveBase && haveFirst) throw new BundleError(`both ${printable(base)} and ${printable(first)} exist: a whole bundle and the first part of a split one side by side; remove the one that is not meant`);
  if (!haveFirst) {
    let fh: FileHandle;
    try {
      fh = await open(file, 'r');
    } catch (err) {
      throw new BundleError(`cannot open ${printable(file)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    try {
      const size = (await fh.stat()).size;
      return new FileSource(fh, [{ name: path.basename(file), path: file, size }]);
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
  for (let n = 1; n <= count; n++) if (!numbers.includes(n)) throw new BundleError(`part ${printable(partName(baseName, n))} is missing (${printable(partName(baseName, count))} exists)`);
  const names = numbers.map((n) => partName(baseName, n));
  const listed = await readSidecar(`${base}.sha256`);
  if (listed) {
    for (const n of names) if (!listed.has(n)) throw new BundleError(`part ${printable(n)} is extra: ${printable(baseName)}.sha256 does not list it; remove it`);
    for (const n of listed.keys()) if (!names.includes(n)) throw new BundleError(`part ${printable(n)} is missing (${printable(baseName)}.sha256 lists it)`);
  }
  const handles: FileHandle[] = [];
  const parts: Part[] = [];
  try {
    for (const name of names) {
      const p = path.join(dir, name);
      let fh: FileHandle;
      try {
        fh = await open(p, 'r');
      } catch (err) {
        throw new BundleError(`cannot open part ${printable(p)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
      handles.push(fh);
      const st = await fh.stat();
      if (!st.isFile()) throw new BundleError(`part ${printable(name)} is not a regular file`);
      parts.push({ name, path: p, size: st.size });
    }
    // Every part but the last is exactly the split size: that of the first.
    const size = parts[0]?.size ?? 0;
    for (const [i, p] of parts.entries()) {
      const last = i === parts.length - 1;
      if (p.size === 0) throw new BundleError(`part ${printable(p.name)} is empty`);
      if (!last && p.size < size && p.size >= 1024) {
        // A part that ends in the end-of-archive marker (two zero blocks, as the writer ends the last part) ends the bundle: what follows is extra.
        const tail = Buffer.alloc(1024);
        await (handles[i] as FileHandle).read(tail, 0, 1024, p.size - 1024);
        if (tail.every((b) => b === 0)) throw new BundleError(`part ${printable(parts[i + 1]?.name ?? '')} is extra: it follows the end of the archive, which ends in ${printable(p.name)}; remove it`);
      }
      if (!last && p.size !== size) throw new BundleError(`part ${printable(p.name)} is ${p.size} bytes but ${printable(parts[0]?.name ?? '')} is ${size}: every part but the last is the same size (a part is short or from another split)`);
      if (last && p.size > size) throw new BundleError(`part ${printable(p.name)} is ${p.size} bytes, more than the ${size} of the parts before it: the last part is never larger`);
    }
    if (listed) {
      const buf = Buffer.allocUnsafe(1024 * 1024);
      for (const [i, p] of parts.entries()) {
        const h = createHash('sha256');
        const fh = handles[i] as FileHandle;
        for (let pos = 0; pos < p.size; ) {
          const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, p.size - pos), pos);
          if (bytesRead === 0) throw new BundleError(`part ${printable(p.name)} changed while being read`);
          h.update(buf.subarray(0, bytesRead));
          pos += bytesRead;
        }
        const actual = h.digest('hex');
        if (actual !== listed.get(p.name)) throw new BundleError(`part ${printable(p.name)} does not match ${printable(baseName)}.sha256 (its sha256 is ${actual}): it is damaged, short, or swapped with another part`);
      }
    }
    return new PartsSource(handles, parts);
  } catch (err) {
    await Promise.all(handles.map((h) => h.close()));
    throw err;
  }
}

/** `sha256sum` lines: hex, two spaces (or space and '*'), a name without folders. Undefined when there is no sidecar. */
async function readSidecar(file: string): Promise<Map<string, string> | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new BundleError(`cannot read ${printable(file)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const m = /^([a-f0-9]{64}) [ *](\S.*)$/.exec(line);
    if (!m) throw new BundleError(`${printable(file)}: "${printable(line.slice(0, 100))}" is not a sha256sum line`);
    out.set(m[2] as string, m[1] as string);
  }
  return out;
}
