// A strict tar header reader for bundles. It understands exactly what the
// writer produces (ustar regular files, pax `path`/`size` records) and
// refuses everything else: links, devices, directories, global headers, GNU
// long names, bad checksums, oversized pax data.
import type { FileHandle } from 'node:fs/promises';
import { BLOCK } from './tar.js';

export class BundleError extends Error {
  readonly exitCode = 1;
  constructor(message: string) {
    super(message);
    this.name = 'BundleError';
  }
}

/** pax data larger than this is not something airlock wrote. */
const MAX_PAX = 64 * 1024;

export interface RawEntry {
  readonly name: string;
  readonly size: number;
  /** Offset of the first data byte in the file. */
  readonly dataOffset: number;
  /** Offset of the next header. */
  readonly nextOffset: number;
}

const TYPE_NAMES: Record<string, string> = {
  '1': 'a hard link',
  '2': 'a symbolic link',
  '3': 'a character device',
  '4': 'a block device',
  '5': 'a directory',
  '6': 'a FIFO',
  '7': 'a contiguous file',
  g: 'a pax global header',
  L: 'a GNU long name',
  K: 'a GNU long link name',
};

function field(buf: Buffer, off: number, len: number): string {
  const raw = buf.subarray(off, off + len);
  const nul = raw.indexOf(0);
  return raw.subarray(0, nul === -1 ? len : nul).toString('utf8');
}

function parseOctal(buf: Buffer, off: number, len: number, what: string, at: number): number {
  const text = field(buf, off, len).trim();
  if (!/^[0-7]+$/.test(text)) throw new BundleError(`tar header at byte ${at}: ${what} is not an octal number`);
  const n = parseInt(text, 8);
  if (!Number.isSafeInteger(n)) throw new BundleError(`tar header at byte ${at}: ${what} is too large`);
  return n;
}

async function readExactly(fh: FileHandle, length: number, position: number, what: string): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, done, length - done, position + done);
    if (bytesRead === 0) throw new BundleError(`the bundle is truncated: ${what} ends at byte ${position + done} of ${position + length}`);
    done += bytesRead;
  }
  return buf;
}

/**
 * Reads the entry header at `offset`. Returns undefined at the end-of-archive
 * marker (a zero block). A pax header is folded into the entry it describes.
 */
export async function readEntryHeader(fh: FileHandle, offset: number): Promise<RawEntry | undefined> {
  let header = await readExactly(fh, BLOCK, offset, 'a tar header');
  let pos = offset;
  let paxPath: string | undefined;
  let paxSize: number | undefined;
  for (let hop = 0; ; hop++) {
    if (header.every((b) => b === 0)) {
      if (paxPath !== undefined || paxSize !== undefined) throw new BundleError(`a pax header at byte ${pos - BLOCK} is not followed by an entry`);
      return undefined;
    }
    checkChecksum(header, pos);
    const type = String.fromCharCode(header[156] ?? 0);
    const nameField = field(header, 0, 100);
    const prefix = header.subarray(257, 263).toString('latin1') === 'ustar\0' ? field(header, 345, 155) : '';
    const name = prefix ? `${prefix}/${nameField}` : nameField;
    const size = parseOctal(header, 124, 12, 'the size', pos);
    if (type === 'x') {
      if (hop > 0) throw new BundleError(`tar entry at byte ${pos}: two pax headers in a row`);
      if (size > MAX_PAX) throw new BundleError(`tar entry at byte ${pos}: a pax header of ${size} bytes is larger than ${MAX_PAX}`);
      const data = await readExactly(fh, size, pos + BLOCK, 'a pax header');
      ({ path: paxPath, size: paxSize } = parsePax(data, pos));
      pos += BLOCK + Math.ceil(size / BLOCK) * BLOCK;
      header = await readExactly(fh, BLOCK, pos, 'a tar header');
      continue;
    }
    if (type !== '0' && type !== '\0') {
      throw new BundleError(`entry "${paxPath ?? name}" is ${TYPE_NAMES[type] ?? `of tar type "${type}"`}; a bundle holds regular files only`);
    }
    const finalSize = paxSize ?? size;
    const dataOffset = pos + BLOCK;
    return { name: paxPath ?? name, size: finalSize, dataOffset, nextOffset: dataOffset + Math.ceil(finalSize / BLOCK) * BLOCK };
  }
}

function checkChecksum(header: Buffer, at: number): void {
  const stored = parseOctal(header, 148, 8, 'the checksum', at);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : (header[i] ?? 0);
  if (sum !== stored) throw new BundleError(`tar header at byte ${at}: bad checksum (the bundle is damaged)`);
}

function parsePax(data: Buffer, at: number): { path?: string; size?: number } {
  const out: { path?: string; size?: number } = {};
  let off = 0;
  while (off < data.length) {
    const space = data.indexOf(0x20, off);
    const len = Number(data.subarray(off, space).toString('ascii'));
    if (space === -1 || !Number.isSafeInteger(len) || len <= 0 || off + len > data.length) throw new BundleError(`pax header at byte ${at} is malformed`);
    const record = data.subarray(space + 1, off + len - 1).toString('utf8');
    const eq = record.indexOf('=');
    const key = record.slice(0, eq);
    const value = record.slice(eq + 1);
    if (key === 'path') out.path = value;
    else if (key === 'size') {
      if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) throw new BundleError(`pax header at byte ${at}: bad size`);
      out.size = Number(value);
    } else if (!['mtime', 'atime', 'ctime', 'uid', 'gid', 'uname', 'gname'].includes(key)) {
      throw new BundleError(`pax header at byte ${at}: unexpected record "${key}"`);
    }
    off += len;
  }
  return out;
}

export { readExactly };
