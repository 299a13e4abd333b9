// Where files land inside the air gap: a folder the file server serves
// (--files-dir) or a server that takes HTTP PUT (--files-url, e.g. nginx
// WebDAV). A file becomes visible under its name only after its digest
// matched; a `<name>.sha256` beside it (sha256sum -c format) records what was
// put there, so a rerun can skip it without reading it back (no landing path
// takes such a name: src/manifest/paths.ts). In a folder, every write goes through src/fsx/atomic.ts: a link or FIFO planted at a
// name is replaced, never written through.
import { createHash } from 'node:crypto';
import { constants, createReadStream } from 'node:fs';
import { mkdtemp, rm, unlink, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { header, statusError, type Http, type HttpResponse } from '../http/client.js';
import { describeNetworkError } from '../http/errors.js';
import { withRetry } from '../http/retry.js';
import { BundleError } from '../bundle/tarread.js';
import { withAtomic, writeAtomic } from '../fsx/atomic.js';
import { isRegularFile, openRegular, READ_BOUNDS, readRegular, resolveInside } from '../fsx/safe.js';
import { sidecarPath } from '../manifest/paths.js';

export interface FileTarget {
  /** For messages: the folder or URL. */
  readonly describe: string;
  /** True when `p` holds exactly this content (by its sidecar and size). */
  has(p: string, sha256: string, size: number): Promise<boolean>;
  /** Writes `p` from `chunks`, visible only once the bytes hash to `sha256`. */
  put(p: string, chunks: AsyncIterable<Buffer>, sha256: string, size: number): Promise<void>;
  /** Small generated files (falco/index.yaml). */
  putBytes(p: string, bytes: Buffer): Promise<void>;
  /** What `p` holds now, hashed whole (prune: a file someone replaced is not ours to delete); undefined when there is none. */
  hashOf(p: string): Promise<{ sha256: string; size: number } | undefined>;
  /** A small file (a `.sha256` sidecar), bounded; undefined when there is none. */
  readSmall(p: string): Promise<string | undefined>;
  /** Deletes `p`: "absent" when it was not there (a rerun deletes nothing more). Never a folder. */
  remove(p: string): Promise<'deleted' | 'absent'>;
}

function sidecar(p: string, sha256: string): Buffer {
  return Buffer.from(`${sha256}  ${path.posix.basename(p)}\n`);
}

/** True when a sidecar's text records `sha256` for `p` (exactly what put() writes). */
export function sidecarMatches(text: string, p: string, sha256: string): boolean {
  return text.trim() === sidecar(p, sha256).toString().trim();
}

export class DirTarget implements FileTarget {
  constructor(readonly root: string) {}

  get describe(): string {
    return this.root;
  }

  /**
   * The absolute path for `p`, refusing anything that would resolve outside the
   * folder (a symbolic link in it, say). The nearest existing folder is checked
   * before any folder is created, so a link cannot make mkdir write elsewhere.
   */
  private resolve(p: string, create = true): Promise<string> {
    return resolveInside(this.root, p, { create, what: `file ${p}`, error: (m) => new BundleError(m) });
  }

  async has(p: string, sha256: string, size: number): Promise<boolean> {
    try {
      const full = await this.resolve(p, false);
      // lstat and a no-follow read: a link or FIFO planted at either name is not "present" (and is never waited on).
      const [ok, side] = await Promise.all([isRegularFile(full, size), readRegular(sidecarPath(full), READ_BOUNDS.fileSidecar)]);
      return ok && sidecarMatches(side.toString('utf8'), p, sha256);
    } catch {
      return false;
    }
  }

  async put(p: string, chunks: AsyncIterable<Buffer>, sha256: string, size: number): Promise<void> {
    const full = await this.resolve(p);
    const h = createHash('sha256');
    let n = 0;
    await withAtomic(full, async (out) => {
      for await (const c of chunks) {
        h.update(c);
        n += c.length;
        await out.write(c);
      }
      const actual = h.digest('hex');
      if (actual !== sha256 || n !== size) throw new BundleError(`file ${p}: sha256 ${actual} (${n} bytes) is not ${sha256} (${size} bytes); not written`);
    });
    await this.putBytes(sidecarPath(p), sidecar(p, sha256));
  }

  async putBytes(p: string, bytes: Buffer): Promise<void> {
    await writeAtomic(await this.resolve(p), bytes);
  }

  async hashOf(p: string): Promise<{ sha256: string; size: number } | undefined> {
    const fh = await this.openExisting(p);
    if (!fh) return undefined;
    try {
      const h = createHash('sha256');
      let size = 0;
      for await (const c of fh.createReadStream({ autoClose: false }) as AsyncIterable<Buffer>) {
        h.update(c);
        size += c.length;
      }
      return { sha256: h.digest('hex'), size };
    } finally {
      await fh.close();
    }
  }

  async readSmall(p: string): Promise<string | undefined> {
    try {
      return (await readRegular(await this.resolve(p, false), READ_BOUNDS.fileSidecar)).toString('utf8');
    } catch (err) {
      if ((err as { code?: string }).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async remove(p: string): Promise<'deleted' | 'absent'> {
    // Opened first (no link followed, regular files only): a folder or link planted at the name is refused, not removed.
    const fh = await this.openExisting(p);
    if (!fh) return 'absent';
    await fh.close();
    await unlink(await this.resolve(p, false));
    return 'deleted';
  }

  private async openExisting(p: string): Promise<FileHandle | undefined> {
    try {
      return await openRegular(await this.resolve(p, false), constants.O_RDONLY);
    } catch (err) {
      if ((err as { code?: string }).code === 'ENOENT') return undefined;
      throw err;
    }
  }
}

export class UrlTarget implements FileTarget {
  private readonly base: string;

  constructor(
    base: string,
    private readonly http: Http,
  ) {
    this.base = base.replace(/\/+$/, '');
  }

  get describe(): string {
    return this.base;
  }

  url(p: string): string {
    return `${this.base}/${p.split('/').map(encodeURIComponent).join('/')}`;
  }

  async has(p: string, sha256: string, size: number): Promise<boolean> {
    const head = await this.send(this.url(p), { method: 'HEAD' });
    await head.body.dump();
    if (head.status !== 200 || Number(header(head, 'content-length')) !== size) return false;
    const side = await this.send(this.url(sidecarPath(p)), { maxBody: 64 * 1024 });
    const text = await side.body.text().catch(() => '');
    return side.status === 200 && sidecarMatches(text, p, sha256);
  }

  /** Spools to a local temp file first: nothing reaches the server until the digest matched. */
  async put(p: string, chunks: AsyncIterable<Buffer>, sha256: string, size: number): Promise<void> {
    const dir = await mkdtemp(path.join(tmpdir(), 'airlock-spool-'));
    const spool = path.join(dir, 'file');
    try {
      const target = new DirTarget(dir);
      await target.put('file', chunks, sha256, size).catch((err: Error) => {
        throw new BundleError(err.message.replace('file file:', `file ${p}:`));
      });
      await withRetry(async () => {
        const res = await this.send(this.url(p), {
          method: 'PUT',
          headers: { 'content-length': String(size), 'content-type': 'application/octet-stream' },
          body: createReadStream(spool),
        });
        await this.expectStored(res, p);
      }, this.http.retryPolicy);
      await this.putBytes(sidecarPath(p), sidecar(p, sha256));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  async putBytes(p: string, bytes: Buffer): Promise<void> {
    const res = await this.send(this.url(p), { method: 'PUT', headers: { 'content-length': String(bytes.length) }, body: bytes });
    await this.expectStored(res, p);
  }

  async hashOf(p: string): Promise<{ sha256: string; size: number } | undefined> {
    const url = this.url(p);
    const res = await this.send(url, {});
    if (res.status === 404) {
      await res.body.dump();
      return undefined;
    }
    await this.expectOk(res, [200], `GET ${url}`);
    const h = createHash('sha256');
    let size = 0;
    try {
      for await (const c of res.body as AsyncIterable<Buffer>) {
        h.update(c);
        size += c.length;
      }
    } catch (err) {
      throw Object.assign(new BundleError(`GET ${url}: ${describeNetworkError(err)}`), { cause: err });
    }
    return { sha256: h.digest('hex'), size };
  }

  async readSmall(p: string): Promise<string | undefined> {
    const url = this.url(p);
    const res = await this.send(url, { maxBody: READ_BOUNDS.fileSidecar.max });
    if (res.status === 404) {
      await res.body.dump();
      return undefined;
    }
    await this.expectOk(res, [200], `GET ${url}`);
    return res.body.text();
  }

  /** HTTP DELETE (nginx WebDAV `dav_methods DELETE`): 404 is "absent". */
  async remove(p: string): Promise<'deleted' | 'absent'> {
    const url = this.url(p);
    const res = await this.send(url, { method: 'DELETE' });
    if (res.status === 404) {
      await res.body.dump();
      return 'absent';
    }
    await this.expectOk(res, [200, 202, 204], `DELETE ${url}`);
    await res.body.dump();
    return 'deleted';
  }

  private async expectOk(res: HttpResponse, ok: number[], what: string): Promise<void> {
    if (ok.includes(res.status)) return;
    const text = await res.body.text().catch(() => '');
    const hint = res.status === 405 ? ' (the file server does not take this method: for nginx, dav_methods PUT DELETE)' : '';
    throw statusError(res, `${what}: ${res.url.origin} answered HTTP ${res.status} ${text.slice(0, 200)}`.trim() + hint);
  }

  private async send(url: string, req: Parameters<Http['request']>[1]): Promise<HttpResponse> {
    try {
      return await this.http.request(url, { item: url, ...req });
    } catch (err) {
      throw Object.assign(new BundleError(`${req?.method ?? 'GET'} ${url}: ${describeNetworkError(err)}`), { cause: err });
    }
  }

  private async expectStored(res: HttpResponse, p: string): Promise<void> {
    const text = await res.body.text().catch(() => '');
    if (res.status === 201 || res.status === 204 || res.status === 200) return;
    throw statusError(res, `PUT ${this.url(p)}: ${res.url.origin} answered HTTP ${res.status} ${text.slice(0, 200)}`.trim());
  }

}
