// Content-addressed store, after npm's cacache: content lives under its
// sha256, is written to a partial file, and is renamed into place only after
// its digest matched. A partial file survives a crash or SIGKILL and is
// resumed with a Range request on the next run, when the digest it must
// reach is known (content pinned at build starts over). One process at a time works
// on a partial file (a lock per entry, under locks/); whoever waited for it
// finds the content in place afterwards and fetches nothing.
import { createHash, type Hash } from 'node:crypto';
import { constants, type BigIntStats } from 'node:fs';
import { lstat, rename, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { sha256Hex, splitDigest, type Algorithm } from '../oci/digest.js';
import { withRetry, type RetryPolicy } from '../http/retry.js';
import { writeAtomic } from '../fsx/atomic.js';
import { acquireLock, removeStaleLocks } from '../fsx/lock.js';
import { privateFolder } from '../fsx/cachedir.js';
import { mkdirs } from '../fsx/mkdirs.js';
import { explain, isRegularFile, notRegular, openRegular, readRegular, UnsafeFileError } from '../fsx/safe.js';

const { O_CREAT, O_RDONLY, O_RDWR } = constants;

export { defaultCacheDir } from '../fsx/cachedir.js';

export class DigestMismatchError extends Error {
  readonly exitCode = 1;
  constructor(
    readonly what: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`${what}: checksum mismatch: expected ${expected}, got ${actual}`);
    this.name = 'DigestMismatchError';
  }
}

export interface Source {
  /** Opens the content from `offset`; says where the body really starts (0 when the server ignored Range). */
  open(offset: number): Promise<{ body: Readable; offset: number; size?: number }>;
}

export interface IngestRequest {
  /** What to call it in errors: a reference or URL. */
  readonly what: string;
  /** Expected digest, `sha256:…` or `sha512:…`; undefined trusts what arrives (pinned at build). */
  readonly expected?: string;
  readonly size?: number;
  /** Key for the partial file when no digest is expected (e.g. the URL); also the key of the url index entry recorded for it. */
  readonly partialKey?: string;
  readonly source: Source;
  readonly retry?: RetryPolicy;
  readonly onBytes?: (n: number) => void;
  /** Called when another process is fetching the same content into this cache, and this one waits for it. */
  readonly onWait?: (pid: number) => void;
}

export interface Ingested {
  /** `sha256:<hex>`: where the content now lives. */
  readonly digest: string;
  readonly size: number;
  /** Bytes taken off the network by this call. */
  readonly downloaded: number;
  readonly sha512?: string;
}

const FOLDERS = ['blobs/sha256', 'partial', 'locks', 'index/sha512', 'index/url', 'index/derived'] as const;

export class ContentStore {
  /** Content this process hashed to its digest and renamed into place: digest → the file's stamp right after. */
  private readonly proven = new Map<string, string>();
  private readonly privacy = new Map<string, Promise<boolean>>();

  constructor(readonly root: string) {}

  /** Makes the folders; each must be a real folder (not a link to one elsewhere: partial files are renamed into blobs/). */
  async init(): Promise<void> {
    for (const d of FOLDERS) {
      const dir = path.join(this.root, d);
      // Writable by this user only, whatever the umask (002 on many desktops): the URL and derived
      // tables are believed only from folders nobody else can write (lookup, derived).
      await mkdirs(dir, 0o755).catch((err: unknown) => {
        throw Object.assign(new UnsafeFileError(`cache folder ${dir} cannot be made: ${(err as Error).message}; use another --cache`, dir), { cause: err });
      });
      const s = await lstat(dir);
      if (!s.isDirectory()) throw new UnsafeFileError(`cache folder ${dir} is ${s.isSymbolicLink() ? 'a symbolic link' : 'not a folder'}; remove it (airlock makes it) or use another --cache`, dir);
    }
    await removeStaleLocks(path.join(this.root, 'locks'));
  }

  pathOf(digest: string): string {
    const { algorithm, hex } = splitDigest(digest);
    if (algorithm !== 'sha256') throw new Error(`the store keeps content under sha256, not ${algorithm}`);
    return path.join(this.root, 'blobs', 'sha256', hex);
  }

  /** True when the content is present as a regular file (and has `size` bytes, when given). */
  async has(digest: string, size?: number): Promise<boolean> {
    return isRegularFile(this.pathOf(digest), size);
  }

  /** Opens stored content for reading; a link or FIFO in its place is refused, never followed. */
  async open(digest: string): Promise<FileHandle> {
    return openRegular(this.pathOf(digest), O_RDONLY);
  }

  /**
   * True when `fh` is the very file this process hashed to `digest` and renamed
   * into place, unchanged since (same device, inode, size and times): reading it
   * again need not hash it again. Content from an earlier run is never proven.
   */
  async provenByThisRun(digest: string, fh: FileHandle): Promise<boolean> {
    const want = this.proven.get(digest);
    return want !== undefined && want === stampOf(await fh.stat({ bigint: true }));
  }

  async read(digest: string): Promise<Buffer> {
    const bytes = await readRegular(this.pathOf(digest));
    const actual = `sha256:${sha256Hex(bytes)}`;
    if (actual !== digest) {
      await this.remove(digest);
      throw new DigestMismatchError(`cache entry ${digest}`, digest, actual);
    }
    return bytes;
  }

  /** Stores small content held in memory (manifests), verified, atomically. */
  async putBuffer(bytes: Buffer, expected?: string): Promise<string> {
    const digest = `sha256:${sha256Hex(bytes)}`;
    if (expected && expected !== digest) throw new DigestMismatchError('content', expected, digest);
    if (await this.has(digest, bytes.length)) return digest;
    await writeAtomic(this.pathOf(digest), bytes);
    return digest;
  }

  async remove(digest: string): Promise<void> {
    await rm(this.pathOf(digest), { force: true });
  }

  /**
   * The content stored under `digest` when the file hashes to it (and has
   * `size` bytes, when given), and to `sha512` too, when given: hashed now
   * unless this very process verified it into place, unchanged since. A file
   * that does not hash to its own name is removed; undefined then, as when
   * there is none, so the caller fetches it anew. Hashed now, it counts as
   * verified by this run (a build then copies it without hashing it again).
   */
  async check(digest: string, size?: number, sha512?: string): Promise<{ digest: string; size: number } | undefined> {
    const { hex } = splitDigest(digest);
    let fh: FileHandle;
    try {
      fh = await this.open(digest);
    } catch {
      return undefined; // missing, or a link or FIFO in its place: fetched anew, and renamed over it
    }
    let damaged = false;
    try {
      const before = await fh.stat({ bigint: true });
      if (size !== undefined && before.size !== BigInt(size)) return undefined;
      const found = { digest, size: Number(before.size) };
      if (sha512 === undefined && this.proven.get(digest) === stampOf(before)) return found;
      const hashes = await hashHandle(fh, found.size, sha512 === undefined ? ['sha256'] : ['sha256', 'sha512']);
      if (hashes.get('sha256')?.digest('hex') !== hex) {
        damaged = true;
        return undefined;
      }
      if (stampOf(await fh.stat({ bigint: true })) === stampOf(before)) this.proven.set(digest, stampOf(before));
      return sha512 === undefined || hashes.get('sha512')?.digest('hex') === sha512 ? found : undefined;
    } finally {
      await fh.close();
      if (damaged) await this.remove(digest);
    }
  }

  /**
   * Small lookup tables: sha512 → sha256 for files, URL → sha256 for files
   * pinned at build. An entry is believed only once the content it names was
   * hashed (by check) to its sha256 and, for the sha512 table, to the sha512
   * it was found under: a planted entry pointing at other bytes is not used.
   * A URL names no content, so nothing can tell a planted URL entry from a
   * true one: that table is believed only where nobody else can write it
   * (privateFolder); elsewhere (a cache shared with a group, say) files
   * pinned at build are fetched anew.
   */
  async lookup(table: 'sha512' | 'url', key: string): Promise<{ digest: string; size: number; sha512?: string } | undefined> {
    let entry: { digest: string; size: number } | undefined;
    try {
      entry = indexEntry(JSON.parse((await readRegular(this.indexPath(table, key))).toString('utf8')));
    } catch {
      return undefined;
    }
    if (!entry || (table === 'url' && !(await this.privateIndex('url')))) return undefined;
    const found = await this.check(entry.digest, entry.size, table === 'sha512' ? key : undefined);
    return found && { ...found, ...(table === 'sha512' && { sha512: key }) };
  }

  async record(table: 'sha512' | 'url', key: string, entry: { digest: string; size: number; sha512?: string }): Promise<void> {
    await writeAtomic(this.indexPath(table, key), JSON.stringify(entry));
  }

  /**
   * A small fact derived from stored content (a Trivy DB's dates), computed
   * once per digest: a warm rebuild does not decompress the layer again.
   * `derive` reads the content as this call streams it from one open file,
   * hashing every byte (the rest too, when `derive` stops early): a value
   * derived from other bytes than `digest`'s is never kept or returned, and
   * the damaged file is removed. The value kept is believed later only from
   * a folder nobody else can write (like the URL table): it cannot be checked
   * without deriving it again.
   */
  async derived<T>(name: string, digest: string, derive: (content: Readable) => Promise<T>): Promise<T> {
    const file = path.join(this.root, 'index', 'derived', `${name}-${splitDigest(digest).hex}`);
    if (await this.privateIndex('derived')) {
      try {
        return JSON.parse((await readRegular(file)).toString('utf8')) as T;
      } catch {
        // not derived yet
      }
    }
    const value = await this.deriveVerified(digest, derive);
    await writeAtomic(file, JSON.stringify(value)).catch(() => undefined);
    return value;
  }

  private async deriveVerified<T>(digest: string, derive: (content: Readable) => Promise<T>): Promise<T> {
    const fh = await this.open(digest);
    const hash = createHash('sha256');
    let position = 0;
    let hashed = false;
    // One read at a time, in order, whether derive's stream or the drain below asks;
    // none once the digest is taken or the file closed (a read derive's stream still had under way).
    let chain: Promise<Buffer> = Promise.resolve(Buffer.alloc(0));
    try {
      const proven = await this.provenByThisRun(digest, fh);
      const next = () =>
        (chain = chain.then(async () => {
          if (hashed) return Buffer.alloc(0);
          const buf = Buffer.allocUnsafe(BATCH);
          const { bytesRead } = await fh.read(buf, 0, buf.length, position);
          position += bytesRead;
          hash.update(buf.subarray(0, bytesRead));
          return buf.subarray(0, bytesRead);
        }));
      async function* chunks(): AsyncGenerator<Buffer> {
        for (let c = await next(); c.length > 0; c = await next()) yield c;
      }
      const value = await derive(Readable.from(chunks(), { objectMode: false }));
      if (!proven) {
        while ((await next()).length > 0);
        hashed = true;
        const actual = `sha256:${hash.digest('hex')}`;
        if (actual !== digest) {
          await this.remove(digest);
          throw new DigestMismatchError(`cache entry ${digest} (removed; run again to fetch it anew)`, digest, actual);
        }
      }
      return value;
    } finally {
      hashed = true;
      await chain.catch(() => undefined);
      await fh.close();
    }
  }

  /** True when nobody but this user can write the index folder `table` (src/fsx/cachedir.ts); asked once per store. */
  private privateIndex(table: 'url' | 'derived'): Promise<boolean> {
    let p = this.privacy.get(table);
    if (!p) this.privacy.set(table, (p = privateFolder(path.join(this.root, 'index', table))));
    return p;
  }

  private indexPath(table: 'sha512' | 'url', key: string): string {
    return path.join(this.root, 'index', table, table === 'url' ? sha256Hex(key) : key);
  }

  /**
   * Downloads into the store: takes the entry's lock (waiting while another
   * process holds it), resumes a partial file left by an earlier run (only
   * when the digest is known: see download), hashes
   * while writing, retries transient failures from where it stopped, and
   * renames into place only when the digest matches. Files found by sha512
   * or by URL get their index entry recorded before the lock is let go.
   */
  async ingest(req: IngestRequest): Promise<Ingested> {
    const expected = req.expected ? splitDigest(req.expected) : undefined;
    if (expected?.algorithm === 'sha256') {
      const hit = await this.stored(req, expected);
      if (hit) return hit;
    }
    const key = expected ? `${expected.algorithm}-${expected.hex}` : `url-${sha256Hex(req.partialKey ?? req.what)}`;
    const lock = await acquireLock(path.join(this.root, 'locks', key), { ...(req.onWait && { onWait: req.onWait }) });
    try {
      // Whoever held the lock before may have stored it meanwhile.
      return (await this.stored(req, expected)) ?? (await this.download(req, expected, key));
    } finally {
      await lock.release();
    }
  }

  /** The content `req` asks for, when the store has it already. */
  private async stored(req: IngestRequest, expected: { algorithm: Algorithm; hex: string } | undefined): Promise<Ingested | undefined> {
    if (!expected || expected.algorithm === 'sha512') {
      const entry = expected ? await this.lookup('sha512', expected.hex) : await this.lookup('url', req.partialKey ?? req.what);
      if (!entry || (req.size !== undefined && entry.size !== req.size)) return undefined;
      return { digest: entry.digest, size: entry.size, downloaded: 0, ...(expected && { sha512: expected.hex }) };
    }
    const digest = `sha256:${expected.hex}`;
    if (!(await this.has(digest, req.size))) return undefined;
    return { digest, size: req.size ?? (await lstat(this.pathOf(digest))).size, downloaded: 0 };
  }

  private async download(req: IngestRequest, expected: { algorithm: Algorithm; hex: string } | undefined, key: string): Promise<Ingested> {
    const algorithms: Algorithm[] = expected?.algorithm === 'sha512' ? ['sha256', 'sha512'] : ['sha256'];
    const partial = path.join(this.root, 'partial', key);
    let downloaded = 0;
    let restarted = false;

    for (;;) {
      const result = await withRetry(async () => {
        // Never through a link, never blocking on a FIFO: only a regular file is resumed.
        const fh = await openRegular(partial, O_RDWR | O_CREAT);
        try {
          // Content pinned at build has no digest to catch a splice: bytes kept from an earlier
          // attempt or run may be of another version than what the server sends now (a plain
          // Range asks for no validator), so such a download always starts from byte 0.
          // undici's own resume within one request keeps If-Match and is checked (http/resume.ts).
          if (!expected) await fh.truncate(0);
          const have = (await fh.stat()).size;
          const hashes = have > 0 ? await hashHandle(fh, have, algorithms) : undefined;
          if (hashes && have === req.size) {
            // Killed after the last byte but before the rename: nothing left to fetch.
            const hex = (a: Algorithm) => hashes.get(a)?.digest('hex');
            return { size: have, sha256: hex('sha256') ?? '', sha512: hex('sha512'), resumed: true };
          }
          const opened = await req.source.open(have);
          let seed = hashes;
          const start = opened.offset;
          if (start !== have) {
            if (start !== 0) {
              await discard(opened.body);
              throw new Error(`${req.what}: asked for the bytes from ${have}, got them from ${start}`);
            }
            // The server sent everything again: start the file over.
            await fh.truncate(0);
            seed = undefined;
          }
          if (req.size !== undefined && opened.size !== undefined && opened.size !== req.size) {
            await discard(opened.body);
            throw new DigestMismatchError(req.what, `${req.size} bytes`, `${opened.size} bytes announced`);
          }
          const running = seed ?? new Map(algorithms.map((a) => [a, createHash(a)]));
          let got = 0;
          // Chunks are gathered into writes of up to 1 MiB, one in flight while the
          // next arrives. When the connection fails, what arrived is written out
          // before the error goes on, so the retry resumes after it.
          const out = new BatchedWriter(fh, start);
          try {
            for await (const chunk of opened.body) {
              const c = chunk as Buffer;
              for (const h of running.values()) h.update(c);
              await out.push(c);
              got += c.length;
              downloaded += c.length;
              req.onBytes?.(c.length);
            }
          } catch (err) {
            await out.flush().catch(() => undefined);
            throw err;
          }
          await out.flush();
          // No fsync: nothing in the store is believed without hashing it again (only what this
          // very process verified and renamed, unchanged since, is exempt), so a file torn by a
          // power loss is found and fetched anew. Waiting for the disk here cost a build of a
          // 512 MiB layer about 1.3 s on the bench machine (the disk: 233 MB/s with fsync).
          const hex = (a: Algorithm) => running.get(a)?.digest('hex');
          return { size: start + got, sha256: hex('sha256') ?? '', sha512: algorithms.includes('sha512') ? hex('sha512') : undefined, resumed: start > 0 };
        } finally {
          await fh.close();
        }
      }, req.retry);

      const actualExpectedAlg = expected ? (expected.algorithm === 'sha512' ? result.sha512 : result.sha256) : undefined;
      const sizeOk = req.size === undefined || result.size === req.size;
      if (expected && (actualExpectedAlg !== expected.hex || !sizeOk)) {
        await rm(partial, { force: true });
        if (result.resumed && !restarted) {
          // A resumed download can splice two different versions of a file: try once from zero.
          restarted = true;
          continue;
        }
        const got = !sizeOk ? `${result.size} bytes (expected ${req.size})` : `${expected.algorithm}:${actualExpectedAlg ?? ''}`;
        throw new DigestMismatchError(req.what, `${expected.algorithm}:${expected.hex}`, got);
      }
      const digest = `sha256:${result.sha256}`;
      const final = this.pathOf(digest);
      // rename() replaces a link or FIFO at the final name; it cannot replace a folder.
      const there = await lstat(final).catch(() => undefined);
      if (there?.isDirectory()) throw notRegular(final, there);
      await rename(partial, final).catch(async (err: unknown) => {
        throw await explain(err, final);
      });
      const placed = await lstat(final, { bigint: true }).catch(() => undefined);
      if (placed?.isFile() && placed.size === BigInt(result.size)) this.proven.set(digest, stampOf(placed));
      const entry = { digest, size: result.size };
      if (expected?.algorithm === 'sha512' && result.sha512) await this.record('sha512', result.sha512, entry);
      if (!expected) await this.record('url', req.partialKey ?? req.what, entry);
      return { ...entry, downloaded, ...(result.sha512 && { sha512: result.sha512 }) };
    }
  }
}

/** Lets go of a body unread. undici's dump(), not destroy(): a destroyed body with no listener raises an unhandled 'error'. */
async function discard(body: Readable & { dump?: () => Promise<unknown> }): Promise<void> {
  if (body.dump) await body.dump().catch(() => undefined);
  else body.destroy();
}

/**
 * Network chunks (often 16–64 KiB) gathered into positioned writev() calls of
 * up to BATCH bytes, at most one in flight: a write per chunk cost a thread-pool
 * round trip each and held up reading the socket meanwhile.
 */
class BatchedWriter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private inFlight: Promise<void> | undefined;

  constructor(
    private readonly fh: FileHandle,
    private position: number,
  ) {}

  async push(chunk: Buffer): Promise<void> {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes >= BATCH) await this.start();
  }

  /** Everything pushed is on disk (or its write failed) when this resolves. */
  async flush(): Promise<void> {
    await this.start();
    await this.inFlight;
    this.inFlight = undefined;
  }

  private async start(): Promise<void> {
    await this.inFlight;
    this.inFlight = undefined;
    if (this.pendingBytes === 0) return;
    const buffers = this.pending;
    const at = this.position;
    this.position += this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    const write = writeAllv(this.fh, buffers, at);
    // Awaited by the next push or flush; until then its failure must not count as unhandled.
    write.catch(() => undefined);
    this.inFlight = write;
  }
}

const BATCH = 1024 * 1024;

async function writeAllv(fh: FileHandle, buffers: Buffer[], position: number): Promise<void> {
  const bufs = [...buffers];
  while (bufs.length > 0) {
    let { bytesWritten } = await fh.writev(bufs, position);
    position += bytesWritten;
    // A short write: drop what went out and go on with the rest.
    while (bufs.length > 0 && bytesWritten >= bufs[0]!.length) bytesWritten -= bufs.shift()!.length;
    if (bytesWritten > 0) bufs[0] = bufs[0]!.subarray(bytesWritten);
  }
}

/** An index entry as record() writes it; undefined for anything else. */
function indexEntry(v: unknown): { digest: string; size: number } | undefined {
  const e = v as { digest?: unknown; size?: unknown } | null;
  if (typeof e !== 'object' || e === null || typeof e.digest !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(e.digest)) return undefined;
  if (typeof e.size !== 'number' || !Number.isSafeInteger(e.size) || e.size < 0) return undefined;
  return { digest: e.digest, size: e.size };
}

function stampOf(s: BigIntStats): string {
  return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
}

/** Hashes the first `size` bytes of an open file. */
async function hashHandle(fh: FileHandle, size: number, algorithms: readonly Algorithm[]): Promise<Map<Algorithm, Hash>> {
  const hashes = new Map(algorithms.map((a) => [a, createHash(a)]));
  const buf = Buffer.allocUnsafe(1024 * 1024);
  for (let done = 0; done < size; ) {
    const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, size - done), done);
    if (bytesRead === 0) break;
    for (const h of hashes.values()) h.update(buf.subarray(0, bytesRead));
    done += bytesRead;
  }
  return hashes;
}
