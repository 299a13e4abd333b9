// Pushing what the target lacks: blobs first (each repository gets every blob
// of its images; the first to need a digest uploads it, the others mount it),
// then manifests byte for byte, children first, the tag with the root, last;
// then the files. Nothing is committed before every byte of the source was
// verified (a bundle: all of it; a sync: each blob as it entered the cache).
import { RegistryError, UploadDigestMismatch, type ReadRange, type RegistryClient, type StagedUpload } from '../registry/client.js';
import { BundleError } from '../bundle/tarread.js';
import { BundleReader } from '../bundle/reader.js';
import { PartMismatchError } from '../bundle/parts.js';
import { printable } from '../util/printable.js';
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

/**
 * Every blob of every graph (an image's, or an attached manifest's) into its repository: present ones skipped, external
 * ones mounted from where their base put them. A blob over STREAM_MIN is sent
 * while it is read, hashed on the way (its upload is what verifies it), and the
 * rest of the source is verified meanwhile; only when all of it checked out is
 * any upload committed (PUT ?digest=) or anything mounted. So each byte of a
 * bundle is read and hashed once, and a bundle with one bad byte leaves nothing
 * in the registry: the open sessions are abandoned.
 */
export async function pushBlobs(graphs: ReadonlyArray<Pick<Graph, 'blobs'> & { target: { repository: string } }>, reader: UnpackSource, client: RegistryClient, mountFrom: ReadonlyMap<string, string>, opts: TargetOptions, limit: Limit): Promise<BlobStats> {
  const stats: BlobStats = { blobsPushed: 0, blobsMounted: 0, blobsPresent: 0, bytesUploaded: 0 };
  const sizeOf = new Map(reader.index.blobs.map((b) => [b.digest, b.size]));
  const size = (digest: string) => sizeOf.get(digest) ?? 0;
  const entryOf = (digest: string) => BLOBS_PREFIX + digest.slice(7);
  const uploadOpts = { ...(opts.chunkSize && { chunkSize: opts.chunkSize, monolithicMax: opts.chunkSize }) };

  // What each repository lacks.
  const pairs = graphs.flatMap((g) => [...new Set(g.blobs)].map((digest) => ({ repo: g.target.repository, digest })));
  const unique = [...new Map(pairs.map((p) => [`${p.repo}@${p.digest}`, p])).values()];
  const present = await Promise.all(unique.map((p) => limit(() => client.hasBlob(p.repo, p.digest))));
  stats.blobsPresent = present.filter(Boolean).length;

  // Who uploads each digest (the first repository to lack it); the others mount it afterwards.
  const uploader = new Map<string, string>();
  const mounts: Array<{ repo: string; digest: string; from: string; external: boolean }> = [];
  for (const [i, { repo, digest }] of unique.entries()) {
    if (present[i]) continue;
    const external = mountFrom.get(digest);
    if (external !== undefined) mounts.push({ repo, digest, from: external, external: true });
    else if (uploader.has(digest)) mounts.push({ repo, digest, from: uploader.get(digest)!, external: false });
    else uploader.set(digest, repo);
  }
  const streamed = [...uploader].filter(([d]) => size(d) > STREAM_MIN);
  const small = [...uploader].filter(([d]) => size(d) <= STREAM_MIN);
  opts.progress.addTotal([...uploader.keys()].reduce((n, d) => n + size(d), 0));

  // Stream the large blobs while the rest is verified; the first failure stops what has not started.
  const staged: Array<{ upload: StagedUpload; size: number }> = [];
  const failures: unknown[] = [];
  const fail = (err: unknown) => {
    failures.push(err);
  };
  /** Sends one blob's bytes from the source under an upload slot, with a progress line. */
  const send = async <T>(repo: string, digest: string, fn: (read: ReadRange) => Promise<T>): Promise<T | undefined> => {
    const name = entryOf(digest);
    // Outside the upload slots: a sync fetches the blob from upstream here, while other uploads go on.
    await reader.ready?.(name);
    return limit(async () => {
      if (failures.length > 0) return undefined;
      const t = opts.progress.transfer(`${repo}@${digest.slice(7, 19)}`, size(digest));
      try {
        return await fn((a, b) => counted(reader.range(name, a, b), (n) => t.advance(n)));
      } finally {
        t.done();
      }
    });
  };
  const stage = async ([digest, repo]: [string, string]) => {
    const upload = await send(repo, digest, (read) => client.stageBlob(repo, digest, size(digest), read, uploadOpts));
    if (upload) staged.push({ upload, size: size(digest) });
  };
  const rest = new Set(streamed.map(([d]) => entryOf(d)));
  await Promise.all([verifyRest(reader, rest, opts).catch(fail), ...streamed.map((u) => stage(u).catch(fail))]);
  if (failures.length > 0) {
    await Promise.all(staged.map((s) => client.abandonBlob(s.upload)));
    // A damaged part of a split bundle spoils the streamed blob it holds too: the part is what to copy again.
    throw asEntryError(failures.find((e) => e instanceof PartMismatchError) ?? failures[0], reader);
  }

  // Everything checked out: commit, upload the small blobs, then mount.
  await Promise.all([
    ...staged.map((s) =>
      limit(async () => {
        await client.commitBlob(s.upload).catch(async (err: unknown) => {
          // A commit whose answer was lost may have landed.
          if (!(await client.hasBlob(s.upload.repo, s.upload.digest).catch(() => false))) throw err;
        });
        stats.blobsPushed++;
        stats.bytesUploaded += s.size;
      }),
    ),
    ...small.map(([digest, repo]) => upload(repo, digest)),
  ]);
  async function upload(repo: string, digest: string): Promise<void> {
    await send(repo, digest, (read) => client.uploadBlob(repo, digest, size(digest), read, uploadOpts));
    stats.blobsPushed++;
    stats.bytesUploaded += size(digest);
  }
  await Promise.all(
    mounts.map(async (m) => {
      if (await limit(() => client.mountBlob(m.repo, m.digest, m.from))) {
        stats.blobsMounted++;
        return;
      }
      // Not in the tar: a base put it in another repository, checked before pushing.
      if (m.external) throw new RegistryError(`${opts.registry.host} did not mount ${m.digest} from ${m.from} into ${m.repo}, and the delta does not carry it; unpack the base into ${m.repo} first`);
      await upload(m.repo, m.digest);
    }),
  );
  return stats;
}

/** Blobs up to this size are verified with the rest and then sent in one PUT: an upload session held open would cost them a request more. */
const STREAM_MIN = 1024 * 1024;

/** Every entry of the source but `streamed` (their uploads hash them), under a progress line of its own. */
async function verifyRest(reader: UnpackSource, streamed: ReadonlySet<string>, opts: TargetOptions): Promise<void> {
  const entries = reader.toVerify(streamed);
  if (entries.length === 0) return;
  const total = entries.reduce((n, e) => n + e.size, 0);
  opts.progress.addTotal(total);
  const t = opts.progress.transfer(`verifying ${opts.bundle}`, total);
  if (reader.parts.length > 1) reader.onPart((p, n) => opts.progress.log(`reading part ${n + 1} of ${reader.parts.length}: ${printable(p.name)}`));
  try {
    await reader.verifyExcept(streamed, (n) => t.advance(n));
  } finally {
    reader.onPart(undefined);
    t.done();
  }
}

/** A streamed blob whose bytes did not hash to its digest: in a bundle, that entry is corrupt. */
function asEntryError(err: unknown, reader: UnpackSource): unknown {
  if (err instanceof UploadDigestMismatch && reader instanceof BundleReader) {
    return new BundleError(`entry "${BLOBS_PREFIX}${err.expected.slice(7)}" is corrupt: its sha256 is ${err.actual.slice(7)}, bundle.json says ${err.expected.slice(7)}`);
  }
  return err;
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
