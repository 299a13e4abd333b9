// Reads a tar whole, for tests on small bundles: entry names, types, sizes, bytes.
import { createReadStream } from 'node:fs';
import tar from 'tar-stream';

export interface TarEntry {
  name: string;
  type: string;
  size: number;
  mtime: Date;
  data: Buffer;
}

export async function readTar(file: string): Promise<TarEntry[]> {
  const extract = tar.extract();
  const out: TarEntry[] = [];
  const done = new Promise<void>((resolve, reject) => {
    extract.on('entry', (header, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => chunks.push(c as Buffer));
      stream.on('end', () => {
        out.push({ name: header.name, type: header.type ?? 'file', size: header.size ?? 0, mtime: header.mtime ?? new Date(0), data: Buffer.concat(chunks) });
        next();
      });
      stream.on('error', reject);
    });
    extract.on('finish', resolve);
    extract.on('error', reject);
  });
  createReadStream(file).pipe(extract as unknown as NodeJS.WritableStream);
  await done;
  return out;
}

export function entry(entries: TarEntry[], name: string): TarEntry {
  const e = entries.find((x) => x.name === name);
  if (!e) throw new Error(`no tar entry ${name} (have ${entries.map((x) => x.name).join(', ')})`);
  return e;
}
