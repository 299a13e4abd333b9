// Makes hostile bundles out of a good one: any entries, any types, any names.
import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { readTar, type TarEntry } from './tarball.js';

export interface HostileEntry {
  name: string;
  type?: 'file' | 'symlink' | 'link' | 'directory' | 'character-device';
  data?: Buffer;
  linkname?: string;
  /** Declared size, when it should differ from the data (truncation games). */
  size?: number;
}

export async function writeEntries(dst: string, entries: HostileEntry[], opts: { truncateAt?: number } = {}): Promise<void> {
  const pack = tar.pack();
  const out = pipeline(pack as unknown as NodeJS.ReadableStream, createWriteStream(dst));
  for (const e of entries) {
    const type = e.type ?? 'file';
    await new Promise<void>((resolve, reject) => {
      const header = { name: e.name, type, mode: 0o644, mtime: new Date(0), ...(e.linkname !== undefined && { linkname: e.linkname }) };
      if (type === 'file') pack.entry({ ...header, size: e.data?.length ?? 0 }, e.data ?? Buffer.alloc(0), (err) => (err ? reject(err) : resolve()));
      else pack.entry(header, (err) => (err ? reject(err) : resolve())).end(undefined);
    });
  }
  pack.finalize();
  await out;
  if (opts.truncateAt !== undefined) {
    const { truncate } = await import('node:fs/promises');
    await truncate(dst, opts.truncateAt);
  }
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
