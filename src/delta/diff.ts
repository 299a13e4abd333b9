// `airlock diff OLD NEW` (SPEC §6): what NEW adds, removes and changes against
// OLD, and how many bytes NEW carries that OLD does not hold. Images are
// matched by reference, files by path; "holds" is by content: a blob of NEW
// counts as held when OLD has a blob with its digest, a file when OLD has a
// file with its sha256 (at any path). Each file of NEW counts on its own, as
// each is its own entry in a bundle.
import type { Base, BaseFile, BaseImage } from './base.js';

export interface ImageChange {
  ref: string;
  oldDigest: string;
  newDigest: string;
}

export interface FileChange {
  path: string;
  oldSha256: string;
  newSha256: string;
  oldSize: number;
  newSize: number;
}

export interface Diff {
  images: { added: BaseImage[]; removed: BaseImage[]; changed: ImageChange[]; unchanged: number };
  files: { added: BaseFile[]; removed: BaseFile[]; changed: FileChange[]; unchanged: number };
  /** What NEW carries that OLD does not hold. */
  carries: {
    bytes: number;
    blobs: { count: number; bytes: number };
    files: { count: number; bytes: number };
  };
}

const byKey = <T>(list: readonly T[], key: (x: T) => string): Map<string, T> => new Map(list.map((x) => [key(x), x]));
const compare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

export function diffBases(oldBase: Base, newBase: Base): Diff {
  const oldImages = byKey(oldBase.images, (i) => i.ref);
  const newImages = byKey(newBase.images, (i) => i.ref);
  const images: Diff['images'] = { added: [], removed: [], changed: [], unchanged: 0 };
  for (const n of newBase.images) {
    const o = oldImages.get(n.ref);
    if (!o) images.added.push(n);
    else if (o.digest !== n.digest) images.changed.push({ ref: n.ref, oldDigest: o.digest, newDigest: n.digest });
    else images.unchanged++;
  }
  for (const o of oldBase.images) if (!newImages.has(o.ref)) images.removed.push(o);

  const oldFiles = byKey(oldBase.files, (f) => f.path);
  const newFiles = byKey(newBase.files, (f) => f.path);
  const files: Diff['files'] = { added: [], removed: [], changed: [], unchanged: 0 };
  for (const n of newBase.files) {
    const o = oldFiles.get(n.path);
    if (!o) files.added.push(n);
    else if (o.sha256 !== n.sha256) files.changed.push({ path: n.path, oldSha256: o.sha256, newSha256: n.sha256, oldSize: o.size, newSize: n.size });
    else files.unchanged++;
  }
  for (const o of oldBase.files) if (!newFiles.has(o.path)) files.removed.push(o);

  images.added.sort((a, b) => compare(a.ref, b.ref));
  images.removed.sort((a, b) => compare(a.ref, b.ref));
  images.changed.sort((a, b) => compare(a.ref, b.ref));
  files.added.sort((a, b) => compare(a.path, b.path));
  files.removed.sort((a, b) => compare(a.path, b.path));
  files.changed.sort((a, b) => compare(a.path, b.path));

  const oldBlobs = new Set(oldBase.blobs.map((b) => b.digest));
  const oldContent = new Set(oldBase.files.map((f) => f.sha256));
  const newBlobs = newBase.blobs.filter((b) => !oldBlobs.has(b.digest));
  const newContent = newBase.files.filter((f) => !oldContent.has(f.sha256));
  const sum = (xs: ReadonlyArray<{ size: number }>) => xs.reduce((n, x) => n + x.size, 0);
  const blobs = { count: newBlobs.length, bytes: sum(newBlobs) };
  const fileBytes = { count: newContent.length, bytes: sum(newContent) };
  return { images, files, carries: { bytes: blobs.bytes + fileBytes.bytes, blobs, files: fileBytes } };
}
