// Writes the bundle tar in SPEC §4 order, streaming every blob and file from
// the content store (verified against its digest on the way), hashing the
// whole tar for the .sha256 sidecar as it goes, into a temp file renamed at
// the end (src/fsx/atomic.ts). Nothing is held in memory but small JSON documents.
import path from 'node:path';
import type { KeyObject } from 'node:crypto';
import type { ContentStore } from '../cache/store.js';
import { DigestMismatchError } from '../cache/store.js';
import { sha256Hex } from '../oci/digest.js';
import { ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME, OCI_INDEX } from '../oci/mediatypes.js';
import { signBytes } from '../sign/keys.js';
import {
  BLOBS_PREFIX,
  BUNDLE_JSON,
  BUNDLE_SIG,
  FILES_PREFIX,
  INDEX_JSON,
  OCI_LAYOUT_FILE,
  type BundleBlob,
  type BundleIndex,
} from './format.js';
import { TarWriter } from './tar.js';
import { createAtomic, type AtomicFile } from '../fsx/atomic.js';
import { createHash, type Hash } from 'node:crypto';
import { readdir, rm } from 'node:fs/promises';
import { partName } from './source.js';

export interface WriteInput {
  readonly output: string;
  readonly store: ContentStore;
  readonly index: Omit<BundleIndex, 'layout'>;
  readonly key: KeyObject;
  /** Entry mtimes (SOURCE_DATE_EPOCH makes bundles reproducible). */
  readonly mtime: Date;
  readonly onBytes?: (n: number) => void;
  /** Resolves when a blob is in the store (its download may still be running); rejects when it failed. */
  readonly ready?: (digest: string) => Promise<void>;
  /** Split into parts of this many bytes (SPEC §7): OUTPUT.001, OUTPUT.002, …; no OUTPUT. */
  readonly splitSize?: number;
}

export interface Written {
  readonly path: string;
  readonly sha256: string;
  readonly size: number;
  readonly bundleJson: Buffer;
  /** The parts written, in order (one, OUTPUT itself, when not split). */
  readonly parts: ReadonlyArray<{ path: string; size: number; sha256: string }>;
}

/**
 * The OCI image layout's index.json: one descriptor per image or artifact,
 * named by its full reference; then one per attached manifest (SPEC §9): a
 * tag-scheme one named `REPO:TAG` like an image (no containerd name: it is no
 * image to import), a referrer unnamed with its artifactType, as oras writes
 * untagged manifests into a layout (its `subject` is in the manifest itself).
 * Tools that look a name up (skopeo oci-archive:BUNDLE:REF) skip what they do not ask for.
 */
function ociIndex(index: Pick<BundleIndex, 'images' | 'blobs' | 'attached'>): Buffer {
  const sizes = new Map(index.blobs.map((b) => [b.digest, b.size]));
  const manifests: Array<Record<string, unknown>> = index.images.map((i) => ({
    mediaType: i.mediaType,
    digest: i.digest,
    size: sizes.get(i.digest) ?? 0,
    annotations: { [ANNOTATION_REF_NAME]: i.ref, [ANNOTATION_CONTAINERD_NAME]: i.ref },
  }));
  const unnamed = new Set<string>();
  for (const a of index.attached ?? []) {
    const d = { mediaType: a.mediaType, digest: a.digest, size: sizes.get(a.digest) ?? 0, ...(a.artifactType !== undefined && { artifactType: a.artifactType }) };
    if (a.tag !== undefined) manifests.push({ ...d, annotations: { [ANNOTATION_REF_NAME]: `${a.repository}:${a.tag}` } });
    // The same referrer carried for two repositories is one unnamed descriptor.
    else if (!unnamed.has(a.digest)) {
      unnamed.add(a.digest);
      manifests.push(d);
    }
  }
  return Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests }, null, 2) + '\n');
}

export async function writeBundle(input: WriteInput): Promise<Written> {
  const { store, index } = input;
  const layoutBytes = Buffer.from('{"imageLayoutVersion":"1.0.0"}\n');
  const indexBytes = ociIndex(index);
  const full: BundleIndex = {
    ...index,
    layout: {
      'oci-layout': { sha256: sha256Hex(layoutBytes), size: layoutBytes.length },
      'index.json': { sha256: sha256Hex(indexBytes), size: indexBytes.length },
    },
  };
  const bundleJson = Buffer.from(JSON.stringify(full, null, 2) + '\n');
  const signature = Buffer.from(await signBytes(bundleJson, input.key));

  // A new temp file beside the bundle (or each part), renamed over it at the end:
  // a link or FIFO planted at either name is replaced, never written through.
  const out = input.splitSize ? new PartsSink(input.output, input.splitSize) : new PartsSink(input.output);
  const tar = new TarWriter(out, input.onBytes);
  let sha256: string;
  try {
    await tar.addBuffer(BUNDLE_JSON, bundleJson, input.mtime);
    await tar.addBuffer(BUNDLE_SIG, signature, input.mtime);
    await tar.addBuffer(OCI_LAYOUT_FILE, layoutBytes, input.mtime);
    await tar.addBuffer(INDEX_JSON, indexBytes, input.mtime);
    for (const b of index.blobs) {
      if (b.external) continue; // a base holds it (a delta)
      await input.ready?.(b.digest);
      await addFromStore(tar, BLOBS_PREFIX + b.digest.slice('sha256:'.length), store, b, input.mtime);
    }
    for (const f of index.files) if (!f.external) await addFromStore(tar, FILES_PREFIX + f.path, store, { digest: `sha256:${f.sha256}`, size: f.size }, input.mtime);
    sha256 = await tar.finish();
  } catch (err) {
    await out.abort();
    throw err;
  }
  const parts = out.done(sha256);
  // The sidecar is written before the bundle (its parts) takes its name, and takes its own right after.
  let sidecar: AtomicFile | undefined;
  try {
    sidecar = await createAtomic(`${input.output}.sha256`);
    await sidecar.write(Buffer.from(parts.map((p) => `${p.sha256}  ${path.basename(p.path)}\n`).join('')));
    await out.commit();
  } catch (err) {
    await out.abort();
    await sidecar?.abort();
    throw err;
  }
  await sidecar.commit();
  return { path: input.output, sha256, size: tar.bytes, bundleJson, parts };
}

/**
 * The tar's bytes into one file, or (with a split size) into OUTPUT.001,
 * OUTPUT.002, … each exactly that size but the last, each hashed as written:
 * every part is its own atomic temp file, all renamed at commit. Then OUTPUT
 * (when split) and parts numbered past the last one (all, when not split) left
 * from an earlier build are removed, so no stale piece reads as part of this bundle.
 */
class PartsSink {
  private readonly parts: Array<{ file: AtomicFile; hash: Hash; size: number }> = [];

  constructor(
    private readonly output: string,
    private readonly splitSize?: number,
  ) {}

  private async next(): Promise<{ file: AtomicFile; hash: Hash; size: number }> {
    const name = this.splitSize ? partName(this.output, this.parts.length + 1) : this.output;
    const part = { file: await createAtomic(name), hash: createHash('sha256'), size: 0 };
    this.parts.push(part);
    return part;
  }

  async write(buffer: Buffer, offset: number, length: number): Promise<{ bytesWritten: number }> {
    let part = this.parts[this.parts.length - 1];
    if (!part || (this.splitSize && part.size === this.splitSize)) part = await this.next();
    const n = this.splitSize ? Math.min(length, this.splitSize - part.size) : length;
    const chunk = buffer.subarray(offset, offset + n);
    await part.file.write(chunk);
    if (this.splitSize) part.hash.update(chunk);
    part.size += n;
    return { bytesWritten: n };
  }

  /** The parts' names, sizes and sha256s (the whole tar's for an unsplit bundle). */
  done(whole: string): Array<{ path: string; size: number; sha256: string }> {
    return this.parts.map((p) => ({ path: p.file.path, size: p.size, sha256: this.splitSize ? p.hash.digest('hex') : whole }));
  }

  async commit(): Promise<void> {
    for (const p of this.parts) await p.file.commit();
    const dir = path.dirname(this.output);
    const base = path.basename(this.output);
    if (this.splitSize) await rm(this.output, { force: true });
    for (const name of await readdir(dir)) {
      const m = /^(.*)\.(\d{3,})$/.exec(name);
      if (m && m[1] === base && Number(m[2]) > this.parts.length) await rm(path.join(dir, name), { force: true });
    }
  }

  async abort(): Promise<void> {
    for (const p of this.parts) await p.file.abort();
  }
}

/**
 * Copies one stored blob into the tar, checking it hashes to its digest (the
 * store is not trusted blindly) unless this very process verified that file
 * into the store and it has not changed since (a cold build hashes each byte once less).
 */
async function addFromStore(tar: TarWriter, name: string, store: ContentStore, blob: BundleBlob, mtime: Date): Promise<void> {
  const source = await store.open(blob.digest);
  let actual: string;
  try {
    const proven = await store.provenByThisRun(blob.digest, source);
    const hex = await tar.addFile(name, source, blob.size, mtime, { hash: !proven });
    actual = proven ? blob.digest : `sha256:${hex}`;
  } catch (err) {
    await store.remove(blob.digest);
    throw new Error(`cache entry ${blob.digest}: ${(err as Error).message} (removed; run the build again to fetch it anew)`);
  } finally {
    await source.close();
  }
  if (actual !== blob.digest) {
    await store.remove(blob.digest);
    throw new DigestMismatchError(`cache entry ${blob.digest} (removed; run the build again to fetch it anew)`, blob.digest, actual);
  }
}
