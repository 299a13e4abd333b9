// A strict tar header reader for bundles. It understands exactly what the
// writer produces (ustar regular files, pax `path`/`size` records, the
// end-of-archive marker and zero padding after it) and refuses everything
// else: links, devices, directories, global headers, GNU long names, bad
// checksums, oversized or malformed pax data, anything but zeros after the end.
// Names in its messages come from the bundle and are passed through printable().
/** What the tar reader reads through: a file or the parts of a split bundle (./source.ts). */
export interface ReadSource {
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  size(): Promise<number>;
}
import { printable } from '../util/printable.js';
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

async function readExactly(fh: ReadSource, length: number, position: number, what: string): Promise<Buffer> {
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
export async function readEntryHeader(fh: ReadSource, offset: number): Promise<RawEntry | undefined> {
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
    const name = headerName(header);
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
      throw new BundleError(`entry "${printable(paxPath ?? name)}" is ${TYPE_NAMES[type] ?? `of tar type "${printable(type)}"`}; a bundle holds regular files only`);
    }
    const finalSize = paxSize ?? size;
    const dataOffset = pos + BLOCK;
    return { name: paxPath ?? name, size: finalSize, dataOffset, nextOffset: dataOffset + Math.ceil(finalSize / BLOCK) * BLOCK };
  }
}

/** The name in a ustar (prefix + name) or old-style header. */
export function headerName(header: Buffer): string {
  const nameField = field(header, 0, 100);
  const prefix = header.subarray(257, 263).toString('latin1') === 'ustar\0' ? field(header, 345, 155) : '';
  return prefix ? `${prefix}/${nameField}` : nameField;
}

export function checksumOk(header: Buffer): boolean {
  const text = field(header, 148, 8).trim();
  if (!/^[0-7]+$/.test(text)) return false;
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : (header[i] ?? 0);
  return sum === parseInt(text, 8);
}

function checkChecksum(header: Buffer, at: number): void {
  parseOctal(header, 148, 8, 'the checksum', at);
  if (!checksumOk(header)) throw new BundleError(`tar header at byte ${at}: bad checksum (the bundle is damaged)`);
}

const PAX_KEYS_IGNORED = ['mtime', 'atime', 'ctime', 'uid', 'gid', 'uname', 'gname'];

/**
 * pax extended-header data, to the letter: records `"%d %s=%s\n"` filling the
 * data exactly, where the length is decimal digits without sign or leading
 * zeros and counts the whole record (its own digits, the space, the newline).
 * Only `path` and `size` mean anything here; the times, ids and owner names
 * GNU tar and others add are ignored; any other keyword is refused.
 */
function parsePax(data: Buffer, at: number): { path?: string; size?: number } {
  const out: { path?: string; size?: number } = {};
  for (let off = 0; off < data.length; ) {
    const where = `pax header at byte ${at}: the record at byte ${at + BLOCK + off}`;
    const space = data.indexOf(0x20, off);
    const lenText = data.subarray(off, space === -1 ? Math.min(data.length, off + 24) : Math.min(space, off + 24)).toString('latin1');
    if (space === -1) throw new BundleError(`${where} has no space after its length ("${printable(lenText)}")`);
    if (!/^[1-9][0-9]*$/.test(lenText) || space - off > 24) {
      throw new BundleError(`${where} has a malformed length "${printable(lenText)}": a record length is decimal digits without sign or leading zeros`);
    }
    const len = Number(lenText);
    if (len > data.length - off) throw new BundleError(`${where} is ${lenText} bytes long, which runs past the end of the pax data (${data.length - off} bytes left)`);
    const end = off + len;
    if (end < space + 4) throw new BundleError(`${where} is ${len} bytes long, too short to hold "keyword=value\\n" after its length`);
    if (data[end - 1] !== 0x0a) throw new BundleError(`${where} does not end in a newline`);
    const body = data.subarray(space + 1, end - 1);
    const eq = body.indexOf(0x3d);
    if (eq === -1) throw new BundleError(`${where} has no "=" between keyword and value`);
    if (eq === 0) throw new BundleError(`${where} has an empty keyword`);
    const key = body.subarray(0, eq).toString('utf8');
    const value = body.subarray(eq + 1).toString('utf8');
    if (key === 'path' || key === 'size') {
      if (out[key] !== undefined) throw new BundleError(`pax header at byte ${at}: "${key}" is given twice`);
      if (key === 'path') out.path = value;
      else {
        if (!/^(0|[1-9][0-9]*)$/.test(value) || !Number.isSafeInteger(Number(value))) throw new BundleError(`pax header at byte ${at}: bad size "${printable(value)}"`);
        out.size = Number(value);
      }
    } else if (!PAX_KEYS_IGNORED.includes(key)) {
      throw new BundleError(`pax header at byte ${at}: unexpected record "${printable(key)}"`);
    }
    off = end;
  }
  return out;
}

const TAIL_CHUNK = 1024 * 1024;

/** A tar record: writers pad the archive with zeros to a whole one (GNU tar's default blocking factor of 20 blocks). */
export const TAR_RECORD = 10240;

/**
 * Where the archive must end at the latest when its end-of-archive marker is
 * at `offset`: the marker (two zero blocks) and at most one record of zero
 * padding after it. A tar writer pads no further; reading on would let a
 * bundle padded with gigabytes of (sparse) zeros, or a stream that never ends,
 * cost as much as it likes.
 */
export function archiveEndLimit(offset: number): number {
  return offset + 2 * BLOCK + TAR_RECORD;
}

/** The error for bytes past archiveEndLimit(offset): `what` is "the bundle" or "standard input". */
export function tooMuchPadding(what: string, offset: number, size?: number): BundleError {
  const limit = archiveEndLimit(offset);
  return new BundleError(
    `${what} goes on past byte ${limit}${size === undefined ? '' : ` (it is ${size} bytes)`}: only the end-of-archive marker at byte ${offset} and at most one ${TAR_RECORD}-byte tar record of zero padding may follow the last entry; ` +
      'it was padded or joined with something else: copy the bundle again from where it was built',
  );
}

/**
 * After the last entry, at `offset`: the end-of-archive marker (two zero
 * blocks), then only zero bytes up to the end of the file (GNU tar pads to
 * its record size), at most one record of them. Anything else is refused,
 * naming what it is and where: tar readers that stop at the marker would
 * never show it.
 */
export async function checkEnd(fh: ReadSource, offset: number): Promise<void> {
  const size = await fh.size();
  const end = Math.min(size, archiveEndLimit(offset));
  const buf = Buffer.allocUnsafe(Math.min(TAIL_CHUNK, Math.max(end - offset, 1)));
  const zeros = Buffer.alloc(buf.length);
  for (let pos = offset; pos < end; ) {
    const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, end - pos), pos);
    if (bytesRead === 0) break;
    if (!buf.subarray(0, bytesRead).equals(zeros.subarray(0, bytesRead))) {
      let i = 0;
      while (buf[i] === 0) i++;
      const at = pos + i;
      const what = await describeAt(fh, offset, at, size);
      if (at < offset + 2 * BLOCK) throw new BundleError(`the end-of-archive marker at byte ${offset} is not two zero blocks: ${what} at byte ${at}`);
      throw new BundleError(`trailing data after the end-of-archive marker at byte ${offset}: ${what} at byte ${at}; only zero bytes may follow the marker`);
    }
    pos += bytesRead;
  }
  if (size < offset + 2 * BLOCK) throw new BundleError('the bundle is truncated: the end-of-archive marker is missing');
  if (size > end) throw tooMuchPadding('the bundle', offset, size);
}

/** What the first non-zero byte after the last entry belongs to: a tar header (a hidden entry) or just bytes. */
async function describeAt(fh: ReadSource, offset: number, at: number, size: number): Promise<string> {
  const blockStart = offset + Math.floor((at - offset) / BLOCK) * BLOCK;
  if (blockStart + BLOCK <= size) {
    const block = Buffer.alloc(BLOCK);
    await fh.read(block, 0, BLOCK, blockStart);
    if (checksumOk(block)) return `a tar header for entry "${printable(headerName(block))}"`;
  }
  const peek = Buffer.alloc(Math.min(16, size - at));
  const { bytesRead } = await fh.read(peek, 0, peek.length, at);
  const hex = [...peek.subarray(0, bytesRead)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
  return `non-zero bytes (${hex}${at + bytesRead < size ? ' …' : ''})`;
}

export { readExactly };
