// Makes hostile bundles out of a good one: any entries, any types, any names.
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { appendFile, copyFile, mkdir, readFile, stat, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { headerBlocks, padding } from '../../src/bundle/tar.js';
import { readTar, type TarEntry } from './tarball.js';

export interface HostileEntry {
  name: string;
  /** 'pax-header' writes `data` as the raw records of a pax extended header (typeflag x) for the entry after it. */
  type?: 'file' | 'symlink' | 'link' | 'directory' | 'character-device' | 'pax-header';
  data?: Buffer;
  linkname?: string;
  /** Declared size, when it should differ from the data (truncation games). */
  size?: number;
}

export interface TailGames {
  /** Cut the file here after writing it. */
  truncateAt?: number;
  /** Drop the end-of-archive marker (the two zero blocks tar-stream writes) before appending. */
  dropEnd?: boolean;
  /** Bytes to add at the very end. */
  append?: Buffer;
}

export async function writeEntries(dst: string, entries: HostileEntry[], opts: TailGames = {}): Promise<void> {
  const pack = tar.pack();
  const out = pipeline(pack as unknown as NodeJS.ReadableStream, createWriteStream(dst));
  for (const e of entries) {
    const type = e.type ?? 'file';
    if (type === 'pax-header') {
      // tar-stream writes no body for a pax header of its own: these bytes go in as they are, between two entries.
      pack.push(rawEntryBytes(e.name, 'x', e.data ?? Buffer.alloc(0)));
      continue;
    }
    await new Promise<void>((resolve, reject) => {
      const header = { name: e.name, type, mode: 0o644, mtime: new Date(0), ...(e.linkname !== undefined && { linkname: e.linkname }) };
      if (type === 'file') pack.entry({ ...header, size: e.data?.length ?? 0 }, e.data ?? Buffer.alloc(0), (err) => (err ? reject(err) : resolve()));
      else pack.entry(header, (err) => (err ? reject(err) : resolve())).end(undefined);
    });
  }
  pack.finalize();
  await out;
  if (opts.truncateAt !== undefined) await truncate(dst, opts.truncateAt);
  if (opts.dropEnd) await truncate(dst, (await stat(dst)).size - 1024);
  if (opts.append) await appendFile(dst, opts.append);
}

/** A regular file's header blocks, data and padding as airlock's own writer makes them: an entry to hide after the end. */
export function tarEntryBytes(name: string, data: Buffer): Buffer {
  return rawEntryBytes(name, '0', data);
}

/** One ustar header block of any type (a short name), then `data` and its padding. */
function rawEntryBytes(name: string, typeflag: string, data: Buffer): Buffer {
  const header = headerBlocks({ name, size: data.length, mtime: new Date(0) });
  if (header.length !== 512) throw new Error(`${name}: too long for one header block`);
  header.write(typeflag, 156, 'latin1');
  header.fill(' ', 148, 156);
  const sum = header.reduce((n, b) => n + b, 0);
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return Buffer.concat([header, data, padding(data.length)]);
}

/** One pax record with the length field written as given (`len` undefined: the correct length). */
export function paxRecord(body: string, len?: string): Buffer {
  if (len !== undefined) return Buffer.from(`${len} ${body}`);
  for (let n = 1; ; n++) if (String(n).length + 1 + Buffer.byteLength(body) === n) return Buffer.from(`${n} ${body}`);
}

export async function rewrite(src: string, dst: string, edit: (entries: TarEntry[]) => HostileEntry[]): Promise<void> {
  const entries = await readTar(src);
  await writeEntries(dst, edit(entries));
}

export function flip(data: Buffer, at = Math.floor(data.length / 2)): Buffer {
  const copy = Buffer.from(data);
  copy[at] = (copy[at] ?? 0) ^ 0xff;
  return copy;
}

/**
 * Cuts `file` into `dir`/b.tar.001, … of `partSize` bytes (the last shorter), as
 * build --split-size does, with a b.tar.sha256 of those parts unless `sidecar`
 * gives one to copy instead (a stale one). Returns `dir`/b.tar.
 */
export async function splitInto(file: string, dir: string, partSize: number, sidecar?: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  const bytes = await readFile(file);
  const lines: string[] = [];
  for (let i = 0, at = 0; at < bytes.length || i === 0; i++, at += partSize) {
    const name = `b.tar.${String(i + 1).padStart(3, '0')}`;
    const part = bytes.subarray(at, Math.min(bytes.length, at + partSize));
    await writeFile(path.join(dir, name), part);
    lines.push(`${createHash('sha256').update(part).digest('hex')}  ${name}\n`);
  }
  if (sidecar) await copyFile(sidecar, path.join(dir, 'b.tar.sha256'));
  else await writeFile(path.join(dir, 'b.tar.sha256'), lines.join(''));
  return path.join(dir, 'b.tar');
}
