// Content-addressed store, after npm's cacache: content lives under its
// sha256, is written to a partial file, and is renamed into place only after
// its digest matched. A partial file survives a crash or SIGKILL and is
// resumed with a Range request on the next run.
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { once } from 'node:events';
import { sha256Hex, splitDigest, type Algorithm } from '../oci/digest.js';
import { withRetry, type RetryPolicy } from '../http/retry.js';

export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CACHE_HOME || path.join(homedir(), '.cache');
  return path.join(base, 'airlock');
}

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
  /** Key for the partial file when no digest is expected (e.g. the URL). */
  readonly partialKey?: string;
  readonly source: Source;
  readonly retry?: RetryPolicy;
  readonly onBytes?: (n: number) => void;
}

export interface Ingested {
  /** `sha256:<hex>`: where the content now lives. */
  readonly digest: string;
  readonly size: number;
  /** Bytes taken off the network by this call. */
  readonly downloaded: number;
  readonly sha512?: string;
}

export class ContentStore {
  constructor(readonly root: string) {}

  async init(): Promise<void> {
    for (const d of ['blobs/sha256', 'partial', 'index/sha512', 'index/url', 'tmp']) await mkdir(path.join(this.root, d), { recursive: true });
  }

  pathOf(digest: string): string {
    const { algorithm, hex } = splitDigest(digest);
    if (algorithm !== 'sha256') throw new Error(`the store keeps content under sha256, not ${algorithm}`);
    return path.join(this.root, 'blobs', 'sha256', hex);
  }

  /** True when the content is present (and has `size` bytes, when given). */
  async has(digest: string, size?: number): Promise<boolean> {
    try {
      const s = await stat(this.pathOf(digest));
      return size === undefined || s.size === size;
    } catch {
      return false;
    }
  }

  async read(digest: string): Promise<Buffer> {
    const bytes = await readFile(this.pathOf(digest));
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
    const tmp = path.join(this.root, 'tmp', `${process.pid}-${Math.random().toString(36).slice(2)}`);
    await writeFile(tmp, bytes);
    await rename(tmp, this.pathOf(digest));
    return digest;
  }

  async remove(digest: string): Promise<void> {
    await rm(this.pathOf(digest), { force: true });
  }

  /** Small lookup tables: sha512 → sha256 for files, URL → sha256 for files pinned at build. */
  async lookup(table: 'sha512' | 'url', key: string): Promise<{ digest: string; size: number; sha512?: string } | undefined> {
    try {
      const entry = JSON.parse(await readFile(this.indexPath(table, key), 'utf8')) as { digest: string; size: number; sha512?: string };
      return (await this.has(entry.digest, entry.size)) ? entry : undefined;
    } catch {
      return undefined;
    }
  }

  async record(table: 'sha512' | 'url', key: string, entry: { digest: string; size: number; sha512?: string }): Promise<void> {
    const tmp = path.join(this.root, 'tmp', `${process.pid}-${Math.random().toString(36).slice(2)}`);
    await writeFile(tmp, JSON.stringify(entry));
    await rename(tmp, this.indexPath(table, key));
  }

  private indexPath(table: 'sha512' | 'url', key: string): string {
    return path.join(this.root, 'index', table, table === 'url' ? sha256Hex(key) : key);
  }

  /**
   * Downloads into the store: resumes a partial file left by an earlier run,
   * hashes while writing, retries transient failures from where it stopped,
   * and renames into place only when the digest matches.
   */
  async ingest(req: IngestRequest): Promise<Ingested> {
    const expected = req.expected ? splitDigest(req.expected) : undefined;
    if (expected?.algorithm === 'sha256' && (await this.has(req.expected ?? '', req.size))) {
      return { digest: req.expected ?? '', size: req.size ?? (await stat(this.pathOf(req.expected ?? ''))).size, downloaded: 0 };
    }
    const algorithms: Algorithm[] = expected?.algorithm === 'sha512' ? ['sha256', 'sha512'] : ['sha256'];
    const key = expected ? `${expected.algorithm}-${expected.hex}` : `url-${sha256Hex(req.partialKey ?? req.what)}`;
    const partial = path.join(this.root, 'partial', key);
    let downloaded = 0;
    let restarted = false;

    for (;;) {
      const result = await withRetry(async () => {
        const have = await sizeOf(partial);
        const hashes = have > 0 ? await hashFile(partial, algorithms) : undefined;
        if (hashes && have === req.size) {
          // Killed after the last byte but before the rename: nothing left to fetch.
          const hex = (a: Algorithm) => hashes.get(a)?.digest('hex');
          return { size: have, sha256: hex('sha256') ?? '', sha512: hex('sha512'), resumed: true };
        }
        const opened = await req.source.open(have);
        let flags = 'a';
        let seed = hashes;
        if (opened.offset === 0 && have > 0) {
          // The server sent everything again: start the file over.
          flags = 'w';
          seed = undefined;
        }
        const start = opened.offset;
        if (req.size !== undefined && opened.size !== undefined && opened.size !== req.size) {
          await discard(opened.body);
          throw new DigestMismatchError(req.what, `${req.size} bytes`, `${opened.size} bytes announced`);
        }
        const running = seed ?? new Map(algorithms.map((a) => [a, createHash(a)]));
        let got = 0;
        // Written by hand, not with pipeline(): when the connection fails, what
        // arrived is still flushed to the partial file, so the retry resumes after it.
        const out = createWriteStream(partial, { flags });
        try {
          for await (const chunk of opened.body) {
            const c = chunk as Buffer;
            for (const h of running.values()) h.update(c);
            got += c.length;
            downloaded += c.length;
            req.onBytes?.(c.length);
            if (!out.write(c)) await once(out, 'drain');
          }
        } finally {
          out.end();
          await finished(out).catch(() => undefined);
        }
        const hex = (a: Algorithm) => running.get(a)?.digest('hex');
        return { size: start + got, sha256: hex('sha256') ?? '', sha512: algorithms.includes('sha512') ? hex('sha512') : undefined, resumed: start > 0 };
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
      await rename(partial, this.pathOf(digest));
      return { digest, size: result.size, downloaded, ...(result.sha512 && { sha512: result.sha512 }) };
    }
  }
}

/** Lets go of a body unread. undici's dump(), not destroy(): a destroyed body with no listener raises an unhandled 'error'. */
async function discard(body: Readable & { dump?: () => Promise<unknown> }): Promise<void> {
  if (body.dump) await body.dump().catch(() => undefined);
  else body.destroy();
}

async function sizeOf(file: string): Promise<number> {
  try {
    return (await stat(file)).size;
  } catch {
    return 0;
  }
}

async function hashFile(file: string, algorithms: readonly Algorithm[]): Promise<Map<Algorithm, Hash>> {
  const hashes = new Map(algorithms.map((a) => [a, createHash(a)]));
  for await (const chunk of createReadStream(file)) for (const h of hashes.values()) h.update(chunk as Buffer);
  return hashes;
}
