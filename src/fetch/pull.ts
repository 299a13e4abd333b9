// One file item into the content store: learn the expected digest (declared,
// from a checksum file, or none for files pinned at build), reuse what the
// store already has, otherwise download with resume and verify.
import type { ContentStore } from '../cache/store.js';
import type { FileItem } from '../manifest/types.js';
import type { Progress } from '../progress/reporter.js';
import type { Http } from '../http/client.js';
import { fetchChecksum, headSize, httpSource } from './files.js';

export interface PulledFile {
  /** sha256 hex of the content. */
  readonly sha256?: string;
  readonly size?: number;
  readonly checksum: 'manifest' | 'checksum-url' | 'pinned-at-build';
  readonly downloaded: number;
  readonly cached: boolean;
}

export interface FileContext {
  readonly http: Http;
  readonly store: ContentStore;
  limit<T>(fn: () => Promise<T>): Promise<T>;
  readonly progress: Progress;
  readonly dryRun: boolean;
  /** A delta: the size of the file a base holds at this path with this sha256 (it is not downloaded then). */
  held?(path: string, sha256: string): number | undefined;
}

export async function pullFile(item: FileItem, ctx: FileContext): Promise<PulledFile> {
  let expected: { algorithm: 'sha256' | 'sha512'; hex: string } | undefined;
  let checksum: PulledFile['checksum'] = 'manifest';
  if (item.checksum.type === 'digest') expected = { algorithm: item.checksum.algorithm, hex: item.checksum.hex };
  else if (item.checksum.type === 'url') {
    const { url, algorithm } = item.checksum;
    expected = await ctx.limit(() => fetchChecksum(ctx.http, url, item.url, algorithm));
    checksum = 'checksum-url';
  } else checksum = 'pinned-at-build';

  const cached = await lookup(ctx.store, item, expected);
  if (cached) return { sha256: cached.digest.slice('sha256:'.length), size: cached.size, checksum, downloaded: 0, cached: true };
  const heldSize = expected?.algorithm === 'sha256' ? ctx.held?.(item.path, expected.hex) : undefined;
  if (expected && heldSize !== undefined) return { sha256: expected.hex, size: heldSize, checksum, downloaded: 0, cached: false };
  if (ctx.dryRun) {
    const size = await ctx.limit(() => headSize(ctx.http, item.url));
    ctx.progress.addTotal(size ?? 0);
    return { ...(size !== undefined && { size }), checksum, downloaded: 0, cached: false };
  }

  return ctx.limit(async () => {
    const t = ctx.progress.transfer(item.path, 0);
    try {
      const got = await ctx.store.ingest({
        what: item.url,
        ...(expected && { expected: `${expected.algorithm}:${expected.hex}` }),
        partialKey: item.url,
        source: httpSource(ctx.http, item.url),
        retry: ctx.http.retryPolicy,
        onBytes: (n) => t.advance(n),
        onWait: (pid) => ctx.progress.log(`${item.url}: another airlock (pid ${pid}) is fetching it into the same cache; waiting for it`),
      });
      ctx.progress.addTotal(got.size);
      return { sha256: got.digest.slice('sha256:'.length), size: got.size, checksum, downloaded: got.downloaded, cached: false };
    } finally {
      t.done();
    }
  });
}

async function lookup(store: ContentStore, item: FileItem, expected: { algorithm: string; hex: string } | undefined): Promise<{ digest: string; size: number } | undefined> {
  // Hashed before it is believed: a damaged file is removed and fetched anew (sync copies it out as it is).
  if (expected?.algorithm === 'sha256') return store.check(`sha256:${expected.hex}`);
  if (expected?.algorithm === 'sha512') return store.lookup('sha512', expected.hex);
  return store.lookup('url', item.url);
}
