// A delta (SPEC §6): what the bases hold stays out of the tar.
import type { Base } from '../delta/base.js';
import type { BlobFrom } from '../bundle/format.js';

/** What the bases hold: each blob with where the inside finds it (the first base that holds it), each file by path, sha256 and size. */
export function heldByBases(bases: readonly Base[]): { blobs: Map<string, BlobFrom>; files: Set<string>; fileSizes: Map<string, number> } {
  const blobs = new Map<string, BlobFrom>();
  const files = new Set<string>();
  /** Path and sha256 to size: a file whose checksum the manifest gives is not downloaded when a base holds it. */
  const fileSizes = new Map<string, number>();
  for (const [n, b] of bases.entries()) {
    for (const x of b.blobs) {
      if (blobs.has(x.digest)) continue;
      const image = b.imageOf?.get(x.digest);
      blobs.set(x.digest, { base: n, ...(x.repository !== undefined && { repository: x.repository }), ...(image !== undefined && { image }) });
    }
    for (const f of b.files) {
      files.add(fileKey(f.path, f.sha256, f.size));
      if (!fileSizes.has(`${f.path}\0${f.sha256}`)) fileSizes.set(`${f.path}\0${f.sha256}`, f.size);
    }
  }
  return { blobs, files, fileSizes };
}

export function fileKey(path: string, sha256: string, size: number): string {
  return `${path}\0${sha256}\0${size}`;
}

