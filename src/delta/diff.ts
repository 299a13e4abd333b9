// `airlock diff OLD NEW` (SPEC §6): what NEW adds, removes and changes against
// OLD, and how many bytes NEW carries that OLD does not hold. Images are
// matched by reference, files by path; "holds" is by content: a blob of NEW
// counts as held when OLD has a blob with its digest, a file when OLD has a
// file with its sha256 (at any path). Each file of NEW counts on its own, as
// each is its own entry in a bundle.
import type { AttachedKind } from '../bundle/format.js';
import type { Base, BaseAttached, BaseFile, BaseImage } from './base.js';

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

/** A signature, attestation or SBOM of the same image, of the same kind and way (tag or referrer), with another digest. */
export interface AttachedChange {
  /** The image's ref; absent when it could not be told (then `repository` says where). */
  image?: string;
  repository: string;
  kind: AttachedKind;
  /** The tag-scheme suffix (sig, att, sbom), or "referrer". */
  via: string;
  oldDigest: string;
  newDigest: string;
  oldSubject: string;
  newSubject: string;
}

export interface Diff {
  images: { added: BaseImage[]; removed: BaseImage[]; changed: ImageChange[]; unchanged: number };
  files: { added: BaseFile[]; removed: BaseFile[]; changed: FileChange[]; unchanged: number };
  /** Signatures, attestations, SBOMs (SPEC §9), per image. */
  attached: { added: BaseAttached[]; removed: BaseAttached[]; changed: AttachedChange[]; unchanged: number };
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
  return { images, files, attached: diffAttached(oldBase.attached, newBase.attached), carries: { bytes: blobs.bytes + fileBytes.bytes, blobs, files: fileBytes } };
}

/** How an attached manifest hangs off its image: its tag-scheme suffix, or "referrer". */
export function attachedVia(a: Pick<BaseAttached, 'tag'>): string {
  return a.tag !== undefined ? (/\.(sig|att|sbom)$/.exec(a.tag)?.[1] ?? 'tag') : 'referrer';
}

/**
 * Attached manifests grouped by image (its ref, else its repository), kind and
 * way: digests in both are unchanged; one that went and one that came in the
 * same group are a change (a new signature of the same image), in digest order;
 * the rest were added or removed.
 */
function diffAttached(oldList: readonly BaseAttached[], newList: readonly BaseAttached[]): Diff['attached'] {
  const group = (a: BaseAttached) => `${a.image ?? `repository ${a.repository}`}\0${a.kind}\0${attachedVia(a)}`;
  const groups = new Map<string, { old: BaseAttached[]; new: BaseAttached[] }>();
  const into = (list: readonly BaseAttached[], side: 'old' | 'new') => {
    for (const a of list) {
      const g = groups.get(group(a)) ?? { old: [], new: [] };
      g[side].push(a);
      groups.set(group(a), g);
    }
  };
  into(oldList, 'old');
  into(newList, 'new');
  const out: Diff['attached'] = { added: [], removed: [], changed: [], unchanged: 0 };
  for (const g of groups.values()) {
    const oldDigests = new Set(g.old.map((a) => a.digest));
    const newDigests = new Set(g.new.map((a) => a.digest));
    const gone = g.old.filter((a) => !newDigests.has(a.digest)).sort((a, b) => compare(a.digest, b.digest));
    const came = g.new.filter((a) => !oldDigests.has(a.digest)).sort((a, b) => compare(a.digest, b.digest));
    out.unchanged += g.new.length - came.length;
    const pairs = Math.min(gone.length, came.length);
    for (let i = 0; i < pairs; i++) {
      const o = gone[i]!;
      const n = came[i]!;
      out.changed.push({ ...(n.image !== undefined && { image: n.image }), repository: n.repository, kind: n.kind, via: attachedVia(n), oldDigest: o.digest, newDigest: n.digest, oldSubject: o.subject, newSubject: n.subject });
    }
    out.added.push(...came.slice(pairs));
    out.removed.push(...gone.slice(pairs));
  }
  const where = (a: { image?: string; repository: string }) => a.image ?? a.repository;
  const order = (a: { image?: string; repository: string; kind: string }, b: typeof a) => compare(where(a), where(b)) || compare(a.kind, b.kind);
  out.added.sort((a, b) => order(a, b) || compare(a.digest, b.digest));
  out.removed.sort((a, b) => order(a, b) || compare(a.digest, b.digest));
  out.changed.sort((a, b) => order(a, b) || compare(a.newDigest, b.newDigest));
  return out;
}
