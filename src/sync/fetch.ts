// Blobs from upstream only when the target lacks them. The walk of each
// image (build's resolveImages, pullGraph) names every blob and where
// upstream serves it; here that only records the origin. The fetch itself,
// build's BlobFetcher into the content store (verified, resumable, shared
// with other airlock processes), runs when the push side asks for the blob.
import type { ContentStore } from '../cache/store.js';
import type { Http } from '../http/client.js';
import type { Progress } from '../progress/reporter.js';
import type { RegistryClient } from '../registry/client.js';
import type { Descriptor } from '../registry/pull.js';
import { BlobFetcher } from '../build/fetch.js';

type Limit = <T>(fn: () => Promise<T>) => Promise<T>;

export class LazyFetcher extends BlobFetcher {
  private readonly origins = new Map<string, { client: RegistryClient; repo: string; d: Descriptor }>();
  private readonly missing = new Set<string>();
  /** Each blob's check against the cache, made once per run (ensure is asked for a blob again by every step that reads it). */
  private readonly checking = new Map<string, Promise<{ digest: string; size: number } | undefined>>();

  constructor(
    private readonly cache: ContentStore,
    http: Http,
    progress: Progress,
    limit: Limit,
  ) {
    super(cache, http, progress, limit, new Map());
  }

  /** Blobs that were not in the cache when first asked for: fetched from upstream by this run. */
  get fetched(): number {
    return this.missing.size;
  }

  /** During the walk: remembers where upstream serves the blob; fetches nothing. */
  override fetch(client: RegistryClient, repo: string, d: Descriptor): Promise<void> {
    if (!this.origins.has(d.digest)) this.origins.set(d.digest, { client, repo, d });
    return Promise.resolve();
  }

  /**
   * The blob in the cache, verified: fetched from upstream once, when the
   * cache lacks it. One found there from an earlier run is hashed first (the
   * push copies it out as it is); one that does not match is removed and
   * fetched anew, as build does.
   */
  async ensure(digest: string): Promise<void> {
    const o = this.origins.get(digest);
    if (!o) throw new Error(`${digest}: no image walked names it, so there is nowhere to fetch it from`);
    this.checking.set(digest, this.checking.get(digest) ?? this.cache.check(digest, o.d.size));
    if (!this.missing.has(digest) && !(await this.checking.get(digest))) this.missing.add(digest);
    await super.fetch(o.client, o.repo, o.d);
  }
}
