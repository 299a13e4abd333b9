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
}

export interface Written {
  readonly path: string;
  readonly sha256: string;
  readonly size: number;
  readonly bundleJson: Buffer;
}

/** The OCI image layout's index.json: one descriptor per image or artifact, named by its full reference. */
function ociIndex(images: BundleIndex['images'], blobs: BundleIndex['blobs']): Buffer {
  const sizes = new Map(blobs.map((b) => [b.digest, b.size]));
  const manifests = images.map((i) => ({
    mediaType: i.mediaType,
    digest: i.digest,
    size: sizes.get(i.digest) ?? 0,
    annotations: { [ANNOTATION_REF_NAME]: i.ref, [ANNOTATION_CONTAINERD_NAME]: i.ref },
  }));
  return Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests }, null, 2) + '\n');
}

export async function writeBundle(input: WriteInput): Promise<Written> {
  const { store, index } = input;
  const layoutBytes = Buffer.from('{"imageLayoutVersion":"1.0.0"}\n');
  const indexBytes = ociIndex(index.images, index.blobs);
  const full: BundleIndex = {
    ...index,
    layout: {
      'oci-layout': { sha256: sha256Hex(layoutBytes), size: layoutBytes.length },
      'index.json': { sha256: sha256Hex(indexBytes), size: indexBytes.length },
    },
  };
  const bundleJson = Buffer.from(JSON.stringify(full, null, 2) + '\n');
  const signature = Buffer.from(signBytes(bundleJson, input.key));

  // A new temp file beside the bundle, renamed over it at the end: a link or
  // FIFO planted at either name is replaced, never written through.
  const out = await createAtomic(input.output);
  const tar = new TarWriter(out.handle, input.onBytes);
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
  // The sidecar is written before the bundle takes its name, and takes its own right after.
  let sidecar: AtomicFile | undefined;
  try {
    sidecar = await createAtomic(`${input.output}.sha256`);
    await sidecar.write(Buffer.from(`${sha256}  ${path.basename(input.output)}\n`));
    await out.commit();
  } catch (err) {
    await out.abort();
    await sidecar?.abort();
    throw err;
  }
  await sidecar.commit();
  return { path: input.output, sha256, size: tar.bytes, bundleJson };
}

/** Copies one stored blob into the tar, checking it hashes to its digest (the store is not trusted blindly). */
async function addFromStore(tar: TarWriter, name: string, store: ContentStore, blob: BundleBlob, mtime: Date): Promise<void> {
  const source = await store.open(blob.digest);
  let actual: string;
  try {
    actual = `sha256:${await tar.addFile(name, source, blob.size, mtime)}`;
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
