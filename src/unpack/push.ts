// Pushing what the target lacks: blobs first (each repository gets every blob
// of its images; the first to need a digest uploads it, the others mount it),
// then manifests byte for byte, children first, the tag with the root, last;
// then the files. Every byte read here was verified before it is pushed (from
// a bundle: all of them, in one pass before the first push).
import { RegistryError, type RegistryClient } from '../registry/client.js';
import { BLOBS_PREFIX, FILES_PREFIX, type BundleIndex } from '../bundle/format.js';
import type { UnpackSource } from './source.js';
import type { Graph, TargetOptions } from './unpack.js';

type Limit = <T>(fn: () => Promise<T>) => Promise<T>;

export interface BlobStats {
  blobsPushed: number;
  blobsMounted: number;
  blobsPresent: number;
  bytesUploaded: number;
}

/** Every blob of every graph into its repository: present ones skipped, external ones mounted from where their base put them. */
export async function pushBlobs(graphs: readonly Graph[], reader: UnpackSource, client: RegistryClient, mountFrom: ReadonlyMap<string, string>, opts: TargetOptions, limit: Limit): Promise<BlobStats> {
  const stats: BlobStats = { blobsPushed: 0, blobsMounted: 0, blobsPresent: 0, bytesUploaded: 0 };
  const uploads = new Map<string, Promise<string>>();
  const needed = new Map<string, Set<string>>();
  for (const g of graphs) {
    const set = needed.get(g.target.repository) ?? new Set<string>();
    for (const d of g.blobs) set.add(d);
    needed.set(g.target.repository, set);
  }
  const sizeOf = new Map(reader.index.blobs.map((b) => [b.digest, b.size]));
  opts.progress.addTotal([...new Set([...needed.values()].flatMap((s) => [...s]))].reduce((n, d) => n + (sizeOf.get(d) ?? 0), 0));
  const ensureBlob = async (repo: string, digest: string): Promise<void> => {
    const size = sizeOf.get(digest) ?? 0;
    if (await limit(() => client.hasBlob(repo, digest))) {
      stats.blobsPresent++;
      return;
    }
    const external = mountFrom.get(digest);
    if (external !== undefined) {
      // Not in the tar: a base put it in another repository, checked before pushing.
      if (!(await limit(() => client.mountBlob(repo, digest, external)))) {
        throw new RegistryError(`${opts.registry.host} did not mount ${digest} from ${external} into ${repo}, and the delta does not carry it; unpack the base into ${repo} first`);
      }
      stats.blobsMounted++;
      return;
    }
    const first = uploads.get(digest);
    if (first) {
      const from = await first;
      if (from !== repo && (await limit(() => client.mountBlob(repo, digest, from)))) {
        stats.blobsMounted++;
        return;
      }
    }
    const upload = (async () => {
      const name = BLOBS_PREFIX + digest.slice(7);
      // Before the upload session opens and outside the upload slots: a sync fetches the blob from upstream here
      // (under a limit of its own), while no request waits on it and other uploads go on.
      await reader.ready?.(name);
      await limit(async () => {
        const t = opts.progress.transfer(`${repo}@${digest.slice(7, 19)}`, size);
        try {
          await client.uploadBlob(repo, digest, size, (start, end) => counted(reader.range(name, start, end), (n) => t.advance(n)), {
            ...(opts.chunkSize && { chunkSize: opts.chunkSize, monolithicMax: opts.chunkSize }),
          });
        } finally {
          t.done();
        }
      });
      stats.blobsPushed++;
      stats.bytesUploaded += size;
      return repo;
    })();
    if (!first) uploads.set(digest, upload);
    await upload;
  };
  await Promise.all([...needed.entries()].flatMap(([repo, digests]) => [...digests].map((d) => ensureBlob(repo, d))));
  return stats;
}

/** Manifests, children first, byte for byte; the tag goes with the root, last. Calls `pushed` per image. */
export async function pushManifests(graphs: readonly Graph[], reader: UnpackSource, client: RegistryClient, limit: Limit, pushed: (g: Graph) => void): Promise<void> {
  await Promise.all(
    graphs.map((g) =>
      limit(async () => {
        if (g.manifests.length === 0 && g.target.tag !== undefined) {
          // The root is external, at the target by digest (checked before pushing): only the tag is new. Its bytes come from there, checked against the digest.
          const m = await client.manifest(g.target.repository, g.image.digest);
          await client.putManifest(g.target.repository, g.target.tag, m.bytes, m.mediaType);
        }
        for (const [i, m] of g.manifests.entries()) {
          const bytes = await reader.readEntry(BLOBS_PREFIX + m.digest.slice(7));
          const isRoot = i === g.manifests.length - 1;
          await client.putManifest(g.target.repository, m.digest, bytes, m.mediaType);
          if (isRoot && g.target.tag !== undefined) await client.putManifest(g.target.repository, g.target.tag, bytes, m.mediaType);
        }
        pushed(g);
      }),
    ),
  );
}

/** Files streamed from the bundle, visible only once their digest matched; returns how many were written. */
export async function putFiles(index: BundleIndex, present: readonly boolean[], reader: UnpackSource, opts: TargetOptions, limit: Limit, done: (i: number, status: 'pushed' | 'present') => void): Promise<number> {
  let written = 0;
  opts.progress.addTotal(index.files.reduce((n, f, i) => n + (present[i] ? 0 : f.size), 0));
  await Promise.all(
    index.files.map((f, i) =>
      limit(async () => {
        if (present[i]) return done(i, 'present');
        const t = opts.progress.transfer(f.path, f.size);
        try {
          // The file target hashes what it writes and keeps it only on a match.
          await opts.files.put(f.path, counted(reader.range(FILES_PREFIX + f.path, 0, f.size), (n) => t.advance(n)), f.sha256, f.size);
        } finally {
          t.done();
        }
        written++;
        done(i, 'pushed');
      }),
    ),
  );
  return written;
}

async function* counted(source: AsyncIterable<Buffer>, onBytes: (n: number) => void): AsyncGenerator<Buffer> {
  for await (const c of source) {
    onBytes(c.length);
    yield c;
  }
}
