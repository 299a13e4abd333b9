// Writes the bundle tar in SPEC §4 order, streaming every blob and file from
// the content store (verified against its digest on the way), hashing the
// whole tar for the .sha256 sidecar as it goes, into a temp file renamed at
// the end. Nothing is held in memory but small JSON documents.
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { KeyObject } from 'node:crypto';
import tar from 'tar-stream';
import type { ContentStore } from '../cache/store.js';
import { DigestMismatchError } from '../cache/store.js';
import { HashingStream, sha256Hex } from '../oci/digest.js';
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

export interface WriteInput {
  readonly output: string;
  readonly store: ContentStore;
  readonly index: Omit<BundleIndex, 'layout'>;
  readonly key: KeyObject;
  /** Entry mtimes (SOURCE_DATE_EPOCH makes bundles reproducible). */
  readonly mtime: Date;
  readonly onBytes?: (n: number) => void;
}

export interface Written {
  readonly path: string;
  readonly sha256: string;
  readonly size: number;
  readonly bundleJson: Buffer;
}

/** The OCI image layout's index.json: one descriptor per image or artifact, named by its full reference. */
export function ociIndex(images: BundleIndex['images']): Buffer {
  const manifests = images.map((i) => ({
    mediaType: i.mediaType,
    digest: i.digest,
    size: 0,
    annotations: { [ANNOTATION_REF_NAME]: i.ref, [ANNOTATION_CONTAINERD_NAME]: i.ref },
  }));
  return Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests }, null, 2) + '\n');
}

export async function writeBundle(input: WriteInput): Promise<Written> {
  const { store, index } = input;
  const sizes = new Map(index.blobs.map((b) => [b.digest, b.size]));
  const images = index.images.map((i) => ({ ...i }));
  const layoutBytes = Buffer.from('{"imageLayoutVersion":"1.0.0"}\n');
  const indexBytes = ociIndexWithSizes(images, sizes);
  const full: BundleIndex = {
    ...index,
    layout: {
      'oci-layout': { sha256: sha256Hex(layoutBytes), size: layoutBytes.length },
      'index.json': { sha256: sha256Hex(indexBytes), size: indexBytes.length },
    },
  };
  const bundleJson = Buffer.from(JSON.stringify(full, null, 2) + '\n');
  const signature = Buffer.from(signBytes(bundleJson, input.key));

  const dir = path.dirname(path.resolve(input.output));
  const tmp = path.join(dir, `.${path.basename(input.output)}.partial-${process.pid}`);
  const pack = tar.pack();
  const hasher = new HashingStream(['sha256'], undefined, input.onBytes);
  const done = pipeline(pack as unknown as NodeJS.ReadableStream, hasher, createWriteStream(tmp));
  const header = (name: string, size: number) => ({ name, size, mode: 0o644, mtime: input.mtime, uid: 0, gid: 0, uname: '', gname: '', type: 'file' as const });

  try {
    await addBuffer(pack, header(BUNDLE_JSON, bundleJson.length), bundleJson);
    await addBuffer(pack, header(BUNDLE_SIG, signature.length), signature);
    await addBuffer(pack, header(OCI_LAYOUT_FILE, layoutBytes.length), layoutBytes);
    await addBuffer(pack, header(INDEX_JSON, indexBytes.length), indexBytes);
    for (const b of index.blobs) {
      await addFromStore(pack, header(BLOBS_PREFIX + b.digest.slice('sha256:'.length), b.size), store, b);
    }
    for (const f of index.files) {
      await addFromStore(pack, header(FILES_PREFIX + f.path, f.size), store, { digest: `sha256:${f.sha256}`, size: f.size });
    }
    pack.finalize();
    await done;
  } catch (err) {
    pack.destroy(err as Error);
    await done.catch(() => undefined);
    await rm(tmp, { force: true });
    throw err;
  }

  const sha256 = hasher.hex('sha256');
  const sidecarTmp = `${tmp}.sha256`;
  await writeFile(sidecarTmp, `${sha256}  ${path.basename(input.output)}\n`);
  await rename(tmp, input.output);
  await rename(sidecarTmp, `${input.output}.sha256`);
  return { path: input.output, sha256, size: hasher.bytes, bundleJson };
}

/** index.json descriptors need each root's size, which the blob list knows. */
function ociIndexWithSizes(images: BundleIndex['images'], sizes: Map<string, number>): Buffer {
  const doc = JSON.parse(ociIndex(images).toString('utf8')) as { manifests: Array<{ digest: string; size: number }> };
  for (const m of doc.manifests) m.size = sizes.get(m.digest) ?? 0;
  return Buffer.from(JSON.stringify(doc, null, 2) + '\n');
}

type EntryHeader = Parameters<tar.Pack['entry']>[0];

function addBuffer(pack: tar.Pack, header: EntryHeader, data: Buffer): Promise<void> {
  return new Promise((resolve, reject) => pack.entry(header, data, (err) => (err ? reject(err) : resolve())));
}

/** Copies one stored blob into the tar, checking it hashes to its digest (the store is not trusted blindly). */
async function addFromStore(pack: tar.Pack, header: EntryHeader, store: ContentStore, blob: BundleBlob): Promise<void> {
  let entry!: ReturnType<tar.Pack['entry']>;
  const finished = new Promise<void>((resolve, reject) => {
    entry = pack.entry(header, (err) => (err ? reject(err) : resolve()));
  });
  const verifier = new HashingStream(['sha256']);
  const source = createReadStream(store.pathOf(blob.digest));
  for await (const chunk of source.pipe(verifier)) {
    if (!entry.write(chunk as Buffer)) await once(entry, 'drain');
  }
  const actual = `sha256:${verifier.hex('sha256')}`;
  if (actual !== blob.digest || verifier.bytes !== blob.size) {
    entry.destroy(new Error('digest mismatch'));
    await store.remove(blob.digest);
    throw new DigestMismatchError(`cache entry ${blob.digest} (removed; run the build again to fetch it anew)`, blob.digest, `${actual} (${verifier.bytes} bytes)`);
  }
  entry.end(undefined);
  await finished;
}
