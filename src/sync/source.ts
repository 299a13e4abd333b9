// The content store as the source of unpack's steps (src/unpack/source.ts).
// Manifests are in it already (the walk stored them, verified); a config or
// layer is fetched into it from upstream only when the push side is about
// to upload it, that is when the target lacked it. Every entry was verified
// as it entered the store (renamed into place only once its digest matched);
// the uploader and the file targets hash again on the way out.
import type { ContentStore } from '../cache/store.js';
import { BLOBS_PREFIX, FILES_PREFIX, type BundleBlob, type BundleFile, type BundleIndex } from '../bundle/format.js';
import type { PlannedEntry } from '../bundle/reader.js';
import type { Part } from '../bundle/source.js';
import type { UnpackSource } from '../unpack/source.js';
import type { LazyFetcher } from './fetch.js';

const CHUNK = 1024 * 1024;

export class CacheSource implements UnpackSource {
  readonly parts: readonly Part[] = [];
  private readonly blobs: Map<string, BundleBlob>;
  private readonly files: Map<string, BundleFile>;

  constructor(
    readonly index: BundleIndex,
    /** The composed index as JSON (the receipt sync writes names no sha256 of it: nothing signed it). */
    readonly bundleJson: Buffer,
    private readonly store: ContentStore,
    private readonly fetcher: LazyFetcher,
  ) {
    this.blobs = new Map(index.blobs.map((b) => [BLOBS_PREFIX + b.digest.slice(7), b]));
    this.files = new Map(index.files.map((f) => [FILES_PREFIX + f.path, f]));
  }

  /** No pass over everything first: each blob is verified as it enters the cache, and only what the target lacks is fetched. */
  plan(): PlannedEntry[] {
    return [];
  }

  async verify(): Promise<void> {}

  toVerify(): PlannedEntry[] {
    return [];
  }

  async verifyExcept(): Promise<void> {}

  async scan(): Promise<void> {}

  onPart(): void {}

  has(name: string): boolean {
    return this.blobs.has(name) || this.files.has(name);
  }

  async ready(name: string): Promise<void> {
    const b = this.blobs.get(name);
    if (b) await this.fetcher.ensure(b.digest);
  }

  /** A manifest, re-hashed as it is read from the cache. */
  async readEntry(name: string, maxBytes = 16 * 1024 * 1024): Promise<Buffer> {
    const b = this.blobs.get(name);
    if (!b) throw new Error(`${name} is not among what the manifest resolved to`);
    if (b.size > maxBytes) throw new Error(`${b.digest} is ${b.size} bytes; too large to read whole`);
    if (!(await this.store.has(b.digest, b.size))) await this.fetcher.ensure(b.digest);
    return this.store.read(b.digest);
  }

  async *range(name: string, start: number, end: number): AsyncGenerator<Buffer> {
    const digest = await this.cached(name);
    const fh = await this.store.open(digest);
    try {
      for (let pos = start; pos < end; ) {
        const buf = Buffer.allocUnsafe(Math.min(CHUNK, end - pos));
        const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
        if (bytesRead === 0) throw new Error(`cache entry ${digest} is shorter than ${end} bytes; remove it from the cache and run again`);
        pos += bytesRead;
        yield buf.subarray(0, bytesRead);
      }
    } finally {
      await fh.close();
    }
  }

  /** The digest `name` is stored under, once it is in the cache. */
  private async cached(name: string): Promise<string> {
    const b = this.blobs.get(name);
    if (b) {
      await this.fetcher.ensure(b.digest);
      return b.digest;
    }
    const f = this.files.get(name);
    if (!f) throw new Error(`${name} is not among what the manifest resolved to`);
    const digest = `sha256:${f.sha256}`;
    // A file the target held when sync looked is not fetched; if it went missing since, say so.
    if (!(await this.store.has(digest, f.size))) throw new Error(`file ${f.path} was at the target when sync started and is gone now; run sync again`);
    return digest;
  }
}
